"""Customer-lifetime models fitted per program and each member's predictions.

Revision ID: 0022_member_predictions
Revises: 0021_kpi_aggregates
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022_member_predictions"
down_revision: str | None = "0021_kpi_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clv_fits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("fitted_at", WHEN, nullable=False),
        sa.Column("calibration_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=16), nullable=True),
        sa.Column("models", JSON, nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("predictions", sa.Integer(), nullable=False),
        sa.Column("horizon_weeks", sa.Integer(), nullable=False),
        sa.Column("discount_rate_percent", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clv_fits")),
    )
    op.create_index("ix_clv_fits_program_fitted", "clv_fits", ["program_id", "fitted_at"])

    op.create_table(
        "member_predictions",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("fit_id", sa.Uuid(), nullable=False),
        sa.Column("p_alive", sa.Double(), nullable=False),
        sa.Column("churn_risk", sa.SmallInteger(), nullable=False),
        sa.Column("expected_purchases", sa.Double(), nullable=False),
        sa.Column("expected_spend", sa.BigInteger(), nullable=False),
        sa.Column("clv", sa.BigInteger(), nullable=False),
        sa.Column("fitted_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_predictions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_predictions")),
    )
    op.create_index(
        "ix_member_predictions_program_churn_risk",
        "member_predictions",
        ["program_id", "churn_risk", "member_id"],
    )
    op.create_index(
        "ix_member_predictions_program_clv",
        "member_predictions",
        ["program_id", "clv", "member_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_member_predictions_program_clv", table_name="member_predictions")
    op.drop_index("ix_member_predictions_program_churn_risk", table_name="member_predictions")
    op.drop_table("member_predictions")
    op.drop_index("ix_clv_fits_program_fitted", table_name="clv_fits")
    op.drop_table("clv_fits")
