"""Data minimisation: pupils' birth dates and parent–child links are no longer stored.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

No feature of the assistant reads a birth date or which pupils a relative is linked to (a
parent is recognised by the profile of their account), so the school-file import drops both
(README « Données personnelles »): `users.birth_date` and the `relative_children` table go,
with what they held. A database adopted by 0001 from newer models lacks them already and is
left as is. `birth_date` is a plain column (no index, key or constraint), which SQLite 3.35+
drops in place: no batch copy of `users`, whose rows other tables reference.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "relative_children" in inspector.get_table_names():
        op.drop_table("relative_children")
    if any(column["name"] == "birth_date" for column in inspector.get_columns("users")):
        op.drop_column("users", "birth_date")


def downgrade() -> None:
    # The structure comes back; what it held does not (import the school file again).
    op.add_column("users", sa.Column("birth_date", sa.String(), nullable=True))
    op.create_table(
        "relative_children",
        sa.Column("parent_id", sa.String(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("child_id", sa.String(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("parent_id", "child_id"),
    )
    op.create_index("ix_relative_children_child", "relative_children", ["child_id"])
