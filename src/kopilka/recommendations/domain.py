"""Recommendations without I/O: the item-to-item model fitted on co-purchases, and what one
member is recommended from it (``docs/recommendations.md``).

The model: a member × item matrix (1 where the member bought the item in a counted
purchase), its co-occurrence ``C = XᵀX``, and per pair of items the cosine similarity shrunk
towards 0 when few members bought both::

    sim(i, j) = C[i, j] / sqrt(n_i · n_j) · C[i, j] / (C[i, j] + λ)

(``n_i`` the buyers of ``i``, λ the shrinkage): a pair seen together by two members of
three is not trusted like one seen together by two hundred of three hundred. Each item keeps
its ``k`` most similar items. numpy and scipy are imported inside :func:`fit_neighbours`
only: the API and the worker read the stored neighbours and never load them.
"""

import itertools
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

NEIGHBOURS_PER_ITEM = 20
SHRINKAGE = 10.0
RECENT_PURCHASES = 3  # "bought with" looks at the items of the member's last purchases
FAVOURITE_CATEGORIES = 2  # "never tried" looks at the member's most bought categories
POPULAR_PER_CATEGORY = 20  # … and at that many of each category's most bought items
REFILL_MIN_DAYS = 3  # an item bought on at least this many days has a usual interval
REFILL_LATE = 3.0  # past this many usual intervals the member has stopped buying it
DAY = 86_400.0


class Reason(StrEnum):
    """Why an item is recommended."""

    REFILL = "refill"  # bought regularly; the usual interval has passed
    BOUGHT_WITH = "bought_with"  # bought by members who bought the member's recent items
    NEW_IN_CATEGORY = "new_in_category"  # popular in a favourite category, never bought


@dataclass(frozen=True)
class Line:
    """A line of one of the member's counted purchases."""

    purchase_id: str
    sku: str
    name: str | None
    category: str | None
    at: datetime


@dataclass(frozen=True)
class Neighbour:
    sku: str
    rank: int
    neighbour: str
    score: float
    together: int


@dataclass(frozen=True)
class Popular:
    sku: str
    name: str | None
    category: str | None
    buyers: int
    purchases: int


@dataclass(frozen=True)
class Availability:
    """Unavailable items are never recommended; ``tiers`` (None: every tier) limits an item
    to members of those tiers."""

    sku: str
    available: bool
    tiers: tuple[str, ...] | None = None

    def allows(self, tier: str | None) -> bool:
        if not self.available:
            return False
        return self.tiers is None or (tier is not None and tier in self.tiers)


@dataclass(frozen=True)
class Recommendation:
    """An item for the member, why (``reason``), and how strongly (0–1, comparable within a
    reason): ``related`` are the member's items it was bought with, ``category`` the
    favourite category, ``usual_days``/``days_since`` the refill's interval and age."""

    sku: str
    name: str | None
    category: str | None
    reason: Reason
    score: float
    related: tuple[str, ...] = ()
    usual_days: int | None = None
    days_since: int | None = None


@dataclass(frozen=True)
class Fitted:
    """A fitted model: each item's neighbours, and how much history it was fitted on."""

    members: int
    items: int
    neighbours: list[Neighbour] = field(default_factory=list)


# --- fitting -------------------------------------------------------------------------------


