"""A version for each conversation state: optimistic concurrency across processes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Every write of a speaker's state is conditioned on the version it read and bumps it
(bot/storage/conversations.py): two processes handling the same speaker at once can no
longer overwrite each other's state, and « Confirmer » claims its pending change with that
conditional write, so the change runs exactly once. Existing rows start at version 0; a
database that has the column already (adopted by 0001 from these models) is left as is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _has_version() -> bool:
    """A database adopted by 0001 from a schema made by this code's models has it already."""
    columns = sa.inspect(op.get_bind()).get_columns("conversation_states")
    return any(column["name"] == "version" for column in columns)


def upgrade() -> None:
    if _has_version():
        return
    with op.batch_alter_table("conversation_states") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_states") as batch:
        batch.drop_column("version")
