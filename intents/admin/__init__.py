"""The director's actions and queries on the school directory, with the académie's rules.

Handlers propose (the core asks for confirmation); executors carry the change out and check
the rules again, since the directory may have changed in between.
"""

from intents.admin import blocking, cleanup, queries, teachers

__all__ = ["blocking", "cleanup", "queries", "teachers"]
