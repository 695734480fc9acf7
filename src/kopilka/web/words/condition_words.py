"""Each condition type of the rules engine in words (``Words.condition`` picks them by type).
A new condition type gets its words here; until then it is listed neutrally."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from kopilka.web.words.words_kit import Node, as_list

if TYPE_CHECKING:
    from kopilka.web.words.rule_words import Words


def _basket_total(w: "Words", n: Node) -> str:
    return w._("the basket total is %(range)s", range=w.range(n, w.money))


def _line_match(w: "Words", n: Node) -> str:
    lines = w.lines(n.get("lines"))
    quantity = n.get("min_quantity", 1)
    if isinstance(quantity, int) and quantity > 1:
        text = w.ngettext(
            "the basket has at least %(num)s item of %(lines)s",
            "the basket has at least %(num)s items of %(lines)s",
            quantity,
            lines=lines,
        )
    else:
        text = w._("the basket has %(lines)s", lines=lines)
    if n.get("min_amount"):
        text += w._(" worth at least %(amount)s", amount=w.money(n["min_amount"]))
    return text


def _distinct_items(w: "Words", n: Node) -> str:
    return w._("the basket has %(range)s different items", range=w.range(n, w.number))


def _first_purchase(w: "Words", n: Node) -> str:
    return w._("it is the member's first purchase")


def _nth_purchase(w: "Words", n: Node) -> str:
    if n.get("every"):
        step = int(n["n"])
        numbers = ", ".join(w.number(step * k) for k in (1, 2, 3))
        return w._("it is the member's purchase number %(list)s …", list=numbers)
    return w._("it is the member's purchase number %(n)s", n=w.number(n["n"]))


def _payment_method(w: "Words", n: Node) -> str:
    return w._("the payment method is %(list)s", list=w.either(as_list(n.get("methods"))))


def _coupon_code(w: "Words", n: Node) -> str:
    if n.get("code"):
        return w._("the coupon %(code)s is presented", code=n["code"])
    return w._("a coupon is presented")


def _store(w: "Words", n: Node) -> str:
    return w._("the store is %(list)s", list=w.either(as_list(n.get("stores"))))


def _channel(w: "Words", n: Node) -> str:
    return w._("the channel is %(list)s", list=w.either(as_list(n.get("channels"))))


def _region(w: "Words", n: Node) -> str:
    return w._("the region is %(list)s", list=w.either(as_list(n.get("regions"))))


def _weekday(w: "Words", n: Node) -> str:
    days = w.weekday_names(as_list(n.get("days")))
    return w._("the day is %(list)s", list=w.either(days))


def _time_of_day(w: "Words", n: Node) -> str:
    start, end = str(n.get("start", ""))[:5], str(n.get("end", ""))[:5]
    return w._("the local time is from %(start)s to %(end)s", start=start, end=end)


def _date_range(w: "Words", n: Node) -> str:
    start, end = n.get("start"), n.get("end")
    if start and end:
        return w._("the date is from %(start)s to %(end)s", start=w.day(start), end=w.day(end))
    if start:
        return w._("the date is %(start)s or later", start=w.day(start))
    return w._("the date is %(end)s or earlier", end=w.day(end))


def _tier(w: "Words", n: Node) -> str:
    return w._("the member's tier is %(list)s", list=w.tiers(n.get("tiers")))


def _tenure_days(w: "Words", n: Node) -> str:
    return w._("the member joined %(range)s days ago", range=w.range(n, w.number))


def _birthday(w: "Words", n: Node) -> str:
    within = n.get("within", "today")
    if within == "week":
        return w._("the member's birthday is within three days")
    if within == "month":
        return w._("the member's birthday is this month")
    return w._("it is the member's birthday")


def _days_since_last_purchase(w: "Words", n: Node) -> str:
    return w._(
        "%(range)s days have passed since the member's previous purchase",
        range=w.range(n, w.number),
    )


def _purchases_in_window(w: "Words", n: Node) -> str:
    return w._(
        "the member made %(range)s purchases in the previous %(days)s days",
        range=w.range(n, w.number),
        days=w.number(n.get("days")),
    )


def _spend_in_window(w: "Words", n: Node) -> str:
    return w._(
        "the member spent %(range)s in the previous %(days)s days",
        range=w.range(n, w.money),
        days=w.number(n.get("days")),
    )


def _lifetime_spend(w: "Words", n: Node) -> str:
    return w._("the member has spent %(range)s in all", range=w.range(n, w.money))


def _segment(w: "Words", n: Node) -> str:
    return w._("the member is in segment %(list)s", list=w.either(as_list(n.get("segments"))))


def _churn_risk(w: "Words", n: Node) -> str:
    def percent(value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return w.percent_of(value * 100)  # whole percent → basis points
        return str(value)

    return w._("the member's churn risk is %(range)s", range=w.range(n, percent))


def _clv(w: "Words", n: Node) -> str:
    return w._("the member's predicted lifetime value is %(range)s", range=w.range(n, w.money))


def _member_tag(w: "Words", n: Node) -> str:
    tags = as_list(n.get("tags"))
    if n.get("all"):
        return w._("the member has the tags %(list)s", list=w.every(tags))
    return w._("the member has the tag %(list)s", list=w.either(tags))


def _attribute(w: "Words", n: Node) -> str:
    name = n.get("name")
    checks = []
    if n.get("equals") is not None:
        checks.append(w._("the member's %(name)s is %(value)s", name=name, value=n["equals"]))
    if n.get("one_of") is not None:
        values = w.either(as_list(n["one_of"]))
        checks.append(w._("the member's %(name)s is %(value)s", name=name, value=values))
    if n.get("min") is not None or n.get("max") is not None:
        checks.append(
            w._(
                "the member's %(name)s is a number %(range)s",
                name=name,
                range=w.range(n, w.number),
            )
        )
    return w.every(checks) if checks else w._("the member has %(name)s set", name=name)


def _experiment_arm(w: "Words", n: Node) -> str:
    return w._(
        "the member is in arm %(list)s of experiment %(experiment)s",
        list=w.either(as_list(n.get("arms"))),
        experiment=n.get("experiment"),
    )


def _all(w: "Words", n: Node) -> str:
    return "(" + w.every(w.condition(c) for c in as_list(n.get("conditions"))) + ")"


def _any(w: "Words", n: Node) -> str:
    return "(" + w.either(w.condition(c) for c in as_list(n.get("conditions"))) + ")"


def _not(w: "Words", n: Node) -> str:
    return w._("not (%(condition)s)", condition=w.condition(n.get("condition")))


CONDITION_WORDS: dict[str, Callable[["Words", Node], str]] = {
    "basket_total": _basket_total,
    "line_match": _line_match,
    "distinct_items": _distinct_items,
    "first_purchase": _first_purchase,
    "nth_purchase": _nth_purchase,
    "payment_method": _payment_method,
    "coupon_code": _coupon_code,
    "store": _store,
    "channel": _channel,
    "region": _region,
    "weekday": _weekday,
    "time_of_day": _time_of_day,
    "date_range": _date_range,
    "tier": _tier,
    "tenure_days": _tenure_days,
    "birthday": _birthday,
    "days_since_last_purchase": _days_since_last_purchase,
    "purchases_in_window": _purchases_in_window,
    "spend_in_window": _spend_in_window,
    "lifetime_spend": _lifetime_spend,
    "segment": _segment,
    "churn_risk": _churn_risk,
    "clv": _clv,
    "member_tag": _member_tag,
    "attribute": _attribute,
    "experiment_arm": _experiment_arm,
    "all": _all,
    "any": _any,
    "not": _not,
}
