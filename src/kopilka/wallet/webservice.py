"""Apple's pass web service, which keeps the passes on members' devices current: the
``webServiceURL`` of every pass is the program's public URL + ``/wallet/apple``, and
devices call the routes below it (Apple's "Wallet Passes web service" protocol). No API
key: a device proves a pass is its own with ``Authorization: ApplePass <token>``, the
pass's authentication token; the list of a device's changed passes takes none, as the
protocol says (it tells only serial numbers, which are worthless without the token).

- ``POST   /v1/devices/{device}/registrations/{passType}/{serial}`` — the device wants the
  pass's updates (its push token in the body): 201 new, 200 known;
- ``DELETE /v1/devices/{device}/registrations/{passType}/{serial}`` — it no longer does;
- ``GET    /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=<tag>`` — the
  serial numbers of its passes changed since the tag and a new tag, or 204;
- ``GET    /v1/passes/{passType}/{serial}`` — the pass as it is now (``Last-Modified``;
  304 for an ``If-Modified-Since`` it has not changed since);
- ``POST   /v1/log`` — what devices report of errors with the service, logged.
"""

import logging
import re
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.db import read_with_retry, run_in_transaction
from kopilka.errors import KopilkaError
from kopilka.http import EngineDep
from kopilka.kit.clock import as_utc, clock
from kopilka.wallet.domain import APPLE_SERVICE_PATH, moment_of, tag_of
from kopilka.wallet.domain import PKPASS_MEDIA_TYPE as MEDIA_TYPE
from kopilka.wallet.service import PassFile, PassHolder, wallet_service

logger = logging.getLogger("kopilka.wallet")
router = APIRouter(prefix=APPLE_SERVICE_PATH + "/v1", include_in_schema=False)

Device = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,128}$")]
PassType = Annotated[str, Path(pattern=r"^pass(\.[A-Za-z0-9][A-Za-z0-9-]*)+$", max_length=255)]
Serial = Annotated[str, Path(min_length=1, max_length=64)]
PUSH_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
LOGGED_LINES = 20
LOGGED_CHARS = 500
SCHEME = "applepass "


class BadRequest(KopilkaError):
    status = 400


def _token(authorization: str | None) -> str | None:
    if authorization and authorization[: len(SCHEME)].lower() == SCHEME:
        return authorization[len(SCHEME) :].strip()
    return None


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the body is not JSON") from None


@router.post("/devices/{device}/registrations/{pass_type}/{serial}")
async def register_device(
    request: Request,
    device: Device,
    pass_type: PassType,
    serial: Serial,
    engine: EngineDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The device wants this pass's updates (201 new, 200 already registered)."""
    body = await _body(request)
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    if not isinstance(push_token, str) or not PUSH_TOKEN.match(push_token):
        raise BadRequest("give the device's pushToken", field="pushToken")
    token = _token(authorization)

    async def work(conn: AsyncConnection) -> bool:
        holder = await wallet_service.pass_holder(conn, pass_type, serial, token)
        return await wallet_service.register_device(conn, holder, device, push_token, clock.now())

    created = await run_in_transaction(engine, work)
    return Response(status_code=201 if created else 200)


@router.delete("/devices/{device}/registrations/{pass_type}/{serial}")
async def unregister_device(
    device: Device,
    pass_type: PassType,
    serial: Serial,
    engine: EngineDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The device no longer wants this pass's updates (the pass was removed)."""
    token = _token(authorization)

    async def work(conn: AsyncConnection) -> None:
        holder = await wallet_service.pass_holder(conn, pass_type, serial, token)
        await wallet_service.unregister_device(conn, holder, device)

    await run_in_transaction(engine, work)
    return Response(status_code=200)


@router.get("/devices/{device}/registrations/{pass_type}")
async def updated_passes(
    device: Device,
    pass_type: PassType,
    engine: EngineDep,
    passes_updated_since: Annotated[
        str | None, Query(alias="passesUpdatedSince", max_length=40)
    ] = None,
) -> Response:
    """The serial numbers of the device's passes changed since the tag, and a new tag."""
    since = moment_of(passes_updated_since)

    async def work(conn: AsyncConnection) -> tuple[list[str], datetime] | None:
        return await wallet_service.updated_passes(conn, device, pass_type, since)

    found = await read_with_retry(engine, work)
    if found is None:
        return Response(status_code=204)
    serials, newest = found
    return JSONResponse({"serialNumbers": serials, "lastUpdated": tag_of(newest)})


@router.get("/passes/{pass_type}/{serial}")
async def latest_pass(
    pass_type: PassType,
    serial: Serial,
    engine: EngineDep,
    authorization: Annotated[str | None, Header()] = None,
    if_modified_since: Annotated[str | None, Header()] = None,
) -> Response:
    """The pass as it is now, or 304 if it has not changed since ``If-Modified-Since``."""
    token = _token(authorization)
    since = _http_date(if_modified_since)

    async def work(conn: AsyncConnection) -> PassFile | datetime:
        holder: PassHolder = await wallet_service.pass_holder(conn, pass_type, serial, token)
        return await wallet_service.latest_pass(conn, holder, clock.now(), since)

    found = await read_with_retry(engine, work)
    if isinstance(found, datetime):
        return Response(status_code=304, headers={"Last-Modified": _http_date_of(found)})
    return Response(
        found.content,
        media_type=MEDIA_TYPE,
        headers={"Last-Modified": _http_date_of(found.modified), "Cache-Control": "no-store"},
    )


@router.post("/log")
async def device_log(request: Request) -> Response:
    """Devices report here what went wrong with the service (a pass that did not sign,
    a URL that did not answer): logged as warnings, a bounded number of bounded lines."""
    body = await _body(request)
    lines = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(lines, list):
        raise BadRequest("give the lines as logs: [...]", field="logs")
    for line in lines[:LOGGED_LINES]:
        logger.warning("Apple Wallet device: %s", str(line)[:LOGGED_CHARS])
    return Response(status_code=200)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _http_date_of(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)
