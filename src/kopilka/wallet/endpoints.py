"""HTTP routes of wallet passes for the program's team: the settings (``integrations.manage``).

The members' side is in ``kopilka.web.app.wallet`` (the pass and the save link), Apple's
devices' in ``webservice.py``.
"""

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.domain import acting
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.wallet.schemas import WalletSettingsIn, WalletSettingsOut
from kopilka.wallet.service import wallet_service

router = APIRouter(prefix="/v1", tags=["wallet"])
SECRETS = ("certificate", "private_key", "private_key_password", "wwdr_certificate")


@router.get("/wallet/settings", response_model=WalletSettingsOut)
async def get_wallet_settings(
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)], engine: EngineDep
) -> WalletSettingsOut:
    """The program's wallet settings: whether each certificate and key is set, never a key."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> WalletSettingsOut:
        return await wallet_service.settings(conn, program)

    return await read_only(engine, principal, work)


@router.put("/wallet/settings", response_model=WalletSettingsOut)
async def put_wallet_settings(
    body: WalletSettingsIn,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> WalletSettingsOut:
    """Replace the wallet settings. A wallet left out is off; a certificate or key left out
    keeps the saved one. Certificates and keys are checked (422 naming the field)."""
    _forget_sent_secrets()

    async def work(conn: AsyncConnection, program: ProgramContext) -> WalletSettingsOut:
        return await wallet_service.save_settings(conn, program, body, clock.now())

    return await in_transaction(engine, principal, work)


def _forget_sent_secrets() -> None:
    """The generic audit keeps what a change of configuration sent: not the keys. (The
    service records its own entry, without them; this makes sure no other entry could.)"""
    actor = acting.get()
    if isinstance(actor.body, dict):
        acting.set(replace(actor, body=_without_secrets(actor.body)))


def _without_secrets(body: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in body.items():
        if name in SECRETS and value is not None:
            cleaned[name] = "***"
        elif isinstance(value, dict):
            cleaned[name] = _without_secrets(value)
        else:
            cleaned[name] = value
    return cleaned
