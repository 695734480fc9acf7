"""FastAPI glue shared by every feature's endpoints: the engine, auth, transactions."""

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from kopilka.access.domain import Permission, Principal
from kopilka.apikeys.service import api_key_service
from kopilka.db import read_with_retry, run_in_transaction
from kopilka.errors import Forbidden, Unauthorized
from kopilka.programs.service import ProgramContext, program_service

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
CONFLICT_RETRIES = 3
PROBLEM = "application/problem+json"
# What a 401 answers with (RFC 6750): the scheme to authenticate with.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kopilka"'}
# Where the request guard (kopilka.system.guard) leaves the caller it authenticated.
PRINCIPAL_SCOPE_KEY = "kopilka.principal"
SECURITY_SCHEME = "ApiKey"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SECURITY_SCHEME,
    description="An API key of the program: `Authorization: Bearer kp_…`.",
)


def problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document (a 401 with its ``WWW-Authenticate`` challenge)."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = CHALLENGE if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def get_engine(request: Request) -> AsyncEngine:
    # async: a plain def dependency would be sent to a worker thread on every request
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def authenticate(
    request: Request,
    engine: EngineDep,
    # Declared for the OpenAPI document (the bearer scheme); the header is read below.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, as the request guard authenticated it before the body was read."""
    known: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if known is not None:
        return known
    return await principal_of(engine, request.headers.get("authorization"))


async def principal_of(engine: AsyncEngine, authorization: str | None) -> Principal:
    """The principal of an ``Authorization`` header; ``Unauthorized`` without a valid key."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("send 'Authorization: Bearer <api key>'")
    secret = authorization[7:].strip()
    # Most requests come with a key seen seconds ago: answer them without a connection.
    known = api_key_service.cached(secret)
    if known is not None:
        return known
    return await read_with_retry(engine, lambda conn: api_key_service.authenticate(conn, secret))


def requires(permission: Permission) -> Any:
    """``Depends`` admitting only callers that hold ``permission`` (a 403 names it):
    ``principal: Annotated[Principal, requires(Permission.MEMBERS_READ)]``."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return admitted(principal, permission)

    return Depends(dependency)


def admitted(principal: Principal, permission: Permission) -> Principal:
    if not principal.can(permission):
        who = "this staff member's role" if principal.is_staff else "this key's scopes"
        raise Forbidden(f"{who} do not allow {permission} (needed for this operation)")
    return principal


# --- the hot path without dependency injection ----------------------------------------------
# Resolving dependencies and validating the body through FastAPI costs about a fifth of the
# server's time on a purchase, and finding a route among the included routers a little more.
# The few endpoints a till calls on every sale (``hot_route``) take the request and do the
# same steps directly, and are served by a plain route tried before all others; the FastAPI
# route declared for them only documents them (``hot_route_openapi``).

HotEndpoint = Callable[[Request], Awaitable[Response]]


class DirectRoute(Route):
    """A Starlette route that names itself in the scope as FastAPI's routes do, so the
    request metrics label it by its path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


# Every hot route, for the application to put first (``kopilka.app``).
HOT_ROUTES: list[DirectRoute] = []


def hot_route(
    router: APIRouter,
    path: str,
    model: type[BaseModel],
    *query: tuple[str, str],
    **declared: Any,
) -> Callable[[HotEndpoint], HotEndpoint]:
    """Declare ``POST path`` on ``router`` (its OpenAPI entry: ``model`` as the body,
    ``query`` flags, and ``declared`` as for ``router.post``) and serve it directly."""

    def register(endpoint: HotEndpoint) -> HotEndpoint:
        router.post(path, openapi_extra=hot_route_openapi(model, *query), **declared)(endpoint)
        HOT_ROUTES.append(DirectRoute(router.prefix + path, endpoint, methods=["POST"]))
        return endpoint

    return register


async def hot_principal(request: Request, permission: Permission) -> Principal:
    """The caller of ``request``, admitted only with ``permission`` (as ``requires``)."""
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        engine: AsyncEngine = request.app.state.engine
        principal = await principal_of(engine, request.headers.get("authorization"))
    return admitted(principal, permission)


async def hot_body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``; invalid input fails as a declared body would."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as fast:
        # Bad input is rare: read it again the way FastAPI reads a declared body, so that
        # this route names the same errors as every other route for the same body.
        return _as_declared(raw, model, fast)


def _as_declared(raw: bytes, model: type[M], fast: ValidationError) -> M:
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error]) from None
    except (RecursionError, ValueError):
        errors = fast.errors()  # nested past what the parser takes: the fast reader's word
    else:
        try:
            return model.model_validate(data, from_attributes=True)  # as FastAPI validates
        except ValidationError as exc:
            errors = exc.errors()
    raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def hot_route_openapi(model: type[BaseModel], *query: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI of a hot route: ``model`` as the JSON body, the bearer scheme, ``query``
    as (name, description) boolean parameters. The errors every route answers are added
    with the others' (``kopilka.system.openapi``)."""
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "boolean", "default": False},
        }
        for name, text in query
    ]
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "security": [{SECURITY_SCHEME: []}],
    }


def query_flag(request: Request, name: str) -> bool:
    """A boolean query parameter read as FastAPI reads one; anything else is a 422."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    value = raw.lower()
    if value in {"1", "true", "on", "yes"}:
        return True
    if value in {"0", "false", "off", "no"}:
        return False
    error = {
        "type": "bool_parsing",
        "loc": ("query", name),
        "input": raw,
        "msg": "Input should be a valid boolean, unable to interpret input",
    }
    raise RequestValidationError([error])


async def in_transaction(
    engine: AsyncEngine,
    principal: Principal,
    work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]],
) -> T:
    """Run ``work`` with the caller's program in one committed transaction.

    A unique-constraint violation means a concurrent request wrote the same thing first
    (a retried purchase, a new member's identifier); running again sees what it wrote and
    answers from it.
    """

    async def attempt(conn: AsyncConnection) -> T:
        await api_key_service.ensure_active(conn, principal)
        program = await program_service.get(conn, principal.program_id)
        return await work(conn, program)

    for tries in range(CONFLICT_RETRIES):
        try:
            return await run_in_transaction(engine, attempt)
        except IntegrityError:
            if tries == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def read_only(
    engine: AsyncEngine,
    principal: Principal,
    work: Callable[[AsyncConnection, ProgramContext], Awaitable[T]],
    *,
    snapshot: bool = False,
) -> T:
    """Run ``work`` with the caller's program on a reading connection; ``snapshot``: every
    statement sees one instant (a long report is not half-counted)."""

    async def attempt(conn: AsyncConnection) -> T:
        await api_key_service.ensure_active(conn, principal)
        program = await program_service.get(conn, principal.program_id)
        return await work(conn, program)

    return await read_with_retry(engine, attempt, snapshot=snapshot)


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: several times faster than the standard library's encoder."""

    def render(self, content: Any) -> bytes:
        # Instants are answered in UTC with a ``Z``, as Pydantic renders them elsewhere.
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def json_response(body: Any, status_code: int, *, replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return FastJSONResponse(body, status_code=status_code, headers=headers)
