"""Staff accounts and sessions, the audit log; members merged into others, and the keys
that find likely duplicates.

Revision ID: 0016_staff_audit
Revises: 0015_support
Create Date: 2026-12-05 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kopilka.members.domain import email_key, name_key

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0016_staff_audit"
down_revision: str | None = "0015_support"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BACKFILL_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("match_name", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("match_email", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("merged_into", sa.Uuid(), nullable=True))
    _backfill_match_keys()
    op.create_index("ix_members_program_match_name", "members", ["program_id", "match_name"])
    op.create_index("ix_members_program_match_email", "members", ["program_id", "match_email"])
    op.create_table(
        "staff",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("stores", JSON, nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name="fk_staff_program_id_programs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
    )
    op.create_index("ix_staff_program_email", "staff", ["program_id", "email"], unique=True)
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_staff_sessions_staff_id_staff"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_staff_sessions_token_hash"),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_name", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=120), nullable=False),
        sa.Column("subject_type", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=True),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_program_at", "audit_log", ["program_id", "at", "id"])
    op.create_index(
        "ix_audit_log_subject", "audit_log", ["program_id", "subject_type", "subject_id", "at"]
    )


def _backfill_match_keys() -> None:
    """The duplicate keys of the members there already are, a batch at a time."""
    bind = op.get_bind()
    members = sa.table(
        "members",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("birthday", sa.Date()),
        sa.column("email", sa.String()),
        sa.column("match_name", sa.String()),
        sa.column("match_email", sa.String()),
    )
    after = None
    while True:
        query = sa.select(members.c.id, members.c.name, members.c.birthday, members.c.email)
        if after is not None:
            query = query.where(members.c.id > after)
        rows = bind.execute(query.order_by(members.c.id).limit(BACKFILL_BATCH)).all()
        if not rows:
            return
        keyed = [
            {
                "member": r.id,
                "match_name": name_key(r.name, r.birthday),
                "match_email": email_key(r.email),
            }
            for r in rows
            if (r.name and r.birthday) or r.email
        ]
        if keyed:
            bind.execute(
                members.update()
                .where(members.c.id == sa.bindparam("member"))
                .values(
                    match_name=sa.bindparam("match_name"),
                    match_email=sa.bindparam("match_email"),
                ),
                keyed,
            )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("staff_sessions")
    op.drop_table("staff")
    op.drop_index("ix_members_program_match_email", table_name="members")
    op.drop_index("ix_members_program_match_name", table_name="members")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("match_email")
        batch.drop_column("match_name")
