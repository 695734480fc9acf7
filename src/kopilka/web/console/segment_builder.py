"""The segment builder: a new segment and a segment's edit page, where the definition is
built as rows of conditions in all/any groups (every change a round trip to the server, so
it works without script), or written as JSON for what the rows cannot say; and the live
count the page asks for as the user edits (``POST /console/segments/preview``, plain text).

The count, the save and the refusals are the segments service's, as for the API
(``POST /v1/segments/preview``, ``POST /v1/segments``, ``PATCH /v1/segments/{key}``).
"""

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.segments.domain import SegmentKind
from kopilka.segments.schemas import SegmentCreate, SegmentOut, SegmentUpdate
from kopilka.segments.service import segment_service
from kopilka.web.console.access import console_page
from kopilka.web.console.segment_fields import PredicateForm, Widget, predicate_forms
from kopilka.web.console.segment_form import (
    ROOT,
    Built,
    Group,
    Item,
    apply_action,
    form_field,
    from_definition,
    new_tree,
    read_tree,
    same_meaning,
    to_definition,
)
from kopilka.web.console.segment_labels import (
    FIELD_OPTION_LABELS,
    MONEY_HINT,
    MONEY_PREDICATES,
    OPTION_LABELS,
    PARAM_HINTS,
    PARAM_LABELS,
    PREDICATE_LABELS,
    RANGE_LABELS,
    TRISTATE_LABELS,
)
from kopilka.web.forms import (
    MAX_JSON_DEPTH,
    FormInvalid,
    field_errors,
    form_of,
    too_deep,
    validated,
)
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/segments")
Mode = Literal["form", "json"]
JSON_FIELD = "definition_json"
JSON_LIMIT = 100_000


@cache
def _forms() -> dict[str, PredicateForm]:
    return predicate_forms()


# --- what the page shows -------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    """One parameter's field: ``name`` is the form field (a comparison's three fields add
    ``.op``, ``.a`` and ``.b``); labels are catalogue texts the template translates."""

    name: str
    widget: str
    label: str
    hint: str
    required: bool
    value: str = ""
    chosen: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    second: str = ""
    op: str = ""


@dataclass(frozen=True)
class RowView:
    path: str
    number: str  # 1.2: the second item of the first group, for people
    depth: int
    group: bool
    join: str = "all"
    negated: bool = False
    type: str = ""
    fields: list[FieldView] = field(default_factory=list)
    items: list["RowView"] = field(default_factory=list)


def _option_label(param: str, value: str) -> str:
    if param == "field" and value in FIELD_OPTION_LABELS:
        return FIELD_OPTION_LABELS[value]
    return OPTION_LABELS.get(value, value)


def _field_view(kind: str, name: str, param: Any, values: dict[str, list[str]]) -> FieldView:
    label = PARAM_LABELS.get(param.name, param.name.replace("_", " "))
    hint = PARAM_HINTS.get(param.name, "")
    if param.widget is Widget.RANGE:
        return FieldView(
            name,
            param.widget,
            label,
            MONEY_HINT if kind in MONEY_PREDICATES else "",
            False,
            value=(values.get("range.a") or [""])[0],
            second=(values.get("range.b") or [""])[0],
            op=(values.get("range.op") or ["min"])[0],
            options=tuple((op, RANGE_LABELS[op]) for op in param.options),
        )
    chosen = tuple(values.get(param.name, []))
    options: tuple[tuple[str, str], ...] = tuple(
        (o, _option_label(param.name, o)) for o in param.options
    )
    if param.widget is Widget.TRISTATE:
        options = tuple(TRISTATE_LABELS.items())
    elif param.widget is Widget.CHOICE and not param.required and param.default is None:
        options = (("", "—"), *options)
    return FieldView(
        name,
        param.widget,
        label,
        hint,
        param.required,
        value=chosen[0] if chosen else "",
        chosen=chosen,
        options=options,
    )


def row_view(item: Item, path: str = ROOT, depth: int = 0) -> RowView:
    number = ".".join(str(int(p) + 1) for p in path.split(".")[1:])
    if isinstance(item, Group):
        return RowView(
            path,
            number,
            depth,
            True,
            join=item.join,
            negated=item.negated,
            items=[row_view(c, f"{path}.{n}", depth + 1) for n, c in enumerate(item.items)],
        )
    form = _forms().get(item.type)
    fields = (
        [_field_view(item.type, f"{path}.p.{p.name}", p, item.values) for p in form.params]
        if form is not None
        else []
    )
    return RowView(path, number, depth, False, negated=item.negated, type=item.type, fields=fields)


def predicate_options() -> list[tuple[str, str]]:
    return [(name, PREDICATE_LABELS.get(name, name)) for name in _forms()]


@dataclass
class Draft:
    """The builder as posted: the segment's fields, the conditions (rows, or JSON)."""

    key: str = ""
    name: str = ""
    description: str = ""
    kind: str = SegmentKind.DYNAMIC
    mode: Mode = "form"
    tree: Group = field(default_factory=new_tree)
    json_text: str = ""


