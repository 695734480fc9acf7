"""A program document in plain words: every condition and effect type the rules engine
knows has its own words (in English and Russian); an unknown one is listed neutrally; the
draft's text locates errors at their line; two documents differ rule by rule."""

from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from kopilka.programs.domain import parse_document
from kopilka.rules.condition_kit import CONDITIONS
from kopilka.rules.conditions import Condition
from kopilka.rules.effects import EFFECTS, EffectSpec
from kopilka.web.console.draft_text import (
    DraftSyntaxError,
    located_errors,
    parse_draft,
    pretty,
)
from kopilka.web.console.program_diff import describe_diff, diff_documents
from kopilka.web.i18n import Formats
from kopilka.web.words.program_words import describe_program
from kopilka.web.words.rule_words import (
    CONDITION_WORDS,
    EFFECT_WORDS,
    Words,
    neutral,
    words_for,
)

DOCUMENT: dict[str, Any] = {
    "money_currency": "RUB",
    "currencies": [{"code": "points"}, {"code": "cashback", "kind": "money"}],
    "tiers": {
        "levels": [
            {"id": "base", "name": "Base"},
            {"id": "gold", "name": "Gold", "qualify": {"spend": 5_000_000}},
        ]
    },
}

# One example of each condition type, with what its English words must say.
CONDITIONS_SAID: dict[str, tuple[dict[str, Any], str]] = {
    "basket_total": ({"min": 100_000}, "the basket total is at least RUB1,000.00"),
    "line_match": (
        {"lines": {"categories": ["coffee"]}, "min_quantity": 2, "min_amount": 40_000},
        "the basket has at least 2 items of category coffee worth at least RUB400.00",
    ),
    "distinct_items": ({"min": 5, "max": 9}, "the basket has from 5 to 9 different items"),
    "first_purchase": ({}, "it is the member's first purchase"),
    "nth_purchase": ({"n": 6, "every": True}, "purchase number 6, 12, 18"),
    "payment_method": ({"methods": ["sbp", "card"]}, "the payment method is sbp or card"),
    "coupon_code": ({"code": "SPRING26"}, "the coupon SPRING26 is presented"),
    "store": ({"stores": ["MSK-01"]}, "the store is MSK-01"),
    "channel": ({"channels": ["app"]}, "the channel is app"),
    "region": ({"regions": ["moscow", "spb"]}, "the region is moscow or spb"),
    "weekday": ({"days": ["sat", "sun"]}, "the day is Saturday or Sunday"),
    "time_of_day": ({"start": "15:00", "end": "17:00"}, "from 15:00 to 17:00"),
    "date_range": (
        {"start": "2026-12-01", "end": "2026-12-31"},
        "the date is from Dec 1, 2026 to Dec 31, 2026",
    ),
    "tier": ({"tiers": ["gold"]}, "the member's tier is Gold"),
    "tenure_days": ({"max": 30}, "the member joined at most 30 days ago"),
    "birthday": ({"within": "week"}, "birthday is within three days"),
    "days_since_last_purchase": ({"min": 30}, "at least 30 days have passed"),
    "purchases_in_window": (
        {"days": 30, "min": 8},
        "the member made at least 8 purchases in the previous 30 days",
    ),
    "spend_in_window": (
        {"days": 90, "min": 2_000_000},
        "the member spent at least RUB20,000.00 in the previous 90 days",
    ),
    "lifetime_spend": ({"min": 10_000_000}, "has spent at least RUB100,000.00 in all"),
    "segment": ({"segments": ["students"]}, "the member is in segment students"),
    "churn_risk": ({"min": 60}, "the member's churn risk is at least 60%"),
    "clv": ({"max": 5_000_000}, "predicted lifetime value is at most RUB50,000.00"),
    "member_tag": ({"tags": ["vip", "staff"], "all": True}, "has the tags vip and staff"),
    "attribute": (
        {"name": "favourite_drink", "one_of": ["latte", "flat-white"]},
        "the member's favourite_drink is latte or flat-white",
    ),
    "experiment_arm": (
        {"experiment": "double-weekend", "arms": ["test"]},
        "the member is in arm test of experiment double-weekend",
    ),
    "all": (
        {
            "conditions": [
                {"type": "store", "stores": ["a"]},
                {"type": "channel", "channels": ["b"]},
            ]
        },
        "(the store is a and the channel is b)",
    ),
    "any": (
        {
            "conditions": [
                {"type": "store", "stores": ["a"]},
                {"type": "channel", "channels": ["b"]},
            ]
        },
        "(the store is a or the channel is b)",
    ),
    "not": ({"condition": {"type": "store", "stores": ["airport"]}}, "not (the store is airport)"),
}

