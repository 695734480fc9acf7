"""The wallet settings through the API: saved with every certificate and key checked (422
naming the field, nothing changed), answered without a key, kept when left out, never
written to the audit log, and only for callers allowed to manage integrations."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key
from tests.wallet.certs import (
    PASS_TYPE,
    PUBLIC_URL,
    T0,
    Pki,
    apple_settings,
    cert_pem,
    google_settings,
    key_pem,
    other_pki,
    pki,
    set_up_wallets,
    settings_body,
)


async def test_nothing_is_set_up_until_saved(api: Api) -> None:
    answer = await api.get("/v1/wallet/settings")
    assert answer.status_code == 200
    assert answer.json() == {"public_url": None, "apple": None, "google": None, "updated_at": None}


async def test_saved_settings_say_whether_each_secret_is_set_never_what_it_is(api: Api) -> None:
    with clock.frozen(T0):
        saved = await set_up_wallets(api)
    again = (await api.get("/v1/wallet/settings")).json()
    assert again == saved
    assert saved["public_url"] == PUBLIC_URL
    apple = saved["apple"]
    assert apple["pass_type_identifier"] == PASS_TYPE and apple["team_identifier"] == "KOPILKA123"
    assert apple["private_key_set"] is True and apple["private_key_password_set"] is False
    assert f"UID={PASS_TYPE}" in apple["certificate"]["subject"]
    assert apple["certificate"]["expires_at"] == "2045-01-01T00:00:00Z"
    assert "Worldwide Developer Relations" in apple["wwdr_certificate"]["subject"]
    assert saved["google"] == {
        "issuer_id": "3388000000022000000",
        "class_id": "loyalty_card",
        "service_account_email": "wallet@kopilka-test.iam.gserviceaccount.com",
        "private_key_set": True,
    }
    for text in (str(saved), str(again)):
        assert "PRIVATE KEY" not in text and "BEGIN" not in text


async def test_keys_never_reach_the_audit_log(api: Api) -> None:
    with clock.frozen(T0):
        await set_up_wallets(api)
        await set_up_wallets(api, apple=apple_settings(private_key_password=None))
    entries = (await api.get("/v1/audit")).json()["items"]
    saved = [e for e in entries if e["action"] == "wallet.settings.saved"]
    assert len(saved) == 2
    assert saved[0]["after"]["apple"]["private_key_set"] is True
    text = str(entries)
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    assert key_pem(pki().pass_key)[40:80] not in text


def _broken(**overrides: Any) -> dict[str, Any]:
    """A settings body with one thing wrong."""
    apple = apple_settings(**overrides.pop("apple", {}))
    google = google_settings(**overrides.pop("google", {}))
    return settings_body(apple=apple, google=google, **overrides)


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    other = other_pki()
    bad_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
    return [
        ("certificate", _broken(apple={"certificate": "nonsense"}), "apple.certificate"),
        ("key", _broken(apple={"private_key": bad_key}), "apple.private_key"),
        ("other key", _broken(apple={"private_key": key_pem(other.pass_key)}), "apple.private_key"),
        ("wwdr", _broken(apple={"wwdr_certificate": "garbage"}), "apple.wwdr_certificate"),
        (
            "other wwdr",
            _broken(apple={"wwdr_certificate": cert_pem(other.ca)}),
            "apple.wwdr_certificate",
        ),
        ("google key", _broken(google={"private_key": "nope"}), "google.private_key"),
        ("team", _broken(apple={"team_identifier": "team"}), "apple.team_identifier"),
        (
            "pass type",
            _broken(apple={"pass_type_identifier": "com.example"}),
            "apple.pass_type_identifier",
        ),
        (
            "certificate of another pass type",
            _broken(apple={"pass_type_identifier": "pass.dev.other"}),
            "apple.pass_type_identifier",
        ),
        ("issuer", _broken(google={"issuer_id": "issuer"}), "google.issuer_id"),
        ("url", _broken(public_url="club.example"), "public_url"),
        ("colour", _broken(apple={"background_color": "blue"}), "apple.background_color"),
    ]


@pytest.mark.parametrize("case", range(12))
async def test_a_bad_certificate_key_or_id_is_a_422_naming_the_field(api: Api, case: int) -> None:
    name, body, field = _cases()[case]
    with clock.frozen(T0):
        before = await set_up_wallets(api)
        answer = await api.put("/v1/wallet/settings", body)
    assert answer.status_code == 422, (name, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in answer.json()["errors"]], (name, answer.text)
    for key in (pki().pass_key, pki().google_key, other_pki().pass_key):
        assert key_pem(key)[40:80] not in answer.text  # a refusal does not echo a key
    assert (await api.get("/v1/wallet/settings")).json() == before  # nothing changed


async def test_an_encrypted_key_needs_its_password(api: Api) -> None:
    encrypted = key_pem(pki().pass_key, password="s3cret-pass")
    with clock.frozen(T0):
        missing = await api.put(
            "/v1/wallet/settings", settings_body(apple=apple_settings(private_key=encrypted))
        )
        wrong = await api.put(
            "/v1/wallet/settings",
            settings_body(apple=apple_settings(private_key=encrypted, private_key_password="no")),
        )
        right = await api.put(
            "/v1/wallet/settings",
            settings_body(
                apple=apple_settings(private_key=encrypted, private_key_password="s3cret-pass")
            ),
        )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == (
        "apple.private_key_password"
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == (
        "apple.private_key_password"
    )
    assert right.status_code == 200, right.text
    assert right.json()["apple"]["private_key_password_set"] is True
    assert "s3cret-pass" not in right.text


async def test_an_expired_certificate_is_refused(api: Api) -> None:
    expired = Pki(valid_until=T0)
    with clock.frozen(T0):
        answer = await api.put("/v1/wallet/settings", settings_body(apple=apple_settings(expired)))
    assert answer.status_code == 422
    assert answer.json()["errors"][0] == {
        "field": "apple.certificate",
        "message": "the certificate expired on 2031-06-15",
    }


async def test_certificates_and_keys_left_out_keep_the_saved_ones(api: Api) -> None:
    with clock.frozen(T0):
        await set_up_wallets(api)
        apple = {
            k: v
            for k, v in apple_settings(background_color="#000000").items()
            if k not in ("certificate", "private_key", "wwdr_certificate")
        }
        google = {k: v for k, v in google_settings().items() if k != "private_key"}
        kept = await api.put("/v1/wallet/settings", settings_body(apple=apple, google=google))
        assert kept.status_code == 200, kept.text
        assert kept.json()["apple"]["background_color"] == "#000000"
        assert kept.json()["apple"]["private_key_set"] and kept.json()["google"]["private_key_set"]
        off = await api.put("/v1/wallet/settings", {"public_url": PUBLIC_URL, "google": google})
        assert off.status_code == 200 and off.json()["apple"] is None
        # Turned off, the keys are forgotten: turning it on again needs them.
        again = await api.put("/v1/wallet/settings", settings_body(apple=apple, google=google))
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "apple.certificate"


async def test_a_service_account_key_pasted_from_its_json_file_is_read(api: Api) -> None:
    escaped = key_pem(pki().google_key).replace("\n", "\\n")
    with clock.frozen(T0):
        answer = await api.put(
            "/v1/wallet/settings", settings_body(google=google_settings(private_key=escaped))
        )
    assert answer.status_code == 200, answer.text
    elliptic = key_pem(ec.generate_private_key(ec.SECP256R1()))
    with clock.frozen(T0):
        refused = await api.put(
            "/v1/wallet/settings", settings_body(google=google_settings(private_key=elliptic))
        )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == (
        "google.private_key"
    )


@pytest.mark.parametrize("scope", ["pos", "analyst"])
async def test_only_callers_managing_integrations_see_or_change_them(
    api: Api, engine: AsyncEngine, program: ProgramContext, scope: str
) -> None:
    other = Api(api.client, await make_key(engine, program, scope))
    assert (await other.get("/v1/wallet/settings")).status_code == 403
    with clock.frozen(T0):
        answer = await other.put("/v1/wallet/settings", settings_body())
    assert answer.status_code == 403 and "integrations.manage" in answer.json()["detail"]
    assert (await api.get("/v1/wallet/settings")).json()["apple"] is None
