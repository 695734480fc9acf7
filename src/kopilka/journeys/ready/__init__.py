"""Ready journey documents for the common automations of a loyalty program (the files of
``examples/journeys``), shipped with the package so the demo can run them."""

import json
from importlib import resources
from typing import Any


def names() -> list[str]:
    """The ready journeys' names (their file names without ``.json``), sorted."""
    folder = resources.files(__package__)
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def document(name: str) -> dict[str, Any]:
    """The ready journey ``name`` as a document to save."""
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    found: dict[str, Any] = json.loads(text)
    return found
