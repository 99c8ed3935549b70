"""alert notify attempts: red alerts retried for the recipients a round did not reach

Revision ID: 4d2f7c1e9a10
Revises: 9cbe948c1491
Create Date: 2026-11-21 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "4d2f7c1e9a10"
down_revision = "9cbe948c1491"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify_attempts", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("notify_attempts")
