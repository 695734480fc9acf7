"""The program's terms and its tier ladder in plain words (the rules are ``rule_words``):
currencies, expiry, pending points, holds, returns, paying with points, groups,
experiments, and each tier's requirement and benefits. Pure, like ``rule_words``: it reads
the stored JSON document and never fails on a field it does not know."""

from collections.abc import Mapping
from datetime import date
from typing import Any

from babel import dates

from kopilka.web.words.rule_words import (
    LadderView,
    Node,
    ProgramView,
    TierLevelView,
    Words,
    as_list,
    neutral,
)


def _(text: str) -> str:
    """Marks a label for the catalogue; pages translate it."""
    return text


# What each top-level key of the document is, for people (labels translated by the page).
TERM_LABELS: dict[str, str] = {
    "money_currency": _("Money currency"),
    "timezone": _("Time zone"),
    "currencies": _("Currencies"),
    "earning": _("Base earning"),
    "rules": _("Rules"),
    "groups": _("Exclusive groups"),
    "experiments": _("Experiments"),
    "expiry": _("Expiry"),
    "pending_days": _("Pending points"),
    "hold_minutes": _("Holds at the till"),
    "clawback": _("Returns"),
    "auto_enrol": _("Enrolment"),
    "tiers": _("Tier ladder"),
    "points_payment": _("Paying with points"),
    "earn_on": _("What earns"),
    "free_form_stores": _("Store names"),
    "member_attributes": _("Member attributes"),
    "retention": _("Retention"),
}
# The terms a member notices when they change (the rest is the back office's business).
MEMBER_VISIBLE_TERMS = (
    "currencies",
    "expiry",
    "pending_days",
    "clawback",
    "points_payment",
    "earn_on",
    "tiers",
)


def label(w: Words, key: str) -> str:
    return w._(TERM_LABELS[key]) if key in TERM_LABELS else key


def describe_program(w: Words, document: Node) -> ProgramView:
    """The whole document in words."""
    groups: Node = document["groups"] if isinstance(document.get("groups"), Mapping) else {}
    ladder = document.get("tiers")
    return ProgramView(
        currencies=[currency(w, c) for c in as_list(document.get("currencies"))],
        terms=[
            (label(w, key), said)
            for key in (
                "money_currency",
                "expiry",
                "pending_days",
                "hold_minutes",
                "clawback",
                "auto_enrol",
                "earn_on",
                "points_payment",
            )
            if (said := term(w, key, document)) is not None
        ],
        groups=[w.group(name, groups) or "" for name in sorted(groups or {}, key=str)],
        experiments=[experiment(w, e) for e in as_list(document.get("experiments"))],
        earning=[w.any_rule(r, "earning") for r in as_list(document.get("earning"))],
        rules=[w.any_rule(r, "rules", groups) for r in as_list(document.get("rules"))],
        ladder=describe_ladder(w, ladder) if isinstance(ladder, Mapping) else None,
    )


def currency(w: Words, node: Any) -> str:
    if not isinstance(node, Mapping):
        return neutral(node)
    code = node.get("code")
    name = node.get("name")
    kind = w._("money, in minor units") if node.get("kind") == "money" else w._("points")
    if name:
        return w._("%(name)s (code %(code)s, %(kind)s)", name=name, code=code, kind=kind)
    return w._("%(code)s (%(kind)s)", code=code, kind=kind)


def experiment(w: Words, node: Any) -> str:
    if not isinstance(node, Mapping):
        return neutral(node)
    arms = [
        f"{arm.get('name')} {w.fmt.percent(arm.get('percent', 0) / 100, 0)}"
        for arm in as_list(node.get("arms"))
        if isinstance(arm, Mapping) and isinstance(arm.get("percent", 0), int)
    ]
    return w._("%(name)s: %(arms)s", name=node.get("name"), arms=", ".join(arms))


def term(w: Words, key: str, document: Node) -> str | None:
    """One term of the program in words (None: not set / nothing to say)."""
    value = document.get(key)
    try:
        return _term(w, key, value, document)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return neutral(value)


