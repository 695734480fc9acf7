"""Telling devices that a pass changed, through Apple's push service (APNs).

A pass update is a push with an empty JSON payload to each push token a device registered
for the pass, on the topic of the pass type, over HTTP/2 authenticated by the pass
certificate itself (a TLS client certificate: Wallet's pushes take no token
authentication). The device then asks the web service which passes changed and fetches
them. Programs that do not turn ``apns`` on get no pushes: devices refresh their passes when
they ask (when the pass is opened, pulled to refresh, or Wallet checks on its own).

Building the requests is pure (:func:`pass_update_requests`); sending them needs HTTP/2
(``httpx`` with its ``http2`` extra, the ``h2`` package) and Apple's servers.
"""

import logging
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("kopilka.wallet")

APNS_URL = "https://api.push.apple.com"
TIMEOUT_SECONDS = 10.0
GONE = 410  # the device no longer has the pass: forget its registration


@dataclass(frozen=True)
class ApnsRequest:
    push_token: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Credentials:
    """The pass certificate and key (PEM) that authenticate to APNs."""

    certificate: str
    key: str
    password: str | None


def pass_update_requests(
    pass_type_identifier: str, push_tokens: Sequence[str], base_url: str = APNS_URL
) -> list[ApnsRequest]:
    """One push per token: an empty payload on the pass type's topic."""
    return [
        ApnsRequest(
            push_token=token,
            url=f"{base_url}/3/device/{token}",
            headers={"apns-topic": pass_type_identifier, "apns-priority": "5"},
            body=b"{}",
        )
        for token in push_tokens
    ]


class ApnsClient(Protocol):
    async def send(
        self, requests: Sequence[ApnsRequest], credentials: Credentials
    ) -> dict[str, int]:
        """Send the pushes; each push token's HTTP status (none for a push not sent)."""
        ...


class HttpApnsClient:
    """Pushes over HTTP/2 with the pass certificate as the TLS client certificate."""

    async def send(
        self, requests: Sequence[ApnsRequest], credentials: Credentials
    ) -> dict[str, int]:
        if not requests:
            return {}
        # Imported when a push is sent (the worker, with wallet passes set up): the API
        # process builds pass updates but never sends them, and stays smaller without it.
        import httpx

        try:
            client = httpx.AsyncClient(
                http2=True, verify=_tls_context(credentials), timeout=TIMEOUT_SECONDS
            )
        except ImportError:
            logger.warning(
                "pass updates not pushed: APNs needs HTTP/2 (pip install 'httpx[http2]')"
            )
            return {}
        statuses: dict[str, int] = {}
        async with client:
            for request in requests:
                try:
                    answer = await client.post(
                        request.url, headers=request.headers, content=request.body
                    )
                except httpx.HTTPError as exc:
                    logger.warning("APNs push failed: %s", exc)
                    continue
                statuses[request.push_token] = answer.status_code
        return statuses


def _tls_context(credentials: Credentials) -> ssl.SSLContext:
    """A TLS context presenting the pass certificate. ``ssl`` reads certificates from files
    only: they are written to a private temporary directory and removed at once."""
    context = ssl.create_default_context()
    with tempfile.TemporaryDirectory() as folder:
        certificate, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, text in ((certificate, credentials.certificate), (key, credentials.key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
        context.load_cert_chain(certificate, key, password=credentials.password)
    return context
