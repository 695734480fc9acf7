"""What keeps the pages safe: the headers every page carries, cookies, and CSRF.

- **Content-Security-Policy** without inline scripts or styles: every script and style is a
  file of ``static/``; images may be ``data:`` (QR codes drawn on the server).
- **CSRF**: each browser gets a random token in a cookie (``SameSite=Strict``, HttpOnly);
  every form sends it back in a hidden field (``csrf_token``) and every unsafe request must
  carry the same value, in the form or in the ``X-CSRF-Token`` header (the pages' scripts).
  A request from another site can neither read the cookie nor set it. Besides, a request
  whose ``Origin`` is another site is refused.
- **Cookies**: HttpOnly, ``SameSite=Lax`` for sessions (so that a link from an e-mail opens
  the app signed in), and ``Secure`` whenever the page came over HTTPS or from this machine
  (a browser treats ``localhost`` as secure) — behind a TLS proxy, name it in
  ``KOPILKA_TRUSTED_PROXIES`` so that the server believes the scheme and client address it
  forwards (nobody else's ``X-Forwarded-For`` is believed).
"""

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from kopilka.errors import Forbidden

CSRF_COOKIE = "kopilka_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Texts of the catalogues (``errors.py`` translates a refusal's text on the page).
FOREIGN_FORM = "this form was sent from another site"
EXPIRED_FORM = "the form has expired or did not come from this site: reload the page and try again"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure_request(request: Request) -> bool:
    """Whether cookies may be marked ``Secure``: HTTPS, or this machine."""
    return request.url.scheme == "https" or (request.url.hostname or "") in LOOPBACK_HOSTS


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "/",
    same_site: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=secure_request(request),
        samesite=same_site,  # type: ignore[arg-type]
    )


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: the cookie's, or a new one (``remember_csrf`` sets it)."""
    known = request.cookies.get(CSRF_COOKIE)
    if known and 20 <= len(known) <= 100:
        return known
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        request.state.new_csrf = fresh
    return fresh


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie if this request made a new token."""
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is not None:
        set_cookie(response, request, CSRF_COOKIE, fresh, max_age=None, same_site="strict")


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse an unsafe request that does not carry this browser's token, or that comes
    from another site (403)."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin:
        # "null" is what a sandboxed frame or a page of no site sends: not this site.
        ours = f"{request.url.scheme}://{request.url.netloc}"
        if origin == "null" or (origin != ours and urlsplit(origin).netloc != request.url.netloc):
            raise Forbidden(FOREIGN_FORM)
    expected = request.cookies.get(CSRF_COOKIE)
    given = sent or request.headers.get(CSRF_HEADER)
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Forbidden(EXPIRED_FORM)


def local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (after sign-in, a language change), else
    ``default``: never a redirect to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target
