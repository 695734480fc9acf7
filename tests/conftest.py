"""Shared fixtures: real databases (a SQLite file and PostgreSQL), programs, an HTTP client.

Every service and endpoint test runs on both backends. Each test gets its own program, so
tests never see each other's data and nothing needs truncating.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.service import api_key_service
from kopilka.app import create_app
from kopilka.db import make_engine, transaction
from kopilka.kit.clock import clock
from kopilka.migrations.runner import upgrade
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext, program_service

T = TypeVar("T")
# Command output is laid out for a wide terminal whatever runs the tests: a parallel worker's
# output is a pipe, which would otherwise wrap tables and lines at 80 columns.
os.environ.setdefault("COLUMNS", "200")
PG_ADMIN_DSN = os.environ.get("KOPILKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = os.environ.get("KOPILKA_TEST_BACKENDS", "sqlite,postgresql").split(",")

BASE_SETTINGS: dict[str, Any] = {
    "money_currency": "RUB",
    "currencies": [{"code": "points"}, {"code": "cashback", "kind": "money"}],
    # 1 point per full rouble (100 kopecks).
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
}


async def _create_pg_database() -> tuple[str, str]:
    name = f"kopilka_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    host_part = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    return name, f"postgresql+asyncpg://{host_part}/{name}"


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "kopilka-test.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


def _in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code while the test loop may be running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name, url = _in_thread(_create_pg_database)
    upgrade(url)
    yield url
    _in_thread(lambda: _drop_pg_database(name))


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    engine = make_engine(url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """PostgreSQL only: for concurrency tests that need real row locks."""
    engine = make_engine(pg_url, pool_size=60)
    yield engine
    await engine.dispose()


async def make_program(engine: AsyncEngine, **overrides: Any) -> ProgramContext:
    settings = ProgramSettings.model_validate({**BASE_SETTINGS, **overrides})
    async with transaction(engine) as conn:
        return await program_service.create(
            conn, slug=f"t-{uuid.uuid4().hex[:12]}", name="Test program", settings=settings
        )


@pytest.fixture
async def program(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine)


async def make_key(engine: AsyncEngine, program: ProgramContext, *scopes: str) -> str:
    async with transaction(engine) as conn:
        secret, _ = await api_key_service.create(
            conn, program.id, name="test", scopes=list(scopes) or ["admin"], now=clock.now()
        )
    return secret


class Api:
    """An HTTP client on the real application, authenticated for one program."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, json: Any = None, **headers: str) -> httpx.Response:
        return await self.client.post(path, json=json, headers={**self.headers, **headers})

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def patch(self, path: str, json: Any) -> httpx.Response:
        return await self.client.patch(path, json=json, headers=self.headers)

    async def put(self, path: str, json: Any) -> httpx.Response:
        return await self.client.put(path, json=json, headers=self.headers)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(path, headers=self.headers)


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext) -> Api:
    return Api(http, await make_key(engine, program, "admin"))


def require_data(path: Path) -> None:
    """Skip a test whose public data set is not next to this checkout; in CI, where it
    always is, its absence is a failure rather than a silent skip."""
    if path.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: CI runs with the shared data next to the checkout")
    pytest.skip(f"{path} is not next to this checkout")
