"""The item-to-item maths and one member's recommendations on tiny hand-checked baskets."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from kopilka.recommendations.domain import (
    Availability,
    Line,
    Neighbour,
    Popular,
    Reason,
    Recommendation,
    bought_with,
    fit_neighbours,
    interleave,
    new_in_categories,
    popularity,
    recent_items,
    recommend,
    refills,
)

NOW = datetime(2032, 6, 1, 12, 0, tzinfo=UTC)
# m1, m2: A and B; m3: A and C; m4: B; m5: D (bought twice: counted once).
BASKETS = [
    ("m1", "A"), ("m1", "B"),
    ("m2", "A"), ("m2", "B"),
    ("m3", "A"), ("m3", "C"),
    ("m4", "B"),
    ("m5", "D"), ("m5", "D"),
]  # fmt: skip


def table(fitted_neighbours: list[Neighbour]) -> dict[str, list[tuple[str, float, int]]]:
    found: dict[str, list[tuple[str, float, int]]] = {}
    for n in fitted_neighbours:
        found.setdefault(n.sku, []).append((n.neighbour, n.score, n.together))
    return found


def test_cosine_neighbours_by_hand() -> None:
    fitted = fit_neighbours(BASKETS, shrinkage=0.0)
    assert (fitted.members, fitted.items) == (5, 4)
    got = table(fitted.neighbours)
    # A, B: 3 buyers each, 2 together → 2/√9; A, C: 1 together, C has 1 buyer → 1/√3.
    assert [(s, round(v, 4), t) for s, v, t in got["A"]] == [("B", 0.6667, 2), ("C", 0.5774, 1)]
    assert [(s, round(v, 4), t) for s, v, t in got["B"]] == [("A", 0.6667, 2)]
    assert [(s, round(v, 4), t) for s, v, t in got["C"]] == [("A", 0.5774, 1)]
    assert "D" not in got  # bought with nothing
    assert [n.rank for n in fitted.neighbours if n.sku == "A"] == [1, 2]


def test_shrinkage_scales_by_pairs_seen_together() -> None:
    got = table(fit_neighbours(BASKETS, shrinkage=10.0).neighbours)
    assert got["A"][0][1] == pytest.approx(2 / 3 * 2 / 12)
    assert got["A"][1][1] == pytest.approx(1 / math.sqrt(3) * 1 / 11)


def test_shrinkage_prefers_a_pair_seen_often_to_one_seen_once() -> None:
    # A: 9 buyers. X: one buyer, who bought A (cosine 1/3). B: 25 buyers, 4 of them bought
    # A (cosine 4/15 ≈ 0.27): plain cosine ranks X first, the shrunk one B.
    baskets = [(f"a{i}", "A") for i in range(9)] + [("a0", "X")]
    baskets += [(f"a{i}", "B") for i in range(1, 5)] + [(f"b{i}", "B") for i in range(21)]
    plain = table(fit_neighbours(baskets, shrinkage=0.0).neighbours)["A"]
    shrunk = table(fit_neighbours(baskets, shrinkage=10.0).neighbours)["A"]
    assert [s for s, _, _ in plain] == ["X", "B"]
    assert [s for s, _, _ in shrunk] == ["B", "X"]


def test_top_k_and_ties_by_sku() -> None:
    # Z bought with each of C, B, A by one member each: equal scores, kept in sku order.
    baskets = [("1", "Z"), ("1", "C"), ("2", "Z"), ("2", "B"), ("3", "Z"), ("3", "A")]
    fitted = fit_neighbours(baskets, k=2)
    assert [n.neighbour for n in fitted.neighbours if n.sku == "Z"] == ["A", "B"]
    assert fit_neighbours([]).neighbours == []


def test_popularity_counts_buyers_and_purchases() -> None:
    assert popularity([("m1", "A", 3), ("m2", "A", 1), ("m2", "B", 2)]) == {
        "A": (2, 4),
        "B": (1, 2),
    }


def line(purchase: str, sku: str, days_ago: float, category: str = "coffee") -> Line:
    return Line(purchase, sku, sku.lower(), category, NOW - timedelta(days=days_ago))


def test_recent_items_weigh_the_last_purchase_most() -> None:
    lines = [line("p1", "A", 30), line("p2", "B", 20), line("p3", "C", 10), line("p4", "A", 1)]
    assert recent_items(lines) == {"A": 1.0, "C": 0.5, "B": 1 / 3}


def test_bought_with_is_the_weighted_mean_similarity() -> None:
    neighbours = [
        Neighbour("A", 1, "X", 0.6, 5),
        Neighbour("A", 2, "Y", 0.2, 2),
        Neighbour("B", 1, "X", 0.3, 3),
        Neighbour("B", 2, "A", 0.5, 4),
    ]
    found = bought_with({"A": 1.0, "B": 0.5}, neighbours, exclude={"A", "B"})
    assert found == [
        ("X", pytest.approx((0.6 + 0.5 * 0.3) / 1.5), ("A", "B")),
        ("Y", pytest.approx(0.2 / 1.5), ("A",)),
    ]


def test_refills_due_between_one_and_three_usual_intervals() -> None:
    # Milk every 7 days, last 8 days ago: due (score 1 − (8/7 − 1)/2). Bread every 10
    # days, last 5 days ago: not yet. Tea every 5 days, last 30 days ago: given up.
    lines = [line(f"m{d}", "MILK", d) for d in (22, 15, 8)]
    lines += [line(f"b{d}", "BREAD", d) for d in (25, 15, 5)]
    lines += [line(f"t{d}", "TEA", d) for d in (40, 35, 30)]
    lines += [line("x", "ONCE", 100), line("y", "ONCE", 50)]  # two days: no interval yet
    assert refills(lines, NOW) == [("MILK", pytest.approx(1 - (8 / 7 - 1) / 2), 7, 8)]


def test_new_in_favourite_categories() -> None:
    popular = [
        Popular("C1", "c1", "coffee", 10, 20),
        Popular("C2", "c2", "coffee", 5, 6),
        Popular("D1", "d1", "dairy", 8, 9),
        Popular("S1", "s1", "snacks", 50, 60),
    ]
    found = new_in_categories(["coffee", "dairy"], popular, exclude={"C1"})
    assert found == [("C2", 0.5, "coffee"), ("D1", 0.5, "dairy")]


def test_a_members_recommendations_take_reasons_in_turn_and_respect_availability() -> None:
    lines = [line(f"m{d}", "MILK", d, "dairy") for d in (22, 15, 8)]
    lines += [line("p9", "LATTE", 2), line("p9", "CROISSANT", 2, "bakery"), line("p0", "LATTE", 40)]
    neighbours = [
        Neighbour("LATTE", 1, "CAKE", 0.4, 9),
        Neighbour("LATTE", 2, "BEANS", 0.3, 7),
        Neighbour("LATTE", 3, "MILK", 0.3, 7),  # bought already: not "bought with"
        Neighbour("CROISSANT", 1, "JAM", 0.2, 4),
    ]
    popular = [
        Popular("CAKE", "Cake", "bakery", 40, 50),
        Popular("BEANS", "Beans", "coffee", 30, 40),
        Popular("JAM", "Jam", "bakery", 10, 10),
        Popular("KEFIR", "Kefir", "dairy", 20, 30),
        Popular("CHEESE", "Cheese", "dairy", 25, 30),
        Popular("ESPRESSO", "Espresso", "coffee", 60, 90),
    ]
    got = recommend(lines, neighbours, popular, {}, None, NOW, 10)
    assert [(r.sku, r.reason) for r in got] == [
        ("MILK", Reason.REFILL),
        ("CAKE", Reason.BOUGHT_WITH),
        ("CHEESE", Reason.NEW_IN_CATEGORY),  # dairy: 3 lines, the favourite
        ("BEANS", Reason.BOUGHT_WITH),
        ("KEFIR", Reason.NEW_IN_CATEGORY),
        ("JAM", Reason.BOUGHT_WITH),
        ("ESPRESSO", Reason.NEW_IN_CATEGORY),
    ]
    milk = got[0]
    assert (milk.usual_days, milk.days_since, milk.name) == (7, 8, "milk")
    assert got[1].related == ("LATTE",) and got[1].name == "Cake"
    assert got[2].category == "dairy" and got[2].score == 1.0

    availability = {
        "CAKE": Availability("CAKE", False),
        "BEANS": Availability("BEANS", True, ("gold",)),
        "MILK": Availability("MILK", True, ("silver", "gold")),
    }
    silver = recommend(lines, neighbours, popular, availability, "silver", NOW, 3)
    assert [r.sku for r in silver] == ["MILK", "JAM", "CHEESE"]
    gold = recommend(lines, neighbours, popular, availability, "gold", NOW, 10)
    assert "BEANS" in [r.sku for r in gold] and "CAKE" not in [r.sku for r in gold]
    nobody = recommend(lines, neighbours, popular, availability, None, NOW, 10)
    assert {"MILK", "BEANS", "CAKE"}.isdisjoint(r.sku for r in nobody)


def test_interleave_takes_each_item_once() -> None:
    def rec(sku: str) -> Recommendation:
        return Recommendation(sku, None, None, Reason.REFILL, 1.0)

    lists = [[rec("A"), rec("B")], [rec("A"), rec("C"), rec("D")]]
    assert [r.sku for r in interleave(lists, 10)] == ["A", "B", "C", "D"]
    assert [r.sku for r in interleave(lists, 2)] == ["A", "B"]
