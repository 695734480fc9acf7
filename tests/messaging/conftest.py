"""What the messaging tests share: a real SMTP server process (aiosmtpd) delivering into
a Maildir the tests read, a local SMS gateway and a local push service (aiohttp servers in
the test's loop), and a browser that subscribes to push and decrypts what arrives."""

import base64
import json
import mailbox
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kopilka.messaging.push import PushSubscription
from tests.fixtures.local_http import serving

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int, maildir: Path) -> None:
        self.port = port
        self.maildir = maildir

    def raw(self) -> list[bytes]:
        box = mailbox.Maildir(self.maildir, create=False)
        return [box.get_bytes(key) for key in box.iterkeys()]

    def received(self) -> list[EmailMessage]:
        box = mailbox.Maildir(self.maildir, create=False)
        found = [
            message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()
        ]
        return [m for m in found if isinstance(m, EmailMessage)]


@contextmanager
def running_smtp_server(maildir: Path) -> Iterator[SmtpServer]:
    """A real SMTP server process (aiosmtpd) delivering into ``maildir`` (which it makes,
    with the Maildir's three folders), stopped on leaving."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "tests.messaging.smtp_server.Maildir",
            str(maildir),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    said = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"the SMTP server did not start: {said!r}") from None
                time.sleep(0.05)
        yield SmtpServer(port, maildir)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path_factory.mktemp("smtp") / "maildir") as server:
        yield server


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushService:
    base: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    state = PushService("")
    answers = {"ok": 201, "gone": 410, "expired": 404, "busy": 429, "bad": 400, "down": 503}

    async def push(request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        state.received.append(
            {"headers": headers, "body": await request.read(), "kind": request.match_info["kind"]}
        )
        return web.Response(status=answers[request.match_info["kind"]])

    app = web.Application()
    app.router.add_post("/push/{kind}", push)
    async with serving(app) as base:
        state.base = base
        yield state


@dataclass
class Browser:
    """A subscribed browser: its key pair and auth secret, as PushManager makes them."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> "Browser":
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self, endpoint: str) -> PushSubscription:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return PushSubscription(endpoint, b64url(public), b64url(self.auth))

    def read(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        found: dict[str, Any] = json.loads(plain)
        return found


@dataclass
class Gateway:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    # What the next request is answered with: (status, body).
    answer: tuple[int, str] = (200, '{"id": "gw-1"}')


@pytest.fixture
async def local_gateway() -> AsyncIterator[Gateway]:
    state = Gateway("")

    async def send(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        auth = request.headers.get("Authorization")
        state.received.append({"body": body, "type": request.content_type, "auth": auth})
        status, text = state.answer
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_post("/send", send)
    async with serving(app) as base:
        state.url = f"{base}/send"
        yield state
