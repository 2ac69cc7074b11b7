"""Scheduled jobs stored in the database, and the directors' weekly-reminder opt-in.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Jobs (confirmation expiry, reminders, the GAR check of the next day, the weekly checklist)
live in `scheduled_jobs` so that they survive restarts, and an instance claims one with a
conditional update under a lease (bot/storage/jobs.py), so that it runs once across
instances. `dedupe_key` is unique: two processes scheduling the same thing make one row.
`weekly_reminders` lists the directors who opted in with `/rappels`. Both are new tables,
so SQLite needs no batch mode here; a database adopted by 0001 from these models has them
already and is left as is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "scheduled_jobs" not in existing:
        op.create_table(
            "scheduled_jobs",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("payload", sa.Text(), nullable=False),
            sa.Column("dedupe_key", sa.String(), nullable=False),
            sa.Column("owner", sa.String(), nullable=False),
            _timestamp("due_at"),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("claimed_by", sa.String(), nullable=True),
            _timestamp("claimed_until", nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            _timestamp("created_at"),
            _timestamp("finished_at", nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("dedupe_key"),
        )
        op.create_index("ix_scheduled_jobs_owner", "scheduled_jobs", ["owner"], unique=False)
        op.create_index(
            "ix_scheduled_jobs_status_due_at", "scheduled_jobs", ["status", "due_at"], unique=False
        )
    if "weekly_reminders" not in existing:
        op.create_table(
            "weekly_reminders",
            sa.Column("speaker_key", sa.String(), nullable=False),
            sa.Column("login", sa.String(), nullable=False),
            _timestamp("opted_in_at"),
            sa.PrimaryKeyConstraint("speaker_key"),
        )
        op.create_index("ix_weekly_reminders_login", "weekly_reminders", ["login"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_weekly_reminders_login", table_name="weekly_reminders")
    op.drop_table("weekly_reminders")
    op.drop_index("ix_scheduled_jobs_status_due_at", table_name="scheduled_jobs")
    op.drop_index("ix_scheduled_jobs_owner", table_name="scheduled_jobs")
    op.drop_table("scheduled_jobs")
