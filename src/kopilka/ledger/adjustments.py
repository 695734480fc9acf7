"""Adjustments by staff or an administrator's key, once per idempotency key: the API's
``POST /v1/adjustments`` and the console's "adjust points" form make them the same way.
Never commits."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import clock
from kopilka.ledger.domain import Balance
from kopilka.ledger.schemas import AdjustmentCreate, AdjustmentOut, BalanceOut
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext


def balance_out(currency: str, balance: Balance) -> BalanceOut:
    return BalanceOut(
        currency=currency, available=balance.available, pending=balance.pending, held=balance.held
    )


async def adjust_once(
    conn: AsyncConnection, program: ProgramContext, body: AdjustmentCreate, key: str | None
) -> tuple[int, dict[str, Any], bool]:
    """Credit or debit the member (``body``), under the member's lock; with ``key``, the
    same key and body again answer as the first time (status, answer, replayed) and change
    nothing — nor add an audit entry: the first sending has its own."""
    member_id, _ = await member_service.resolve(conn, program, body.member)

    async def lock() -> None:
        await ledger_service.lock(conn, program, [member_id], clock.now())

    async def operation() -> dict[str, Any]:
        balance = await ledger_service.adjust(
            conn,
            program,
            member_id=member_id,
            currency=body.currency,
            amount=body.amount,
            reason=body.reason,
            now=clock.now(),
            reference_id=key,
        )
        return AdjustmentOut(
            member_id=member_id,
            currency=body.currency,
            amount=body.amount,
            reason=body.reason,
            balance=balance_out(body.currency, balance),
        ).model_dump(mode="json")

    answer = await idempotency_store.run_once(conn, program.id, key, body, operation, lock)
    if answer[2]:
        audit_service.nothing_changed()
    return answer