def _posted(form: FormData) -> dict[str, list[str]]:
    return {
        name: [v for v in form.getlist(name) if isinstance(v, str)] for name in set(form.keys())
    }


def _one(form: FormData, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_draft(form: FormData) -> Draft:
    mode: Mode = "json" if _one(form, "mode") == "json" else "form"
    return Draft(
        key=_one(form, "key", 64),
        name=_one(form, "name", 200),
        description=_one(form, "description"),
        mode=mode,
        tree=read_tree(_posted(form), _forms()) if mode == "form" else new_tree(),
        json_text=_one(form, JSON_FIELD, JSON_LIMIT) if mode == "json" else "",
    )


def definition_of(draft: Draft) -> tuple[Any, Built | None]:
    """The definition the draft says (``FormInvalid``/``InvalidInput`` naming the form's
    field when a field cannot be read), with where its parts came from."""
    if draft.mode == "json":
        if too_deep(draft.json_text or "") is not None:
            raise InvalidInput(
                f"brackets nest deeper than {MAX_JSON_DEPTH} levels", field=JSON_FIELD
            )
        try:
            return json.loads(draft.json_text or "null"), None
        except ValueError as exc:
            raise InvalidInput(f"not JSON: {exc}", field=JSON_FIELD) from None
    built = to_definition(draft.tree, _forms())
    if built.errors:
        raise FormInvalid(built.errors)
    return built.definition, built


def errors_of(exc: KopilkaError, draft: Draft, built: Built | None) -> dict[str, str]:
    """The refusal beside the field it is about: a condition's field, the JSON, or the
    segment's own fields."""
    errors = field_errors(exc)
    if isinstance(exc, FormInvalid):
        return errors
    name = exc.field or "form"
    if not (name == "definition" or name.startswith("definition.")):
        return errors
    if draft.mode == "json" or built is None:
        return {JSON_FIELD: f"{name}: {exc.detail}"}
    return {form_field(name, built, draft.tree, _forms()): exc.detail}


# --- pages -----------------------------------------------------------------------------------


def builder_page(
    request: Request,
    draft: Draft,
    *,
    segment: SegmentOut | None,
    errors: dict[str, str] | None = None,
    count: str = "—",
    status: int = 200,
) -> Response:
    action_url = f"/console/segments/{segment.key}/edit" if segment else "/console/segments/new"
    return render(
        request,
        "console/segments/builder.html",
        {
            "draft": draft,
            "segment": segment,
            "creating": segment is None,
            "dynamic": draft.kind == SegmentKind.DYNAMIC,
            "action_url": action_url,
            "tree": row_view(draft.tree) if draft.mode == "form" else None,
            "predicates": predicate_options(),
            "errors": errors or {},
            "count": count,
        },
        status=status,
    )


def _draft_of(segment: SegmentOut) -> Draft:
    draft = Draft(
        key=segment.key,
        name=segment.name,
        description=segment.description,
        kind=segment.kind,
    )
    if segment.kind != SegmentKind.DYNAMIC:
        return draft
    tree = from_definition(segment.definition, _forms())
    if tree is None:
        draft.mode = "json"
        draft.json_text = json.dumps(segment.definition, ensure_ascii=False, indent=2)
    else:
        draft.tree = tree
    return draft


def _switched(draft: Draft, action: str) -> dict[str, str]:
    """The rows as JSON, or the JSON as rows (an error at the JSON when the rows cannot
    say it)."""
    if action == "to-json":
        built = to_definition(draft.tree, _forms())
        draft.mode, draft.json_text = (
            "json",
            json.dumps(built.definition, ensure_ascii=False, indent=2),
        )
        return {}
    if too_deep(draft.json_text or "") is not None:
        return {JSON_FIELD: f"brackets nest deeper than {MAX_JSON_DEPTH} levels"}
    try:
        raw = json.loads(draft.json_text or "null")
    except ValueError as exc:
        return {JSON_FIELD: f"not JSON: {exc}"}
    tree = from_definition(raw, _forms())
    if tree is None:
        return {JSON_FIELD: "the rows cannot say this definition exactly: edit it as JSON"}
    draft.mode, draft.tree = "form", tree
    return {}


async def _count(engine: Any, principal: Principal, definition: Any, request: Request) -> str:
    found = await read_only(
        engine,
        principal,
        lambda conn, program: segment_service.preview(conn, program, definition, clock.now()),
    )
    return Formats(language_of(request)).number(found.count)


async def _builder_post(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    segment: SegmentOut | None,
) -> Response:
    """Every button of the builder: change the rows, switch to JSON and back, count, save."""
    form = await form_of(request)
    draft = read_draft(form)
    if segment is not None:
        draft.key, draft.kind = segment.key, segment.kind
    action = _one(form, "action", 100) or "refresh"
    if action in ("to-json", "to-form"):
        errors = _switched(draft, action)
        return builder_page(
            request, draft, segment=segment, errors=errors, status=422 if errors else 200
        )
    if action not in ("count", "save"):
        apply_action(draft.tree, action)
        return builder_page(request, draft, segment=segment)
    built: Built | None = None
    try:
        definition: Any = None
        if draft.kind == SegmentKind.DYNAMIC:
            definition, built = definition_of(draft)
        if action == "count":
            count = await _count(engine, principal, definition, request)
            return builder_page(request, draft, segment=segment, count=count)
        saved = await _save(engine, principal, draft, definition, segment)
    except KopilkaError as exc:
        errors = errors_of(exc, draft, built)
        return builder_page(request, draft, segment=segment, errors=errors, status=422)
    language = language_of(request)
    notice = (
        gettext(language, "Segment saved.") if segment else gettext(language, "Segment created.")
    )
    return redirect(request, f"/console/segments/{saved.key}", notice)


async def _save(
    engine: EngineDep,
    principal: Principal,
    draft: Draft,
    definition: Any,
    segment: SegmentOut | None,
) -> SegmentOut:
    if segment is None:
        body = validated(
            SegmentCreate,
            {
                "key": draft.key,
                "name": draft.name,
                "description": draft.description,
                "definition": definition,
            },
        )
        return await in_transaction(
            engine,
            principal,
            lambda conn, program: segment_service.create(conn, program, body, clock.now()),
        )
    # The same conditions said another way (rows group one condition as "all of") are no
    # new version: membership is not refreshed for nothing.
    unchanged = segment.definition is not None and same_meaning(definition, segment.definition)
    update = validated(
        SegmentUpdate,
        {
            "name": draft.name,
            "description": draft.description,
            "definition": None if unchanged else definition,
        },
    )
    key = segment.key
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: segment_service.update(conn, program, key, update, clock.now()),
    )