def _term(w: Words, key: str, value: Any, document: Node) -> str | None:
    if key == "money_currency":
        zone = document.get("timezone") or "UTC"
        return w._(
            "Amounts in %(currency)s; days and hours in the time zone %(zone)s",
            currency=value or "RUB",
            zone=zone,
        )
    if key == "expiry":
        return expiry(w, value if isinstance(value, Mapping) else {})
    if key == "pending_days":
        days = value or 0
        if days == 0:
            return w._("Points can be spent at once")
        return w.ngettext(
            "Points stay pending for %(num)s day (the return window)",
            "Points stay pending for %(num)s days (the return window)",
            days,
        )
    if key == "hold_minutes":
        minutes = 30 if value is None else value
        return w.ngettext(
            "A hold of points at a till lasts %(num)s minute",
            "A hold of points at a till lasts %(num)s minutes",
            minutes,
        )
    if key == "clawback":
        if value == "cap_at_available":
            return w._("A return takes back at most the points the member still has")
        return w._("A return takes back the points it earned, even below zero")
    if key == "auto_enrol":
        if value:
            return w._("Unknown members are registered on their first purchase")
        return w._("Only registered members earn")
    if key == "earn_on":
        if value == "total":
            return w._("Rules earn on the whole basket, even the part paid with coupons or points")
        return w._("Rules earn on the money paid (not on what coupons or points paid)")
    if key == "points_payment":
        if isinstance(value, Mapping):
            return points_payment(w, value)
        return w._("Points do not pay at the till")
    if key == "currencies":
        return ", ".join(currency(w, c) for c in as_list(value))
    if key == "tiers":
        if not isinstance(value, Mapping):
            return w._("No tier ladder")
        names = [str(level.get("name")) for level in as_list(value.get("levels"))]
        return w._("Tiers: %(list)s", list=" → ".join(names))
    return None if value is None else neutral(value)


def expiry(w: Words, node: Node) -> str:
    policy = node.get("policy", "never")
    if policy == "days":
        return w.ngettext(
            "Points expire %(num)s day after they are earned",
            "Points expire %(num)s days after they are earned",
            node.get("days", 365),
        )
    if policy == "end_of_month":
        months = node.get("months", 12)
        if months == 0:
            return w._("Points expire at the end of the month they are earned in")
        return w.ngettext(
            "Points expire at the end of the month %(num)s month after the month of earning",
            "Points expire at the end of the month %(num)s months after the month of earning",
            months,
        )
    if policy == "end_of_year":
        years = node.get("years", 1)
        if years == 0:
            return w._("Points expire at the end of the year they are earned in")
        return w.ngettext(
            "Points expire at the end of the year %(num)s year after the year of earning",
            "Points expire at the end of the year %(num)s years after the year of earning",
            years,
        )
    return w._("Points never expire")


def points_payment(w: Words, node: Node) -> str:
    text = w._(
        "%(points)s pay %(money)s at the till, up to %(share)s of the basket",
        points=w.amount(node.get("points", 1), node.get("currency", "points")),
        money=w.money(node.get("money", 100)),
        share=w.fmt.percent(node.get("max_share_percent", 100) / 100, 0),
    )
    if node.get("min_points"):
        text += w._("; at least %(points)s at a time", points=w.number(node["min_points"]))
    if excluded := as_list(node.get("excluded_categories")):
        text += w._("; not for the categories %(list)s", list=", ".join(map(str, excluded)))
    return text


# --- the tier ladder ------------------------------------------------------------------------


