"""The segment builder's form, without I/O: the condition tree as the form posts it, the
actions that change the tree (add a row or a group, remove one), and the tree turned into
a definition and back (the fields of each predicate: ``segment_fields``).

The form names its fields after their place in the tree: ``c`` is the root group, ``c.0``
its first item, ``c.0.2`` the third item of that group. A group posts ``<path>.join``
(``all``/``any``) and ``<path>.not``; a condition posts ``<path>.type``, ``<path>.shown``
(the type whose fields were on the page: a changed type starts from its defaults),
``<path>.not`` and a field per parameter, ``<path>.p.<name>``. A ``min``/``max`` pair is one
comparison: ``<path>.p.range.op`` (at least, at most, between, exactly), ``.a`` and ``.b``.

A definition the form cannot show exactly (a predicate with a parameter of a type the form
has no field for, a double negation, a list value with a comma) is edited as JSON instead:
:func:`from_definition` answers ``None`` for it, never an approximation.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from kopilka.errors import InvalidInput
from kopilka.segments.domain import (
    MAX_DEPTH,
    MAX_NODES,
    AllOf,
    AnyOf,
    Node,
    NotOf,
    parse_definition,
)
from kopilka.web.console.segment_fields import (
    RANGE,
    Param,
    PredicateForm,
    Values,
    Widget,
    initial_values,
)

ROOT = "c"
DEFINITION = "definition"
Join = Literal["all", "any"]


# --- the tree --------------------------------------------------------------------------------


@dataclass
class Condition:
    type: str = ""  # "" until a predicate is chosen
    values: Values = field(default_factory=dict)
    negated: bool = False


@dataclass
class Group:
    join: Join = "all"
    items: list["Condition | Group"] = field(default_factory=list)
    negated: bool = False


Item = Condition | Group


def new_tree() -> Group:
    return Group("all", [Condition()])


def read_tree(posted: Mapping[str, list[str]], forms: Mapping[str, PredicateForm]) -> Group:
    """The tree a builder form posted (``posted``: each field's values)."""
    nodes: dict[tuple[int, ...], Values] = {}
    for name, values in posted.items():
        parts = name.split(".")
        if parts[0] != ROOT:
            continue
        place = 1
        while place < len(parts) and parts[place].isdigit() and len(parts[place]) < 4:
            place += 1
        if place == len(parts):
            continue
        index = tuple(int(p) for p in parts[1:place])
        nodes.setdefault(index, {})[".".join(parts[place:])] = values
    root = _item((), nodes, forms, 0)
    if isinstance(root, Group):
        return root
    return Group("all", [root] if root is not None else [])


def _first(values: Values, name: str) -> str:
    found = values.get(name) or [""]
    return found[0].strip()


def _item(
    index: tuple[int, ...],
    nodes: Mapping[tuple[int, ...], Values],
    forms: Mapping[str, PredicateForm],
    depth: int,
) -> Item | None:
    fields = nodes.get(index, {})
    negated = bool(_first(fields, "not"))
    if "join" in fields:
        join: Join = "any" if _first(fields, "join") == "any" else "all"
        children = sorted(
            {k[len(index)] for k in nodes if len(k) > len(index) and k[: len(index)] == index}
        )
        items = (
            []
            if depth >= MAX_DEPTH
            else [
                found
                for n in children
                if (found := _item((*index, n), nodes, forms, depth + 1)) is not None
            ]
        )
        return Group(join, items, negated)
    if "type" in fields:
        kind = _first(fields, "type")
        form = forms.get(kind)
        if form is None:
            return Condition("", {}, negated)
        if _first(fields, "shown") != kind:
            return Condition(kind, initial_values(form), negated)
        values = {k[2:]: v for k, v in fields.items() if k.startswith("p.")}
        return Condition(kind, values, negated)
    return None


def _find(tree: Group, path: str) -> tuple[Group | None, int, Item | None]:
    """The parent group of the item at ``path``, its index there, and the item."""
    parts = path.split(".")
    if parts[0] != ROOT or not all(p.isdigit() for p in parts[1:]):
        return None, -1, None
    parent: Group | None = None
    current: Item = tree
    index = -1
    for part in parts[1:]:
        if not isinstance(current, Group) or int(part) >= len(current.items):
            return None, -1, None
        parent, index = current, int(part)
        current = current.items[index]
    return parent, index, current


def count_items(item: Item) -> int:
    if isinstance(item, Group):
        return 1 + sum(count_items(i) for i in item.items)
    return 1


def apply_action(tree: Group, action: str) -> Group:
    """``add-row:<group>``, ``add-group:<group>``, ``remove:<item>``; anything else (or an
    action on a place that is not there) leaves the tree as it was."""
    verb, _, path = action.partition(":")
    parent, index, item = _find(tree, path)
    if verb in ("add-row", "add-group") and isinstance(item, Group):
        if count_items(tree) + 2 > MAX_NODES:
            return tree
        item.items.append(Condition() if verb == "add-row" else Group("any", [Condition()]))
    elif verb == "remove" and parent is not None:
        del parent.items[index]
    return tree


# --- tree → definition -----------------------------------------------------------------------


@dataclass
class Built:
    """A tree as a definition, with where each of its parts came from in the form (to put
    the service's refusals beside the right field), and what the form's own fields could
    not be read as (a number that is not one)."""

    definition: dict[str, Any]
    places: dict[str, str] = field(default_factory=dict)  # definition path → tree path
    errors: dict[str, str] = field(default_factory=dict)  # form field → message


def to_definition(tree: Group, forms: Mapping[str, PredicateForm]) -> Built:
    built = Built({})
    built.definition = _node(tree, ROOT, DEFINITION, forms, built)
    return built


def _node(
    item: Item, path: str, where: str, forms: Mapping[str, PredicateForm], built: Built
) -> dict[str, Any]:
    inner_where = f"{where}.not" if item.negated else where
    built.places[inner_where] = path
    if isinstance(item, Group):
        inner: dict[str, Any] = {
            item.join: [
                _node(child, f"{path}.{n}", f"{inner_where}.{item.join}.{n}", forms, built)
                for n, child in enumerate(item.items)
            ]
        }
    else:
        inner = _predicate(item, path, forms, built)
    return {"not": inner} if item.negated else inner


def _predicate(
    item: Condition, path: str, forms: Mapping[str, PredicateForm], built: Built
) -> dict[str, Any]:
    form = forms.get(item.type)
    if form is None:
        # No predicate chosen: the service names the type as missing, at this row.
        return {"type": item.type} if item.type else {}
    raw: dict[str, Any] = {"type": item.type}
    for param in form.params:
        name = f"{path}.p.{param.name}"
        try:
            raw |= _param_value(param, item.values)
        except ValueError as exc:
            target = f"{name}.a" if param.widget is Widget.RANGE else name
            built.errors[target] = str(exc)
    return raw


def _integer(text: str) -> int:
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    body = cleaned[1:] if cleaned[:1] in "+-" else cleaned
    if not body.isdigit() or len(body) > 18:
        raise ValueError(f"a whole number, not {text!r}")
    return int(cleaned)


def _scalar(text: str) -> str | int | bool:
    """A value typed by a person: a number, ``true``/``false``, a ``"quoted"`` text, or any
    other text as it is."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, str) else text
    try:
        return _integer(text)
    except ValueError:
        return text


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _param_value(param: Param, values: Values) -> dict[str, Any]:
    """The definition's entries for one parameter; nothing for an empty field or a value
    equal to the default (the definition keeps only what was chosen)."""
    name = param.name
    text = _first(values, name)
    if param.widget is Widget.RANGE:
        return _range_value(values)
    if param.widget is Widget.FLAG:
        checked = bool(values.get(name))
        return {} if checked == bool(param.default) else {name: checked}
    if param.widget is Widget.TRISTATE:
        return {"": {}, "yes": {name: True}, "no": {name: False}}.get(text, {})
    if param.widget is Widget.CHOICES:
        chosen = [v for v in values.get(name, []) if v in param.options]
        return {name: chosen} if chosen else {}
    if not text:
        return {}
    value: Any
    if param.widget is Widget.INTEGER:
        value = _integer(text)
    elif param.widget is Widget.INTEGERS:
        value = [_integer(p) for p in _split(text)]
    elif param.widget is Widget.DATE:
        try:
            value = date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"a date (YYYY-MM-DD), not {text!r}") from None
    elif param.widget is Widget.TEXTS:
        value = _split(text)
    elif param.widget is Widget.SCALAR:
        value = _scalar(text)
    elif param.widget is Widget.SCALARS:
        value = [_scalar(p) for p in _split(text)]
    else:  # CHOICE, TEXT
        value = text
    return {} if value == param.default else {name: value}


def _range_value(values: Values) -> dict[str, Any]:
    op = _first(values, "range.op")
    first, second = _first(values, "range.a"), _first(values, "range.b")
    if not first:
        return {}
    a = _integer(first)
    if op == "max":
        return {"max": a}
    if op == "exactly":
        return {"min": a, "max": a}
    if op == "between":
        if not second:
            raise ValueError("between needs a second number")
        return {"min": a, "max": _integer(second)}
    return {"min": a}


def form_field(
    error_field: str, built: Built, tree: Group, forms: Mapping[str, PredicateForm]
) -> str:
    """The form field a refusal of the definition belongs beside: the parameter's field,
    the condition's type, or the row (or group) itself."""
    if error_field != DEFINITION and not error_field.startswith(DEFINITION + "."):
        return error_field
    place = max(
        (p for p in built.places if error_field == p or error_field.startswith(p + ".")),
        key=len,
        default=DEFINITION,
    )
    path = built.places.get(place, ROOT)
    rest = error_field[len(place) + 1 :].split(".")[0] if error_field != place else ""
    _, _, item = _find(tree, path)
    if not isinstance(item, Condition) or not rest:
        return path
    if rest == "type":
        return f"{path}.type"
    form = forms.get(item.type)
    if form is not None and rest in ("min", "max") and form.param(RANGE) is not None:
        return f"{path}.p.range.a"
    if form is not None and form.param(rest) is not None:
        return f"{path}.p.{rest}"
    return path


# --- definition → tree -----------------------------------------------------------------------


def from_definition(raw: Any, forms: Mapping[str, PredicateForm]) -> Group | None:
    """The tree that shows ``raw`` exactly, or ``None`` when the form cannot (it is edited
    as JSON then)."""
    try:
        original = parse_definition(raw)
        item = _from_raw(raw, forms)
    except (InvalidInput, _NotShown):
        return None
    tree = item if isinstance(item, Group) else Group("all", [item])
    built = to_definition(tree, forms)
    try:
        again = parse_definition(built.definition)
    except InvalidInput:
        return None
    if built.errors or _normal(again) != _normal(original):
        return None
    return tree


class _NotShown(Exception):
    """A part of a definition the form has no field for."""


def _from_raw(raw: Any, forms: Mapping[str, PredicateForm]) -> Item:
    if not isinstance(raw, dict):
        raise _NotShown
    if "type" not in raw and set(raw) == {"not"}:
        inner = _from_raw(raw["not"], forms)
        if inner.negated:
            raise _NotShown  # not not x: said as JSON
        inner.negated = True
        return inner
    if "type" not in raw and len(raw) == 1 and next(iter(raw)) in ("all", "any"):
        join: Join = "all" if "all" in raw else "any"
        return Group(join, [_from_raw(child, forms) for child in raw[join]])
    form = forms.get(raw.get("type", ""))
    if form is None:
        raise _NotShown
    return Condition(form.type, _values_of(form, raw))


def _shown_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if _scalar(text) != text else text


def _values_of(form: PredicateForm, raw: Mapping[str, Any]) -> Values:
    known = {p.name for p in form.params} | {"type"}
    if form.param(RANGE) is not None:
        known |= {"min", "max"}
    if set(raw) - known:
        raise _NotShown
    values = initial_values(form)
    for param in form.params:
        if param.widget is Widget.RANGE:
            values |= _range_values(raw.get("min"), raw.get("max"))
            continue
        if param.name not in raw:
            continue
        value = raw[param.name]
        if param.widget is Widget.FLAG:
            values[param.name] = ["on"] if value else []
        elif param.widget is Widget.TRISTATE:
            values[param.name] = ["yes" if value else "no"]
        elif param.widget is Widget.CHOICES:
            values[param.name] = [str(v) for v in value]
        elif param.widget in (Widget.TEXTS, Widget.INTEGERS, Widget.SCALARS):
            shown = [_shown_scalar(v) for v in value]
            if any("," in s for s in shown):
                raise _NotShown
            values[param.name] = [", ".join(shown)]
        elif param.widget is Widget.SCALAR:
            values[param.name] = [_shown_scalar(value)]
        else:
            values[param.name] = [str(value)]
    return values


def _range_values(low: Any, high: Any) -> Values:
    if low is not None and high is not None:
        op = "exactly" if low == high else "between"
        return {
            "range.op": [op],
            "range.a": [str(low)],
            "range.b": [str(high) if op == "between" else ""],
        }
    if high is not None:
        return {"range.op": ["max"], "range.a": [str(high)]}
    if low is not None:
        return {"range.op": ["min"], "range.a": [str(low)]}
    return {"range.op": ["min"]}


def _normal(node: Node) -> Any:
    """A definition's meaning for comparing two spellings of it: a group of one item is
    that item."""
    if isinstance(node, AllOf | AnyOf):
        items = tuple(_normal(i) for i in node.items)
        if len(items) == 1:
            return items[0]
        return (type(node).__name__, items)
    if isinstance(node, NotOf):
        return ("not", _normal(node.item))
    return json.dumps(node.model_dump(mode="json"), sort_keys=True)


def same_meaning(first: Any, second: Any) -> bool:
    """Whether two definitions say the same (both valid, equal but for grouping one item)."""
    try:
        return bool(_normal(parse_definition(first)) == _normal(parse_definition(second)))
    except InvalidInput:
        return False
