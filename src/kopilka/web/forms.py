"""Reading a form once per request, with its CSRF check, and the values pages need from it."""

from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request

from kopilka.errors import InvalidInput, KopilkaError
from kopilka.kit.types import Day, error_location
from kopilka.web.security import CSRF_FIELD, check_csrf

M = TypeVar("M", bound=BaseModel)


async def form_of(request: Request) -> FormData:
    """The request's form (read once, cached on the request), CSRF-checked: a form without
    this browser's token is refused before any page sees it."""
    cached: FormData | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    form = await request.form(max_files=5, max_fields=2000)
    check_csrf(request, _text(form.get(CSRF_FIELD)))
    for name, value in form.multi_items():
        # PostgreSQL cannot store it in text, and no person types it.
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"{name}: text may not contain the NUL character", field=name)
    request.state.form = form
    return form


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def text(form: FormData, name: str, *, required: bool = False, limit: int = 2000) -> str | None:
    """A text field, stripped; ``None`` when empty (422 naming it when ``required``)."""
    raw = _text(form.get(name))
    value = raw.strip() if raw is not None else ""
    if len(value) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters", field=name)
    if not value:
        if required:
            raise InvalidInput(f"{name}: required", field=name)
        return None
    return value


def integer(
    form: FormData,
    name: str,
    *,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """A whole number field (digits with an optional sign; spaces as thousands separators
    are allowed, as people type them)."""
    raw = text(form, name, required=required, limit=40)
    if raw is None:
        return None
    cleaned = raw.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    body = cleaned[1:] if cleaned[:1] in "+-" else cleaned
    # ASCII digits only: ``isdigit`` alone takes "٣" or "³" as digits.
    if not (body.isascii() and body.isdigit()):
        raise InvalidInput(f"{name}: a whole number, not {raw!r}", field=name)
    value = int(cleaned)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name}: at least {minimum}", field=name)
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name}: at most {maximum}", field=name)
    return value


def flag(form: FormData, name: str) -> bool:
    """A checkbox: present and not "off"/"0"/"false"."""
    raw = _text(form.get(name))
    return raw is not None and raw.lower() not in {"", "0", "off", "false", "no"}


def choices(form: FormData, name: str) -> list[str]:
    """Every value of a multi-valued field (checkboxes of one name, a multiple select)."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


class FormInvalid(InvalidInput):
    """A form whose fields failed validation: ``errors`` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors.items()), ("form", "invalid"))
        super().__init__(f"{first[0]}: {first[1]}", field=first[0])
        self.errors = errors


_DAY = TypeAdapter(Day)


def query_day(request: Request, name: str) -> date | None:
    """A ``YYYY-MM-DD`` day from the query string, in the API's range (years 1900–2999);
    None when absent or empty; 422 naming ``name`` otherwise."""
    value = request.query_params.get(name, "")
    if not value:
        return None
    try:
        return _DAY.validate_python(value)
    except ValidationError as exc:
        raise InvalidInput(f"{value!r}: {exc.errors()[0]['msg']}", field=name) from None


def validated(model: type[M], data: Any) -> M:
    """``data`` (built from a form) as ``model``; ``FormInvalid`` naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            # A model's own check may name the field it is about (``field_error``).
            name = ".".join(str(part) for part in error_location(error)) or "form"
            errors.setdefault(name, error["msg"])
        raise FormInvalid(errors) from None


def field_errors(exc: KopilkaError) -> dict[str, str]:
    """What a page shows beside its fields for a refusal: every field of a ``FormInvalid``,
    else the one field the service named (``form`` when it named none)."""
    if isinstance(exc, FormInvalid):
        return exc.errors
    return {exc.field or "form": exc.detail}


# Deeper than any program document or segment definition needs; far below the depth where
# parsing and validating recurse past Python's limit.
MAX_JSON_DEPTH = 64


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> int | None:
    """The offset in JSON ``text`` where brackets nest deeper than ``limit``, else None
    (brackets inside strings do not count)."""
    depth = 0
    in_string = escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return offset
        elif char in "]}":
            depth -= 1
    return None
