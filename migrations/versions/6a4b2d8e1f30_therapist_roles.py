"""therapist roles: admin or therapist; each clinic's earliest therapist becomes its admin

Revision ID: 6a4b2d8e1f30
Revises: 5e3a1c2b7d40
Create Date: 2026-12-07 05:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "6a4b2d8e1f30"
down_revision = "5e3a1c2b7d40"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), server_default="therapist", nullable=False)
        )
    # Every existing clinic keeps someone who can manage it: its earliest therapist, as the CLI
    # makes a new clinic's first therapist an admin.
    op.execute(
        """
        UPDATE therapist SET role = 'admin'
        WHERE id IN (
            SELECT t.id FROM therapist t
            WHERE t.created_at = (
                SELECT MIN(o.created_at) FROM therapist o WHERE o.clinic_id = t.clinic_id
            )
        )
        """
    )


def downgrade():
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.drop_column("role")
