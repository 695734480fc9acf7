"""Pure rules of a program: validating its document; when earned points become available
and when they expire."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from kopilka.errors import InvalidInput
from kopilka.programs.schemas import ExpiryPolicy, ProgramSettings


def available_at(earned_at: datetime, pending_days: int) -> datetime:
    """Points stay pending for the return window, then become spendable."""
    return earned_at + timedelta(days=pending_days)


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def expires_at(policy: ExpiryPolicy, earned_at: datetime, timezone: str) -> datetime | None:
    """The instant the points earned at ``earned_at`` expire (exclusive), or None for never.

    Month and year ends are taken in the program's time zone: points earned in Moscow on the
    evening of 31 January belong to January even though it is still 31 January in UTC.
    """
    if policy.policy == "never":
        return None
    if policy.policy == "days":
        return earned_at + timedelta(days=policy.days)
    tz = ZoneInfo(timezone)
    local = earned_at.astimezone(tz)
    if policy.policy == "end_of_month":
        return _month_start(local.year, local.month + policy.months + 1, tz)
    return _month_start(local.year + policy.years + 1, 1, tz)


def parse_document(raw: Any) -> ProgramSettings:
    """A program document validated as ``ProgramSettings``.

    Raises ``InvalidInput`` naming the first field at fault (``earning.0.per``) and listing
    every error under ``errors``, the way the HTTP layer reports a bad body.
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput("the program document must be an object (a mapping)", field="document")
    try:
        return ProgramSettings.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": field_of(error["loc"], raw), "message": _message(error["msg"])}
            for error in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        ) from None


def field_of(location: Sequence[Any], document: Any) -> str:
    """The dotted path of an error's location in ``document``.

    Pydantic puts the tag of a tagged union into the location (``earning.0.per_amount.per``);
    the author of the document never wrote that step, so it is left out. A step is a tag
    when the object at that point has no such key but holds it as a value (its ``type``).
    Errors about the document as a whole (cross-references) are reported on ``document``.
    """
    parts: list[str] = []
    node = document
    for step in location:
        if isinstance(node, Mapping) and isinstance(step, str):
            if step not in node and step in node.values():
                continue
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            node = None
        parts.append(str(step))
    return ".".join(parts) or "document"


def _message(text: str) -> str:
    # A model-level check says "Value error, …": the prefix is Pydantic's, not the reader's.
    return text.removeprefix("Value error, ")


def changes_between(before: ProgramSettings | None, after: ProgramSettings) -> dict[str, list[str]]:
    """What a publication changes, as members would notice it: rules (earning and others)
    added, removed or changed, by id; tiers added, removed or changed; the program's other
    terms (expiry, pending days, clawback, points at the till …) by name."""
    changes: dict[str, list[str]] = {
        "rules_added": [],
        "rules_removed": [],
        "rules_changed": [],
        "tiers_added": [],
        "tiers_removed": [],
        "tiers_changed": [],
        "terms_changed": [],
    }
    old = before.model_dump(mode="json") if before is not None else {}
    new = after.model_dump(mode="json")
    old_rules = {r["id"]: r for r in old.get("earning", []) + old.get("rules", [])}
    new_rules = {r["id"]: r for r in new["earning"] + new["rules"]}
    _diff(old_rules, new_rules, changes, "rules")
    old_tiers = {t["id"]: t for t in (old.get("tiers") or {}).get("levels", [])}
    new_tiers = {t["id"]: t for t in (new.get("tiers") or {}).get("levels", [])}
    _diff(old_tiers, new_tiers, changes, "tiers")
    for key in sorted(set(old) | set(new)):
        if key in ("earning", "rules") or old.get(key) == new.get(key):
            continue
        if key == "tiers" and not changes["tiers_added"] + changes["tiers_removed"]:
            # The ladder's own terms (window, reviews) changed, or only its rungs did.
            if {k: v for k, v in (old.get(key) or {}).items() if k != "levels"} != {
                k: v for k, v in (new.get(key) or {}).items() if k != "levels"
            }:
                changes["terms_changed"].append(key)
            continue
        changes["terms_changed"].append(key)
    return {k: v for k, v in changes.items() if v}


def _diff(
    old: Mapping[str, Any], new: Mapping[str, Any], changes: dict[str, list[str]], what: str
) -> None:
    changes[f"{what}_added"] += sorted(set(new) - set(old))
    changes[f"{what}_removed"] += sorted(set(old) - set(new))
    changes[f"{what}_changed"] += sorted(k for k in set(old) & set(new) if old[k] != new[k])


def summarise_changes(changes: Mapping[str, Sequence[str]]) -> str:
    """One sentence for people: "rules added: double-weekend; tiers changed: gold"."""
    if not changes:
        return "no change for members"
    parts = []
    for key, names in changes.items():
        label = key.replace("_", " ")
        parts.append(f"{label}: {', '.join(names)}")
    return "; ".join(parts)
