"""HTTP routes of purchases and returns."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import Forbidden, InvalidInput
from kopilka.http import (
    EngineDep,
    hot_body,
    hot_principal,
    hot_route,
    in_transaction,
    json_response,
    query_flag,
    read_only,
    requires,
)
from kopilka.kit.clock import clock
from kopilka.kit.types import error_location
from kopilka.programs.service import ProgramContext
from kopilka.programs.version_schemas import SimulateRequest, SimulationReport
from kopilka.purchases.batches import Outcome
from kopilka.purchases.claims import claim_service
from kopilka.purchases.returns import return_service
from kopilka.purchases.schemas import (
    BatchItemResult,
    BatchResult,
    ClaimCreate,
    ClaimResult,
    PurchaseCreate,
    PurchaseQuote,
    PurchaseResult,
    ReturnCreate,
    ReturnResult,
)
from kopilka.purchases.service import purchase_service
from kopilka.purchases.simulation import simulate_draft

router = APIRouter(prefix="/v1", tags=["purchases"])
MAX_BATCH = 1000


def not_at_store(store: str | None) -> Forbidden:
    where = f"store {store!r}" if store is not None else "no store (the back office)"
    return Forbidden(f"this staff member may not record sales at {where}", field="store")


def ensure_may_act_at(principal: Principal, store: str | None) -> None:
    """A staff member limited to some stores records sales only at those (403 naming
    ``store``)."""
    if not principal.may_act_at(store):
        raise not_at_store(store)


def _answer(outcome: Outcome) -> JSONResponse:
    if outcome.error is not None:
        raise outcome.error
    return json_response(outcome.result, outcome.status, replayed=outcome.replayed)


EXPLAIN = "also return the trace of every rule: which matched, why, and what it earned"


@hot_route(
    router,
    "/purchases",
    PurchaseCreate,
    ("explain", EXPLAIN),
    status_code=201,
    response_model=PurchaseResult,
)
async def create_purchase(request: Request) -> JSONResponse:
    """Record a purchase and credit what it earns. Idempotent by ``external_id``.

    Scopes ``pos`` or ``partner``. Every till calls this on every sale, so it reads its
    request directly (see ``kopilka.http``)."""
    principal = await hot_principal(request, P.SALES_RECORD)
    body = await hot_body(request, PurchaseCreate)
    ensure_may_act_at(principal, body.store)
    explain = query_flag(request, "explain")
    engine = request.app.state.engine

    async def work(conn: AsyncConnection, program: ProgramContext) -> Outcome:
        outcomes = await purchase_service.ingest(
            conn, program, [body], clock.now(), explain=explain
        )
        if outcomes[0].error is not None:
            # Refused: raised inside the transaction, so it rolls back and a member enrolled
            # for this purchase alone is not registered either.
            raise outcomes[0].error
        return outcomes[0]

    return _answer(await in_transaction(engine, principal, work))


@router.post("/purchases/quote", response_model=PurchaseQuote)
async def quote_purchase(
    body: PurchaseCreate,
    principal: Annotated[Principal, requires(P.SALES_RECORD)],
    engine: EngineDep,
) -> JSONResponse:
    """What this purchase would earn, with the rule trace; how many points may pay for the
    basket and what each coupon code would take off. Writes nothing."""
    ensure_may_act_at(principal, body.store)
    answer = await read_only(
        engine,
        principal,
        lambda conn, program: purchase_service.quote(conn, program, body, clock.now()),
    )
    return json_response(answer, 200)


def _parse_batch(
    items: list[Any], principal: Principal
) -> tuple[list[PurchaseCreate], list[BatchItemResult]]:
    parsed: list[PurchaseCreate] = []
    errors: list[BatchItemResult] = []
    for index, item in enumerate(items):
        try:
            purchase = PurchaseCreate.model_validate(item)
            if not principal.may_act_at(purchase.store):
                refused = not_at_store(purchase.store)
                errors.append(BatchItemResult(index=index, status=403, error=refused.problem()))
                continue
            parsed.append(purchase)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in error_location(first))
            error = InvalidInput(
                f"{field}: {first['msg']}" if field else first["msg"], field=field or None
            )
            errors.append(BatchItemResult(index=index, status=422, error=error.problem()))
    return parsed, errors


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchases: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH,
        description="Each is checked on its own: an invalid one gets its 422 in the results "
        "and the others are recorded.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/PurchaseCreate"}},
    )


@router.post("/purchases/batch", response_model=BatchResult)
async def create_purchases_batch(
    body: BatchCreate, principal: Annotated[Principal, requires(P.SALES_RECORD)], engine: EngineDep
) -> BatchResult:
    """Up to 1,000 purchases in one call, each with its own result. Valid ones are recorded
    even if others fail."""
    purchases = body.purchases
    parsed, errors = _parse_batch(purchases, principal)
    failed_indexes = {e.index for e in errors}
    indexes = [i for i in range(len(purchases)) if i not in failed_indexes]

    async def work(conn: AsyncConnection, program: ProgramContext) -> list[Outcome]:
        return await purchase_service.ingest(conn, program, parsed, clock.now())

    outcomes = await in_transaction(engine, principal, work) if parsed else []
    results = errors + [
        BatchItemResult(
            index=index,
            status=o.status,
            purchase=PurchaseResult.model_validate(o.result) if o.result else None,
            error=o.error.problem() if o.error else None,
        )
        for index, o in zip(indexes, outcomes, strict=True)
    ]
    results.sort(key=lambda r: r.index)
    failed = sum(1 for r in results if r.error is not None)
    return BatchResult(accepted=len(results) - failed, failed=failed, results=results)


IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


@router.post("/purchases/claims", status_code=201, response_model=ClaimResult)
async def claim_purchase(
    body: ClaimCreate,
    principal: Annotated[Principal, requires(P.SALES_RECORD)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A member claims a purchase recorded without a member, by its receipt id
    (``receipt``: the purchase's ``external_id``), within the program's
    ``claim_window_days``; it earns as the rules in force at the purchase's time did.
    Claiming again for the same member gives the same answer; a purchase another member has,
    one returned in full, or one past its window is a 409."""
    return _answer(
        await in_transaction(
            engine,
            principal,
            lambda conn, program: claim_service.claim(
                conn,
                program,
                body,
                clock.now(),
                idempotency_key=idempotency_key,
                may_act_at=principal.may_act_at,
            ),
        )
    )