EFFECTS_SAID: dict[str, tuple[dict[str, Any], str]] = {
    "points": ({"amount": 250}, "+250 points"),
    "points_per_amount": (
        {"points": 2, "per": 100, "lines": {"categories": ["shoes"]}},
        "+2 points for every RUB1.00 on category shoes",
    ),
    "percent": (
        {"basis_points": 500, "currency": "cashback", "exclude_categories": ["gift-cards"]},
        "5% of the amount in cashback, except the categories gift-cards",
    ),
    "points_per_line": (
        {"points": 10, "per_unit": True, "lines": {"tags": ["eco"]}},
        "+10 points for each unit of tag eco",
    ),
    "multiplier": ({"factor": "1.5", "of": ["base"], "rounding": "ceil"}, "×1.5 on what base"),
    "tier_multiplier": ({"of": ["base"]}, "the tier's earn rate on what base earns"),
    "coupon": ({"campaign": "welcome-15", "valid_days": 30}, "campaign welcome-15, valid 30 days"),
    "reward": ({"reward": "regulars-tasting"}, "access to the reward regulars-tasting"),
    "free_delivery": ({}, "free delivery of this order"),
    "free_sample": ({"sku": "COFFEE-OF-THE-DAY"}, "1 × COFFEE-OF-THE-DAY free"),
    "boost": (
        {"factor": "2", "valid_days": 14},
        "×2 points on the member's next purchase within 14",
    ),
    "emit_event": ({"name": "badge.earned"}, "the event badge.earned"),
    "tag": ({"tag": "regular"}, "the member gets the tag regular"),
}


def english(document: dict[str, Any] = DOCUMENT) -> Words:
    return words_for("en", Formats("en", "Europe/Moscow"), document)


def russian(document: dict[str, Any] = DOCUMENT) -> Words:
    return words_for("ru", Formats("ru", "Europe/Moscow"), document)


def test_every_condition_and_effect_type_of_the_engine_has_words_and_an_example() -> None:
    assert set(CONDITIONS) <= set(CONDITION_WORDS)
    assert set(EFFECTS) <= set(EFFECT_WORDS)
    assert set(CONDITIONS) == set(CONDITIONS_SAID)  # a new type needs an example here
    assert set(EFFECTS) == set(EFFECTS_SAID)


@pytest.mark.parametrize("kind", sorted(CONDITIONS_SAID))
def test_each_condition_in_english_and_russian(kind: str) -> None:
    fields, expected = CONDITIONS_SAID[kind]
    node = (
        TypeAdapter(Condition)
        .validate_python({"type": kind, **fields})
        .model_dump(mode="json", exclude_defaults=False)
    )
    said = english().condition(node)
    assert expected in said, said
    russian_said = russian().condition(node)
    assert russian_said != neutral(node) and russian_said != said


@pytest.mark.parametrize("kind", sorted(EFFECTS_SAID))
def test_each_effect_in_english_and_russian(kind: str) -> None:
    fields, expected = EFFECTS_SAID[kind]
    node = (
        TypeAdapter(EffectSpec)
        .validate_python({"type": kind, **fields})
        .model_dump(mode="json", exclude_none=True)
    )
    said = english().effect(node)
    assert expected in said, said
    russian_said = russian().effect(node)
    assert russian_said != neutral(node) and russian_said != said


