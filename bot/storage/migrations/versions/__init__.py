"""The revisions, oldest first by their four-digit id (Alembic reads these files by path)."""
