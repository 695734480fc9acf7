"""Staff over HTTP: sign-in, sessions, the second factor, roles refused what they lack, and
the audit log of what they do."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import ROLE_PERMISSIONS, Permission, Role
from kopilka.app import create_app
from kopilka.config import Settings
from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.staff.schemas import StaffCreate
from kopilka.staff.service import staff_service
from tests.conftest import Api, make_key, make_program

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
PASSWORD = "a long pass phrase 7"


async def make_staff(
    engine: AsyncEngine, program: ProgramContext, role: Role, **extra: Any
) -> tuple[str, uuid.UUID]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@shop.example"
    async with transaction(engine) as conn:
        staff = await staff_service.create(
            conn,
            program.id,
            StaffCreate(email=email, name=f"{role} person", role=role, password=PASSWORD, **extra),
            clock.now(),
        )
    return email, staff.id


async def sign_in(http: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    return await http.post(
        "/v1/staff/sessions", json={"email": email, "password": PASSWORD, **extra}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def session_of(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await sign_in(http, email)
    assert answer.status_code == 201, answer.text
    return bearer(answer.json()["token"])


async def test_a_staff_member_signs_in_sees_their_role_and_signs_out(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, staff_id = await make_staff(engine, program, Role.SUPPORT)
    answer = await sign_in(http, email.upper())  # e-mails match whatever their case
    assert answer.status_code == 201
    body = answer.json()
    assert body["staff"]["id"] == str(staff_id) and body["staff"]["role"] == "support"
    headers = bearer(body["token"])
    me = await http.get("/v1/staff/me", headers=headers)
    assert me.json()["permissions"] == sorted(ROLE_PERMISSIONS[Role.SUPPORT])
    assert (await http.delete("/v1/staff/sessions/current", headers=headers)).status_code == 204
    gone = await http.get("/v1/staff/me", headers=headers)
    assert gone.status_code == 401 and "sign in again" in gone.json()["detail"]


async def test_wrong_answers_are_one_401_and_five_in_a_row_rest_the_account(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.CRM)
    with clock.frozen(T0):
        unknown = await http.post(
            "/v1/staff/sessions", json={"email": "nobody@shop.example", "password": PASSWORD}
        )
        wrong = await http.post("/v1/staff/sessions", json={"email": email, "password": "x" * 12})
        assert unknown.status_code == wrong.status_code == 401
        assert unknown.json()["detail"] == wrong.json()["detail"]
        assert unknown.json()["detail"].startswith("wrong e-mail, password or code")
        for _ in range(4):
            await http.post("/v1/staff/sessions", json={"email": email, "password": "y" * 12})
        # Five wrong in a row: even the right password waits, and the answer is the same
        # as for an unknown e-mail (it does not tell the account exists).
        resting = await sign_in(http, email)
        assert resting.status_code == 401 and resting.json() == {
            **unknown.json(),
            "instance": resting.json()["instance"],
        }
    with clock.frozen(T0 + timedelta(minutes=16)):
        assert (await sign_in(http, email)).status_code == 201


async def test_the_second_factor_once_confirmed_is_asked_for_and_a_code_works_once(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.OWNER)
    with clock.frozen(T0):
        headers = await session_of(http, email)
        setup = (await http.post("/v1/staff/me/totp", headers=headers)).json()
        assert setup["uri"].startswith("otpauth://totp/")
        totp = pyotp.TOTP(setup["secret"])
        # Not on until a code is confirmed: sign-in still needs none.
        assert (await sign_in(http, email)).status_code == 201
        bad = await http.post("/v1/staff/me/totp/confirm", json={"code": "000000"}, headers=headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "code"
        confirmed = await http.post(
            "/v1/staff/me/totp/confirm", json={"code": totp.at(T0)}, headers=headers
        )
        assert confirmed.json()["totp_enabled"] is True
    with clock.frozen(T0 + timedelta(seconds=60)):
        asked = await sign_in(http, email)
        assert asked.status_code == 401 and "totp" in asked.json()["detail"]
        code = totp.at(T0 + timedelta(seconds=60))
        assert (await sign_in(http, email, totp=code)).status_code == 201
        replayed = await sign_in(http, email, totp=code)
        assert replayed.status_code == 401


async def test_a_disabled_account_loses_its_sessions_at_once(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    owner, _ = await make_staff(engine, program, Role.OWNER)
    email, staff_id = await make_staff(engine, program, Role.MARKETING)
    owner_headers = await session_of(http, owner)
    headers = await session_of(http, email)
    assert (await http.get("/v1/program", headers=headers)).status_code == 200
    disabled = await http.patch(
        f"/v1/staff/{staff_id}", json={"status": "disabled"}, headers=owner_headers
    )
    assert disabled.json()["status"] == "disabled"
    assert (await http.get("/v1/program", headers=headers)).status_code == 401
    assert (await sign_in(http, email)).status_code == 401


async def test_a_new_password_ends_every_other_session(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.ANALYST)
    first, second = await session_of(http, email), await session_of(http, email)
    wrong = await http.post(
        "/v1/staff/me/password",
        json={"current_password": "not it at all", "new_password": "another pass phrase 9"},
        headers=first,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "current_password"
    changed = await http.post(
        "/v1/staff/me/password",
        json={"current_password": PASSWORD, "new_password": "another pass phrase 9"},
        headers=first,
    )
    assert changed.status_code == 204
    assert (await http.get("/v1/staff/me", headers=first)).status_code == 200
    assert (await http.get("/v1/staff/me", headers=second)).status_code == 401


def api_routes() -> list[Any]:
    """Every FastAPI route of the application, its included routers' with their full path."""
    found: list[Any] = []
    for route in create_app().routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "effective_route_contexts"):
            found.extend(route.effective_route_contexts())
    return found