def describe_ladder(w: Words, ladder: Node) -> LadderView:
    levels = [level for level in as_list(ladder.get("levels")) if isinstance(level, Mapping)]
    window = ladder.get("window") if isinstance(ladder.get("window"), Mapping) else {}
    review = ladder.get("review") if isinstance(ladder.get("review"), Mapping) else {}
    downgrade = ladder.get("downgrade") if isinstance(ladder.get("downgrade"), Mapping) else {}
    notes = []
    if ladder.get("returns_undo_upgrade", True):
        notes.append(w._("A return of the purchase that brought an upgrade undoes it if need be"))
    return LadderView(
        levels=[
            TierLevelView(
                id=str(level.get("id")),
                name=str(level.get("name") or level.get("id")),
                requirement=requirement(w, level, first=index == 0),
                benefits=benefits(w, level.get("benefits")),
            )
            for index, level in enumerate(levels)
        ],
        window=_window(w, window or {}),
        review=_review(w, review or {}),
        downgrade=_downgrade(w, downgrade or {}),
        notes=notes,
    )


def requirement(w: Words, level: Node, *, first: bool = False) -> str:
    """What a member must do to reach ``level``."""
    if first:
        return w._("Entry tier: every member starts here")
    if level.get("invitation_only"):
        return w._("By invitation only")
    qualify = level.get("qualify") if isinstance(level.get("qualify"), Mapping) else {}
    parts = [metric(w, name, value) for name, value in (qualify or {}).items()]
    joined = w.every(parts) if level.get("match") == "all" else w.either(parts)
    return joined or neutral(level)


def metric(w: Words, name: str, value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{name}: {value}"
    if name == "spend":
        return w._("spend %(amount)s", amount=w.money(value))
    if name == "visits":
        return w.ngettext("make %(num)s purchase", "make %(num)s purchases", value)
    if name == "points":
        return w._("earn %(amount)s", amount=w.amount(value))
    if name == "tenure_months":
        return w.ngettext("be a member for %(num)s month", "be a member for %(num)s months", value)
    return f"{name}: {w.number(value)}"


def benefits(w: Words, node: Any) -> list[str]:
    if not isinstance(node, Mapping):
        return []
    said = []
    rate = node.get("earn_rate_percent", 100)
    if isinstance(rate, int) and rate != 100:
        said.append(w._("earns ×%(rate)s", rate=w.number(rate / 100)))
    if node.get("discount_percent"):
        said.append(
            w._("%(percent)s discount", percent=w.fmt.percent(node["discount_percent"] / 100, 0))
        )
    if node.get("free_delivery"):
        said.append(w._("free delivery"))
    if node.get("priority_service"):
        said.append(w._("priority service"))
    if node.get("early_access"):
        said.append(w._("early access"))
    if rewards := as_list(node.get("exclusive_rewards")):
        said.append(w._("exclusive rewards: %(list)s", list=", ".join(map(str, rewards))))
    if events := as_list(node.get("events")):
        said.append(w._("invitations to %(list)s", list=", ".join(map(str, events))))
    return said


def _window(w: Words, node: Node) -> str:
    kind = node.get("kind", "rolling")
    if kind == "calendar_year":
        return w._("What counts: the current calendar year")
    if kind == "lifetime":
        return w._("What counts: every purchase ever")
    return w.ngettext(
        "What counts: the last %(num)s month",
        "What counts: the last %(num)s months",
        node.get("months", 12),
    )


def _review(w: Words, node: Node) -> str:
    if node.get("kind") == "fixed" and node.get("date"):
        try:
            month, day = (int(part) for part in str(node["date"]).split("-"))
            when = dates.format_skeleton("MMMMd", date(2000, month, day), locale=w.fmt.locale)
        except ValueError:
            when = str(node["date"])
        return w._("Tiers are reviewed every year on %(date)s", date=when)
    return w._("A tier is reviewed a year after it was reached")


def _downgrade(w: Words, node: Node) -> str:
    mode = node.get("mode", "requalify")
    if mode == "one_step":
        return w._("At a review, a member who no longer qualifies drops one tier at most")
    if mode == "grace":
        return w.ngettext(
            "At a review, a member who no longer qualifies keeps the tier %(num)s day more",
            "At a review, a member who no longer qualifies keeps the tier %(num)s days more",
            node.get("grace_days", 90),
        )
    return w._("At a review, a member who no longer qualifies drops to the tier they qualify for")
