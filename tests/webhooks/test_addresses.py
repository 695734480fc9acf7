"""Webhooks reach only public addresses (SSRF) unless ``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS``:
refused when an endpoint is made or changed (the API, the console), and again by the worker
when it connects (an address literal, or a name that resolves to a private address)."""

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.app import create_app
from kopilka.programs.service import ProgramContext
from kopilka.webhooks import domain
from kopilka.webhooks.sender import NotPublic, PublicResolver, WebhookSender, literal_problem
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_key
from tests.web.conftest import Browser, console_as
from tests.webhooks.conftest import settings
from tests.webhooks.receiver import Receiver

NOT_PUBLIC = [
    "https://127.0.0.1:8123/console/sign-in",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/hook",
    "https://172.16.3.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # shared address space (carrier NAT)
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://127.1/hook",
    "https://2130706433/hook",
    "https://0x7f.0.0.1/hook",
    "https://１２７.0.0.1/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[fe80::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[ff02::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://admin.localhost/hook",
    "https://db.internal/hook",
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_private_addresses_and_local_names_are_refused(url: str) -> None:
    assert domain.url_problem(url) is None  # a well-formed URL …
    assert domain.address_problem(url, allow_private=False) is not None  # … not public
    assert domain.address_problem(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url",
    ["https://hooks.shop.example/in", "https://8.8.8.8/hook", "https://[2606:4700::1111]/"],
)
def test_public_https_urls_pass(url: str) -> None:
    assert domain.address_problem(url, allow_private=False) is None


def test_plain_http_only_when_allowed() -> None:
    assert "https://" in (domain.address_problem("http://hooks.example/in", False) or "")
    assert domain.address_problem("http://127.0.0.1:8000/in", True) is None


# --- the API and the console with the setting off ------------------------------------------


@pytest.fixture
async def strict(engine: AsyncEngine, program: ProgramContext) -> AsyncIterator[Api]:
    """The API as shipped: private webhook URLs refused."""
    app = create_app(settings(False), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as client:
        yield Api(client, await make_key(engine, program, "admin"))


def url_refused(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["url"]
    message: str = errors[0]["message"]
    return message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123/console/sign-in",
        "https://127.0.0.1:8123/console/sign-in",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:8000/",
        "https://localhost:8000/",
        "http://hooks.shop.example/in",
    ],
)
async def test_api_refuses_private_urls(strict: Api, url: str) -> None:
    url_refused(await strict.post("/v1/webhooks", {"url": url}))
    assert (await strict.get("/v1/webhooks")).json()["items"] == []


async def test_api_refuses_a_private_url_on_update(strict: Api) -> None:
    created = await strict.post("/v1/webhooks", {"url": "https://hooks.shop.example/in"})
    assert created.status_code == 201, created.text
    path = "/v1/webhooks/" + created.json()["id"]
    message = url_refused(await strict.patch(path, {"url": "https://169.254.169.254/x"}))
    assert "169.254.169.254 is not a public address" in message
    assert (await strict.get(path)).json()["url"] == "https://hooks.shop.example/in"
    changed = await strict.patch(path, {"description": "CRM"})  # other fields still change
    assert changed.status_code == 200, changed.text


async def test_allowed_by_the_setting(api: Api) -> None:
    """This directory's API runs with the setting on (conftest): local receivers work."""
    created = await api.post("/v1/webhooks", {"url": "http://127.0.0.1:8123/hooks"})
    assert created.status_code == 201, created.text


async def test_console_refuses_a_private_url(engine: AsyncEngine, program: ProgramContext) -> None:
    app = create_app(settings(False), engine=engine)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://kopilka.test",
            headers={"accept-language": "en"},
        ) as client,
    ):
        browser = await console_as(Browser(client), engine, program, Role.OWNER)
        answer = await browser.post(
            "/console/webhooks/new",
            {"url": "http://127.0.0.1:8123/console/sign-in", "event_types": "*"},
        )
        assert answer.status_code == 422
        assert "the URL must start with https://" in answer.text
        listed = await browser.get("/console/webhooks")
        assert "127.0.0.1:8123" not in listed.text


