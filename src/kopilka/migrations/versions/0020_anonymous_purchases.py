"""Purchases without a member, and their claims.

A purchase, its lines and its returns may be recorded with no member (``member_id``
NULL) until a member claims the purchase by its receipt id; ``purchases.claimed_at`` says
when that happened. The unique ``(program_id, external_id)`` already finds a purchase by
its receipt id, so no index is added.

SQLite cannot drop a NOT NULL with ALTER TABLE, and rebuilding ``purchases`` (the parent
of lines and returns) would fail its children's foreign keys, which stay on during
migrations. SQLite documents a simpler procedure for removing a NOT NULL: edit the table's
definition in the schema table and bump the schema version, in one transaction
(https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
Changes"); the rows need no change.

Revision ID: 0020_anonymous_purchases
Revises: 0019_shop_widget
Create Date: 2026-12-05 13:30:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_anonymous_purchases"
down_revision: str | None = "0019_shop_widget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("purchases", "purchase_lines", "purchase_returns")
REQUIRED = re.compile(r"\bmember_id (\w+(?:\(\d+\))?) NOT NULL")
OPTIONAL = re.compile(r"\bmember_id (\w+(?:\(\d+\))?)(?=,)")


def _sqlite_member_column(required: bool) -> None:
    """Rewrite ``member_id``'s NOT NULL in the stored definitions of the three tables."""
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    for name in TABLES:
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).scalar_one()
        if required:
            changed, count = OPTIONAL.subn(r"member_id \1 NOT NULL", sql, count=1)
        else:
            changed, count = REQUIRED.subn(r"member_id \1", sql, count=1)
        if count != 1:
            raise RuntimeError(f"{name}: member_id's definition is not the one expected")
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, name)
        )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_member_column(required=False)
        op.execute("ALTER TABLE purchases ADD COLUMN claimed_at DATETIME")
        return
    for name in TABLES:
        op.alter_column(name, "member_id", existing_type=sa.Uuid(), nullable=True)
    op.add_column("purchases", sa.Column("claimed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # Fails while a purchase without a member is left (claim, or delete, them first).
    if op.get_bind().dialect.name == "sqlite":
        for name in TABLES:
            left = op.get_bind().exec_driver_sql(
                f"SELECT count(*) FROM {name} WHERE member_id IS NULL"
            )
            if left.scalar_one():
                raise RuntimeError(f"{name} has rows without a member: claim or delete them")
        with op.batch_alter_table("purchases", recreate="never") as batch_op:
            batch_op.drop_column("claimed_at")
        _sqlite_member_column(required=True)
        return
    op.drop_column("purchases", "claimed_at")
    for name in TABLES:
        op.alter_column(name, "member_id", existing_type=sa.Uuid(), nullable=False)