def fit_neighbours(
    baskets: Iterable[tuple[str, str]],
    *,
    k: int = NEIGHBOURS_PER_ITEM,
    shrinkage: float = SHRINKAGE,
) -> Fitted:
    """The ``k`` nearest items of every item from (member, sku) pairs (repeats count once),
    by shrunk cosine similarity; ties go to the smaller sku, so a fit is reproducible."""
    members: dict[str, int] = {}
    rows: list[int] = []
    skus: list[str] = []
    for member, sku in baskets:
        rows.append(members.setdefault(member, len(members)))
        skus.append(sku)
    items = sorted(set(skus))
    if not items:
        return Fitted(len(members), 0)
    # Imported only now: a program without purchases never loads them.
    import numpy as np
    from scipy import sparse

    index = {sku: i for i, sku in enumerate(items)}
    cols = np.fromiter((index[s] for s in skus), dtype=np.int64, count=len(skus))
    x = sparse.coo_matrix(
        (np.ones(len(rows), dtype=np.float64), (np.asarray(rows, dtype=np.int64), cols)),
        shape=(len(members), len(items)),
    ).tocsr()
    x.data[:] = 1.0  # a member's repeats of an item were summed: bought or not
    buyers = np.asarray(x.sum(axis=0)).ravel()
    together = (x.T @ x).tocoo()
    keep = together.row != together.col
    i, j, c = together.row[keep], together.col[keep], together.data[keep]
    sims = c / np.sqrt(buyers[i] * buyers[j]) * (c / (c + shrinkage))
    # Per item, most similar first, then by sku: one sort of every pair.
    order = np.lexsort((j, -sims, i))
    i, j, c, sims = i[order], j[order], c[order], sims[order]
    starts = np.searchsorted(i, np.arange(len(items)))
    ranks = np.arange(len(i)) - starts[i] + 1
    top = ranks <= k
    neighbours = [
        Neighbour(items[a], int(r), items[b], float(s), int(n))
        for a, b, n, s, r in zip(
            i[top].tolist(),
            j[top].tolist(),
            c[top].tolist(),
            sims[top].tolist(),
            ranks[top].tolist(),
            strict=True,
        )
    ]
    return Fitted(len(members), len(items), neighbours)


def popularity(baskets: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    """sku → (members who bought it, purchases it was in), from (member, sku, purchases)."""
    found: dict[str, tuple[int, int]] = {}
    for _, sku, purchases in baskets:
        buyers, total = found.get(sku, (0, 0))
        found[sku] = (buyers + 1, total + purchases)
    return found


# --- one member -----------------------------------------------------------------------------


def recent_items(lines: Sequence[Line], purchases: int = RECENT_PURCHASES) -> dict[str, float]:
    """The items of the member's last ``purchases`` purchases, each weighted by how recent
    its purchase is (the last 1, the one before ½ …)."""
    order: list[str] = []
    for line in sorted(lines, key=lambda ln: (ln.at, ln.purchase_id), reverse=True):
        if line.purchase_id not in order:
            order.append(line.purchase_id)
    weights: dict[str, float] = {}
    for line in lines:
        if line.purchase_id in order[:purchases]:
            weight = 1.0 / (order.index(line.purchase_id) + 1)
            weights[line.sku] = max(weights.get(line.sku, 0.0), weight)
    return weights


def favourite_categories(lines: Sequence[Line], count: int = FAVOURITE_CATEGORIES) -> list[str]:
    """The categories the member bought most lines of (ties: by name)."""
    counts = Counter(line.category for line in lines if line.category)
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]


def bought_with(
    recent: Mapping[str, float],
    neighbours: Iterable[Neighbour],
    exclude: set[str],
) -> list[tuple[str, float, tuple[str, ...]]]:
    """Items similar to the member's recent ones, not in ``exclude``: (sku, score, the recent
    items it was bought with). The score is the recency-weighted mean similarity to the
    recent items, so it stays within 0–1."""
    total = sum(recent.values())
    scores: dict[str, float] = defaultdict(float)
    related: dict[str, list[str]] = defaultdict(list)
    for n in neighbours:
        weight = recent.get(n.sku)
        if weight is None or n.neighbour in exclude:
            continue
        scores[n.neighbour] += weight * n.score
        related[n.neighbour].append(n.sku)
    found = [(sku, s / total, tuple(sorted(related[sku]))) for sku, s in scores.items() if s > 0]
    return sorted(found, key=lambda f: (-f[1], f[0]))


