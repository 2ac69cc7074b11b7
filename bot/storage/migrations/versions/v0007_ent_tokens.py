"""The ENT's sign-in: OAuth2 states under way and each speaker's ENT tokens.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Two new tables (bot/storage/ent_tokens.py): `ent_oauth_states` (the `state` of a sign-in
under way, kept as a hash, single-use, valid 10 minutes) and `ent_tokens` (a speaker's
access and refresh tokens, both encrypted with Fernet, and who they are in the ENT). A
database adopted by 0001 from these models has them already and is left as is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "ent_oauth_states" not in existing:
        op.create_table(
            "ent_oauth_states",
            sa.Column("state_hash", sa.String(), nullable=False),
            sa.Column("speaker_key", sa.String(), nullable=False),
            _timestamp("created_at"),
            _timestamp("expires_at"),
            sa.PrimaryKeyConstraint("state_hash"),
        )
        op.create_index(
            "ix_ent_oauth_states_speaker_key", "ent_oauth_states", ["speaker_key"], unique=False
        )
        op.create_index(
            "ix_ent_oauth_states_expires_at", "ent_oauth_states", ["expires_at"], unique=False
        )
    if "ent_tokens" not in existing:
        op.create_table(
            "ent_tokens",
            sa.Column("speaker_key", sa.String(), nullable=False),
            sa.Column("user_id", sa.String(), nullable=False),
            sa.Column("login", sa.String(), nullable=False),
            sa.Column("refresh_token", sa.Text(), nullable=False),
            sa.Column("access_token", sa.Text(), nullable=False),
            _timestamp("access_expires_at"),
            sa.Column("scope", sa.String(), nullable=False),
            sa.Column("adml_structures", sa.Text(), nullable=False),
            _timestamp("linked_at"),
            _timestamp("refreshed_at", nullable=True),
            sa.PrimaryKeyConstraint("speaker_key"),
        )
        op.create_index("ix_ent_tokens_login", "ent_tokens", ["login"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ent_tokens_login", table_name="ent_tokens")
    op.drop_table("ent_tokens")
    op.drop_index("ix_ent_oauth_states_expires_at", table_name="ent_oauth_states")
    op.drop_index("ix_ent_oauth_states_speaker_key", table_name="ent_oauth_states")
    op.drop_table("ent_oauth_states")
