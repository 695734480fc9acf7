"""Web push to a local push service: the test plays the browser, decrypting what arrived with
the subscription's own keys, and checks the VAPID token against the program's public key."""

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kopilka.messaging.push import (
    PushChannel,
    PushConfig,
    PushFailed,
    PushMessage,
    PushSubscription,
    new_vapid_keys,
)
from tests.fixtures.cli import kopilka
from tests.messaging.conftest import Browser, PushService, b64url, unb64url


def verify_vapid(authorization: str, public_key: str, audience: str) -> dict[str, Any]:
    """The RFC 8292 header ``vapid t=<JWT>, k=<key>``: the key is the program's, the token
    signed by it (ES256) for this push service, not expired."""
    scheme, _, rest = authorization.partition(" ")
    assert scheme == "vapid"
    parts = dict(item.strip().split("=", 1) for item in rest.split(","))
    assert parts["k"] == public_key
    header, payload, signature = parts["t"].split(".")
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    key.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(unb64url(payload))
    assert claims["aud"] == audience and claims["exp"] > time.time()
    return claims


def channel(session: aiohttp.ClientSession) -> tuple[PushChannel, str]:
    keys = new_vapid_keys()
    config = PushConfig(keys.private_key, keys.public_key, "mailto:club@shop.example")
    return PushChannel(config, session), keys.public_key


async def test_only_the_subscribed_browser_reads_the_message(push_service: PushService) -> None:
    browser = Browser.new()
    message = PushMessage("Начислено 5 баллов", "Спасибо за покупку!", url="/app", tag="points")
    async with aiohttp.ClientSession() as session:
        push, public_key = channel(session)
        await push.send(browser.subscription(f"{push_service.base}/push/ok"), message, ttl=600)
    [request] = push_service.received
    assert request["headers"]["content-encoding"] == "aes128gcm"
    assert request["headers"]["ttl"] == "600"
    assert "Начислено".encode() not in request["body"]  # encrypted on the way
    assert browser.read(request["body"]) == {
        "title": "Начислено 5 баллов",
        "body": "Спасибо за покупку!",
        "url": "/app",
        "tag": "points",
    }
    claims = verify_vapid(request["headers"]["authorization"], public_key, push_service.base)
    assert claims["sub"] == "mailto:club@shop.example"
    with pytest.raises(http_ece.ECEException):  # another browser's keys cannot read it
        Browser.new().read(request["body"])


@pytest.mark.parametrize(
    ("kind", "permanent", "gone"),
    [
        ("gone", True, True),
        ("expired", True, True),
        ("bad", True, False),
        ("busy", False, False),
        ("down", False, False),
    ],
)
async def test_the_push_services_answer_says_what_to_do(
    push_service: PushService, kind: str, permanent: bool, gone: bool
) -> None:
    async with aiohttp.ClientSession() as session:
        push, _ = channel(session)
        with pytest.raises(PushFailed) as failed:
            await push.send(
                Browser.new().subscription(f"{push_service.base}/push/{kind}"),
                PushMessage("t", "b"),
            )
    assert (failed.value.permanent, failed.value.gone) == (permanent, gone)


async def test_a_subscription_with_broken_keys_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        push, _ = channel(session)
        broken = PushSubscription("http://127.0.0.1:9/push/ok", "not-a-key", "x")
        with pytest.raises(PushFailed) as failed:
            await push.send(broken, PushMessage("t", "b"))
    assert failed.value.permanent and not failed.value.gone


def test_vapid_keys_are_made_on_the_command_line(tmp_path: Path) -> None:
    said = kopilka(tmp_path, "messaging", "vapid-keys").stdout.splitlines()
    private = said[0].removeprefix("KOPILKA_VAPID_PRIVATE_KEY=")
    public = said[1].removeprefix("KOPILKA_VAPID_PUBLIC_KEY=")
    assert len(unb64url(private)) == 32 and len(unb64url(public)) == 65
    # The pair is a pair: the public key is the private key's.
    value = int.from_bytes(unb64url(private), "big")
    derived = ec.derive_private_key(value, ec.SECP256R1()).public_key()
    assert (
        b64url(
            derived.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        == public
    )
