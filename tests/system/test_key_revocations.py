"""Revoked keys fail in every server process: by notification on PostgreSQL (no look-up per
request while a process listens), by a look-up in every request otherwise.

Each ``ApiKeyService`` here stands for one server process with its own cache; the last test
runs ``kopilka serve`` with two worker processes and revokes a key through one of them.
"""

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.apikeys.repository import ApiKeyRepository
from kopilka.apikeys.revocations import RevocationWatch
from kopilka.apikeys.service import ApiKeyService
from kopilka.db import make_engine, reading, transaction
from kopilka.errors import Unauthorized
from kopilka.kit.clock import clock
from tests.conftest import make_key, make_program

NOTICE_WAIT = 10.0  # seconds; a notice takes milliseconds, the bound only stops a hung test


async def until(condition: Any, what: str) -> float:
    """Seconds until ``condition()`` holds; fails after NOTICE_WAIT."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > NOTICE_WAIT:
            pytest.fail(f"not within {NOTICE_WAIT} s: {what}")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


@pytest.fixture
async def other_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine of another process on the same database."""
    engine = make_engine(pg_url, pool_size=2)
    yield engine
    await engine.dispose()


@dataclass
class Listening:
    """Another server process: its own key cache, and its listener connected."""

    service: ApiKeyService
    watch: RevocationWatch


@pytest.fixture
async def listening(other_engine: AsyncEngine) -> AsyncIterator[Listening]:
    service = ApiKeyService(cache_seconds=3600)
    watch = RevocationWatch(other_engine, service)
    watch.start()
    try:
        await asyncio.wait_for(watch.connected.wait(), NOTICE_WAIT)
        yield Listening(service, watch)
    finally:
        await watch.stop()


async def key_id_of(engine: AsyncEngine, secret: str) -> Any:
    async with reading(engine) as conn:
        return (await ApiKeyService().authenticate(conn, secret)).key_id


async def test_a_listening_process_drops_a_key_revoked_elsewhere(
    pg_engine: AsyncEngine, other_engine: AsyncEngine, listening: Listening
) -> None:
    program = await make_program(pg_engine)
    secret = await make_key(pg_engine, program, "pos")
    service = listening.service
    async with reading(other_engine) as conn:
        principal = await service.authenticate(conn, secret)
        # While it listens, a request's check costs no statement: nothing to look up.
        await service.ensure_active(conn, principal)
    assert service.cached(secret) == principal

    async with transaction(pg_engine) as conn:
        await ApiKeyService().revoke(conn, program.id, principal.key_id, clock.now())
    waited = await until(lambda: service.cached(secret) is None, "the key is dropped")
    print(f"revocation noticed {waited * 1000:.1f} ms after the commit")
    with pytest.raises(Unauthorized):
        async with reading(other_engine) as conn:
            await service.authenticate(conn, secret)
    await listening.watch.stop()
    assert not listening.watch.connected.is_set()


async def test_a_revocation_that_rolls_back_drops_nothing_elsewhere(
    pg_engine: AsyncEngine, other_engine: AsyncEngine, listening: Listening
) -> None:
    """PostgreSQL delivers a notice only when its transaction commits."""
    program = await make_program(pg_engine)
    secret = await make_key(pg_engine, program, "pos")
    kept = await make_key(pg_engine, program, "pos")
    service = listening.service
    async with reading(other_engine) as conn:
        await service.authenticate(conn, secret)
        await service.authenticate(conn, kept)
    revoking = ApiKeyService()
    async with pg_engine.connect() as conn:
        await revoking.revoke(conn, program.id, await key_id_of(pg_engine, secret), clock.now())
        await conn.rollback()
    # A committed revocation of another key, noticed after the rolled-back one would be.
    async with transaction(pg_engine) as conn:
        await revoking.revoke(conn, program.id, await key_id_of(pg_engine, kept), clock.now())
    await until(lambda: service.cached(kept) is None, "the committed revocation")
    assert service.cached(secret) is not None


