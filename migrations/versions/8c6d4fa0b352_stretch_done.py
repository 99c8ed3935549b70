"""stretches you can see: the patient's "done today" tick per chosen stretch

Revision ID: 8c6d4fa0b352
Revises: 7b5c3e9f2a41
Create Date: 2026-12-07 19:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "8c6d4fa0b352"
down_revision = "7b5c3e9f2a41"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stretch_done",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("stretch", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["visit_id"], ["visit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "stretch", "day"),
    )
    with op.batch_alter_table("stretch_done", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stretch_done_visit_id"), ["visit_id"], unique=False)


def downgrade():
    with op.batch_alter_table("stretch_done", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stretch_done_visit_id"))
    op.drop_table("stretch_done")
