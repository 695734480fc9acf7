"""The OpenAPI document as the server behaves: every route lists the errors it answers
(problem+json), the bearer scheme is declared (``/docs`` shows an Authorize button)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from kopilka.http import PROBLEM, SECURITY_SCHEME
from kopilka.system.guard import PUBLIC_PATHS


class ProblemField(BaseModel):
    field: str = Field(description="Dotted path of the field at fault (`lines.0.quantity`).")
    message: str
    code: str | None = Field(
        default=None,
        description="What kind of error (`int_type`, `missing`, `string_too_long` …) when the "
        "request's own validation found it.",
    )


class Problem(BaseModel):
    """An RFC 9457 problem document; some problems carry more members (``errors`` always
    names the fields at fault when there are any)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemField] | None = None


ERRORS = {
    "401": "No API key or session, or an unknown, revoked or ended one; a refused sign-in.",
    "403": "The caller lacks the permission this route needs, or the member is blocked.",
    "404": "Something the request names does not exist in the key's program.",
    "405": "The route does not take this method (see the `Allow` header).",
    "409": "A conflict: an idempotency key reused with another body, a state that forbids "
    "the change, a concurrent change.",
    "413": "The request body is larger than the server accepts (KOPILKA_MAX_BODY_BYTES).",
    "415": "The request body is not JSON (`Content-Type: application/json`).",
    "422": "Invalid input, naming the field; or a business rule refused the request.",
    "429": "Too many attempts from this address: wait a minute.",
}
ANY_ROUTE = ("401", "403", "404", "422")
WITH_BODY = ("409", "413", "415")
BODY_METHODS = ("post", "put", "patch", "delete")


def _problem_response(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM: {"schema": schema}}}


# Models a route's document names by reference though no route takes them whole (a batch
# whose items are checked one by one): their schemas join the document's.
REFERENCED_MODELS: list[type[BaseModel]] = []


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``: FastAPI's, with the errors and the security scheme."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["ProblemField"] = schemas["Problem"].pop("$defs")["ProblemField"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for model in REFERENCED_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the program: `Authorization: Bearer kp_…`.",
    }
    _close_pattern_objects(spec)
    _no_nul(spec)
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in (*BODY_METHODS, "get"):
                continue
            responses = operation.setdefault("responses", {})
            body_codes = WITH_BODY if method in BODY_METHODS else ()
            if path in PUBLIC_PATHS:
                # No key asked for: what a bad request answers, and a refused sign-in.
                codes = ("401", "422", "429", *body_codes) if body_codes else ("422",)
                for code in codes:
                    responses[code] = _problem_response(ERRORS[code])
                continue
            for code in (*ANY_ROUTE, *body_codes):
                responses[code] = _problem_response(ERRORS[code])
            operation["security"] = [{SECURITY_SCHEME: []}]
    return spec


def _close_pattern_objects(node: Any) -> None:
    """An object whose keys must match a pattern (``dict[TierId, …]``) takes no other keys:
    Pydantic says ``patternProperties`` only, which alone lets any other key through."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_objects(value)
    elif isinstance(node, list):
        for item in node:
            _close_pattern_objects(item)


NO_NUL = "^[^\\u0000]*$"
FREE_TEXT_KEYS = ("pattern", "format", "enum", "const")


def _no_nul(node: Any) -> None:
    """Text never holds the NUL character (the request guard refuses it): free text says so
    with a pattern, and so do the keys of free-form objects."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not any(key in node for key in FREE_TEXT_KEYS):
            node["pattern"] = NO_NUL
        free_form = node.get("additionalProperties", False) is not False
        if node.get("type") == "object" and free_form and "propertyNames" not in node:
            node["propertyNames"] = {"pattern": NO_NUL}
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for item in node:
            _no_nul(item)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
