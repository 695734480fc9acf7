"""Every number, boolean and date the API takes is strict: a sweep of the core schemas of
every request body (and of the program document) finds none that Pydantic would coerce."""

from typing import Any, get_args

from fastapi.routing import APIRoute
from pydantic import BaseModel

from kopilka.api import routers
from kopilka.programs.schemas import ProgramSettings

LAX_TYPES = {"int", "bool", "float", "datetime", "date"}
# Left lax on purpose: a rule's multiplier factor is a decimal (1.5) that JSON and YAML give
# as a float, and a time of day may come from YAML as sexagesimal seconds (22:00 → 79200).
ALLOWED = {"decimal", "time"}


def _lax(schema: dict[str, Any], where: str, defs: dict[str, Any], seen: set[str]) -> list[str]:
    kind = schema.get("type")
    if not isinstance(kind, str):
        kind = None
    if kind == "definitions":
        defs.update({d["ref"]: d for d in schema["definitions"]})
        return _lax(schema["schema"], where, defs, seen)
    if kind == "definition-ref":
        ref = schema["schema_ref"]
        if ref in seen:
            return []
        seen.add(ref)
        return _lax(defs[ref], where, defs, seen)
    if kind == "function-before" and schema["schema"].get("type") in ("datetime", "date"):
        return []  # Instant, Day: ISO strings only, checked before Pydantic parses them
    found = [f"{where}: {kind}"] if kind in LAX_TYPES and not schema.get("strict") else []
    for key, value in schema.items():
        if key in ("metadata", "serialization", "ref"):
            continue
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, dict):
                found += _lax(child, f"{where}.{key}", defs, seen)
    return found


def test_no_request_body_takes_a_lax_number_boolean_or_date() -> None:
    models: set[type[BaseModel]] = {ProgramSettings}
    for route in (route for router in routers for route in router.routes):
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            for candidate in (annotation, *get_args(annotation)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    models.add(candidate)
    assert len(models) > 25
    lax = [
        place
        for model in models
        for place in _lax(model.__pydantic_core_schema__, model.__name__, {}, set())
    ]
    assert lax == []
