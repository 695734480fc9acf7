"""Answers shared by every event the rules run on: balances after it and the rule trace."""

from collections.abc import Sequence
from uuid import UUID

from kopilka.earning.schemas import FailedConditionOut, RuleTraceOut
from kopilka.ledger.domain import Balance, BalanceKey
from kopilka.ledger.schemas import BalanceOut
from kopilka.rules.domain import Evaluation


def balances_out(
    balances: dict[BalanceKey, Balance], member_id: UUID, currencies: Sequence[str]
) -> list[BalanceOut]:
    return [
        BalanceOut(currency=c, available=b.available, pending=b.pending, held=b.held)
        for c in currencies
        if (b := balances.get((member_id, c))) is not None
    ]


def balances_json(
    balances: dict[BalanceKey, Balance], member_id: UUID, currencies: Sequence[str]
) -> list[dict[str, int | str]]:
    """``balances_out`` as JSON, built directly (the purchase path's answers)."""
    return [
        {"currency": c, "available": b.available, "pending": b.pending, "held": b.held}
        for c in currencies
        if (b := balances.get((member_id, c))) is not None
    ]


def trace_out(evaluation: Evaluation) -> list[RuleTraceOut] | None:
    if evaluation.trace is None:
        return None
    return [
        RuleTraceOut(
            rule_id=t.rule_id,
            fired=t.fired,
            reason=t.reason,
            amount=t.amount,
            failed=None if t.failed is None else FailedConditionOut(**t.failed._asdict()),
        )
        for t in evaluation.trace
    ]
