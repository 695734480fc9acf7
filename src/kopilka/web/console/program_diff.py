"""What differs between two program documents, rule by rule: rules (base earning entries
and rules, matched by id) added, removed or changed, tier rungs likewise, and the program's
other terms by key. Pure, on the stored JSON documents; the pages say it in words with
``rule_words`` and ``program_words``.

The same comparison as the ``program.published`` event's (``programs.domain.
changes_between``), kept with each side's content so that a page can show before and after.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kopilka.web.words.program_words import (
    MEMBER_VISIBLE_TERMS,
    benefits,
    describe_ladder,
    label,
    requirement,
    term,
)
from kopilka.web.words.rule_words import Node, Words, as_list, neutral

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
RULE_SECTIONS = ("earning", "rules")


@dataclass(frozen=True)
class RuleChange:
    id: str
    change: str  # added | removed | changed
    section: str  # "earning" or "rules": where the rule is (now, or was if removed)
    before: Node | None
    after: Node | None
    fields: tuple[str, ...] = ()  # the rule's fields that differ (changed rules)


@dataclass(frozen=True)
class TierChange:
    id: str
    change: str
    before: Node | None
    after: Node | None


@dataclass(frozen=True)
class TermChange:
    key: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ProgramDiff:
    rules: list[RuleChange] = field(default_factory=list)
    tiers: list[TierChange] = field(default_factory=list)
    terms: list[TermChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.rules or self.tiers or self.terms)

    @property
    def member_terms(self) -> list[TermChange]:
        """Changed terms a member notices (expiry, pending days …)."""
        return [t for t in self.terms if t.key in MEMBER_VISIBLE_TERMS]

    @property
    def other_terms(self) -> list[TermChange]:
        return [t for t in self.terms if t.key not in MEMBER_VISIBLE_TERMS]


def _rules(document: Node) -> dict[str, tuple[str, Node]]:
    found: dict[str, tuple[str, Node]] = {}
    for section in RULE_SECTIONS:
        for rule in as_list(document.get(section)):
            if isinstance(rule, Mapping):
                found.setdefault(str(rule.get("id")), (section, rule))
    return found


def _levels(document: Node) -> dict[str, Node]:
    ladder = document.get("tiers")
    if not isinstance(ladder, Mapping):
        return {}
    return {
        str(level.get("id")): level
        for level in as_list(ladder.get("levels"))
        if isinstance(level, Mapping)
    }


def _ladder_terms(document: Node) -> Any:
    ladder = document.get("tiers")
    if not isinstance(ladder, Mapping):
        return None
    return {k: v for k, v in ladder.items() if k != "levels"}


def _matched(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    """(id, change, before, after) of every id on either side that differs, in the new
    document's order, then the removed ones in the old document's."""
    for key, value in new.items():
        if key not in old:
            yield key, ADDED, None, value
        elif old[key] != value:
            yield key, CHANGED, old[key], value
    for key, value in old.items():
        if key not in new:
            yield key, REMOVED, value, None


def diff_documents(before: Node | None, after: Node) -> ProgramDiff:
    """What ``after`` changes from ``before`` (None: everything is new)."""
    before = before or {}
    rules = []
    for rule_id, change, old, new in _matched(_rules(before), _rules(after)):
        section = (new or old)[0]
        old_rule, new_rule = old[1] if old else None, new[1] if new else None
        fields: tuple[str, ...] = ()
        if old_rule is not None and new_rule is not None:
            keys = list(new_rule) + [k for k in old_rule if k not in new_rule]
            fields = tuple(k for k in keys if old_rule.get(k) != new_rule.get(k))
            if old[0] != new[0]:
                fields = ("section", *fields)
        rules.append(RuleChange(rule_id, change, section, old_rule, new_rule, fields))
    tiers = [
        TierChange(tier_id, change, old, new)
        for tier_id, change, old, new in _matched(_levels(before), _levels(after))
    ]
    terms = []
    keys = list(after) + [k for k in before if k not in after]
    for key in keys:
        if key in RULE_SECTIONS:
            continue
        old_value, new_value = before.get(key), after.get(key)
        if key == "tiers":
            old_value, new_value = _ladder_terms(before), _ladder_terms(after)
        if old_value != new_value:
            terms.append(TermChange(key, before.get(key), after.get(key)))
    return ProgramDiff(rules, tiers, terms)


# --- in words ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeLine:
    """One difference said in words: what changed, how it was, how it will be."""

    change: str  # added | removed | changed
    subject: str  # the rule's id (and name), the tier's name, the term's label
    before: str | None
    after: str | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiffView:
    rules: list[ChangeLine]
    tiers: list[ChangeLine]
    member_terms: list[ChangeLine]
    other_terms: list[ChangeLine]

    @property
    def empty(self) -> bool:
        return not (self.rules or self.tiers or self.member_terms or self.other_terms)

    @property
    def member_visible(self) -> bool:
        return bool(self.rules or self.tiers or self.member_terms)


def describe_diff(before: Node | None, after: Node, old_words: Words, new_words: Words) -> DiffView:
    """``diff_documents(before, after)`` said in words: each rule by its sentence, each
    rung by its requirement and benefits, each term by what it says."""
    diff = diff_documents(before, after)
    before = before or {}
    return DiffView(
        rules=[_rule_line(change, old_words, new_words, before, after) for change in diff.rules],
        tiers=[_tier_line(change, old_words, new_words) for change in diff.tiers],
        member_terms=[
            _term_line(t, old_words, new_words, before, after) for t in diff.member_terms
        ],
        other_terms=[_term_line(t, old_words, new_words, before, after) for t in diff.other_terms],
    )


def _rule_line(
    change: RuleChange, old_words: Words, new_words: Words, before: Node, after: Node
) -> ChangeLine:
    def said(words: Words, rule: Node | None, section: str, document: Node) -> str | None:
        if rule is None:
            return None
        groups = document.get("groups")
        return words.any_rule(rule, section, groups if isinstance(groups, Mapping) else {}).summary

    old_section = "earning" if change.before in as_list(before.get("earning")) else "rules"
    named = (change.after or change.before or {}).get("name")
    return ChangeLine(
        change.change,
        f"{change.id} — {named}" if named else change.id,
        said(old_words, change.before, old_section, before),
        said(new_words, change.after, change.section, after),
        change.fields,
    )


def _tier_line(change: TierChange, old_words: Words, new_words: Words) -> ChangeLine:
    def said(words: Words, level: Node | None) -> str | None:
        if level is None:
            return None
        text = requirement(words, level, first=False) if level.get("qualify") else ""
        if level.get("invitation_only"):
            text = requirement(words, level)
        perks = benefits(words, level.get("benefits"))
        return "; ".join(part for part in (text, ", ".join(perks)) if part) or str(
            level.get("name")
        )

    level = change.after or change.before or {}
    return ChangeLine(
        change.change,
        str(level.get("name") or change.id),
        said(old_words, change.before),
        said(new_words, change.after),
    )


def _term_line(
    change: TermChange, old_words: Words, new_words: Words, before: Node, after: Node
) -> ChangeLine:
    def said(words: Words, document: Node, present: bool) -> str | None:
        if not present:
            return None
        if change.key == "tiers" and isinstance(document.get("tiers"), Mapping):
            ladder = describe_ladder(words, document["tiers"])
            return "; ".join([ladder.window, ladder.review, ladder.downgrade])
        value = document.get(change.key)
        return term(words, change.key, document) or (neutral(value) if value is not None else "—")

    kind = ADDED if change.key not in before else REMOVED if change.key not in after else CHANGED
    return ChangeLine(
        kind,
        label(new_words, change.key),
        said(old_words, before, change.key in before),
        said(new_words, after, change.key in after),
    )
