"""The small pieces the words of a program document share: the document's nodes as stored
(plain JSON), lists that may be written as one value, and the neutral listing of anything
the words do not know."""

import json
from collections.abc import Mapping
from typing import Any

Node = Mapping[str, Any]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def neutral(node: Any) -> str:
    """Any value as a short neutral text: ``type: a: 1, b: x, y``."""
    if isinstance(node, Mapping):
        kind = node.get("type")
        parts = [f"{k}: {neutral(v)}" for k, v in node.items() if k != "type"]
        body = ", ".join(parts)
        return f"{kind}: {body}" if kind is not None and body else str(kind or body)
    if isinstance(node, list | tuple):
        return ", ".join(neutral(v) for v in node)
    if isinstance(node, str | int | float | bool) or node is None:
        return str(node)
    return json.dumps(node, default=str)
