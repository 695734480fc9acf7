"""The demo population simulator: determinism, ordering, API shapes and realism."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from kopilka.demo.domain import SimEvent, SimulationConfig, catalog, simulate

SMALL = SimulationConfig(members=120, days=90, seed=3)


@pytest.fixture(scope="module")
def year() -> list[SimEvent]:
    """The default demo: 500 members over 365 days."""
    return list(simulate(SimulationConfig()))


def _of(events: list[SimEvent], kind: str) -> list[dict[str, object]]:
    return [event.data for event in events if event.kind == kind]


def _member_id(purchase: dict[str, object]) -> str:
    member = purchase["member"]
    assert isinstance(member, dict)
    return str(member["external_id"])


def _lines(data: dict[str, object]) -> list[dict[str, object]]:
    lines = data["lines"]
    assert isinstance(lines, list)
    return lines


def _int(value: object) -> int:
    # bool is an int subclass; a True quantity would be a bug, not a 1.
    assert isinstance(value, int) and not isinstance(value, bool), value
    return value


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_events() -> None:
    assert list(simulate(SMALL)) == list(simulate(SMALL))


def test_another_seed_gives_other_events() -> None:
    other = SimulationConfig(members=SMALL.members, days=SMALL.days, seed=SMALL.seed + 1)
    assert list(simulate(SMALL)) != list(simulate(other))


def test_global_random_state_is_left_alone() -> None:
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    list(simulate(SMALL))
    assert random.random() == expected


# -- ordering -----------------------------------------------------------------------------------


def test_events_are_in_non_decreasing_time_order(year: list[SimEvent]) -> None:
    times = [event.occurred_at for event in year]
    assert times == sorted(times)


def test_times_are_utc_and_match_the_payload(year: list[SimEvent]) -> None:
    for event in year:
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert event.kind == "member" or event.data["occurred_at"] == event.occurred_at.isoformat()
        assert event.kind != "member" or "occurred_at" not in event.data


def test_events_stay_inside_the_period(year: list[SimEvent]) -> None:
    config = SimulationConfig()
    start = datetime.combine(config.start, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=config.days)
    assert all(start <= event.occurred_at < end for event in year)


def test_members_sign_up_before_they_buy(year: list[SimEvent]) -> None:
    joined: set[str] = set()
    for event in year:
        if event.kind == "member":
            joined.add(str(event.data["external_id"]))
        elif event.kind == "purchase":
            assert _member_id(event.data) in joined


def test_returns_come_after_their_purchase(year: list[SimEvent]) -> None:
    bought_at: dict[str, datetime] = {}
    for event in year:
        if event.kind == "purchase":
            bought_at[str(event.data["external_id"])] = event.occurred_at
        elif event.kind == "return":
            purchase_id = str(event.data["purchase_external_id"])
            assert purchase_id in bought_at
            assert event.occurred_at > bought_at[purchase_id]


# -- shapes and invariants ----------------------------------------------------------------------


def test_every_purchase_total_is_the_sum_of_its_lines(year: list[SimEvent]) -> None:
    for purchase in _of(year, "purchase"):
        lines = _lines(purchase)
        assert 1 <= len(lines) <= 8
        amounts = []
        for line in lines:
            quantity, price, discount = (
                _int(line["quantity"]),
                _int(line["unit_price"]),
                _int(line["discount"]),
            )
            assert quantity >= 1 and price >= 0 and discount >= 0
            assert quantity * price - discount >= 0
            amounts.append(quantity * price - discount)
        assert _int(purchase["total"]) == sum(amounts)


def test_purchase_lines_come_from_the_catalog(year: list[SimEvent]) -> None:
    products = {product.sku: product for product in catalog()}
    for purchase in _of(year, "purchase"):
        skus = [str(line["sku"]) for line in _lines(purchase)]
        assert len(skus) == len(set(skus)), "one line per product"
        for line in _lines(purchase):
            product = products[str(line["sku"])]
            assert (line["name"], line["category"], line["unit_price"]) == (
                product.name,
                product.category,
                product.price,
            )


def test_purchase_fields(year: list[SimEvent]) -> None:
    stores = {f"store-0{n}" for n in range(1, 6)}
    for purchase in _of(year, "purchase"):
        assert set(purchase) == {
            "member",
            "external_id",
            "occurred_at",
            "store",
            "channel",
            "currency",
            "lines",
            "total",
        }
        assert purchase["member"] == {"external_id": _member_id(purchase)}
        assert purchase["currency"] == "RUB"
        assert purchase["channel"] in {"pos", "online", "app"}
        assert purchase["store"] in stores or (
            purchase["store"] is None and purchase["channel"] == "online"
        )


def test_members_are_plausible_and_unique(year: list[SimEvent]) -> None:
    members = _of(year, "member")
    assert len(members) == SimulationConfig().members
    for field in ("external_id", "phone", "email"):
        values = [m[field] for m in members if m[field] is not None]
        assert len(values) == len(set(values)), field
    for member in members:
        assert str(member["external_id"]).startswith("M")
        phone = member["phone"]
        assert phone is None or (
            isinstance(phone, str) and phone.startswith("+7916") and len(phone) == 12
        )
        email = member["email"]
        assert email is None or (isinstance(email, str) and email.endswith("@example.com"))
        birthday = member["birthday"]
        if birthday is not None:
            assert date(1950, 1, 1) <= date.fromisoformat(str(birthday)) <= date(2006, 12, 31)
        assert member["language"] in {"ru", "en"}
        consents = member["consents"]
        assert isinstance(consents, dict) and set(consents) == {"email", "sms", "push"}
        assert all(isinstance(value, bool) for value in consents.values())
        assert not consents["email"] or email is not None
        assert not consents["sms"] or phone is not None


def test_external_ids_are_unique_and_sequential(year: list[SimEvent]) -> None:
    for kind, prefix, width in (("member", "M", 6), ("purchase", "P", 8), ("return", "R", 7)):
        ids = [str(data["external_id"]) for data in _of(year, kind)]
        assert ids == [f"{prefix}{n:0{width}d}" for n in range(1, len(ids) + 1)]


def test_returns_never_give_back_more_than_was_bought(year: list[SimEvent]) -> None:
    purchases = {str(p["external_id"]): p for p in _of(year, "purchase")}
    kinds: Counter[str] = Counter()
    for refund in _of(year, "return"):
        purchase = purchases[str(refund["purchase_external_id"])]
        bought = {str(line["sku"]): _int(line["quantity"]) for line in _lines(purchase)}
        if refund["lines"] is not None:
            kinds["lines"] += 1
            assert refund["amount"] is None
            returned = _lines(refund)
            assert returned
            for line in returned:
                assert 1 <= _int(line["quantity"]) <= bought[str(line["sku"])]
            assert sum(_int(line["quantity"]) for line in returned) < sum(bought.values())
        elif refund["amount"] is not None:
            kinds["amount"] += 1
            assert 0 < _int(refund["amount"]) < _int(purchase["total"])
        else:
            kinds["full"] += 1
    assert kinds["full"] and kinds["lines"] and kinds["amount"]
    returned_ids = [refund["purchase_external_id"] for refund in _of(year, "return")]
    assert len(returned_ids) == len(set(returned_ids)), "at most one return per purchase"


def test_events_are_json_ready(year: list[SimEvent]) -> None:
    for event in year[:2000]:
        assert json.loads(json.dumps(event.data)) == event.data


# -- realism ------------------------------------------------------------------------------------


def test_default_run_has_a_realistic_volume(year: list[SimEvent]) -> None:
    counts = Counter(event.kind for event in year)
    assert counts["member"] == 500
    assert 10_000 <= counts["purchase"] <= 20_000
    assert 0.015 <= counts["return"] / counts["purchase"] <= 0.04


def test_a_few_heavy_buyers_make_a_large_share(year: list[SimEvent]) -> None:
    per_member = Counter(_member_id(p) for p in _of(year, "purchase"))
    counts = sorted(per_member.values(), reverse=True) + [0] * (500 - len(per_member))
    top_tenth = sum(counts[:50]) / sum(counts)
    assert top_tenth >= 0.3
    assert counts[250] < sum(counts) / 500, "the median member buys less than the mean"


def test_channels_and_languages_are_mostly_local(year: list[SimEvent]) -> None:
    channels = Counter(p["channel"] for p in _of(year, "purchase"))
    assert channels["pos"] / sum(channels.values()) > 0.7
    assert channels["online"] and channels["app"]
    languages = Counter(m["language"] for m in _of(year, "member"))
    assert languages["ru"] > 0.8 * 500 and languages["en"] > 0


def test_many_members_join_at_launch(year: list[SimEvent]) -> None:
    launch_week = date(2025, 1, 8)
    joined = [event.occurred_at.date() for event in year if event.kind == "member"]
    first_week = sum(1 for day in joined if day < launch_week)
    assert first_week >= 0.25 * 500


def test_some_lines_are_discounted(year: list[SimEvent]) -> None:
    lines = [line for p in _of(year, "purchase") for line in _lines(p)]
    discounted = sum(1 for line in lines if _int(line["discount"]) > 0)
    assert 0.05 < discounted / len(lines) < 0.25


def test_catalog_is_a_small_grocery_range() -> None:
    products = catalog()
    assert 35 <= len(products) <= 45
    assert len({p.sku for p in products}) == len(products)
    assert len({p.category for p in products}) == 6
    assert all(isinstance(p.price, int) and 50_00 <= p.price <= 2500_00 for p in products)
    products.clear()
    assert catalog(), "callers get a copy"


# -- size and streaming -------------------------------------------------------------------------
# How fast the simulation runs is for benchmarks/, not for tests.


def test_the_default_run_simulates_a_year_of_a_busy_program() -> None:
    assert sum(1 for _ in simulate(SimulationConfig())) > 10_000


def test_large_population_streams() -> None:
    """A hundred thousand members' year is a stream: its first events come one by one, in
    time order, without the rest of the year being built."""
    first = list(itertools.islice(simulate(SimulationConfig(members=100_000)), 500))
    assert len(first) == 500
    assert [e.occurred_at for e in first] == sorted(e.occurred_at for e in first)


def test_zero_members_is_an_empty_stream() -> None:
    assert list(simulate(SimulationConfig(members=0, days=30))) == []


@pytest.mark.parametrize(("members", "days"), [(-1, 365), (500, 0), (10**7, 365)])
def test_bad_config_is_rejected(members: int, days: int) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(members=members, days=days)
