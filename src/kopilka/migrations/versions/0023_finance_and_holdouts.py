"""What liability, breakage and campaign holdouts need.

Lots count the points that ran out of them (``lots.expired``), so breakage by earning
cohort is a sum over lots. Lots that expired before this revision keep 0: the ledger
recorded the points an expiry moved per member, not per lot, so their share cannot be
told from what was spent and is not guessed.

Broadcasts may hold back a share of their audience (``holdout_percent``); each recipient
row says whether the member was held back (``holdout``).

Revision ID: 0023_finance_and_holdouts
Revises: 0022_member_predictions
Create Date: 2026-12-05 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_finance_and_holdouts"
down_revision: str | None = "0022_member_predictions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expired", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holdout_percent", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holdout", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.drop_column("holdout")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("holdout_percent")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_column("expired")
