"""The draft as the text a marketer edits: JSON read with the place of every key, so that a
validation error about ``rules.3.effects.0.points`` is shown at the line where that key is
written, and a syntax error at its line and column. Pure."""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kopilka.web.forms import MAX_JSON_DEPTH, too_deep

WHITESPACE = re.compile(r"[ \t\n\r]*")
NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
LITERALS = ("true", "false", "null")
# A cross-reference error names its place in the message: "rules[3] (coffee): …",
# "tiers.levels[1] (silver): …", "earning[0] (base): …".
PLACE_IN_MESSAGE = re.compile(r"\b((?:tiers\.)?(?:earning|rules|levels))\[(\d+)\]")


class DraftSyntaxError(ValueError):
    """The text is not JSON (or not a JSON object): where and why."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Place:
    """Where a value is written: the offset of its key (or of the value itself, for an item
    of a list or the document), and the places of what it holds."""

    offset: int
    children: dict[Any, "Place"] = field(default_factory=dict)


@dataclass(frozen=True)
class LocatedError:
    line: int
    field: str
    message: str
    text: str  # the line as written, for the reader to recognise it


def parse_draft(text: str) -> dict[str, Any]:
    """The document in ``text``; ``DraftSyntaxError`` with the line and column at fault."""
    deep = too_deep(text)
    if deep is not None:
        line = text.count("\n", 0, deep) + 1
        column = deep - (text.rfind("\n", 0, deep) + 1) + 1
        raise DraftSyntaxError(f"brackets nest deeper than {MAX_JSON_DEPTH} levels", line, column)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DraftSyntaxError(exc.msg, exc.lineno, exc.colno) from None
    if not isinstance(document, dict):
        raise DraftSyntaxError("the program document must be a JSON object ({…})", 1, 1)
    return document


def places(text: str) -> Place:
    """The place of every key and list item of ``text`` (valid JSON)."""
    _, root = _value(text, _skip(text, 0))
    return root


def _skip(text: str, at: int) -> int:
    match = WHITESPACE.match(text, at)
    return match.end() if match else at


def _value(text: str, at: int) -> tuple[int, Place]:
    """Read the value at ``at``: (the offset after it, its place)."""
    here = Place(at)
    char = text[at : at + 1]
    if char == "{":
        at = _skip(text, at + 1)
        while text[at : at + 1] != "}":
            key_at = at
            key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
            at = _skip(text, at)
            at, child = _value(text, _skip(text, at + 1))  # past the colon
            child.offset = key_at
            here.children[key] = child
            at = _skip(text, at)
            if text[at : at + 1] == ",":
                at = _skip(text, at + 1)
        return at + 1, here
    if char == "[":
        at = _skip(text, at + 1)
        index = 0
        while text[at : at + 1] != "]":
            at, child = _value(text, at)
            here.children[index] = child
            index += 1
            at = _skip(text, at)
            if text[at : at + 1] == ",":
                at = _skip(text, at + 1)
        return at + 1, here
    if char == '"':
        _, end = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        return end, here
    for literal in LITERALS:
        if text.startswith(literal, at):
            return at + len(literal), here
    match = NUMBER.match(text, at)
    if match is None:
        raise ValueError(f"not JSON at offset {at}")
    return match.end(), here


def _steps(path: str, root: Place) -> list[Place]:
    """The places along a dotted path (``rules.3.effects.0.points``), as far as the text
    has them: a key may itself contain dots (a group's name), so the longest key that
    matches is taken."""
    tokens = path.split(".") if path and path != "document" else []
    found = [root]
    node = root
    position = 0
    while position < len(tokens):
        step = None
        for end in range(len(tokens), position, -1):
            name = ".".join(tokens[position:end])
            key: Any = int(name) if name.isdigit() and 0 in node.children else name
            if key in node.children:
                step, position = node.children[key], end
                break
        if step is None:
            break
        node = step
        found.append(node)
    return found


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def locate(text: str, root: Place, path: str, message: str) -> int:
    """The line of ``path`` in ``text``; for an error of the document as a whole, the line
    of the rule or rung its message names; for a missing key, the line of what holds it."""
    if path in ("", "document"):
        named = PLACE_IN_MESSAGE.search(message)
        if named is not None:
            section = named.group(1).replace("levels", "tiers.levels")
            section = section.replace("tiers.tiers.", "tiers.")
            path = f"{section}.{named.group(2)}"
    return line_at(text, _steps(path, root)[-1].offset)


def located_errors(text: str, errors: Sequence[Mapping[str, Any]]) -> list[LocatedError]:
    """Each validation error (``{"field", "message"}``) at its line, in line order."""
    try:
        root = places(text)
    except (ValueError, IndexError):  # text parse_draft accepted: only a safeguard
        root = Place(0)
    lines = text.splitlines()
    located = []
    for error in errors:
        where = str(error.get("field") or "document")
        message = str(error.get("message") or "")
        line = locate(text, root, where, message)
        shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        located.append(LocatedError(line, where, message, shown))
    return sorted(located, key=lambda e: e.line)


def pretty(document: Any) -> str:
    """The document as the editor shows it: indented, non-ASCII letters as they are."""
    return json.dumps(document, indent=2, ensure_ascii=False)
