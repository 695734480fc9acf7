"""Pushing pass updates: a change of a registered member's points makes one empty push per
device on the pass type's topic — only for programs that turned ``apns`` on; a device APNs
says is gone is forgotten. Apple's servers are not the tests': a recording client stands in."""

from collections.abc import Iterator, Sequence
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import registry
from kopilka.outbox.events import PointsAdjusted
from kopilka.programs.service import ProgramContext
from kopilka.wallet import consumers
from kopilka.wallet.apns import ApnsRequest, Credentials, pass_update_requests
from tests.conftest import Api
from tests.wallet.certs import PASS_TYPE, T0, apple_settings, set_up_wallets
from tests.wallet.test_webservice import PUSH_TOKEN, auth, member, new_device, pass_of

SERVICE = "/wallet/apple/v1"


class Recording:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sent: list[tuple[ApnsRequest, Credentials]] = []

    async def send(
        self, requests: Sequence[ApnsRequest], credentials: Credentials
    ) -> dict[str, int]:
        self.sent += [(r, credentials) for r in requests]
        return {r.push_token: self.status for r in requests}


@pytest.fixture
def recording() -> Iterator[Recording]:
    before = consumers.Pusher.client
    consumers.Pusher.client = recorder = Recording()
    yield recorder
    consumers.Pusher.client = before


def test_a_pass_update_is_an_empty_push_on_the_pass_type_s_topic() -> None:
    [request] = pass_update_requests(PASS_TYPE, ["abc123"])
    assert request.url == "https://api.push.apple.com/3/device/abc123"
    assert request.headers["apns-topic"] == PASS_TYPE and request.body == b"{}"


async def registered(
    api: Api,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    program: ProgramContext,
    apns: bool,
    device: str,
) -> UUID:
    await set_up_wallets(api, apple=apple_settings(apns=apns))
    anna = await member(api, f"anna-{apns}")
    document = await pass_of(engine, program, anna)
    serial = document["serialNumber"]
    answer = await http.post(
        f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}/{serial}",
        json={"pushToken": PUSH_TOKEN},
        headers=auth(document["authenticationToken"]),
    )
    assert answer.status_code == 201
    return UUID(anna)


async def changed(
    engine: AsyncEngine, program: ProgramContext, member_id: UUID, ago: timedelta
) -> None:
    event = PointsAdjusted(
        program_id=program.id,
        member_id=member_id,
        occurred_at=clock.now() - ago,
        currency="points",
        amount=10,
        balance={"available": 10, "pending": 0, "held": 0},
    )
    consumer = registry.get(consumers.CONSUMER)
    assert (
        consumer is not None
        and consumer.wants("points.adjusted")
        and consumer.wants("tier.upgraded")
    )
    async with transaction(engine) as conn:
        await consumer.handle_batch([event], conn)


async def test_with_apns_on_a_change_pushes_to_each_registered_device(
    api: Api,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    program: ProgramContext,
    recording: Recording,
) -> None:
    with clock.frozen(T0):
        anna = await registered(api, http, engine, program, apns=True, device=new_device())
        await changed(engine, program, anna, timedelta(0))
        await changed(engine, program, anna, timedelta(days=2))  # stale: pushes nothing
    [(request, credentials)] = recording.sent
    assert request.push_token == PUSH_TOKEN and request.headers["apns-topic"] == PASS_TYPE
    assert "BEGIN CERTIFICATE" in credentials.certificate and "PRIVATE KEY" in credentials.key


async def test_with_apns_off_devices_refresh_when_they_ask(
    api: Api,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    program: ProgramContext,
    recording: Recording,
) -> None:
    with clock.frozen(T0):
        anna = await registered(api, http, engine, program, apns=False, device=new_device())
        await changed(engine, program, anna, timedelta(0))
    assert recording.sent == []


async def test_a_device_apns_says_is_gone_is_forgotten(
    api: Api,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    program: ProgramContext,
    recording: Recording,
) -> None:
    recording.status = 410
    device = new_device()
    with clock.frozen(T0):
        anna = await registered(api, http, engine, program, apns=True, device=device)
        await changed(engine, program, anna, timedelta(0))
        await changed(engine, program, anna, timedelta(0))
    assert len(recording.sent) == 1  # the second change found no device to push to
    listing = await http.get(f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}")
    assert listing.status_code == 204
