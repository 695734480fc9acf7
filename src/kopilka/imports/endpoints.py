"""HTTP route of the member import: a batch of members brought over from another system."""

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, requires
from kopilka.imports.members import member_import_service
from kopilka.imports.schemas import MemberImportAnswer, MemberImportBatch, MemberImportRecord
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.system.openapi import REFERENCED_MODELS

# The batch's items are checked one by one (a bad one is its own result): the document
# names their shape.
REFERENCED_MODELS.append(MemberImportRecord)
router = APIRouter(prefix="/v1/members", tags=["members"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post("/import", response_model=MemberImportAnswer)
async def import_members(
    body: MemberImportBatch,
    principal: Annotated[Principal, requires(P.MEMBERS_IMPORT)],
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Up to 1,000 members brought over from another system, each with its own result:
    ``created``, ``already_imported`` (matched on external id, else card, phone, e-mail;
    left as it is) or ``error`` (the field and the reason; nothing of it written). Opening
    balances are granted once per member and lot. With an ``Idempotency-Key``, a retry
    with the same body gets the first answer back (``Idempotent-Replayed: true``)."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[MemberImportAnswer, bool]:
        return await member_import_service.import_batch(
            conn, program, body, idempotency_key, clock.now()
        )

    answer, replayed = await in_transaction(engine, principal, work)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(answer.model_dump(mode="json"), status_code=200, headers=headers)