def test_a_russian_sentence_reads_in_russian() -> None:
    rule = {
        "id": "december-coffee",
        "conditions": [
            {"type": "basket_total", "min": 100_000},
            {"type": "store", "stores": ["MSK-01"]},
            {"type": "date_range", "start": "2026-12-01", "end": "2026-12-31"},
        ],
        "effects": [{"type": "multiplier", "factor": "2", "of": ["base"]}],
    }
    said = russian().rule(rule).summary
    assert said.startswith("При покупке, если сумма покупки не меньше 1\xa0000,00")
    assert "магазин — MSK-01" in said and "1 дек. 2026" in said and "×2" in said
    english_said = english().rule(rule).summary
    assert english_said.startswith("On a purchase, if the basket total is at least RUB1,000.00")


def test_unknown_types_and_broken_fields_are_listed_never_an_error() -> None:
    w = english()
    future = {"type": "weather", "sunny": True, "cities": ["Moscow", "Kazan"]}
    assert w.condition(future) == "weather: sunny: True, cities: Moscow, Kazan"
    assert w.effect({"type": "hologram", "size": 3}) == "hologram: size: 3"
    assert w.effect({"type": "points"}) == "points"  # no amount: listed, not a KeyError
    assert w.condition("not even an object") == "not even an object"
    rule = w.rule({"id": "odd", "trigger": "moon", "effects": "none", "limits": []})
    assert rule.id == "odd" and "moon" in rule.trigger
    view = describe_program(w, {"currencies": "x", "rules": [7], "tiers": {"levels": "y"}})
    assert view.rules[0].id == "7" and view.ladder is not None


def test_limits_validity_group_and_experiment() -> None:
    w = english()
    rule = w.rule(
        {
            "id": "summer-shoes",
            "name": "Summer shoes",
            "effects": [{"type": "points", "amount": 10}],
            "limits": {
                "max_per_event": 2000,
                "periods": [
                    {"per": "member", "period": "day", "times": 2},
                    {"per": "program", "period": "month", "amount": 200_000},
                ],
                "budget": 500_000,
            },
            "schedule": {"valid_from": "2026-06-01T00:00:00+03:00"},
            "group": "promo",
            "experiment": {"experiment": "summer", "arm": "test"},
            "priority": 5,
        },
        {"promo": "priority"},
    )
    assert rule.limits == [
        "at most 2,000 per event",
        "at most 2 times per member a day",
        "at most 200,000 across the program a month",
        "campaign budget 500,000",
    ]
    assert rule.validity == "from 6/1/26, 12:00\u202fAM"
    assert rule.group == "exclusive group promo: the rule of highest priority applies"
    assert rule.experiment == "only for members in arm test of experiment summer"


def test_the_example_programs_read_in_words() -> None:
    with open("examples/fashion-retailer.yaml") as handle:
        document = parse_document(yaml.safe_load(handle)).model_dump(mode="json")
    view = describe_program(english(document), document)
    sentences = [r.summary for r in view.earning + view.rules]
    assert sentences and all(": " in s for s in sentences)
    assert not any(s.count(": ") > 3 for s in sentences)  # no neutral listings
    assert view.ladder is not None and view.ladder.levels[0].requirement.startswith("Entry tier")


