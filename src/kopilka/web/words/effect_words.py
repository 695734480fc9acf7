"""Each effect type of the rules engine in words, and the base ``earning`` entries, which
share their shape (``Words.effect`` picks them by type). A new effect type gets its words
here; until then it is listed neutrally."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from kopilka.web.words.words_kit import Node

if TYPE_CHECKING:
    from kopilka.web.words.rule_words import Words


def _valid_for(w: "Words", n: Node) -> str:
    days = n.get("valid_days")
    if isinstance(days, int) and not isinstance(days, bool):
        return w.ngettext(", valid %(num)s day", ", valid %(num)s days", days)
    return ""


def _points(w: "Words", n: Node) -> str:
    return "+" + w.amount(n["amount"], n.get("currency"))


def _points_per_amount(w: "Words", n: Node) -> str:
    text = w._(
        "+%(points)s for every %(per)s",
        points=w.amount(n.get("points", 1), n.get("currency")),
        per=w.money(n.get("per", 100)),
    )
    return text + w.scope(n) + w.rounding(n)


def _percent(w: "Words", n: Node) -> str:
    text = w._(
        "%(percent)s of the amount in %(currency)s",
        percent=w.percent_of(n["basis_points"]),
        currency=w.currency_label(n.get("currency")),
    )
    return text + w.scope(n) + w.rounding(n)


def _points_per_line(w: "Words", n: Node) -> str:
    points = w.amount(n["points"], n.get("currency"))
    lines = w.lines(n.get("lines"))
    if n.get("per_unit"):
        return w._("+%(points)s for each unit of %(lines)s", points=points, lines=lines)
    return w._("+%(points)s for each line of %(lines)s", points=points, lines=lines)


def _multiplier(w: "Words", n: Node) -> str:
    factor = w.factor(n["factor"])
    if n.get("of"):
        text = w._(
            "×%(factor)s on what %(rules)s earns", factor=factor, rules=w.rule_names(n["of"])
        )
    else:
        text = w._(
            "×%(factor)s on everything earned in %(currency)s",
            factor=factor,
            currency=w.currency_label(n.get("currency")),
        )
    return text + w.rounding(n)


def _tier_multiplier(w: "Words", n: Node) -> str:
    if n.get("of"):
        text = w._("the tier's earn rate on what %(rules)s earns", rules=w.rule_names(n["of"]))
    else:
        text = w._(
            "the tier's earn rate on everything earned in %(currency)s",
            currency=w.currency_label(n.get("currency")),
        )
    return text + w.rounding(n)


def _coupon(w: "Words", n: Node) -> str:
    return w._("a coupon of the campaign %(campaign)s", campaign=n["campaign"]) + _valid_for(w, n)


def _reward(w: "Words", n: Node) -> str:
    return w._("access to the reward %(reward)s", reward=n["reward"]) + _valid_for(w, n)


def _free_delivery(w: "Words", n: Node) -> str:
    return w._("free delivery of this order")


def _free_sample(w: "Words", n: Node) -> str:
    return w._(
        "%(quantity)s × %(sku)s free with this purchase",
        quantity=w.number(n.get("quantity", 1)),
        sku=n["sku"],
    )


def _boost(w: "Words", n: Node) -> str:
    days = n.get("valid_days", 14)
    return w.ngettext(
        "×%(factor)s points on the member's next purchase within %(num)s day",
        "×%(factor)s points on the member's next purchase within %(num)s days",
        days,
        factor=w.factor(n["factor"]),
    )


def _emit_event(w: "Words", n: Node) -> str:
    return w._("the event %(name)s (for badges, challenges and messages)", name=n["name"])


def _tag(w: "Words", n: Node) -> str:
    return w._("the member gets the tag %(tag)s", tag=n["tag"])


def _per_amount(w: "Words", n: Node) -> str:
    return _points_per_amount(w, n)


EFFECT_WORDS: dict[str, Callable[["Words", Node], str]] = {
    "points": _points,
    "points_per_amount": _points_per_amount,
    "percent": _percent,
    "points_per_line": _points_per_line,
    "multiplier": _multiplier,
    "tier_multiplier": _tier_multiplier,
    "coupon": _coupon,
    "reward": _reward,
    "free_delivery": _free_delivery,
    "free_sample": _free_sample,
    "boost": _boost,
    "emit_event": _emit_event,
    "tag": _tag,
    # The base ``earning`` entries: ``percent`` shares its words with the effect.
    "per_amount": _per_amount,
}
