"""Errors on pages are pages: a missing session sends the browser to sign in, anything
else is a short page in the user's language saying what went wrong (the API's problem
documents are for programs, not people)."""

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
        {"title": title, "detail": detail, "back": back},
        status=status,
        headers=headers,
    )
