"""Which field of the segment builder each predicate's parameter takes, read from the
predicate's model in the registry (so a predicate another feature registers gets its
fields too): a choice, checkboxes, a number, a date, a text, values separated by commas, a
comparison for a ``min``/``max`` pair. Pure."""

import types
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from kopilka.crm.predicates import PREDICATES, PredicateModel
from kopilka.segments.domain import load_predicate_modules
from kopilka.web.console.segment_labels import PREDICATE_ORDER

RANGE = "range"
RANGE_OPS = ("min", "max", "between", "exactly")
# The order of a condition's fields: what is measured, then the comparison, then the window.
PARAM_RANK = {"never": 1, RANGE: 2, "last_days": 3, "since": 4, "until": 5, "currency": 6}


class Widget(StrEnum):
    CHOICE = "choice"  # one of a Literal's or an enum's values: a select
    CHOICES = "choices"  # a list of such values: checkboxes
    FLAG = "flag"  # a boolean: a checkbox
    TRISTATE = "tristate"  # an optional boolean: —, yes, no
    INTEGER = "integer"
    INTEGERS = "integers"  # comma-separated
    DATE = "date"
    TEXT = "text"
    TEXTS = "texts"  # comma-separated
    SCALAR = "scalar"  # a text, a number or a boolean (JSON's spelling tells which)
    SCALARS = "scalars"  # comma-separated scalars
    RANGE = "range"  # a min/max pair: a comparison and one or two numbers


@dataclass(frozen=True)
class Param:
    name: str
    widget: Widget
    required: bool
    default: Any = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PredicateForm:
    type: str
    params: tuple[Param, ...]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# --- the registry's predicates as fields -----------------------------------------------------


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type under ``Annotated`` and ``Optional``; whether ``None`` is allowed. A union
    of several types comes back as the tuple of them."""
    optional = False
    current = annotation
    while True:
        origin = get_origin(current)
        if origin is Annotated:
            current = get_args(current)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(current) if a is not type(None)]
            optional = optional or len(members) < len(get_args(current))
            if len(members) != 1:
                return tuple(_unwrap(m)[0] for m in members), optional
            current = members[0]
        else:
            return current, optional


def _choices_of(kind: Any) -> tuple[str, ...] | None:
    if get_origin(kind) is Literal:
        return tuple(str(v) for v in get_args(kind))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return tuple(str(m.value) for m in kind)
    return None


def _is_scalars(kind: Any) -> bool:
    return isinstance(kind, tuple) and set(kind) <= {str, int, bool} and str in kind


def _widget(annotation: Any) -> tuple[Widget, tuple[str, ...]] | None:
    kind, optional = _unwrap(annotation)
    options = _choices_of(kind)
    if options is not None:
        return Widget.CHOICE, options
    if kind is bool:
        return (Widget.TRISTATE if optional else Widget.FLAG), ()
    simple = {int: Widget.INTEGER, date: Widget.DATE, str: Widget.TEXT}
    if isinstance(kind, type) and kind in simple:
        return simple[kind], ()
    if _is_scalars(kind):
        return Widget.SCALAR, ()
    if get_origin(kind) is list:
        item, _ = _unwrap(get_args(kind)[0])
        options = _choices_of(item)
        if options is not None:
            return Widget.CHOICES, options
        listed = {int: Widget.INTEGERS, str: Widget.TEXTS}
        if isinstance(item, type) and item in listed:
            return listed[item], ()
        if _is_scalars(item):
            return Widget.SCALARS, ()
    return None


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return None
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def predicate_form(model: type[PredicateModel]) -> PredicateForm | None:
    """The fields of a predicate, or ``None`` when one of its parameters has a type the
    form cannot edit (it is then written as JSON)."""
    fields = {name: info for name, info in model.model_fields.items() if name != "type"}
    ranged = all(
        name in fields and not fields[name].is_required() and fields[name].default is None
        for name in ("min", "max")
    ) and all(_unwrap(fields[n].annotation)[0] is int for n in ("min", "max"))
    params: list[Param] = []
    for name, info in fields.items():
        if ranged and name in ("min", "max"):
            if name == "min":
                params.append(Param(RANGE, Widget.RANGE, False, "min", RANGE_OPS))
            continue
        found = _widget(info.annotation)
        if found is None:
            return None
        widget, options = found
        params.append(Param(name, widget, info.is_required(), _default(info), options))
    params.sort(key=lambda p: PARAM_RANK.get(p.name, 0))
    return PredicateForm(str(model.model_fields["type"].default), tuple(params))


def predicate_forms() -> dict[str, PredicateForm]:
    """Every predicate the form can build, the common ones first."""
    load_predicate_modules()
    order = {name: n for n, name in enumerate(PREDICATE_ORDER)}
    found = {name: predicate_form(model) for name, model in PREDICATES.items()}
    return {
        name: form
        for name, form in sorted(found.items(), key=lambda i: (order.get(i[0], len(order)), i[0]))
        if form is not None
    }


Values = dict[str, list[str]]  # a condition's fields as posted: name → the values sent


def initial_values(form: PredicateForm) -> Values:
    """What a newly chosen predicate's fields show: its defaults."""
    values: Values = {}
    for param in form.params:
        if param.widget is Widget.RANGE:
            values["range.op"] = ["min"]
        elif param.widget is Widget.FLAG:
            values[param.name] = ["on"] if param.default else []
        elif param.widget is Widget.CHOICES:
            values[param.name] = [str(v) for v in param.default or []]
        elif param.default is not None and param.default != []:
            values[param.name] = [str(param.default)]
    return values
