"""The member's card in the phone's wallet: the Apple pass (a signed .pkpass whose manifest,
signature, barcode, balance and tier are checked) and the Google save link (a JWT checked
with the service account's public key); only the signed-in member's own card; a page
saying so where a wallet is not set up."""

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.wallet.png import PNG_SIGNATURE
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body
from tests.wallet.certs import (
    CLASS_ID,
    ISSUER_ID,
    PASS_TYPE,
    PUBLIC_URL,
    SERVICE_ACCOUNT,
    T0,
    TEAM,
    google_settings,
    pki,
    set_up_wallets,
)
from tests.web.conftest import Browser, app_as

SAVE_URL = "https://pay.google.com/gp/v/save/"
LADDER = {
    "levels": [
        {"id": "silver", "name": "Silver"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 400_000}},
    ],
    "window": {"kind": "calendar_year"},
}


async def tiered(engine: AsyncEngine, http: httpx.AsyncClient) -> tuple[ProgramContext, Api]:
    program = await make_program(engine, tiers=LADDER)
    return program, Api(http, await make_key(engine, program))


async def member_with_purchase(api: Api, name: str, roubles: int) -> tuple[str, str]:
    """A member (id, card number) who spent ``roubles``."""
    made = await api.post("/v1/members", {"name": name, "external_id": name})
    assert made.status_code == 201, made.text
    body = purchase_body(name, roubles * 100, occurred_at=T0.isoformat())
    assert (await api.post("/v1/purchases", body)).status_code == 201
    card = next(i["value"] for i in made.json()["identifiers"] if i["kind"] == "card")
    return made.json()["id"], card


async def balance_and_tier(api: Api, member_id: str) -> tuple[int, str]:
    found = (await api.get(f"/v1/members/{member_id}/balance")).json()
    points = next(b["available"] for b in found["balances"] if b["currency"] == "points")
    return points, found["tier_progress"]["tier"]["name"]