def refills(lines: Sequence[Line], now: datetime) -> list[tuple[str, float, int, int]]:
    """Items the member buys regularly (on ``REFILL_MIN_DAYS`` days or more) whose usual
    interval — the median gap between those days — has passed, but not by more than
    ``REFILL_LATE`` intervals: (sku, score, usual days, days since). The score is 1 when the
    item is just due and falls to 0 at the late limit."""
    days: dict[str, set[float]] = defaultdict(set)
    for line in lines:
        days[line.sku].add(math.floor(line.at.timestamp() / DAY))
    today = math.floor(now.timestamp() / DAY)
    found: list[tuple[str, float, int, int]] = []
    for sku, bought in days.items():
        if len(bought) < REFILL_MIN_DAYS:
            continue
        ordered = sorted(bought)
        usual = statistics.median(b - a for a, b in itertools.pairwise(ordered))
        since = today - ordered[-1]
        ratio = since / usual
        if not 1.0 <= ratio <= REFILL_LATE:
            continue
        score = 1.0 - (ratio - 1.0) / (REFILL_LATE - 1.0)
        found.append((sku, score, round(usual), math.floor(since)))
    return sorted(found, key=lambda f: (-f[1], f[0]))


def new_in_categories(
    categories: Sequence[str], popular: Iterable[Popular], exclude: set[str]
) -> list[tuple[str, float, str]]:
    """The most bought items of the member's favourite ``categories`` they have never bought:
    (sku, score, category); the score is the item's buyers over its category's best seller's,
    halved for the second favourite category, a third for the third …"""
    by_category: dict[str, list[Popular]] = defaultdict(list)
    for p in popular:
        if p.category is not None and p.category in categories:
            by_category[p.category].append(p)
    found: list[tuple[str, float, str]] = []
    for place, category in enumerate(categories, start=1):
        items = by_category.get(category, [])
        best = max((p.buyers for p in items), default=0)
        for p in items:
            if p.sku not in exclude and best > 0:
                found.append((p.sku, p.buyers / best / place, category))
    return sorted(found, key=lambda f: (-f[1], f[0]))


def recommend(
    lines: Sequence[Line],
    neighbours: Iterable[Neighbour],
    popular: Iterable[Popular],
    availability: Mapping[str, Availability],
    tier: str | None,
    now: datetime,
    limit: int,
) -> list[Recommendation]:
    """Up to ``limit`` items for the member, each once, with its reason.

    Each reason ranks its own items; the list takes them in turn — a refill, an item bought
    with, a new one in a favourite category, and again — so one reason with many items does
    not crowd out the others. "Bought with" and "new in category" leave out what the member
    ever bought; refills are, by definition, items they bought. Unavailable items, and items
    kept for tiers the member is not in, are left out of all three.
    """
    popular = list(popular)
    names: dict[str, tuple[str | None, str | None]] = {p.sku: (p.name, p.category) for p in popular}
    for line in sorted(lines, key=lambda ln: ln.at):
        names[line.sku] = (line.name, line.category)  # the member's own receipt's wording
    bought = {line.sku for line in lines}
    hidden = {sku for sku, a in availability.items() if not a.allows(tier)}

    def item(
        sku: str,
        reason: Reason,
        score: float,
        related: tuple[str, ...] = (),
        usual_days: int | None = None,
        days_since: int | None = None,
    ) -> Recommendation:
        name, category = names.get(sku, (None, None))
        return Recommendation(
            sku, name, category, reason, round(score, 4), related, usual_days, days_since
        )

    lists: list[list[Recommendation]] = [
        [
            item(sku, Reason.REFILL, score, usual_days=usual, days_since=since)
            for sku, score, usual, since in refills(lines, now)
            if sku not in hidden
        ],
        [
            item(sku, Reason.BOUGHT_WITH, score, related=related)
            for sku, score, related in bought_with(recent_items(lines), neighbours, bought | hidden)
        ],
        [
            item(sku, Reason.NEW_IN_CATEGORY, score)
            for sku, score, category in new_in_categories(
                favourite_categories(lines), popular, bought | hidden
            )
        ],
    ]
    return interleave(lists, limit)


def interleave(lists: Sequence[Sequence[Recommendation]], limit: int) -> list[Recommendation]:
    """The lists taken in turn, first of each, then second …, each item once, up to ``limit``."""
    chosen: list[Recommendation] = []
    seen: set[str] = set()
    for position in range(max((len(items) for items in lists), default=0)):
        for items in lists:
            if len(chosen) >= limit:
                return chosen
            if position < len(items) and items[position].sku not in seen:
                seen.add(items[position].sku)
                chosen.append(items[position])
    return chosen
