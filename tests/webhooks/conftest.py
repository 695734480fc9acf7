"""The webhook tests' receivers listen on 127.0.0.1: their API runs with
``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS`` on (``test_addresses.py`` checks it off)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.config import Settings, get_settings


def settings(allow_private: bool) -> Settings:
    return get_settings().model_copy(update={"webhook_allow_private_urls": allow_private})


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(True), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as client:
        yield client
