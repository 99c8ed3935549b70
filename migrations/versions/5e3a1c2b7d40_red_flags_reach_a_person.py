"""red flags reach a person: patient contact, clinic hours and on-call, escalation, day-7 PGIC

Revision ID: 5e3a1c2b7d40
Revises: 4d2f7c1e9a10
Create Date: 2026-12-07 03:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "5e3a1c2b7d40"
down_revision = "4d2f7c1e9a10"
branch_labels = None
depends_on = None

UNESCALATED = (
    "escalated_at IS NULL AND acknowledged_at IS NULL AND resolved_at IS NULL AND level = 'red'"
)


def upgrade():
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opening_hours", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("oncall_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("oncall_phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("oncall_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("oncall_therapist_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_clinic_oncall_therapist", "therapist", ["oncall_therapist_id"], ["id"]
        )
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pgic", sa.Integer(), nullable=True))
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("escalate_lease_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("escalate_attempts", sa.Integer(), server_default="0", nullable=False)
        )
    # Escalation starts with the alerts raised from now on: an old red alert nobody acknowledged
    # would otherwise reach the on-call contact at the first worker round after the upgrade, days
    # late ("a warning sign 40,000 minutes ago"). Those stay in the review queue as before.
    op.execute("UPDATE alert SET escalated_at = raised_at WHERE level = 'red'")
    op.create_index(
        "ix_alert_unescalated",
        "alert",
        ["raised_at"],
        unique=False,
        postgresql_where=sa.text(UNESCALATED),
        sqlite_where=sa.text(UNESCALATED),
    )
    with op.batch_alter_table("alert_notice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "audience", sa.String(length=16), server_default="therapists", nullable=False
            )
        )
        batch_op.alter_column("therapist_id", existing_type=sa.Uuid(), nullable=True)


def downgrade():
    op.execute("DELETE FROM alert_notice WHERE therapist_id IS NULL")
    with op.batch_alter_table("alert_notice", schema=None) as batch_op:
        batch_op.alter_column("therapist_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("audience")
    op.drop_index(
        "ix_alert_unescalated",
        table_name="alert",
        postgresql_where=sa.text(UNESCALATED),
        sqlite_where=sa.text(UNESCALATED),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("escalate_attempts")
        batch_op.drop_column("escalate_lease_until")
        batch_op.drop_column("escalated_at")
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_column("pgic")
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_constraint("fk_clinic_oncall_therapist", type_="foreignkey")
        batch_op.drop_column("oncall_therapist_id")
        batch_op.drop_column("oncall_email")
        batch_op.drop_column("oncall_phone")
        batch_op.drop_column("oncall_name")
        batch_op.drop_column("opening_hours")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("email")
        batch_op.drop_column("phone")
