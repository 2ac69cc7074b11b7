"""The eRun's side: tickets, phrasings taught in chat, drafts of answers, the question log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Four new tables (bot/storage/tickets.py): `tickets` (questions handed to a person, their
texts masked), `learned_phrasings` (« C'est la FAQ… »: examples used by the matcher at once),
`knowledge_drafts` (« Nouvelle réponse »), and `question_log` (what /stats counts, without
any text). A database adopted by 0001 from these models has them already and is left as is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "tickets" not in existing:
        op.create_table(
            "tickets",
            sa.Column("id", sa.Integer(), nullable=False),
            _timestamp("opened_at"),
            sa.Column("reason", sa.String(), nullable=False),
            sa.Column("question", sa.Text(), nullable=False),
            sa.Column("candidates", sa.Text(), nullable=False),
            sa.Column("speaker_key", sa.String(), nullable=False),
            sa.Column("structure_id", sa.String(), nullable=True),
            sa.Column("queue", sa.String(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("notified", sa.Boolean(), nullable=False),
            _timestamp("handled_at", nullable=True),
            sa.Column("handled_by", sa.String(), nullable=True),
            sa.Column("resolution", sa.String(), nullable=True),
            sa.Column("resolution_intent", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"], unique=False)
        op.create_index("ix_tickets_speaker_key", "tickets", ["speaker_key"], unique=False)
        op.create_index("ix_tickets_queue_status", "tickets", ["queue", "status"], unique=False)
    if "learned_phrasings" not in existing:
        op.create_table(
            "learned_phrasings",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("intent", sa.String(), nullable=False),
            sa.Column("taught_by", sa.String(), nullable=False),
            _timestamp("taught_at"),
            sa.Column("exported", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            "ix_learned_phrasings_intent", "learned_phrasings", ["intent"], unique=False
        )
        op.create_index(
            "ix_learned_phrasings_taught_at", "learned_phrasings", ["taught_at"], unique=False
        )
    if "knowledge_drafts" not in existing:
        op.create_table(
            "knowledge_drafts",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("question", sa.Text(), nullable=False),
            sa.Column("answer", sa.Text(), nullable=False),
            sa.Column("author", sa.String(), nullable=False),
            _timestamp("created_at"),
            sa.Column("exported", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "question_log" not in existing:
        op.create_table(
            "question_log",
            sa.Column("id", sa.Integer(), nullable=False),
            _timestamp("at"),
            sa.Column("intent", sa.String(), nullable=True),
            sa.Column("outcome", sa.String(), nullable=False),
            sa.Column("queue", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_question_log_at", "question_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_question_log_at", table_name="question_log")
    op.drop_table("question_log")
    op.drop_table("knowledge_drafts")
    op.drop_index("ix_learned_phrasings_taught_at", table_name="learned_phrasings")
    op.drop_index("ix_learned_phrasings_intent", table_name="learned_phrasings")
    op.drop_table("learned_phrasings")
    op.drop_index("ix_tickets_queue_status", table_name="tickets")
    op.drop_index("ix_tickets_speaker_key", table_name="tickets")
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
    op.drop_table("tickets")
