"""Reading forms: numbers as people type them, and validation errors named by field."""

from typing import Any

import pytest
from pydantic import BaseModel, model_validator
from starlette.datastructures import FormData

from kopilka.errors import InvalidInput
from kopilka.kit.types import field_error
from kopilka.web.forms import FormInvalid, field_errors, flag, integer, text, validated


def test_a_whole_number_may_carry_spaces_as_thousands_separators() -> None:
    form = FormData([("points", " 1 500 "), ("minus", "-20"), ("nbsp", "2\u00a0000")])
    assert integer(form, "points") == 1500
    assert integer(form, "minus") == -20
    assert integer(form, "nbsp") == 2000
    assert integer(form, "absent") is None


@pytest.mark.parametrize("raw", ["1.5", "1e3", "12a", "--1", "+", "٣", "²"])
def test_anything_else_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        integer(FormData([("points", raw)]), "points")
    assert refused.value.field == "points"


def test_bounds_and_required_fields_are_named() -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        integer(FormData([("n", "0")]), "n", minimum=1)
    with pytest.raises(InvalidInput, match="required"):
        text(FormData([("name", "  ")]), "name", required=True)
    assert flag(FormData([("on", "on")]), "on") and not flag(FormData([("on", "off")]), "on")


class Window(BaseModel):
    start: int
    end: int

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.end < self.start:
            raise field_error("end", "the end comes before the start")
        return self


def test_a_check_of_the_whole_model_is_shown_at_the_field_it_names() -> None:
    with pytest.raises(FormInvalid) as refused:
        validated(Window, {"start": 5, "end": 1})
    assert refused.value.errors == {"end": "the end comes before the start"}
    with pytest.raises(FormInvalid) as missing:
        validated(Window, {"start": "x"})
    assert set(missing.value.errors) == {"start", "end"}
    assert field_errors(missing.value) == missing.value.errors
    plain: Any = InvalidInput("nope")
    assert field_errors(plain) == {"form": "nope"}


def test_nesting_deeper_than_the_limit_is_found_outside_strings_only() -> None:
    from kopilka.web.forms import MAX_JSON_DEPTH, too_deep

    assert too_deep("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is None
    assert too_deep("[" * (MAX_JSON_DEPTH + 1)) == MAX_JSON_DEPTH
    assert too_deep('{"a": "' + "[" * 500 + '"}') is None
    assert too_deep('["\\"' + "[" * 500 + '"]') is None