@router.post("/returns", status_code=201, response_model=ReturnResult)
async def create_return(
    body: ReturnCreate, principal: Annotated[Principal, requires(P.SALES_RECORD)], engine: EngineDep
) -> JSONResponse:
    """Return all or part of a purchase; idempotent by ``external_id``."""
    return _answer(
        await in_transaction(
            engine,
            principal,
            lambda conn, program: return_service.record(
                conn, program, body, clock.now(), may_act_at=principal.may_act_at
            ),
        )
    )


@router.post("/program/simulate", response_model=SimulationReport, tags=["program"])
async def simulate_program(
    principal: Annotated[Principal, requires(P.PROGRAM_EDIT)],
    engine: EngineDep,
    body: Annotated[SimulateRequest | None, Body()] = None,
) -> SimulationReport:
    """Replay stored purchases of the last ``days`` (or since ``since``) under a draft — the
    stored one, or ``document`` — next to the version in force; writes nothing. Per rule:
    what each would have issued, how often it fired, for how many members; per currency:
    totals and the change in liability."""
    request = body or SimulateRequest()
    # One snapshot for the whole replay: purchases arriving meanwhile are not half-counted.
    report = await read_only(
        engine,
        principal,
        lambda conn, program: simulate_draft(
            conn, program, request.document, request.since, request.days, clock.now()
        ),
        snapshot=True,
    )
    return SimulationReport.model_validate(report)
