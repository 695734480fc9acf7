"""Rule state: usage counters for limits and budgets, benefits granted by rules,
experiment assignments, and the member's tags and custom attributes.

Revision ID: 0003_rules_state
Revises: 0002_program_versions
Create Date: 2026-11-23 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_rules_state"
down_revision: str | None = "0002_program_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rule_usage",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "rule_id", "subject", "period", name=op.f("pk_rule_usage")
        ),
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("experiment", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "experiment", "member_id", name=op.f("pk_experiment_assignments")
        ),
    )
    op.create_table(
        "member_benefits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_benefits_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_benefits")),
    )
    with op.batch_alter_table("member_benefits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_benefits_member_status", ["member_id", "status"], unique=False
        )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("context", JSON, nullable=True))
    with op.batch_alter_table("purchase_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("brand", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("tags", JSON, nullable=True))
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", JSON, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(
            sa.Column("attributes", JSON, server_default=sa.text("'{}'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("purchase_lines", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("brand")
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_column("context")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("attributes")
        batch_op.drop_column("tags")
    with op.batch_alter_table("member_benefits", schema=None) as batch_op:
        batch_op.drop_index("ix_member_benefits_member_status")
    op.drop_table("member_benefits")
    op.drop_table("experiment_assignments")
    op.drop_table("rule_usage")
