"""A program's rules said in plain words, in the page's language: each rule's trigger,
conditions, effects, limits and validity, as a list and as one sentence. The words of each
condition and effect type are in ``condition_words`` and ``effect_words``; the program's
terms and tier ladder in ``program_words``.

Pure: it reads the document as stored (plain JSON, never re-validated, so a version
published under an older schema is still shown as it was) and a translation. A condition
or effect type it has no words for (a type added later, a field it does not know) is shown
as a neutral list of its fields: describing a document never fails.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import dates, numbers
from babel.support import NullTranslations

from kopilka.web.i18n import Formats, translations
from kopilka.web.words.condition_words import CONDITION_WORDS
from kopilka.web.words.effect_words import EFFECT_WORDS
from kopilka.web.words.words_kit import Node, as_list, neutral

__all__ = ["CONDITION_WORDS", "EFFECT_WORDS", "Node", "Words", "as_list", "neutral", "words_for"]


@dataclass(frozen=True)
class RuleView:
    """One rule (or base ``earning`` entry) in words."""

    id: str
    kind: str  # "earning" (a base entry) or "rule"
    name: str | None
    description: str | None
    enabled: bool
    trigger: str
    conditions: list[str]
    effects: list[str]
    limits: list[str]
    validity: str | None
    group: str | None
    priority: int
    experiment: str | None
    summary: str  # one sentence: when, if what, then what


@dataclass(frozen=True)
class TierLevelView:
    id: str
    name: str
    requirement: str
    benefits: list[str]


@dataclass(frozen=True)
class LadderView:
    levels: list[TierLevelView]
    window: str
    review: str
    downgrade: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProgramView:
    """The whole document in words, for the overview and a version's page."""

    currencies: list[str]
    terms: list[tuple[str, str]]  # (what, in words)
    groups: list[str]
    experiments: list[str]
    earning: list[RuleView]
    rules: list[RuleView]
    ladder: LadderView | None


def words_for(language: str, fmt: Formats, document: Node) -> "Words":
    """The words of ``document`` in ``language`` (its catalogues)."""
    return Words(translations(language), fmt, document)


