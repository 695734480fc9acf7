"""Recommendations: each build of a program's item-to-item model, the items' nearest
neighbours and popularity it wrote, and the items the program does not recommend to
everyone (out of stock, or only for some tiers).

Revision ID: 0028_recommendations
Revises: 0027_benefits_and_offers
Create Date: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0028_recommendations"
down_revision: str | None = "0027_benefits_and_offers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recommendation_builds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("built_at", WHEN, nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("neighbours", sa.Integer(), nullable=False),
        sa.Column("neighbours_per_item", sa.Integer(), nullable=False),
        sa.Column("shrinkage", sa.Double(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_builds")),
    )
    op.create_index(
        "ix_recommendation_builds_program_built",
        "recommendation_builds",
        ["program_id", "built_at"],
    )

    op.create_table(
        "item_neighbours",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("neighbour", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("together", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "sku", "rank", name=op.f("pk_item_neighbours")),
    )

    op.create_table(
        "item_popularity",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "sku", name=op.f("pk_item_popularity")),
    )
    op.create_index(
        "ix_item_popularity_program_category",
        "item_popularity",
        ["program_id", "category", "buyers"],
    )

    op.create_table(
        "item_availability",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("tiers", JSON, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "sku", name=op.f("pk_item_availability")),
    )


def downgrade() -> None:
    op.drop_table("item_availability")
    op.drop_index("ix_item_popularity_program_category", table_name="item_popularity")
    op.drop_table("item_popularity")
    op.drop_table("item_neighbours")
    op.drop_index("ix_recommendation_builds_program_built", table_name="recommendation_builds")
    op.drop_table("recommendation_builds")
