"""A segment's definition said in words, in the page's language: "Spend in the last 90
days: at least 5 000,00 ₽", "Any of: …", "Not: …". Pure (no I/O). A predicate without a
phrase here (one another feature registers) is said as its type and its fields, and a
definition that no longer parses is shown as its JSON: a page never fails on one."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.dates import get_month_names

from kopilka.crm.predicates import PredicateModel
from kopilka.errors import InvalidInput
from kopilka.segments.domain import AllOf, AnyOf, Node, NotOf, parse_definition
from kopilka.web.console.segment_labels import (
    FIELD_OPTION_LABELS,
    OPTION_LABELS,
    PARAM_LABELS,
    PREDICATE_LABELS,
)
from kopilka.web.i18n import Formats, translations


@dataclass(frozen=True)
class Phrase:
    text: str
    items: list["Phrase"] = field(default_factory=list)


class Speaker:
    """Says predicates in one language, with numbers, money and dates of its locale."""

    def __init__(self, fmt: Formats, money_currency: str, points_currency: str) -> None:
        self.fmt = fmt
        self.money_currency = money_currency
        self.points_currency = points_currency
        self.tr = translations(fmt.language)

    def say(self, definition: Any) -> Phrase:
        try:
            node = parse_definition(definition)
        except InvalidInput:
            return Phrase(json.dumps(definition, ensure_ascii=False))
        return self.node(node)

    def node(self, node: Node) -> Phrase:
        _ = self.tr.gettext
        if isinstance(node, AllOf):
            return Phrase(_("All of:"), [self.node(i) for i in node.items])
        if isinstance(node, AnyOf):
            return Phrase(_("Any of:"), [self.node(i) for i in node.items])
        if isinstance(node, NotOf):
            inner = self.node(node.item)
            if inner.items:
                return Phrase(_("Not:"), [inner])
            return Phrase(_("Not: %(condition)s") % {"condition": inner.text})
        return Phrase(self.predicate(node))

    # --- pieces ----------------------------------------------------------------------------

    def option(self, value: Any) -> str:
        text = str(value)
        return self.tr.gettext(OPTION_LABELS.get(text) or FIELD_OPTION_LABELS.get(text) or text)

    def options(self, values: Sequence[Any]) -> str:
        return ", ".join(self.option(v) for v in values)

    def values(self, values: Sequence[Any]) -> str:
        return ", ".join(str(v) for v in values)

    def range(self, low: int | None, high: int | None, show: Callable[[int], str]) -> str:
        _ = self.tr.gettext
        if low is not None and high is not None:
            if low == high:
                return _("exactly %(value)s") % {"value": show(low)}
            return _("from %(low)s to %(high)s") % {"low": show(low), "high": show(high)}
        if low is not None:
            return _("at least %(value)s") % {"value": show(low)}
        if high is not None:
            return _("at most %(value)s") % {"value": show(high)}
        return ""

    def window(self, last_days: int | None, since: date | None, until: date | None) -> str:
        _ = self.tr.gettext
        if last_days is not None:
            return self.tr.ngettext(
                "in the last %(num)s day", "in the last %(num)s days", last_days
            ) % {"num": self.fmt.number(last_days)}
        if since and until:
            return _("from %(since)s to %(until)s") % {
                "since": self.fmt.date(since),
                "until": self.fmt.date(until),
            }
        if since:
            return _("since %(since)s") % {"since": self.fmt.date(since)}
        if until:
            return _("until %(until)s") % {"until": self.fmt.date(until)}
        return _("over the whole history")

    def number(self, value: int) -> str:
        return self.fmt.number(value)

    def money(self, value: int) -> str:
        return self.fmt.money(value, self.money_currency)

    # --- predicates --------------------------------------------------------------------------

    def predicate(self, p: PredicateModel) -> str:
        said = getattr(self, f"_{p.model_dump().get('type', '')}", None)
        if callable(said):
            text: str = said(p)
            return text
        return self.fallback(p)

    def fallback(self, p: PredicateModel) -> str:
        data = p.model_dump(mode="json", exclude_none=True)
        kind = str(data.pop("type", ""))
        label = self.tr.gettext(PREDICATE_LABELS[kind]) if kind in PREDICATE_LABELS else kind
        shown = "; ".join(
            f"{self.tr.gettext(PARAM_LABELS.get(k, k))}: {json.dumps(v, ensure_ascii=False)}"
            for k, v in data.items()
        )
        return f"{label} — {shown}" if shown else label

    def _purchases(self, p: Any) -> str:
        _ = self.tr.gettext
        subjects = {
            "count": _("Number of purchases %(window)s: %(range)s"),
            "spend": _("Spend %(window)s: %(range)s"),
            "average_check": _("Average check %(window)s: %(range)s"),
        }
        show = self.number if p.measure == "count" else self.money
        return subjects[p.measure] % {
            "window": self.window(p.last_days, p.since, p.until),
            "range": self.range(p.min, p.max, show),
        }

    def _bought(self, p: Any) -> str:
        _ = self.tr.gettext
        what = []
        if p.categories:
            what.append(_("categories %(values)s") % {"values": self.values(p.categories)})
        if p.skus:
            what.append(_("products %(values)s") % {"values": self.values(p.skus)})
        if p.stores:
            what.append(_("at stores %(values)s") % {"values": self.values(p.stores)})
        text = (
            _("Did not buy (%(what)s) %(window)s") if p.never else _("Bought (%(what)s) %(window)s")
        )
        return text % {
            "what": "; ".join(what),
            "window": self.window(p.last_days, p.since, p.until),
        }

    def _days_since_last_purchase(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Days since the last purchase: %(range)s") % {
            "range": self.range(p.min, p.max, self.number)
        }

    def _points_balance(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Points balance (%(currency)s): %(range)s") % {
            "currency": p.currency or self.points_currency,
            "range": self.range(p.min, p.max, self.number),
        }

    def _points_expiring(self, p: Any) -> str:
        _ = self.tr.gettext
        return self.tr.ngettext(
            "Points (%(currency)s) expiring within %(num)s day: at least %(min)s",
            "Points (%(currency)s) expiring within %(num)s days: at least %(min)s",
            p.within_days,
        ) % {
            "min": self.number(p.min),
            "currency": p.currency or self.points_currency,
            "num": self.number(p.within_days),
        }

    def _tier(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Tier is one of: %(values)s") % {"values": self.values(p.tiers)}

    def _tags(self, p: Any) -> str:
        _ = self.tr.gettext
        text = (
            _("Has every one of the tags: %(values)s")
            if p.all
            else _("Has any of the tags: %(values)s")
        )
        return text % {"values": self.values(p.tags)}

    def _consent(self, p: Any) -> str:
        _ = self.tr.gettext
        text = (
            _("Consent to %(purpose)s messages by %(channel)s: granted")
            if p.granted
            else _("Consent to %(purpose)s messages by %(channel)s: not granted")
        )
        return text % {"purpose": self.option(p.purpose), "channel": self.option(p.channel)}

    def _profile(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Profile field “%(field)s” is one of: %(values)s") % {
            "field": self.option(p.field),
            "values": self.values(p.one_of),
        }

    def _profile_present(self, p: Any) -> str:
        _ = self.tr.gettext
        text = (
            _("Profile field “%(field)s” is filled in")
            if p.present
            else _("Profile field “%(field)s” is empty")
        )
        return text % {"field": self.option(p.field)}

    def _attribute(self, p: Any) -> str:
        _ = self.tr.gettext
        name = {"name": p.name}
        if p.exists is not None:
            text = (
                _("Attribute “%(name)s” is set")
                if p.exists
                else _("Attribute “%(name)s” is not set")
            )
            return text % name
        if p.equals is not None:
            value = json.dumps(p.equals, ensure_ascii=False)
            return _("Attribute “%(name)s” equals %(value)s") % (name | {"value": value})
        if p.one_of is not None:
            values = ", ".join(json.dumps(v, ensure_ascii=False) for v in p.one_of)
            return _("Attribute “%(name)s” is one of: %(values)s") % (name | {"values": values})
        return _("Attribute “%(name)s”: %(range)s") % (
            name | {"range": self.range(p.min, p.max, self.number)}
        )

    def _age(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Age: %(range)s") % {"range": self.range(p.min, p.max, self.number)}

    def _birthday_month(self, p: Any) -> str:
        _ = self.tr.gettext
        names = get_month_names("wide", context="stand-alone", locale=self.fmt.locale)
        months = ", ".join(str(names.get(m, m)) for m in p.months)
        return _("Birthday in: %(months)s") % {"months": months}

    def _tenure_days(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Days since joining: %(range)s") % {"range": self.range(p.min, p.max, self.number)}

    def _joined(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Joined %(window)s") % {"window": self.window(None, p.since, p.until)}

    def _rfm_group(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("RFM group is one of: %(values)s") % {"values": self.options(p.groups)}

    def _rfm_score(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("RFM %(score)s score: %(range)s") % {
            "score": self.option(p.score),
            "range": self.range(p.min, p.max, self.number),
        }

    def _survey_score(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Score in survey “%(survey)s” (%(measure)s) %(window)s: %(range)s") % {
            "survey": p.survey,
            "measure": self.option(p.measure),
            "window": self.window(p.last_days, None, None),
            "range": self.range(p.min, p.max, self.number),
        }

    def _churn_risk(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Churn risk: %(range)s") % {
            "range": self.range(p.min, p.max, lambda v: self.fmt.percent(v / 100, 0))
        }

    def _clv(self, p: Any) -> str:
        _ = self.tr.gettext
        return _("Predicted lifetime value: %(range)s") % {
            "range": self.range(p.min, p.max, self.money)
        }


def definition_words(
    definition: Any, fmt: Formats, money_currency: str, points_currency: str
) -> Phrase:
    """``definition`` in words, in ``fmt``'s language."""
    return Speaker(fmt, money_currency, points_currency).say(definition)