def test_the_ladder_and_terms_in_words() -> None:
    document = {
        **DOCUMENT,
        "expiry": {"policy": "days", "days": 365},
        "pending_days": 14,
        "tiers": {
            "levels": [
                {"id": "base", "name": "Base"},
                {
                    "id": "silver",
                    "name": "Silver",
                    "qualify": {"spend": 1_500_000, "visits": 12},
                    "benefits": {"earn_rate_percent": 125, "free_delivery": True},
                },
                {"id": "vip", "name": "VIP", "invitation_only": True},
            ],
            "window": {"kind": "rolling", "months": 12},
            "review": {"kind": "fixed", "date": "01-01"},
            "downgrade": {"mode": "grace", "grace_days": 90},
        },
    }
    view = describe_program(english(document), document)
    terms = dict(view.terms)
    assert terms["Expiry"] == "Points expire 365 days after they are earned"
    assert terms["Pending points"] == "Points stay pending for 14 days (the return window)"
    ladder = view.ladder
    assert ladder is not None
    silver = ladder.levels[1]
    assert silver.requirement == "spend RUB15,000.00 or make 12 purchases"
    assert silver.benefits == ["earns ×1.25", "free delivery"]
    assert ladder.levels[2].requirement == "By invitation only"
    assert ladder.window == "What counts: the last 12 months"
    assert ladder.review == "Tiers are reviewed every year on January 1"
    assert "90 days" in ladder.downgrade
    ru = describe_program(russian(document), document).ladder
    assert ru is not None and ru.levels[2].requirement == "Только по приглашению"
    assert ru.review == "Уровни пересматриваются каждый год 1 января"


def test_errors_are_found_at_their_line() -> None:
    text = pretty(
        {
            "earning": [{"id": "base", "type": "per_amount", "per": 0}],
            "rules": [
                {"id": "a", "effects": [{"type": "points", "amount": 5}]},
                {"id": "b", "effects": [{"type": "points", "amount": -1}]},
            ],
        }
    )
    lines = text.splitlines()
    errors = located_errors(
        text,
        [
            {"field": "rules.1.effects.0.amount", "message": "too small"},
            {"field": "earning.0.per", "message": "at least 1"},
            {"field": "rules.1.conditions", "message": "missing"},
            {"field": "document", "message": "rules[1] (b): currency 'x' is not one of"},
        ],
    )
    by_field = {e.field: e for e in errors}
    assert '"amount": -1' in lines[by_field["rules.1.effects.0.amount"].line - 1]
    assert '"per": 0' in lines[by_field["earning.0.per"].line - 1]
    assert by_field["rules.1.conditions"].line == by_field["document"].line  # the rule's line
    assert [e.line for e in errors] == sorted(e.line for e in errors)
    with pytest.raises(DraftSyntaxError) as syntax:
        parse_draft('{\n  "earning": [\n    {"id": "base",}\n  ]\n}')
    assert (syntax.value.line, syntax.value.column) == (3, 19)
    with pytest.raises(DraftSyntaxError):
        parse_draft("[1, 2]")


def test_two_documents_differ_rule_by_rule() -> None:
    before = {
        **DOCUMENT,
        "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
        "rules": [
            {"id": "old", "effects": [{"type": "points", "amount": 5}]},
            {"id": "same", "effects": [{"type": "tag", "tag": "x"}]},
        ],
        "pending_days": 0,
    }
    after = {
        **before,
        "earning": [{"id": "base", "type": "per_amount", "points": 2, "per": 100}],
        "rules": [
            {"id": "same", "effects": [{"type": "tag", "tag": "x"}]},
            {"id": "new", "effects": [{"type": "points", "amount": 7}]},
        ],
        "pending_days": 14,
        "retention": {"messages_days": 30},
    }
    diff = diff_documents(before, after)
    assert [(c.id, c.change) for c in diff.rules] == [
        ("base", "changed"),
        ("new", "added"),
        ("old", "removed"),
    ]
    assert [t.key for t in diff.member_terms] == ["pending_days"]
    assert [t.key for t in diff.other_terms] == ["retention"]
    said = describe_diff(before, after, english(before), english(after))
    base = said.rules[0]
    assert base.before == "On every purchase: +1 point for every RUB1.00"
    assert base.after == "On every purchase: +2 points for every RUB1.00"
    assert said.rules[1].after == "On a purchase: +7 points"
    assert said.member_terms[0].after == "Points stay pending for 14 days (the return window)"
    assert describe_diff(before, before, english(), english()).empty
