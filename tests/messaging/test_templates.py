"""Templates per program: the shipped texts until a program saves its own, each save a new
version, refused (naming the part and the line) when it does not compile, reads what the
kind does not give or does not render; previews with a member's real data; test sends."""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import CodeChannel, parse_address
from kopilka.memberaccess.service import member_access_service
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.repository import messaging_repository
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.messaging.test_flow import mailbox, member, plain


async def save(api: Api, kind: str, language: str, **parts: str) -> Any:
    return await api.put(f"/v1/templates/{kind}/{language}", {"parts": parts})


async def test_shipped_texts_until_the_program_saves_its_own(api: Api) -> None:
    listed = (await api.get("/v1/templates")).json()["items"]
    kinds = {t["kind"]: t for t in listed}
    assert kinds["points_earned"]["enabled"] is False  # off by default
    assert kinds["points_expiring"]["versions"] == {"ru": 0, "en": 0}
    assert "expires_on" in kinds["points_expiring"]["variables"]
    shipped = (await api.get("/v1/templates/points_spent/ru")).json()
    assert shipped["version"] == 0 and "{{ amount|points }}" in shipped["parts"]["subject"]

    first = await save(api, "points_spent", "ru", subject="Минус {{ amount|points }}")
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    assert first.json()["parts"]["subject"] == "Минус {{ amount|points }}"
    assert first.json()["parts"]["text"] == shipped["parts"]["text"]  # the rest stays
    second = await save(
        api, "points_spent", "ru", html="<p>{{ member.name }}: −{{ amount|points }}</p>"
    )
    assert second.json()["version"] == 2
    assert second.json()["parts"]["subject"] == "Минус {{ amount|points }}"
    versions = (await api.get("/v1/templates/points_spent/ru/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert (await api.get("/v1/templates/points_spent/en")).json()["version"] == 0

    anna = await member(api, name="Анна", email=mailbox("tpl"), language="ru")
    preview = await api.post(
        "/v1/templates/points_spent/preview", {"member_id": anna, "variables": {"amount": 21}}
    )
    assert preview.status_code == 200, preview.text
    parts = preview.json()["parts"]
    assert plain(parts["subject"]) == "Минус 21 балл"
    assert parts["html"] == "<p>Анна: −21\xa0балл</p>"
    english = await api.post(
        "/v1/templates/points_spent/preview", {"language": "en", "variables": {"amount": 1}}
    )
    assert english.json()["language"] == "en"
    assert plain(english.json()["parts"]["subject"]) == "1 point spent"


async def test_a_template_that_cannot_work_is_refused_naming_the_line(api: Api) -> None:
    cases = [
        ({"text": "Hello\n{% if amount %}\nno end"}, "parts.text", "text, line 3"),
        ({"subject": "{{ amount|points }} {{ balance2 }}"}, "parts.subject", "'balance2'"),
        ({"html": "<p>{{ ''.__class__.__mro__ }}</p>"}, "parts.html", "html"),
        ({"sms": "{{ amount|nosuchfilter }}"}, "parts.sms", "nosuchfilter"),
        ({"push_body": "{{ amount / 0 }}"}, "parts.push_body", "division"),
    ]
    for parts, field, said in cases:
        response = await api.put("/v1/templates/points_spent/ru", {"parts": parts})
        assert response.status_code == 422, (parts, response.text)
        error = response.json()["errors"][0]
        assert error["field"].removeprefix("body.") == field, (parts, error)
        assert said in response.json()["detail"], (parts, response.json()["detail"])
    assert (await api.get("/v1/templates/points_spent/ru")).json()["version"] == 0

    for path, body, status in [
        ("/v1/templates/nope/ru", {"parts": {"text": "x"}}, 404),
        ("/v1/templates/points_spent/de", {"parts": {"text": "x"}}, 422),
        ("/v1/templates/points_spent/ru", {"parts": {}}, 422),
        ("/v1/templates/points_spent/ru", {"parts": {"footer": "x"}}, 422),
        ("/v1/templates/points_spent/ru", {"parts": {"text": 5}}, 422),
    ]:
        response = await api.put(path, body)
        assert response.status_code == status, (path, body, response.text)


async def test_preview_and_test_refuse_what_the_kind_does_not_have(api: Api) -> None:
    unknown = await api.post("/v1/templates/points_spent/preview", {"variables": {"colour": "red"}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "variables.colour"
    nobody = await api.post(
        "/v1/templates/points_spent/preview",
        {"member_id": "00000000-0000-0000-0000-000000000001"},
    )
    assert nobody.status_code == 404
    for body, field in [
        ({"channel": "email"}, "to"),
        ({"channel": "email", "to": "not an address"}, "to"),
        ({"channel": "sms", "to": "89161234567"}, "to"),
        ({"channel": "push", "to": "x@example.com"}, "member_id"),
    ]:
        response = await api.post("/v1/templates/points_spent/test", body)
        assert response.status_code == 422, (body, response.text)
        fields = [e["field"].removeprefix("body.") for e in response.json()["errors"]]
        assert field in fields, (body, fields)


async def test_a_test_send_is_queued_with_sample_data(api: Api, engine: AsyncEngine) -> None:
    address = mailbox("test-send")
    response = await api.post(
        "/v1/templates/tier_upgraded/test", {"channel": "email", "to": address, "language": "en"}
    )
    assert response.status_code == 202, response.text
    made = response.json()
    assert made["status"] == "queued" and made["to"] == address
    assert made["subject"] == "Your new tier: Gold"
    other = await make_program(engine)
    stranger = Api(api.client, await make_key(engine, other, "admin"))
    assert (await stranger.get(f"/v1/messages/{made['id']}")).status_code == 404


async def test_a_sign_in_code_template_holds_no_link_and_its_clicks_are_not_tracked(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    """A template that staff may edit must not carry a sign-in code away: a secret kind's
    part with a link or a web address (as written or as rendered) is refused on save and in
    a preview, one saved before is not used, its message is not click-tracked and a click
    on it records no URL."""
    evil = '<a href="https://evil.example/c?code={{ code }}">open</a>'
    cases = [
        ({"html": evil}, "parts.html"),
        ({"text": "Open HTTPS://evil.example/?c={{ code }}"}, "parts.text"),
        ({"sms": "{{ code }} www.evil.example"}, "parts.sms"),
        ({"push_body": "//evil.example/{{ code }}"}, "parts.push_body"),
        ({"html": '<img src="x.png">{{ code }}'}, "parts.html"),
        ({"subject": "{{ code }} {{ app_url }}"}, "parts.subject"),  # a URL once rendered
        ({"text": "{{ 'ww' ~ 'w.evil.example/' ~ code }}"}, "parts.text"),  # from pieces
    ]
    for parts, field in cases:
        for path, body in [
            ("/v1/templates/sign_in_code/en", {"parts": parts}),
            ("/v1/templates/sign_in_code/preview", {"language": "en", "parts": parts}),
        ]:
            method = api.put if path.endswith("/en") else api.post
            response = await method(path, body)
            assert response.status_code == 422, (parts, response.text)
            fields = [e["field"].removeprefix("body.") for e in response.json()["errors"]]
            assert fields == [field], (parts, fields)
    assert (await api.get("/v1/templates/sign_in_code/en")).json()["version"] == 0
    fine = await save(api, "sign_in_code", "en", text="Your code: {{ code }}")
    assert fine.status_code == 200, fine.text
    # Other kinds keep their links.
    linked = await save(api, "points_spent", "en", html='<a href="https://shop.example">x</a>')
    assert linked.status_code == 200, linked.text

    # Texts saved before links were refused: not used (the shipped ones instead).
    async with transaction(engine) as conn:
        await messaging_repository.add_template(
            conn,
            {
                "id": uuid4(),
                "program_id": program.id,
                "kind": "sign_in_code",
                "language": "en",
                "version": 9,
                "parts": {
                    "html": evil,
                    "subject": "{{ 'ht' ~ 'tps:/' ~ '/evil.example/' ~ code }}",
                    "text": "Your code: {{ code }}",
                },
                "created_at": clock.now(),
            },
        )
    address = mailbox("secret-links")
    anna = UUID(await member(api, name="Anna", email=address, language="en"))
    async with transaction(engine) as conn:
        assert await member_access_service.request_code(
            conn, program, parse_address(address), clock.now(), channels=frozenset(CodeChannel)
        )
    async with transaction(engine) as conn:
        [message] = await messaging_repository.messages_page(
            conn, program.id, limit=1, before=None, member_id=anna, kind="sign_in_code"
        )
    assert message.html is None and "/m/c/" not in message.body
    assert "evil" not in f"{message.subject} {message.body}"
    assert message.subject is not None and message.subject.startswith("Your sign-in code")

    # A click on a tracked link of it (a token made before) records nothing …
    async with transaction(engine) as conn:
        await delivery_service.clicked(
            conn, program.id, message.id, "https://evil.example/c?code=998218", clock.now()
        )
        # … and one recorded before is shown without its URL.
        await messaging_repository.add_status(
            conn, message.id, "clicked", "https://evil.example/c?code=998218", clock.now()
        )
    shown = (await api.get(f"/v1/messages/{message.id}")).json()
    assert shown["clicked_at"] is None
    assert "998218" not in str(shown) and "evil.example" not in str(shown)
