"""Alembic's script directory: env.py, the template, and versions/ (one file a revision).

Run by bot.storage.schema (`python -m bot db upgrade`, and the embedded database at start).
The next migration, after a change to bot/storage/tables.py, is written by autogenerate from
the project root (alembic.ini) against a database at the latest revision, then reviewed:

    .venv/bin/python -m bot db upgrade   # DATABASE_URL at the latest revision
    .venv/bin/alembic revision --autogenerate --rev-id 0003 -m "what changed"

tests/test_migrations.py fails until the migrated schema equals the models again.
"""