def unzipped(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def fields_of(document: dict[str, Any]) -> dict[str, Any]:
    card = document["storeCard"]
    every = [f for group in card.values() for f in group]
    return {f["key"]: f["value"] for f in every}


def openssl_verifies(folder: Path, signature: bytes, manifest: bytes) -> bool:
    (folder / "signature").write_bytes(signature)
    (folder / "manifest.json").write_bytes(manifest)
    done = subprocess.run(
        [
            "openssl", "smime", "-verify", "-noverify", "-binary", "-inform", "DER",
            "-in", str(folder / "signature"), "-content", str(folder / "manifest.json"),
            "-out", str(folder / "verified"),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return done.returncode == 0


async def test_the_apple_pass_is_the_member_s_card_signed_by_the_program(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna, card = await member_with_purchase(api, "Anna Petrova", 5_000)
        await app_as(browser, engine, program, UUID(anna))
        answer = await browser.get(f"/app/{program.slug}/wallet/apple.pkpass")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.apple.pkpass"
    files = unzipped(answer.content)
    assert {
        "pass.json",
        "manifest.json",
        "signature",
        "icon.png",
        "icon@2x.png",
        "logo.png",
    } <= set(files)
    # The manifest lists the SHA-1 of every file but itself and the signature.
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name
    assert all(files[n].startswith(PNG_SIGNATURE) for n in files if n.endswith(".png"))
    assert "Баллы" in files["ru.lproj/pass.strings"].decode()

    document = json.loads(files["pass.json"])
    assert document["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": card,
            "messageEncoding": "iso-8859-1",
            "altText": " ".join(card[i : i + 4] for i in range(0, len(card), 4)),
        }
    ]
    assert document["serialNumber"] == anna
    assert document["passTypeIdentifier"] == PASS_TYPE and document["teamIdentifier"] == TEAM
    assert document["webServiceURL"] == PUBLIC_URL + "/wallet/apple"
    assert len(document["authenticationToken"]) >= 16
    assert document["backgroundColor"] == "rgb(18, 52, 86)"
    points, tier = await balance_and_tier(api, anna)
    assert (points, tier) == (5_000, "Gold")
    shown = fields_of(document)
    assert shown["points"] == points and shown["tier"] == tier
    assert shown["member"] == "Anna Petrova"

    # The signature: detached PKCS #7 over manifest.json, by the pass certificate, with WWDR.
    signature = files["signature"]
    carried = pkcs7.load_der_pkcs7_certificates(signature)
    assert set(carried) == {pki().pass_certificate, pki().ca}
    if shutil.which("openssl"):
        assert openssl_verifies(tmp_path, signature, files["manifest.json"])
        tampered = files["manifest.json"].replace(b'"pass.json"', b'"pass.jsoN"')
        assert not openssl_verifies(tmp_path, signature, tampered)


async def test_the_google_link_carries_the_member_s_card_signed_by_the_service_account(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna, card = await member_with_purchase(api, "Anna Petrova", 5_000)
        await app_as(browser, engine, program, UUID(anna))
        answer = await browser.get(f"/app/{program.slug}/wallet/google")
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(SAVE_URL)
    claims = jwt.decode(
        location.removeprefix(SAVE_URL),
        pki().google_key.public_key(),
        algorithms=["RS256"],
        audience="google",
        options={"verify_iat": False},  # issued at T0, a frozen moment
    )
    assert claims["iat"] == int(T0.timestamp())
    assert claims["iss"] == SERVICE_ACCOUNT and claims["typ"] == "savetowallet"
    assert claims["origins"] == [PUBLIC_URL]
    points, tier = await balance_and_tier(api, anna)
    assert claims["payload"] == {
        "loyaltyObjects": [
            {
                "id": f"{ISSUER_ID}.{anna}",
                "classId": f"{ISSUER_ID}.{CLASS_ID}",
                "state": "ACTIVE",
                "accountId": card,
                "accountName": "Anna Petrova",
                "barcode": {
                    "type": "QR_CODE",
                    "value": card,
                    "alternateText": " ".join(card[i : i + 4] for i in range(0, len(card), 4)),
                },
                "loyaltyPoints": {"label": "Points", "balance": {"int": points}},
                "textModulesData": [{"id": "tier", "header": "Tier", "body": tier}],
            }
        ]
    }
    # Signed with another key, it would not decode: the check can fail.
    other = jwt.encode({"aud": "google"}, pki().pass_key, algorithm="RS256")
    try:
        jwt.decode(other, pki().google_key.public_key(), algorithms=["RS256"], audience="google")
        raise AssertionError("a token signed with another key decoded")
    except jwt.InvalidSignatureError:
        pass


async def test_the_google_labels_are_in_the_member_s_language(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna, _ = await member_with_purchase(api, "Anna", 100)
        await app_as(browser, engine, program, UUID(anna))
        browser.client.cookies.set("kopilka_lang", "ru", domain="kopilka.test")
        answer = await browser.get(f"/app/{program.slug}/wallet/google")
    token = answer.headers["location"].removeprefix(SAVE_URL)
    claims = jwt.decode(token, options={"verify_signature": False})
    loyalty = claims["payload"]["loyaltyObjects"][0]
    assert loyalty["loyaltyPoints"]["label"] == "Баллы"
    assert loyalty["textModulesData"][0]["header"] == "Уровень"


async def test_a_member_gets_only_their_own_card(
    browsers: Any, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna, anna_card = await member_with_purchase(api, "Anna", 5_000)
        boris, boris_card = await member_with_purchase(api, "Boris", 100)
        as_boris = await app_as(browsers(), engine, program, UUID(boris))
        answer = await as_boris.get(f"/app/{program.slug}/wallet/apple.pkpass")
        link = await as_boris.get(f"/app/{program.slug}/wallet/google")
        stranger = await browsers().get(f"/app/{program.slug}/wallet/apple.pkpass")
        # Anna's session is for her program only.
        elsewhere, other_api = await tiered(engine, http)
        await set_up_wallets(other_api)
        as_anna = await app_as(browsers(), engine, program, UUID(anna))
        crossing = await as_anna.get(f"/app/{elsewhere.slug}/wallet/apple.pkpass")
    document = json.loads(unzipped(answer.content)["pass.json"])
    assert document["serialNumber"] == boris and document["barcodes"][0]["message"] == boris_card
    assert fields_of(document)["points"] == 100 and anna_card not in answer.content.decode(
        "latin-1"
    )
    claims = jwt.decode(
        link.headers["location"].removeprefix(SAVE_URL), options={"verify_signature": False}
    )
    assert claims["payload"]["loyaltyObjects"][0]["accountId"] == boris_card
    assert stranger.status_code == 303 and "/sign-in" in stranger.headers["location"]
    assert crossing.status_code == 303 and "/sign-in" in crossing.headers["location"]


async def test_without_wallet_settings_the_routes_say_wallet_cards_are_not_set_up(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        anna, _ = await member_with_purchase(api, "Anna", 100)
        await app_as(browser, engine, program, UUID(anna))
        apple = await browser.get(f"/app/{program.slug}/wallet/apple.pkpass")
        google = await browser.get(f"/app/{program.slug}/wallet/google")
        # Google only: Apple's pass is still not set up, Google's link is.
        await set_up_wallets(api, apple=None, google=google_settings())
        apple_only_missing = await browser.get(f"/app/{program.slug}/wallet/apple.pkpass")
        google_now = await browser.get(f"/app/{program.slug}/wallet/google")
    for page in (apple, google, apple_only_missing):
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Wallet cards are not set up for this program yet." in page.text
        assert f'href="/app/{program.slug}/"' in page.text
    assert google_now.status_code == 303
    browser.client.cookies.set("kopilka_lang", "ru", domain="kopilka.test")
    russian = await browser.get(f"/app/{program.slug}/wallet/apple.pkpass")
    assert "Карты в кошельке для этой программы пока не настроены." in russian.text


async def test_the_card_page_offers_both_wallets_once_they_are_set_up(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await tiered(engine, http)
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna, _ = await member_with_purchase(api, "Anna Petrova", 5_000)
        await app_as(browser, engine, program, UUID(anna))
        card = await browser.get(f"/app/{program.slug}/")
    assert f'href="/app/{program.slug}/wallet/apple.pkpass"' in card.text
    assert f'href="/app/{program.slug}/wallet/google"' in card.text
