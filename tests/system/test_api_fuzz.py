"""Property-based fuzzing of the whole HTTP API against its own OpenAPI document.

Schemathesis generates requests from ``/openapi.json`` — valid ones and, for every
operation, ones that break the schema — and sends them to the application in-process, on
a SQLite database, with an admin key (and, for the till's routes, a ``pos`` key too). Every
answer must be documented: no 5xx, a documented status code, a documented content type, a
body that fits the documented schema, and a valid request never refused by the validators
for a reason the schema could have said.

Bounded and reproducible: a few examples per operation, derandomized, no example database.
"""

import asyncio
import json
import os
import re
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kopilka.app import create_app
from kopilka.config import Settings
from kopilka.db import make_engine
from tests.conftest import make_key, make_program

EXAMPLES_PER_OPERATION = int(os.environ.get("KOPILKA_FUZZ_EXAMPLES", "12"))


class RefusedValidRequest(Failure):
    """A request that fits the schema was refused by the validators (422 of the request's
    own validation): the schema and the validators disagree."""

    kind_title = "Schema-valid request refused by the validators"

    def _unique_key(self) -> str:
        return self.message


# Refusals of schema-valid requests that no JSON Schema can express, by error code:
# - checks across fields (a basket's total against its lines, exactly one of several ways to
#   name a member, a window's end after its start): model validators raise ``value_error`` or
#   name the field at fault (``invalid_field``);
# - JSON Schema's ``integer`` admits ``1000.0`` (a number with no fractional part); the API
#   refuses it on purpose (strict numbers: a float is never money), which no keyword of JSON
#   Schema can say (``int_type``).
# Every other refusal of a schema-valid request is a disagreement to fix.
INEXPRESSIBLE = {"value_error", "invalid_field", "int_type"}


@schemathesis.check
def valid_requests_accepted(ctx: Any, response: Any, case: Case) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    body = json.loads(response.content)
    if body.get("type") != "about:blank":  # a business rule refused it, not the validators
        return None
    for error in body.get("errors") or []:
        if error.get("code") in INEXPRESSIBLE:
            continue
        raise RefusedValidRequest(
            operation=case.operation.label, message=f"{error['field']}: {error['message']}"
        )
    return None


# Not checked: ``negative_data_rejection`` (that every schema-violating request is refused).
# Two behaviours are meant and documented that it would count as failures: unknown query
# parameters are ignored, and a batch answers 200 with a 422 per invalid purchase inside it.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    valid_requests_accepted,
]


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite; ``KOPILKA_FUZZ_DATABASE=postgresql`` fuzzes on PostgreSQL instead."""
    backend = os.environ.get("KOPILKA_FUZZ_DATABASE", "sqlite")
    url: str = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    return url


@pytest.fixture(scope="module")
def keys(database_url: str) -> dict[str, str]:
    async def setup() -> dict[str, str]:
        engine = make_engine(database_url)
        try:
            program = await make_program(engine)
            return {
                "admin": await make_key(engine, program, "admin"),
                "pos": await make_key(engine, program, "pos"),
            }
        finally:
            await engine.dispose()

    return asyncio.run(setup())


def _operations() -> list[str]:
    """Every operation of the document (building it needs no database)."""
    document = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db")).openapi()
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.fixture(scope="module")
def api_schema(database_url: str) -> Any:
    # Loading the schema from the application starts its lifespan on Schemathesis's own event
    # loop thread: the application opens its own engine there and keeps it for the run.
    app = create_app(Settings(database_url=database_url))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("label", _operations())
def test_api_answers_as_documented(label: str, api_schema: Any, keys: dict[str, str]) -> None:
    operation = next(
        result.ok() for result in api_schema.get_all_operations() if result.ok().label == label
    )
    # The till's routes answer a pos key as they answer an admin one; alternate them.
    scope = "pos" if zlib.crc32(label.encode()) % 2 else "admin"
    headers = {"Authorization": f"Bearer {keys[scope]}"}
    failures: list[BaseException] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # An operation that takes no input (GET /v1/health) has no invalid request.
            assert (
                mode is GenerationMode.NEGATIVE
                and not operation.body
                and not any(True for _ in operation.iter_parameters())
            ), label
        except BaseException as exc:  # report both modes' findings, not the first only
            failures.append(exc)
    if failures:
        raise failures[0] if len(failures) == 1 else BaseExceptionGroup(label, failures)


def test_every_reference_of_the_document_resolves() -> None:
    """A ``$ref`` to a schema the document lacks leaves a body undocumented (and the
    fuzzing above blind to it)."""
    document = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db")).openapi()
    text = json.dumps(document)
    wanted = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert wanted - set(document["components"]["schemas"]) == set()