# --- the worker ----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as found:
        yield found


@pytest.fixture
async def strict_sender(engine: AsyncEngine) -> AsyncIterator[WebhookSender]:
    async with WebhookSender(engine, timeout=5, disable_after=timedelta(hours=1)) as found:
        yield found


async def pinged_log(api: Api, engine: AsyncEngine, sender: WebhookSender, url: str) -> Any:
    """Make an endpoint (the API allows it here), ping it with ``sender`` and return the
    ping's delivery with its attempts."""
    created = await api.post("/v1/webhooks", {"url": url, "event_types": ["member.updated"]})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert (await api.post(f"/v1/webhooks/{hook['id']}/ping")).status_code == 202
    await Worker(engine, [], sender=sender).drain()
    await sender.drain_running()
    items = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert len(items) == 1
    return (await api.get(f"/v1/webhooks/{hook['id']}/deliveries/{items[0]['id']}")).json()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_worker_refuses_private_addresses_without_sending(
    api: Api,
    engine: AsyncEngine,
    receiver: Receiver,
    strict_sender: WebhookSender,
    host: str,
) -> None:
    """Stored before the rule, or a name that resolves to 127.0.0.1 (DNS rebinding): the
    attempt fails with the reason and the receiver gets nothing."""
    url = receiver.url.replace("127.0.0.1", host)
    delivery = await pinged_log(api, engine, strict_sender, url)
    assert receiver.received == []
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert "refused" in delivery["last_error"] and "not a public address" in delivery["last_error"]
    [attempt] = delivery["log"]
    assert attempt["status_code"] is None and attempt["response"] is None
    assert not attempt["succeeded"]


async def test_worker_sends_to_private_addresses_when_allowed(
    api: Api, engine: AsyncEngine, receiver: Receiver
) -> None:
    async with WebhookSender(engine, timeout=5, allow_private=True) as sender:
        delivery = await pinged_log(
            api, engine, sender, receiver.url.replace("127.0.0.1", "localhost")
        )
    assert len(receiver.received) == 1 and delivery["status"] == "delivered"


async def test_an_answer_with_nul_bytes_is_kept_short_and_stored(
    api: Api, engine: AsyncEngine, receiver: Receiver
) -> None:
    """Only the start of an answer is kept, and a binary one (NUL, which PostgreSQL's text
    refuses) does not stop the attempt being recorded."""
    receiver.body = b"\x00\x01binary" + b"y" * 5000
    async with WebhookSender(engine, timeout=5, allow_private=True) as sender:
        delivery = await pinged_log(api, engine, sender, receiver.url)
    assert delivery["status"] == "delivered"
    kept = delivery["log"][0]["response"]
    assert len(kept) <= 1000 and kept.startswith("\ufffd\x01binary")


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_a_name_is_refused_if_any_of_its_addresses_is_private() -> None:
    mixed = PublicResolver(FixedResolver("93.184.215.14", "10.0.0.7"))
    with pytest.raises(NotPublic, match=r"resolves to 10\.0\.0\.7"):
        await mixed.resolve("hooks.shop.example", 443)
    public = PublicResolver(FixedResolver("93.184.215.14", "2606:4700::1111"))
    assert len(await public.resolve("hooks.shop.example", 443)) == 2


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:9/x", True),
        ("http://2130706433/x", True),
        ("http://[::ffff:a9fe:a9fe]/x", True),
        ("http://8.8.8.8/x", False),
        ("https://hooks.shop.example/x", False),  # a name: the resolver decides
    ],
)
def test_address_literals_are_checked_before_connecting(url: str, refused: bool) -> None:
    """aiohttp connects to anything that looks like an address without asking the resolver."""
    assert (literal_problem(url) is not None) is refused


@pytest.mark.parametrize(
    "url",
    ["https://%31%32%37.0.0.1/hook", "https://127.0.0.1%09/hook", "https://hooks.example\x07/in"],
)
def test_escaped_or_control_characters_in_the_host_are_no_url(url: str) -> None:
    assert domain.url_problem(url) is not None
