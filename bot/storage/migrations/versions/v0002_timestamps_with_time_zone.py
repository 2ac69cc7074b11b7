"""Timestamps with time zone in databases created before migrations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Before migrations, sqlmodel mapped `datetime` to `timestamp without time zone`, so PostgreSQL
shifted every time by the session's TimeZone (08:00 UTC read back as 10:00 UTC in
Europe/Paris). Revision 0001 creates new tables right; this one converts the columns of
tables it adopted. The stored values are taken as UTC: the assistant wrote aware UTC times,
which a session in the server's usual TimeZone (UTC) stored unchanged. SQLite keeps no time
zone in any column type, so there is nothing to convert there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMPS = {
    "audit_entries": ("at",),
    "link_codes": ("created_at", "expires_at", "used_at"),
    "account_links": ("linked_at",),
    "failed_link_attempts": ("at",),
    "conversation_states": ("updated_at",),
}


def _naive_columns() -> list[tuple[str, str]]:
    """The (table, column) pairs still declared without time zone."""
    inspector = sa.inspect(op.get_bind())
    naive = []
    for table, columns in TIMESTAMPS.items():
        for column in inspector.get_columns(table):
            kind = column["type"]
            if column["name"] in columns and not getattr(kind, "timezone", True):
                naive.append((table, column["name"]))
    return naive


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _naive_columns():
        op.alter_column(
            table,
            column,
            type_=sa.DateTime(timezone=True),
            existing_type=sa.DateTime(timezone=False),
            postgresql_using=f"\"{column}\" AT TIME ZONE 'UTC'",
        )


def downgrade() -> None:
    # Nothing to undo: 0001's downgrade drops these tables, and a naive timestamp is the defect.
    pass
