"""Every page of the members' app, called with made-up ids and empty forms by a signed-in
member and by a visitor: an answer, never a server error; and nothing but the public pages
without signing in."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.staff.test_endpoints import api_routes
from tests.web.conftest import Browser, app_as

# What a visitor may open: signing in and up, the stores, the installable app's files, the
# page after deleting one's account.
PUBLIC = (
    "/sign-in",
    "/sign-up",
    "/stores",
    "/rules",
    "/manifest.webmanifest",
    "/icon-",
    "/sw.js",
    "/goodbye",
)


def app_routes() -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in api_routes()
        if route.path.startswith("/app/{slug}")
        for method in sorted(route.methods - {"HEAD"})
    ]


def _callable(path: str, slug: str) -> str:
    path = path.replace("{slug}", slug)
    for part in path.split("/"):
        if part.startswith("{"):
            path = path.replace(part, str(uuid.UUID(int=7)))
    return path


async def test_no_page_of_the_app_fails_on_made_up_ids_or_empty_forms(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member = (
        await api.post("/v1/members", json={"name": "Ann", "email": "ann@example.com"})
    ).json()
    signed_in: Browser = await app_as(browsers(), engine, program, uuid.UUID(member["id"]))
    visitor: Browser = browsers()
    routes = app_routes()
    assert len(routes) > 30
    for method, path in routes:
        if path.endswith(("/sign-out", "/delete")):
            continue  # they end the session the rest of the loop needs
        target = _callable(path, program.slug)
        for browser in (signed_in, visitor):
            answer = (
                await browser.get(target) if method == "GET" else await browser.post(target, {})
            )
            assert answer.status_code < 500, (method, path, answer.text[-500:])
            public = any(part in path for part in PUBLIC)
            if browser is visitor and not public and answer.status_code != 404:
                assert answer.status_code in (303, 401), (method, path, answer.status_code)
