"""Journeys: their versions, members' runs through them and the steps each run took.

Revision ID: 0026_journeys
Revises: 0025_liability_snapshots
Create Date: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026_journeys"
down_revision: str | None = "0025_liability_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
LIVE = sa.text("status IN ('active', 'waiting')")


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("draft", JSON, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("program_id", "key", name=op.f("uq_journeys_program_id_key")),
    )
    op.create_table(
        "journey_versions",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_journey_versions_journey_id_journeys")
        ),
        sa.PrimaryKeyConstraint("journey_id", "version", name=op.f("pk_journey_versions")),
    )
    op.create_table(
        "journey_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("entry_key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("wake_at", WHEN, nullable=True),
        sa.Column("waiting_for", sa.String(length=64), nullable=True),
        sa.Column("entered_at", WHEN, nullable=False),
        sa.Column("goal_until", WHEN, nullable=True),
        sa.Column("converted_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_journey_runs_journey_id_journeys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.UniqueConstraint(
            "journey_id",
            "member_id",
            "entry_key",
            name=op.f("uq_journey_runs_journey_id_member_id_entry_key"),
        ),
    )
    op.create_index(
        "ix_journey_runs_due",
        "journey_runs",
        ["wake_at"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index("ix_journey_runs_member", "journey_runs", ["member_id", "status"])
    op.create_index("ix_journey_runs_journey", "journey_runs", ["journey_id", "status"])
    op.create_table(
        "journey_step_logs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["journey_runs.id"], name=op.f("fk_journey_step_logs_run_id_journey_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_journey_step_logs")),
    )
    op.create_index("ix_journey_step_logs_journey", "journey_step_logs", ["journey_id", "step"])


def downgrade() -> None:
    op.drop_index("ix_journey_step_logs_journey", table_name="journey_step_logs")
    op.drop_table("journey_step_logs")
    op.drop_index("ix_journey_runs_journey", table_name="journey_runs")
    op.drop_index("ix_journey_runs_member", table_name="journey_runs")
    op.drop_index("ix_journey_runs_due", table_name="journey_runs")
    op.drop_table("journey_runs")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
