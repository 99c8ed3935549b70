"""a clinic runs itself: invites and password resets, two-step sign-in, clinic profile, key names

Revision ID: 7b5c3e9f2a41
Revises: 6a4b2d8e1f30
Create Date: 2026-12-07 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "7b5c3e9f2a41"
down_revision = "6a4b2d8e1f30"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("emergency_number", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("default_language", sa.String(length=8), server_default="en", nullable=False)
        )
        batch_op.add_column(sa.Column("logo_png", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("logo_updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("require_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))

    op.create_table(
        "account_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_account_token_therapist_id", "account_token", ["therapist_id"])
    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_code_therapist_id", "recovery_code", ["therapist_id"])


def downgrade():
    op.drop_index("ix_recovery_code_therapist_id", table_name="recovery_code")
    op.drop_table("recovery_code")
    op.drop_index("ix_account_token_therapist_id", table_name="account_token")
    op.drop_table("account_token")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("name")
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("invited_at")
    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_column("require_two_factor")
        batch_op.drop_column("logo_updated_at")
        batch_op.drop_column("logo_png")
        batch_op.drop_column("default_language")
        batch_op.drop_column("emergency_number")
        batch_op.drop_column("address")
