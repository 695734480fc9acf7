"""PostgreSQL: one round trip for what a till's purchase reads before it is recorded.

``kopilka_till_member`` locks the member named by an identifier, then their balances, and
only then reads — each statement of a volatile function sees what committed before it ran —
their balances, the stored answer of a retried purchase, their tier and the purchases of
their tier window. Read in the locking statement itself, the window could miss a purchase
of the same member that committed while the lock was awaited.

Revision ID: 0010_till_member_read
Revises: 0009_outbox_undelivered
Create Date: 2026-12-05 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_till_member_read"
down_revision: str | None = "0009_outbox_undelivered"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION kopilka_till_member(
    p_program uuid, p_kind text, p_value text, p_external_id text,
    p_window_start timestamptz, p_window_end timestamptz, p_points text)
RETURNS TABLE (
    id uuid, status text, currency text, available bigint, pending bigint, held bigint,
    request_hash text, answer jsonb,
    tier text, earned text, achieved_at timestamptz, achieved_from text, achieved_by text,
    review_on date, grace_until date, manual_tier text, manual_until timestamptz,
    manual_reason text, spend bigint, visits bigint, points bigint, latest timestamptz,
    created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_member uuid;
BEGIN
    SELECT m.id INTO v_member
    FROM member_identifiers i JOIN members m ON m.id = i.member_id
    WHERE i.program_id = p_program AND i.kind = p_kind AND i.value = p_value
    FOR NO KEY UPDATE OF m;
    IF v_member IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM member_balances b WHERE b.member_id = v_member
    ORDER BY b.currency FOR NO KEY UPDATE;
    RETURN QUERY
    WITH w AS (
        SELECT
            coalesce(sum(p.total - p.returned_amount)
                FILTER (WHERE p.occurred_at <= p_window_end), 0)::bigint AS spend,
            count(*) FILTER (WHERE p.occurred_at <= p_window_end
                AND p.total > p.returned_amount)::bigint AS visits,
            coalesce(sum(coalesce((p.earned ->> p_points)::bigint, 0)
                - coalesce((p.reversed ->> p_points)::bigint, 0))
                FILTER (WHERE p.occurred_at <= p_window_end), 0)::bigint AS points,
            max(p.occurred_at) AS latest
        FROM purchases p
        WHERE p.member_id = v_member AND p.occurred_at >= p_window_start
    )
    SELECT m.id, m.status::text, b.currency::text, b.available, b.pending, b.held,
        x.request_hash::text, x.answer,
        t.tier::text, t.earned::text, t.achieved_at, t.achieved_from::text, t.achieved_by::text,
        t.review_on, t.grace_until, t.manual_tier::text, t.manual_until, t.manual_reason::text,
        w.spend, w.visits, w.points, w.latest, m.created_at
    FROM members m
    JOIN member_balances b ON b.member_id = m.id
    LEFT JOIN purchases x ON x.program_id = p_program AND x.external_id = p_external_id
    LEFT JOIN member_tiers t ON t.member_id = m.id
    CROSS JOIN w
    WHERE m.id = v_member
    ORDER BY b.currency;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS kopilka_till_member"
            "(uuid, text, text, text, timestamptz, timestamptz, text)"
        )
