"""Signed links: a token verifies only under its program's secret and for its action, and a
tracked link records the click and redirects only where the message pointed."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.kit.clock import clock
from kopilka.messaging import links
from tests.conftest import Api
from tests.messaging.test_flow import mailbox, member, settle

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
PROGRAM = uuid.UUID("01a24400-0000-7000-8000-000000000001")


def data(**fields: object) -> links.LinkData:
    base: dict[str, object] = {
        "action": "unsubscribe",
        "program_id": PROGRAM,
        "member_id": uuid.UUID(int=7),
        "channel": "email",
    }
    return links.LinkData(**{**base, **fields})  # type: ignore[arg-type]


def test_a_token_verifies_for_its_program_and_action_only() -> None:
    token = links.sign("secret-a", data())
    assert links.verify("secret-a", token, "unsubscribe") == data()
    assert links.program_of(token) == PROGRAM
    with pytest.raises(links.BadLink, match="not valid"):
        links.verify("secret-b", token, "unsubscribe")
    with pytest.raises(links.BadLink, match="something else"):
        links.verify("secret-a", token, "preferences")
    with pytest.raises(links.BadLink):
        links.program_of("garbage")


@given(st.integers(min_value=0), st.characters(codec="ascii", categories=["L", "N"]))
def test_changing_any_character_breaks_the_token(position: int, replacement: str) -> None:
    token = links.sign("secret-a", data(url="https://shop.example/a?b=1"))
    at = position % len(token)
    changed = token[:at] + replacement + token[at + 1 :]
    if changed == token:
        return
    with pytest.raises(links.BadLink):
        links.verify("secret-a", changed, "unsubscribe")


async def test_a_tracked_link_records_the_click_and_redirects(api: Api) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        saved = await api.put(
            "/v1/templates/points_spent/en",
            {"parts": {"html": '<a href="https://shop.example/offers?x=1&amp;y=2">Offers</a>'}},
        )
        assert saved.status_code == 200, saved.text
        anna = await member(api, email=mailbox("click"), language="en")
        sent = await api.post(
            "/v1/messages",
            {
                "member_id": anna,
                "kind": "points_spent",
                "variables": {"amount": 3},
                "dedupe_key": "c1",
                "channels": ["email"],
            },
        )
        message = sent.json()["items"][0]
        html = (await api.get(f"/v1/messages/{message['id']}")).json()["html"]
    assert "shop.example/offers" not in html
    tracked = html.split('href="http://127.0.0.1:8000')[1].split('"')[0]
    assert tracked.startswith("/m/c/")
    with clock.frozen(T0 + timedelta(hours=1)):
        clicked = await api.client.get(tracked)
    assert clicked.status_code == 302
    assert clicked.headers["location"] == "https://shop.example/offers?x=1&y=2"
    detail = (await api.get(f"/v1/messages/{message['id']}")).json()
    assert detail["status"] == "queued"  # not sent yet: the click is kept, the status waits
    assert detail["clicked_at"] == "2031-03-03T13:00:00Z"
    assert detail["history"][-1]["status"] == "clicked"
    forged = await api.client.get(tracked[:-2] + "zz")
    assert (
        forged.status_code == 404 and "does not work" in forged.text
    ) or "недействительна" in forged.text
