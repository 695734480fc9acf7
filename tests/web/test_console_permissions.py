"""Every console page names the permission it needs, and is refused (403) to every role that
lacks it — as the API's routes are — while a role that holds it is never refused."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import ROLE_PERMISSIONS, Permission, Role
from kopilka.programs.service import ProgramContext
from tests.staff.test_endpoints import api_routes
from tests.web.conftest import Browser, console_as

# Pages any signed-in staff member may open: their own account and signing out.
OWN_ACCOUNT = ("/console/sign-in", "/console/sign-out", "/console/account")


def console_routes() -> list[tuple[str, str, Permission | None]]:
    found = []
    for route in api_routes():
        if not route.path.startswith("/console"):
            continue
        permissions = [
            d.call.permission for d in route.dependant.dependencies if hasattr(d.call, "permission")
        ]
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, permissions[0] if permissions else None))
    return found


def _callable(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("{"):
            path = path.replace(part, str(uuid.UUID(int=7)))
    return path


ROUTES = console_routes()


def test_every_console_page_but_ones_own_account_names_a_permission() -> None:
    unguarded = {path for _, path, permission in ROUTES if permission is None}
    assert {p for p in unguarded if not p.startswith(OWN_ACCOUNT)} == {"/console", "/console/"} - {
        p for _, p, permission in ROUTES if permission is not None
    }
    assert len(ROUTES) > 100


async def test_every_role_is_refused_every_page_it_lacks_the_permission_for(
    browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    refused = allowed = 0
    for role in Role:
        browser: Browser = await console_as(browsers(), engine, program, role)
        for method, path, permission in ROUTES:
            if permission is None:
                continue
            target = _callable(path)
            if method == "GET":
                answer = await browser.get(target)
            else:
                answer = await browser.post(target, {})
            if permission in ROLE_PERMISSIONS[role]:
                assert answer.status_code != 403, (role, method, path, answer.text[-500:])
                allowed += 1
            else:
                assert answer.status_code == 403, (role, method, path, answer.status_code)
                assert str(permission) in answer.text
                refused += 1
    assert refused > 200 and allowed > 200
