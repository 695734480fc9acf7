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
from kopilka.audit.domain import Actor, ActorKind, acting
from kopilka.audit.service import PERSONAL_READ, audit_service
from kopilka.db import read_with_retry, run_in_transaction
from kopilka.errors import Forbidden, Unauthorized
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext, program_service
from kopilka.staff.domain import SESSION_PREFIX
from kopilka.staff.service import staff_service

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
    if secret.startswith(SESSION_PREFIX):
        return await read_with_retry(
            engine, lambda conn: staff_service.principal(conn, secret, clock.now())
        )
    # Most requests come with a key seen seconds ago: answer them without a connection.
    known = api_key_service.cached(secret)
    if known is not None:
        return known
    return await read_with_retry(engine, lambda conn: api_key_service.authenticate(conn, secret))


def requires(permission: Permission) -> Any:
    """``Depends`` admitting only callers that hold ``permission`` (a 403 names it):
    ``principal: Annotated[Principal, requires(Permission.MEMBERS_READ)]``."""

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        admitted(principal, permission)
        acting.set(await _actor(request, principal, permission))
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the docs' table
    return Depends(dependency)


async def signed_in_staff(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """A dependency admitting only a signed-in staff member (their own account's routes)."""
    if not principal.is_staff:
        raise Forbidden("only a signed-in staff member can do this (not an API key)")
    acting.set(await _actor(request, principal, None))
    return principal


StaffCaller = Annotated[Principal, Depends(signed_in_staff)]


# What a route does with value or with what the till does is in the ledger and the
# purchases already; these routes get no generic audit entry.
TILL_PERMISSIONS = frozenset(
    {Permission.SALES_RECORD, Permission.PAYMENTS_TAKE, Permission.MEMBERS_REGISTER}
)
AUDITED_BODY_BYTES = 65_536
# What was sent is kept only for changes of configuration (programs, catalog, settings,
# stores, surveys, integrations, staff); a change about a member keeps its route and subject,
# not the person's data, which the member's erasure could not reach in a body.
CONFIGURATION = frozenset(
    {
        Permission.PROGRAM_EDIT,
        Permission.PROGRAM_PUBLISH,
        Permission.CATALOG_MANAGE,
        Permission.MESSAGING_SETTINGS,
        Permission.SEGMENTS_MANAGE,
        Permission.STORES_MANAGE,
        Permission.SURVEYS_MANAGE,
        Permission.INTEGRATIONS_MANAGE,
        Permission.STAFF_MANAGE,
    }
)
# Reads of people by staff: logged (who looked at whom).
PERSONAL_PERMISSIONS = frozenset(
    {
        Permission.MEMBERS_READ,
        Permission.MEMBERS_EXPORT,
        Permission.TICKETS_HANDLE,
        Permission.MESSAGES_READ,
        Permission.SURVEYS_READ,
    }
)


async def _actor(request: Request, principal: Principal, permission: Permission | None) -> Actor:
    """Who is acting in this request, and what they are doing, for the audit log."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    body: Any = None
    subject = {k: str(v) for k, v in request.path_params.items()}
    audited = principal.is_staff or "admin" in principal.scopes
    if audited and request.method not in ("GET", "HEAD") and permission not in TILL_PERMISSIONS:
        raw = await request.body()
        sent: Any = None
        if raw and len(raw) <= AUDITED_BODY_BYTES:
            try:
                sent = json.loads(raw)
            except ValueError:
                sent = None
        # A change about a member names them, whether in the path or in the body.
        if isinstance(sent, dict) and isinstance(sent.get("member_id"), str):
            subject.setdefault("member_id", sent["member_id"])
        keeps_body = permission in CONFIGURATION and not template.endswith("/list")
        body = sent if keeps_body else {"body_bytes": len(raw)} if raw else None
    elif request.method == "GET" and principal.is_staff:
        # What a staff member looked up, to say whose data a read showed.
        subject.update({f"query.{k}": v for k, v in request.query_params.items()})
    return Actor(
        ActorKind.STAFF if principal.is_staff else ActorKind.KEY,
        principal.staff_id or principal.key_id,
        principal.name or ("staff" if principal.is_staff else "api key"),
        route=f"{request.method} {template}",
        subject=subject,
        permission=str(permission or ""),
        body=body,
        audited=audited,
    )


def admitted(principal: Principal, permission: Permission) -> Principal:
    if not principal.can(permission):
        who = "this staff member's role does" if principal.is_staff else "this key's scopes do"
        raise Forbidden(f"{who} not allow {permission} (needed for this operation)")
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
        await _ensure_active(conn, principal)
        program = await program_service.get(conn, principal.program_id)
        result = await work(conn, program)
        await _audit_generically(conn, principal)
        return result

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
        await _ensure_active(conn, principal)
        program = await program_service.get(conn, principal.program_id)
        return await work(conn, program)

    result = await read_with_retry(engine, attempt, snapshot=snapshot)
    actor = acting.get()
    personal = actor.permission in PERSONAL_PERMISSIONS or "/members" in actor.route
    if principal.is_staff and personal:
        # Staff reading members' personal data is logged (who looked at whom, when).
        member = actor.subject.get("member_id") or actor.subject.get("query.member_id")
        await run_in_transaction(
            engine,
            lambda conn: audit_service.record(
                conn,
                principal.program_id,
                PERSONAL_READ,
                subject_type="member",
                subject_id=member,
                now=clock.now(),
                after={"route": actor.route, **actor.subject},
            ),
        )
    return result


async def _ensure_active(conn: AsyncConnection, principal: Principal) -> None:
    # A staff session was read in this request; an API key may be a cached one.
    if not principal.is_staff:
        await api_key_service.ensure_active(conn, principal)


async def _audit_generically(conn: AsyncConnection, principal: Principal) -> None:
    """An entry for a change by staff or an administrator's key that its service did not
    record itself: the route, its subject and what was sent."""
    actor = acting.get()
    if not actor.audited or actor.recorded or actor.route.startswith(("GET ", "HEAD ")):
        return
    if actor.permission in TILL_PERMISSIONS:
        return
    subject_id: str | None
    if "member_id" in actor.subject:
        # About a member: erasing them reaches this entry.
        subject_type, subject_id = "member", actor.subject["member_id"]
    else:
        parts = [p for p in actor.route.split(" ", 1)[-1].split("/") if p and p != "v1"]
        subject_type = parts[0] if parts else "program"
        subject_id = next(iter(actor.subject.values()), None)
    await audit_service.record(
        conn,
        principal.program_id,
        actor.route,
        subject_type=subject_type,
        subject_id=subject_id,
        now=clock.now(),
        after=actor.body,
    )


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: several times faster than the standard library's encoder."""

    def render(self, content: Any) -> bytes:
        # Instants are answered in UTC with a ``Z``, as Pydantic renders them elsewhere.
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def json_response(body: Any, status_code: int, *, replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return FastJSONResponse(body, status_code=status_code, headers=headers)
