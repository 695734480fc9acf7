"""The core never imports the worker or the webhooks: reactions sit above it."""

import ast
from pathlib import Path

import kopilka

CORE = (
    "members",
    "ledger",
    "programs",
    "rules",
    "tiers",
    "coupons",
    "rewards",
    "giftcards",
    "purchases",
    "activities",
    "earning",
    "imports",
    "outbox",
)
ABOVE = ("kopilka.worker", "kopilka.webhooks")


def test_core_features_do_not_import_delivery() -> None:
    root = Path(kopilka.__file__).parent
    offending = []
    for feature in CORE:
        for path in sorted((root / feature).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offending += [
                    f"{path.relative_to(root)}: {n}" for n in names if n.startswith(ABOVE)
                ]
    assert offending == []