class Words:
    """Phrases of one language over one document (its money currency, currencies and tier
    names)."""

    def __init__(self, catalogue: NullTranslations, fmt: Formats, document: Node) -> None:
        self.catalogue = catalogue
        self.fmt = fmt
        self.money_currency = str(document.get("money_currency") or "RUB")
        self.currencies: dict[str, Node] = {
            str(c.get("code")): c
            for c in as_list(document.get("currencies")) or [{"code": "points"}]
            if isinstance(c, Mapping)
        }
        ladder = document.get("tiers") if isinstance(document.get("tiers"), Mapping) else None
        self.tier_names: dict[str, str] = {
            str(level.get("id")): str(level.get("name") or level.get("id"))
            for level in as_list((ladder or {}).get("levels"))
            if isinstance(level, Mapping)
        }

    # --- translation ------------------------------------------------------------------------

    def _(self, message: str, **values: Any) -> str:
        text = self.catalogue.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self.catalogue.ngettext(singular, plural, n)
        return text % {"num": self.fmt.number(n), **values}

    # --- small pieces -------------------------------------------------------------------------

    def either(self, values: Iterable[Any]) -> str:
        """``a, b or c``."""
        items = [str(v) for v in values]
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + self._(" or ") + items[-1]

    def every(self, values: Iterable[Any]) -> str:
        """``a, b and c``."""
        items = [str(v) for v in values]
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + self._(" and ") + items[-1]

    def number(self, value: Any) -> str:
        if isinstance(value, Decimal):
            return numbers.format_decimal(value, locale=self.fmt.locale)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.fmt.number(value)
        return str(value)

    def money(self, minor_units: Any) -> str:
        if isinstance(minor_units, int) and not isinstance(minor_units, bool):
            return self.fmt.money(minor_units, self.money_currency)
        return str(minor_units)

    def factor(self, value: Any) -> str:
        try:
            return self.number(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            return str(value)

    def amount(self, value: Any, currency: Any = "points") -> str:
        """``value`` units of ``currency``: points by name, a money-like one as money."""
        code = str(currency or "points")
        spec = self.currencies.get(code, {})
        label = str(spec.get("name") or code)
        if spec.get("kind") == "money":
            return f"{self.money(value)} {label}"
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value} {label}"
        if code == "points" and not spec.get("name"):
            return self.ngettext("%(num)s point", "%(num)s points", value)
        return f"{self.fmt.number(value)} {label}"

    def currency_label(self, currency: Any) -> str:
        code = str(currency or "points")
        return str(self.currencies.get(code, {}).get("name") or code)

    def percent_of(self, basis_points: Any) -> str:
        if not isinstance(basis_points, int) or isinstance(basis_points, bool):
            return str(basis_points)
        digits = 0 if basis_points % 100 == 0 else 2
        return self.fmt.percent(basis_points / 10_000, digits)

    def range(self, node: Node, show: Callable[[Any], str]) -> str:
        low, high = node.get("min"), node.get("max")
        if low is not None and high is not None:
            return self._("from %(min)s to %(max)s", min=show(low), max=show(high))
        if low is not None:
            return self._("at least %(min)s", min=show(low))
        return self._("at most %(max)s", max=show(high))

    def lines(self, node: Any) -> str:
        """A line filter: ``category coffee or brand illy``; every line when empty."""
        if not isinstance(node, Mapping):
            return self._("any line")
        parts = []
        if skus := as_list(node.get("skus")):
            parts.append(self._("SKU %(list)s", list=", ".join(map(str, skus))))
        if categories := as_list(node.get("categories")):
            parts.append(self._("category %(list)s", list=", ".join(map(str, categories))))
        if brands := as_list(node.get("brands")):
            parts.append(self._("brand %(list)s", list=", ".join(map(str, brands))))
        if tags := as_list(node.get("tags")):
            parts.append(self._("tag %(list)s", list=", ".join(map(str, tags))))
        return self.either(parts) if parts else self._("any line")

    def scope(self, node: Node) -> str:
        """What part of the basket an earning effect counts: its lines, minus exclusions."""
        text = ""
        if isinstance(node.get("lines"), Mapping):
            text += self._(" on %(lines)s", lines=self.lines(node["lines"]))
        if excluded := as_list(node.get("exclude_categories")):
            text += self._(", except the categories %(list)s", list=", ".join(map(str, excluded)))
        return text

    def rounding(self, node: Node) -> str:
        mode = node.get("rounding", "floor")
        if mode == "round":
            return self._(" (rounded half up)")
        if mode == "ceil":
            return self._(" (rounded up)")
        return ""

    def instant(self, value: Any) -> str:
        try:
            return self.fmt.datetime(datetime.fromisoformat(str(value)), "short")
        except ValueError:
            return str(value)

    def day(self, value: Any) -> str:
        try:
            return self.fmt.date(date.fromisoformat(str(value)))
        except ValueError:
            return str(value)

    def weekday_names(self, days: Sequence[Any]) -> list[str]:
        names = dates.get_day_names("wide", locale=self.fmt.locale)
        order = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return [names[order.index(d)] if d in order else str(d) for d in days]

    def rule_names(self, ids: Any) -> str:
        return self.every(map(str, as_list(ids)))

    def tiers(self, ids: Any) -> str:
        return self.either(self.tier_names.get(str(t), str(t)) for t in as_list(ids))

    # --- triggers, conditions, effects ------------------------------------------------------

    def trigger(self, rule: Node) -> str:
        trigger = rule.get("trigger", "purchase")
        texts = {
            "purchase": self._("On a purchase"),
            "return": self._("On a return"),
            "signup": self._("On sign-up"),
            "profile_completed": self._("When the member completes their profile"),
            "review": self._("When the member writes a review"),
            "birthday": self._("On the member's birthday"),
        }
        if trigger == "event":
            return self._("On the custom event %(name)s", name=rule.get("event"))
        return texts.get(str(trigger), self._("On the event %(name)s", name=trigger))

    def condition(self, node: Any) -> str:
        """One condition in words; a type without words is listed neutrally."""
        if not isinstance(node, Mapping):
            return neutral(node)
        phrase = CONDITION_WORDS.get(str(node.get("type")))
        if phrase is None:
            return neutral(node)
        try:
            return phrase(self, node)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
            return neutral(node)

    def effect(self, node: Any) -> str:
        """One effect in words; a type without words is listed neutrally."""
        if not isinstance(node, Mapping):
            return neutral(node)
        phrase = EFFECT_WORDS.get(str(node.get("type")))
        if phrase is None:
            return neutral(node)
        try:
            return phrase(self, node)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
            return neutral(node)

    def limits(self, node: Any) -> list[str]:
        if not isinstance(node, Mapping):
            return []
        said: list[str] = []
        if node.get("max_per_event") is not None:
            said.append(
                self._("at most %(amount)s per event", amount=self.number(node["max_per_event"]))
            )
        for period in as_list(node.get("periods")):
            if isinstance(period, Mapping):
                said.append(self.period_limit(period))
        if node.get("budget") is not None:
            said.append(self._("campaign budget %(amount)s", amount=self.number(node["budget"])))
        return said

    def period_limit(self, node: Node) -> str:
        what = []
        if isinstance(node.get("times"), int):
            what.append(self.ngettext("%(num)s time", "%(num)s times", node["times"]))
        if node.get("amount") is not None:
            what.append(self.number(node["amount"]))
        who = self._("across the program") if node.get("per") == "program" else self._("per member")
        periods = {
            "day": self._("a day"),
            "week": self._("a week"),
            "month": self._("a month"),
            "year": self._("a year"),
            "ever": self._("in all"),
        }
        when = periods.get(str(node.get("period")), str(node.get("period")))
        return self._(
            "at most %(what)s %(who)s %(period)s", what=self.every(what), who=who, period=when
        )

    def validity(self, schedule: Any) -> str | None:
        if not isinstance(schedule, Mapping):
            return None
        start, end = schedule.get("valid_from"), schedule.get("valid_to")
        if start and end:
            return self._(
                "from %(start)s until %(end)s", start=self.instant(start), end=self.instant(end)
            )
        if start:
            return self._("from %(start)s", start=self.instant(start))
        if end:
            return self._("until %(end)s", end=self.instant(end))
        return None

    def group(self, name: Any, groups: Node) -> str | None:
        if not name:
            return None
        if groups.get(name) == "priority":
            mode = self._("the rule of highest priority applies")
        else:
            mode = self._("the rule that earns most applies")
        return self._("exclusive group %(group)s: %(mode)s", group=name, mode=mode)

    # --- rules --------------------------------------------------------------------------------

    def rule(self, node: Node, groups: Node | None = None) -> RuleView:
        """A rule of ``rules`` in words."""
        conditions = [self.condition(c) for c in as_list(node.get("conditions"))]
        effects = [self.effect(e) for e in as_list(node.get("effects"))]
        trigger = self.trigger(node)
        experiment = node.get("experiment")
        return RuleView(
            id=str(node.get("id")),
            kind="rule",
            name=node.get("name"),
            description=node.get("description"),
            enabled=node.get("enabled", True) is not False,
            trigger=trigger,
            conditions=conditions,
            effects=effects,
            limits=self.limits(node.get("limits")),
            validity=self.validity(node.get("schedule")),
            group=self.group(node.get("group"), groups or {}),
            priority=node.get("priority", 0) if isinstance(node.get("priority"), int) else 0,
            experiment=(
                self._(
                    "only for members in arm %(arm)s of experiment %(experiment)s",
                    arm=experiment.get("arm"),
                    experiment=experiment.get("experiment"),
                )
                if isinstance(experiment, Mapping)
                else None
            ),
            summary=self.sentence(trigger, conditions, effects),
        )

    def earning(self, node: Node) -> RuleView:
        """A base ``earning`` entry in words: a rule on every purchase."""
        effects = [self.effect(node)]
        trigger = self._("On every purchase")
        return RuleView(
            id=str(node.get("id")),
            kind="earning",
            name=None,
            description=None,
            enabled=True,
            trigger=trigger,
            conditions=[],
            effects=effects,
            limits=[],
            validity=None,
            group=None,
            priority=0,
            experiment=None,
            summary=self.sentence(trigger, [], effects),
        )

    def sentence(self, trigger: str, conditions: list[str], effects: list[str]) -> str:
        when = trigger
        if conditions:
            when = self._(
                "%(trigger)s, if %(conditions)s", trigger=trigger, conditions=self.every(conditions)
            )
        return self._("%(when)s: %(effects)s", when=when, effects="; ".join(effects))

    def any_rule(self, node: Any, section: str, groups: Node | None = None) -> RuleView:
        """A rule of ``section`` ("earning" or "rules") in words."""
        if not isinstance(node, Mapping):
            node = {"id": neutral(node)}
        return self.earning(node) if section == "earning" else self.rule(node, groups)