@router.get("/new")
async def new_segment(
    request: Request, principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)]
) -> Response:
    """A new dynamic segment: its key, name and conditions."""
    return builder_page(request, Draft(), segment=None)


@router.post("/new")
async def create_segment(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)],
) -> Response:
    return await _builder_post(request, engine, principal, None)


@router.post("/preview")
async def live_count(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_READ)],
) -> Response:
    """The number of members the builder's conditions find now, as plain text (what the
    builder shows as the user edits); a refusal's message with 422."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    draft = read_draft(await form_of(request))
    built: Built | None = None
    try:
        definition, built = definition_of(draft)
        count = await _count(engine, principal, definition, request)
    except KopilkaError as exc:
        message = "; ".join(errors_of(exc, draft, built).values())
        return PlainTextResponse(message, status_code=422, headers=headers)
    return PlainTextResponse(count, headers=headers)


async def _segment(engine: EngineDep, principal: Principal, key: str) -> SegmentOut:
    return await read_only(
        engine, principal, lambda conn, program: segment_service.get(conn, program, key)
    )


@router.get("/{key}/edit")
async def edit_segment(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)],
) -> Response:
    """A segment's name, description and conditions (as rows, or as JSON when the rows
    cannot say them), with the number of members they find now."""
    segment = await _segment(engine, principal, key)
    draft = _draft_of(segment)
    count = "—"
    if segment.kind == SegmentKind.DYNAMIC:
        try:
            count = await _count(engine, principal, segment.definition, request)
        except KopilkaError:  # a definition a predicate no longer accepts: the rows say why
            count = "—"
    return builder_page(request, draft, segment=segment, count=count)


@router.post("/{key}/edit")
async def change_segment(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.SEGMENTS_MANAGE)],
) -> Response:
    segment = await _segment(engine, principal, key)
    return await _builder_post(request, engine, principal, segment)
