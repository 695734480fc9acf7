"""Errors on pages are pages: a missing session sends the browser to sign in, anything
else is a short page in the user's language saying what went wrong (the API's problem
documents are for programs, not people)."""

import re
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

PAGE_PREFIXES = ("/console", "/app/")

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Check the form",
    429: "Too many attempts",
    500: "Something went wrong",
}


def _(text: str) -> str:
    """Marks a text for the catalogues; it is translated when shown."""
    return text


# Refusals the pages give that a person reads: each has its Russian text in the catalogues.
KNOWN_DETAILS = (
    _("this form was sent from another site"),
    _("the form has expired or did not come from this site: reload the page and try again"),
    _("the session has ended: sign in again"),
    _("sign in to the console"),
    _("you are signed out: sign in again"),
    _("sign in to this program's app"),
    _("too many sign-in attempts from this address: wait a minute"),
    _("Not Found"),
    _("Method Not Allowed"),
)
ROLE_REFUSAL = re.compile(r"^this staff member's role does not allow ([a-z_.]+) ")


def readable(language: str, detail: str) -> str:
    """A refusal in the page's language: a known text from the catalogues, a role's refusal
    naming its permission; anything else as the service said it."""
    refused = ROLE_REFUSAL.match(detail)
    if refused:
        return gettext(
            language,
            "Your role does not allow this (it needs %(permission)s).",
            permission=refused.group(1),
        )
    return gettext(language, detail) if detail in KNOWN_DETAILS else detail


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/app" or path.startswith(PAGE_PREFIXES)


def sign_in_url(request: Request) -> str:
    """The sign-in page of the face the request was for, coming back here after."""
    path = request.url.path
    back = quote(path + (f"?{request.url.query}" if request.url.query else ""), safe="")
    if path.startswith("/app/"):
        slug = path.split("/")[2]
        return f"/app/{slug}/sign-in?next={back}"
    return f"/console/sign-in?next={back}"


def error_page(request: Request, status: int, detail: str) -> Response:
    if status == 401 and request.method in ("GET", "HEAD"):
        return redirect(request, sign_in_url(request))
    language = language_of(request)
    title = gettext(language, TITLES.get(status, "Something went wrong"))
    back = "/console/" if request.url.path.startswith("/console") else "/app"
    if status == 401:
        back = sign_in_url(request)
    headers = {"Retry-After": "60"} if status == 429 else None
    return render(
        request,
        "shared/error.html",
        {"title": title, "detail": readable(language, detail), "back": back},
        status=status,
        headers=headers,
    )
