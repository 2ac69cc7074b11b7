"""Runtime of the Assistant Rentrée ENT: settings, storage, adapters and command line."""
