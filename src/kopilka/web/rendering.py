"""Rendering a page: one Jinja2 environment per language (autoescaped, with the gettext of
that language's catalogues), the variables every page has, and the security headers.

Every template may use:

- ``_("text")``, ``ngettext("%(num)d point", "%(num)d points", n)`` (catalogues: ``i18n``);
- ``fmt``: numbers, money, percentages and dates of the page's language and the program's
  time zone (``i18n.Formats``);
- ``static("kopilka.css")``: the address of a shipped asset, with its content's hash so that
  a new release is never served from a stale cache;
- ``csrf_token`` (each form has ``<input type="hidden" name="csrf_token" …>``), ``lang``,
  ``languages``, ``notice`` (the message of the previous action, shown once), ``now``,
  ``path`` (the page's own path with its query, for the language links).
"""

import hashlib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kopilka.kit.clock import clock
from kopilka.web.console.navigation import console_nav
from kopilka.web.i18n import LANGUAGE_NAMES, LANGUAGES, Formats, language_of, translations
from kopilka.web.security import PAGE_HEADERS, csrf_token, remember_csrf

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"
NOTICE_COOKIE = "kopilka_notice"


@cache
def static_url(name: str) -> str:
    """``/static/<name>?v=<hash of its content>``."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = static_url
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["console_nav"] = console_nav
    return env


def gettext(language: str, message: str, **values: Any) -> str:
    """A text of the catalogues for code outside templates (a notice, an error)."""
    text = translations(language).gettext(message)
    return text % values if values else text


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    zone: str = "UTC",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    language = language_of(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    notice = request.cookies.get(NOTICE_COOKIE)
    variables: dict[str, Any] = {
        "request": request,
        "lang": language,
        "fmt": Formats(language, zone),
        "csrf_token": csrf_token(request),
        "notice": unquote(notice) if notice else None,
        "now": clock.now(),
        "path": path,
        # Who is signed in: a staff member (console) or a member (app), for the layouts.
        "principal": getattr(request.state, "principal", None),
        "member": getattr(request.state, "member", None),
        **(context or {}),
    }
    html = environment(language).get_template(template).render(variables)
    response = HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
    remember_csrf(request, response)
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def redirect(request: Request, target: str, notice: str | None = None) -> Response:
    """303 to ``target`` (after a form: the browser GETs it, a reload sends nothing again);
    ``notice``, already in the page's language, is shown once there."""
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    if notice:
        response.set_cookie(
            NOTICE_COOKIE, quote(notice[:500]), max_age=60, path="/", samesite="lax"
        )
    remember_csrf(request, response)
    return response