async def test_without_its_listener_a_process_checks_every_request(
    pg_url: str, pg_engine: AsyncEngine, other_engine: AsyncEngine, listening: Listening
) -> None:
    """The listener's connection killed: requests look their key up again, and once it is
    back the cache starts empty (a notice sent meanwhile was lost)."""
    program = await make_program(pg_engine)
    secret = await make_key(pg_engine, program, "pos")
    service, watch = listening.service, listening.watch
    async with reading(other_engine) as conn:
        principal = await service.authenticate(conn, secret)
    database = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    try:
        # The listener is the only session of this database that ran a LISTEN.
        killed = await database.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        assert killed == 1
        await until(lambda: not watch.connected.is_set(), "the listener is seen lost")
        # Revoked with no notice at all, as if sent while nobody listened.
        await database.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1", principal.key_id
        )
    finally:
        await database.close()
    with pytest.raises(Unauthorized):
        async with reading(other_engine) as conn:
            await service.ensure_active(conn, principal)
    await asyncio.wait_for(watch.connected.wait(), NOTICE_WAIT)
    assert service.cached(secret) is None


class _RevokedWhileRead(ApiKeyRepository):
    """A key look-up during which another process's revocation is noticed."""

    def __init__(self, service: ApiKeyService, revoked: Any) -> None:
        self.service = service
        self.revoked = revoked

    async def active_by_hash(self, conn: AsyncConnection, key_hash: str) -> Any:
        row = await super().active_by_hash(conn, key_hash)
        self.service.revoked(self.revoked)
        return row


async def test_a_key_read_while_a_revocation_arrives_is_not_cached(
    pg_engine: AsyncEngine,
) -> None:
    program = await make_program(pg_engine)
    secret = await make_key(pg_engine, program, "pos")
    service = ApiKeyService(cache_seconds=3600)
    service.repository = _RevokedWhileRead(service, await key_id_of(pg_engine, secret))
    async with reading(pg_engine) as conn:
        # The read began before the revocation committed: this request may pass.
        await service.authenticate(conn, secret)
    assert service.cached(secret) is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_key_revoked_through_one_worker_fails_in_all(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=2)
    try:
        program = await make_program(engine)
        admin = await make_key(engine, program, "admin")
        till = await make_key(engine, program, "pos")
        till_id = await key_id_of(engine, till)
    finally:
        await engine.dispose()
    port = _free_port()
    env = dict(os.environ, KOPILKA_DATABASE_URL=pg_url)
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "kopilka", "serve", "--port", str(port), "--workers", "2"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await _until_up(client)
            as_till = {"Authorization": f"Bearer {till}"}
            await until_listening(pg_url, workers=2)
            # Fresh connections spread over both workers; each caches the key.
            for _ in range(20):
                async with httpx.AsyncClient(base_url=base, timeout=10) as fresh:
                    assert (await fresh.get("/v1/program", headers=as_till)).status_code == 200
            revoked = await client.post(
                f"/v1/api-keys/{till_id}/revoke", headers={"Authorization": f"Bearer {admin}"}
            )
            assert revoked.status_code == 200
            answers = []
            start = time.monotonic()
            while time.monotonic() - start < NOTICE_WAIT:
                async with httpx.AsyncClient(base_url=base, timeout=10) as fresh:
                    answers.append((await fresh.get("/v1/program", headers=as_till)).status_code)
                if answers[-20:] == [401] * 20:
                    break
            assert answers[-20:] == [401] * 20, answers
            print(f"answers after the revocation: {answers}")
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)


async def until_listening(pg_url: str, *, workers: int) -> None:
    """Until each worker has its listener (and so no longer looks keys up per request)."""
    database = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    try:
        for _ in range(600):
            listening = await database.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
            if listening == workers:
                return
            await asyncio.sleep(0.05)
    finally:
        await database.close()
    pytest.fail(f"{workers} workers did not all listen for revocations")


async def _until_up(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        try:
            if (await client.get("/v1/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail("the server did not start")