def _guarded_routes() -> list[tuple[str, str, Permission]]:
    """Every API route that names a permission, with a path to call it (the console's pages
    have their own test: tests/web/test_console_permissions.py)."""
    found = []
    for route in api_routes():
        if not route.path.startswith("/v1/"):
            continue
        permissions = [
            d.call.permission  # type: ignore[attr-defined]
            for d in route.dependant.dependencies
            if hasattr(d.call, "permission")
        ]
        if not permissions:
            continue
        for method in sorted(route.methods):
            found.append((method, route.path, permissions[0]))
    return found


def _callable(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("{"):
            path = path.replace(part, str(uuid.UUID(int=7)))
    return path


GUARDED_TEMPLATES = _guarded_routes()
GUARDED = [(method, _callable(path), permission) for method, path, permission in GUARDED_TEMPLATES]


def test_every_route_but_sign_in_and_one_s_own_account_names_a_permission() -> None:
    unguarded = {
        (method, route.path)
        for route in api_routes()
        if route.path.startswith("/v1/")
        for method in route.methods
    } - {(m, route_path) for m, route_path, _ in GUARDED_TEMPLATES}
    own = {p for _, p in unguarded if p.startswith("/v1/staff/me") or "/sessions" in p}
    assert {p for _, p in unguarded} - own == {"/v1/health", "/v1/purchases"}
    assert len(GUARDED) > 100


async def test_every_role_is_refused_every_route_it_lacks_the_permission_for(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    refused = allowed = 0
    for role in Role:
        email, _ = await make_staff(engine, program, role)
        headers = await session_of(http, email)
        for method, path, permission in GUARDED:
            answer = await http.request(method, path, headers=headers, json={})
            if permission in ROLE_PERMISSIONS[role]:
                assert answer.status_code != 403, (role, method, path, answer.text)
                allowed += 1
            else:
                assert answer.status_code == 403, (role, method, path, answer.status_code)
                assert str(permission) in answer.json()["detail"]
                refused += 1
    assert refused > 300 and allowed > 150


async def test_the_till_s_sale_is_refused_to_roles_that_do_not_sell(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.ANALYST)
    headers = await session_of(http, email)
    sale = {"member": {"card": "7700000000000000"}, "amount": 100, "external_id": "s1"}
    answer = await http.post("/v1/purchases", json=sale, headers=headers)
    assert answer.status_code == 403 and "sales.record" in answer.json()["detail"]


async def test_nothing_of_another_program_is_visible_to_its_staff(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member = (await api.post("/v1/members", json={"name": "Ann"})).json()
    other = await make_program(engine)
    email, _ = await make_staff(engine, other, Role.OWNER)
    headers = await session_of(http, email)
    assert (await http.get(f"/v1/members/{member['id']}", headers=headers)).status_code == 404
    own_key = await make_key(engine, program, "admin")
    staff_list = await http.get("/v1/staff", headers=bearer(own_key))
    assert all(s["email"] != email for s in staff_list.json()["items"])


async def test_changes_and_personal_reads_are_in_the_audit_log(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    owner, owner_id = await make_staff(engine, program, Role.OWNER)
    headers = await session_of(http, owner)
    member = (await api.post("/v1/members", json={"name": "Bea"})).json()
    adjusted = await http.post(
        "/v1/adjustments",
        json={"member": {"id": member["id"]}, "amount": 50, "reason": "goodwill"},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert adjusted.status_code in (200, 201), adjusted.text
    blocked = await http.post(
        f"/v1/members/{member['id']}/block", json={"reason": "fraud check"}, headers=headers
    )
    assert blocked.status_code == 200
    await http.get(f"/v1/members/{member['id']}", headers=headers)
    log = (await http.get("/v1/audit", headers=headers, params={"subject_id": member["id"]})).json()
    by_action = {e["action"]: e for e in log["items"]}
    points = by_action["points.adjusted"]
    assert points["actor_kind"] == "staff" and points["actor_id"] == str(owner_id)
    assert points["before"]["available"] == 0 and points["after"]["available"] == 50
    assert by_action["member.blocked"]["after"] == {"status": "blocked", "reason": "fraud check"}
    read = by_action["personal_data.read"]
    assert read["after"]["route"] == "GET /v1/members/{member_id}"
    # A key's read of the same member is a machine's, not a person's: not logged as one.
    await api.get(f"/v1/members/{member['id']}")
    again = (
        await http.get("/v1/audit", headers=headers, params={"action": "personal_data.read"})
    ).json()
    assert len(again["items"]) == 1


async def test_an_administrator_key_s_change_without_its_own_entry_is_logged_by_route(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    created = await api.post(
        "/v1/rewards",
        json={"key": "mug", "name": "Mug", "kind": "physical", "price": 100},
    )
    assert created.status_code == 201, created.text
    log = (await api.get("/v1/audit", subject_type="rewards")).json()["items"]
    assert [e["action"] for e in log] == ["POST /v1/rewards"]
    assert log[0]["actor_kind"] == "key" and log[0]["after"]["key"] == "mug"
    # What the till does is in the ledger, not in the audit log.
    till = Api(http, await make_key(engine, program, "pos"))
    await till.post(
        "/v1/purchases", json={"member": {"card": "x"}, "amount": 1, "external_id": "a"}
    )
    assert not [
        e for e in (await api.get("/v1/audit")).json()["items"] if "purchases" in e["action"]
    ]


async def test_the_audit_log_is_the_owner_s_to_read(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.MARKETING)
    headers = await session_of(http, email)
    refused = await http.get("/v1/audit", headers=headers)
    assert refused.status_code == 403 and "audit.read" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@b.example", "name": "A", "role": "boss", "password": PASSWORD}, "role"),
        ({"email": "a@b.example", "name": "A", "role": "crm", "password": "short"}, "password"),
        ({"email": "not-an-email", "name": "A", "role": "crm", "password": PASSWORD}, "email"),
        ({"email": "a@b.example", "name": "A", "role": "crm", "password": PASSWORD, "x": 1}, "x"),
    ],
)
async def test_a_bad_staff_account_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    answer = await api.post("/v1/staff", json=body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field
    assert (await api.get("/v1/staff")).json()["items"] == []


async def test_sign_in_attempts_from_one_address_are_bounded(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.CRM)
    app = create_app(Settings(sign_in_per_minute=3), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as http:
        answers = [
            (await http.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD}))
            for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert "wait a minute" in answers[-1].json()["detail"]
    assert answers[-1].headers["retry-after"] == "60"


async def test_wrong_codes_rest_the_account_like_wrong_passwords(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.OWNER)
    with clock.frozen(T0):
        headers = await session_of(http, email)
        secret = (await http.post("/v1/staff/me/totp", headers=headers)).json()["secret"]
        totp = pyotp.TOTP(secret)
        await http.post("/v1/staff/me/totp/confirm", json={"code": totp.at(T0)}, headers=headers)
    with clock.frozen(T0 + timedelta(minutes=5)):
        for _ in range(5):
            wrong = await sign_in(http, email, totp="000000")
            assert wrong.status_code == 401
        right = await sign_in(http, email, totp=totp.at(T0 + timedelta(minutes=5)))
        assert right.status_code == 401  # resting now
        log = await http.get(
            "/v1/audit", headers=headers, params={"action": "staff.sign_in_failed"}
        )
    assert [e["after"]["wrong"] for e in log.json()["items"]] == ["code"] * 5


async def test_one_e_mail_in_two_programs_signs_in_by_its_password(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email = f"both-{uuid.uuid4().hex[:6]}@shop.example"
    other = await make_program(engine)
    for where, password in ((program, PASSWORD), (other, "another pass phrase 3")):
        async with transaction(engine) as conn:
            await staff_service.create(
                conn,
                where.id,
                StaffCreate(email=email, name="Both", role=Role.CRM, password=password),
                clock.now(),
            )
    first = await http.post("/v1/staff/sessions", json={"email": email, "password": PASSWORD})
    second = await http.post(
        "/v1/staff/sessions", json={"email": email, "password": "another pass phrase 3"}
    )
    assert first.status_code == second.status_code == 201
    me_first = await http.get("/v1/staff/me", headers=bearer(first.json()["token"]))
    me_second = await http.get("/v1/staff/me", headers=bearer(second.json()["token"]))
    assert me_first.json()["id"] != me_second.json()["id"]


async def test_the_last_owner_stays_an_owner(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    email, owner = await make_staff(engine, program, Role.OWNER)
    headers = await session_of(http, email)
    demoted = await http.patch(f"/v1/staff/{owner}", json={"role": "cashier"}, headers=headers)
    assert demoted.status_code == 409 and demoted.json()["errors"][0]["field"] == "role"
    # An administrator's key is nobody's own account: only the last owner's rule refuses.
    disabled = await api.patch(f"/v1/staff/{owner}", {"status": "disabled"})
    assert disabled.status_code == 409 and disabled.json()["errors"][0]["field"] == "status"
    assert "last owner" in disabled.json()["detail"]
    _, second = await make_staff(engine, program, Role.OWNER)
    assert (
        await http.patch(f"/v1/staff/{owner}", json={"role": "crm"}, headers=headers)
    ).status_code == 200
    assert second


async def test_nobody_disables_their_own_account_nor_the_last_active_owner(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    first, first_id = await make_staff(engine, program, Role.OWNER)
    second, second_id = await make_staff(engine, program, Role.OWNER)
    headers = await session_of(http, first)
    myself = await http.patch(f"/v1/staff/{first_id}", json={"status": "disabled"}, headers=headers)
    assert myself.status_code == 409 and myself.json()["errors"][0]["field"] == "status"
    assert "your own account" in myself.json()["detail"]
    assert (await http.get("/v1/staff/me", headers=headers)).status_code == 200
    other = await http.patch(f"/v1/staff/{second_id}", json={"status": "disabled"}, headers=headers)
    assert other.status_code == 200 and other.json()["status"] == "disabled"
    # The disabled owner no longer counts: the one left is the last active owner.
    last = await api.patch(f"/v1/staff/{first_id}", {"status": "disabled"})
    assert last.status_code == 409 and "last owner" in last.json()["detail"]
    # A disabled owner's role may change: it takes no active owner away.
    assert (await api.patch(f"/v1/staff/{second_id}", {"role": "crm"})).status_code == 200
    bogus = await http.patch(f"/v1/staff/{second_id}", json={"status": "bogus"}, headers=headers)
    assert bogus.status_code == 422 and bogus.json()["errors"][0]["field"] == "status"
    assert second


async def test_two_owners_disabling_each_other_at_once_leave_one(pg_engine: AsyncEngine) -> None:
    program = await make_program(pg_engine)
    owners = [await make_staff(pg_engine, program, Role.OWNER) for _ in range(2)]
    app = create_app(engine=pg_engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as http:
        sessions = [await session_of(http, email) for email, _ in owners]

        async def disable(headers: dict[str, str], target: uuid.UUID) -> int:
            answer = await http.patch(
                f"/v1/staff/{target}", json={"status": "disabled"}, headers=headers
            )
            return answer.status_code

        codes = await asyncio.gather(
            disable(sessions[0], owners[1][1]), disable(sessions[1], owners[0][1])
        )
        assert sorted(codes) in ([200, 401], [200, 409])
        listed = await http.get("/v1/staff", headers=bearer(await make_key(pg_engine, program)))
    statuses = [s["status"] for s in listed.json()["items"] if s["role"] == "owner"]
    assert sorted(statuses) == ["active", "disabled"]


async def test_guessing_the_current_password_rests_the_account_as_sign_in_does(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    email, staff_id = await make_staff(engine, program, Role.ANALYST)
    change = {"current_password": "not it at all", "new_password": "another pass phrase 9"}
    with clock.frozen(T0):
        headers = await session_of(http, email)
        for _ in range(5):
            wrong = await http.post("/v1/staff/me/password", json=change, headers=headers)
            assert wrong.status_code == 422
            assert wrong.json()["errors"][0]["field"] == "current_password"
        # Resting: even the right password is not checked, here or at sign-in.
        right = {**change, "current_password": PASSWORD}
        resting = await http.post("/v1/staff/me/password", json=right, headers=headers)
        assert resting.status_code == 429 and "rests" in resting.json()["detail"]
        assert resting.headers["retry-after"] == "900"  # the 15 minutes an account rests
        assert (await sign_in(http, email)).status_code == 401
        log = (await api.get("/v1/audit", action="staff.", subject_id=str(staff_id))).json()
    failed = [e for e in log["items"] if e["action"] == "staff.sign_in_failed"]
    assert [e["after"]["wrong"] for e in failed] == ["password"] * 5
    assert failed[0]["after"]["locked_until"] is not None
    assert {e["actor_id"] for e in failed} == {str(staff_id)}
    assert not [e for e in log["items"] if e["action"] == "POST /v1/staff/me/password"]
    with clock.frozen(T0 + timedelta(minutes=16)):
        changed = await http.post("/v1/staff/me/password", json=right, headers=headers)
        assert changed.status_code == 204


async def test_a_right_current_password_ends_the_row_of_wrong_ones(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.ANALYST)
    headers = await session_of(http, email)
    wrong = {"current_password": "not it at all", "new_password": "another pass phrase 9"}
    for _ in range(4):
        await http.post("/v1/staff/me/password", json=wrong, headers=headers)
    right = {"current_password": PASSWORD, "new_password": PASSWORD}
    assert (
        await http.post("/v1/staff/me/password", json=right, headers=headers)
    ).status_code == 204
    for _ in range(4):
        await http.post("/v1/staff/me/password", json=wrong, headers=headers)
    assert (await sign_in(http, email)).status_code == 201  # four in a row: not resting


async def test_guessing_codes_to_turn_the_authenticator_on_or_off_rests_the_account(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    email, staff_id = await make_staff(engine, program, Role.OWNER)
    with clock.frozen(T0):
        headers = await session_of(http, email)
        totp = pyotp.TOTP((await http.post("/v1/staff/me/totp", headers=headers)).json()["secret"])
        not_it = "000000" if totp.at(T0) != "000000" else "111111"
        for _ in range(4):
            bad = await http.post(
                "/v1/staff/me/totp/confirm", json={"code": not_it}, headers=headers
            )
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "code"
        confirmed = await http.post(
            "/v1/staff/me/totp/confirm", json={"code": totp.at(T0)}, headers=headers
        )
        assert confirmed.status_code == 200 and confirmed.json()["totp_enabled"] is True
    later = T0 + timedelta(minutes=2)
    with clock.frozen(later):
        not_it = "000000" if totp.at(later) != "000000" else "111111"
        for _ in range(5):
            bad = await http.post(
                "/v1/staff/me/totp/disable", json={"code": not_it}, headers=headers
            )
            assert bad.status_code == 422
        right = await http.post(
            "/v1/staff/me/totp/disable", json={"code": totp.at(later)}, headers=headers
        )
        assert right.status_code == 429
        assert (await http.get("/v1/staff/me", headers=headers)).json()["totp_enabled"] is True
        assert (await sign_in(http, email, totp=totp.at(later))).status_code == 401
    log = await api.get("/v1/audit", action="staff.sign_in_failed", subject_id=str(staff_id))
    assert [e["after"]["wrong"] for e in log.json()["items"]] == ["code"] * 9
