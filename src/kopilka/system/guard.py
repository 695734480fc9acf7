"""The gate every API request passes before any route sees it.

In this order, so that nobody without a key can make the server read (or buffer) a body:

1. ``/v1`` requests (but the public ones) must carry a valid API key: 401 otherwise. The
   principal is left in the scope for the routes (``kopilka.http.authenticate``).
2. A request body must be JSON (``application/json`` or ``…+json``): 415 otherwise.
3. A body larger than ``KOPILKA_MAX_BODY_BYTES`` is refused with 413 — at once from its
   ``Content-Length``, or as soon as the streamed bytes pass the limit.
4. The NUL character, which PostgreSQL cannot store in text, is refused with a 422 naming
   the field (body, query parameter or path) before it reaches a route.

A plain ASGI middleware: the body is read here once, bounded, and handed on unchanged.
"""

from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kopilka.audit.domain import SYSTEM, acting
from kopilka.errors import KopilkaError
from kopilka.http import PRINCIPAL_SCOPE_KEY, principal_of, problem

# Sign-in is how a staff member gets a token: it cannot ask for one.
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/staff/sessions"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NUL_MESSAGE = "text may not contain the NUL character (\\u0000)"


class BodyTooLarge(Exception):
    pass


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every request starts with no one acting; whoever its route admits acts until its
        # end (the audit log reads it), and no further.
        token = acting.set(SYSTEM)
        try:
            await self._guard(scope, receive, send)
        finally:
            acting.reset(token)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path.startswith("/v1/") or path == "/v1"
        headers = Headers(scope=scope)

        if api and path not in PUBLIC_PATHS:
            engine: AsyncEngine = scope["app"].state.engine
            try:
                scope[PRINCIPAL_SCOPE_KEY] = await principal_of(
                    engine, headers.get("authorization")
                )
            except KopilkaError as exc:
                await _refuse(scope, receive, send, exc.status, exc.title, exc.detail)
                return

        if api:
            field = _nul_in_url(scope)
            if field is not None:
                await _refuse_nul(scope, receive, send, field)
                return

        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return

        length = _content_length(headers)
        content_type = headers.get("content-type")
        if api and content_type is not None and length != 0 and not is_json(content_type):
            await _unsupported(scope, receive, send)
            return
        if length is not None and length > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        if api and body and content_type is None:
            await _unsupported(scope, receive, send)
            return
        if api and body and not _utf8(body):
            await _refuse(
                scope,
                receive,
                send,
                422,
                "Invalid input",
                "body: the body is not UTF-8 text",
                errors=[{"field": "body", "message": "the body is not UTF-8 text"}],
            )
            return
        if api and b"\\u0000" in body:
            field = _nul_in_json(body)
            if field is not None:
                await _refuse_nul(scope, receive, send, field)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(
            scope,
            receive,
            send,
            413,
            "Content too large",
            f"the request body may not exceed {self.max_body_bytes} bytes",
        )


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _content_length(headers: Headers) -> int | None:
    raw = headers.get("content-length")
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str, **extra: Any
) -> None:
    response = problem(status, title, detail, scope["path"], **extra)
    await response(scope, receive, send)


async def _unsupported(scope: Scope, receive: Receive, send: Send) -> None:
    await _refuse(
        scope,
        receive,
        send,
        415,
        "Unsupported media type",
        "send the body as JSON with 'Content-Type: application/json'",
    )


async def _refuse_nul(scope: Scope, receive: Receive, send: Send, field: str) -> None:
    await _refuse(
        scope,
        receive,
        send,
        422,
        "Invalid input",
        f"{field}: {NUL_MESSAGE}",
        errors=[{"field": field, "message": NUL_MESSAGE}],
    )


def _nul_in_url(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query.{name.replace(chr(0), '')}".rstrip(".")
    return "query"


def _nul_in_json(body: bytes) -> str | None:
    """The dotted path of the first string (or key) holding a NUL; None if there is none
    or the body is not JSON (the route reports that)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _find_nul(document, ())


def _find_nul(node: Any, at: tuple[str, ...]) -> str | None:
    if isinstance(node, str):
        return ".".join(at) or "body" if "\x00" in node else None
    if isinstance(node, dict):
        for key, value in node.items():
            if "\x00" in key:
                return ".".join(at) or "body"
            found = _find_nul(value, (*at, key))
            if found is not None:
                return found
    if isinstance(node, list):
        for index, item in enumerate(node):
            found = _find_nul(item, (*at, str(index)))
            if found is not None:
                return found
    return None
