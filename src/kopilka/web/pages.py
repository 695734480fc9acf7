"""What every page shares: the language switch and the shipped assets; and the list of page
routers the application serves."""

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from kopilka.web.app.pages import routers as app_routers
from kopilka.web.console.pages import routers as console_routers
from kopilka.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from kopilka.web.rendering import STATIC_DIR, STATIC_PREFIX, redirect
from kopilka.web.security import local_path, set_cookie

router = APIRouter(include_in_schema=False)
YEAR = 365 * 24 * 3600


@router.get("/lang/{code}")
async def choose_language(request: Request, code: str, next: str | None = None) -> Response:
    """Remember the chosen language (a cookie) and go back to the page."""
    response = redirect(request, local_path(next, "/console/"))
    if code in LANGUAGES:
        set_cookie(response, request, LANGUAGE_COOKIE, code, max_age=YEAR)
    return response


def install_pages(app: FastAPI) -> None:
    """Serve the console, the members' app and their assets."""
    app.include_router(router)
    for page_router in (*console_routers, *app_routers):
        app.include_router(page_router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
