"""Program versions: every published settings document is kept, numbered per program, with
at most one draft; ``programs.version`` is the number in force.

Existing programs get their current settings as published version 1.

Revision ID: 0002_program_versions
Revises: 0001_core
Create Date: 2026-11-24 10:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_program_versions"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "program_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_program_versions_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_versions")),
        sa.UniqueConstraint(
            "program_id", "version", name=op.f("uq_program_versions_program_id_version")
        ),
    )
    with op.batch_alter_table("program_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_program_versions_one_draft",
            ["program_id"],
            unique=True,
            postgresql_where=sa.text("status = 'draft'"),
            sqlite_where=sa.text("status = 'draft'"),
        )
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
    _publish_current_settings_as_version_1()


def _publish_current_settings_as_version_1() -> None:
    """Every program's settings so far become its published version 1 (``programs.version``
    already defaults to 1). The settings took effect when the program last changed, so that
    is the version's publication time."""
    programs = sa.table(
        "programs",
        sa.column("id", sa.Uuid()),
        sa.column("settings", JSON),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    versions = sa.table(
        "program_versions",
        sa.column("id", sa.Uuid()),
        sa.column("program_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("document", JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("published_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(programs.c.id, programs.c.settings, programs.c.updated_at))
    first_versions = [
        {
            "id": uuid.uuid4(),
            "program_id": row.id,
            "version": 1,
            "status": "published",
            "document": row.settings,
            "created_at": row.updated_at,
            "published_at": row.updated_at,
        }
        for row in rows
    ]
    if first_versions:
        bind.execute(versions.insert(), first_versions)


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("program_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_program_versions_one_draft")
    op.drop_table("program_versions")
