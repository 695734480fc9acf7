"""Offline evaluation of the item-to-item recommendations on the demo's simulated history.

  .venv/bin/python benchmarks/recommendations.py [--members 2000] [--days 365]

Builds the demo's purchases in memory (``kopilka.demo.domain.simulate``: the same stream
``kopilka demo`` loads), holds out each member's last purchase (members with at least two),
fits the model on everything else, and ranks 10 items per member:

- **item-item**: each item's score is the sum of its similarities to the member's earlier
  items, weighted by how many purchases held them (``domain.fit_neighbours``, the build's
  maths, k = 20 neighbours, shrinkage 10);
- **popularity**: the items most members bought, the same for everyone.

Two tasks: *all items* (any held-out item counts; the item-item model also scores the
member's own items, similarity 1 to themselves, as a repeat-purchase shop must) and *new
items* (only held-out items the member never bought before count, and neither ranker may
propose those — what "bought with" does in the API). Prints hit rate@10 (a held-out item
among the 10) and NDCG@10 (binary relevance, normalised by the best possible order of the
held-out items) side by side, and the fit time.
"""

import argparse
import math
import time
from collections import Counter, defaultdict

from kopilka.demo.domain import SimulationConfig, simulate
from kopilka.recommendations.domain import fit_neighbours

K = 10


def history(members: int, days: int) -> dict[str, list[set[str]]]:
    """Each member's baskets (sets of skus) in time order; returns are ignored."""
    baskets: dict[str, list[set[str]]] = defaultdict(list)
    for event in simulate(SimulationConfig(members=members, days=days)):
        if event.kind != "purchase":
            continue
        member = event.data["member"]["external_id"]  # type: ignore[index]
        lines = event.data["lines"]
        baskets[str(member)].append({str(line["sku"]) for line in lines})  # type: ignore[attr-defined]
    return baskets


def ndcg(ranked: list[str], relevant: set[str]) -> float:
    gain = sum(1 / math.log2(i + 2) for i, sku in enumerate(ranked[:K]) if sku in relevant)
    best = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), K)))
    return gain / best if best else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()

    started = time.perf_counter()
    baskets = history(args.members, args.days)
    simulated = time.perf_counter() - started
    train: dict[str, Counter[str]] = {}
    held: dict[str, set[str]] = {}
    for member, bs in baskets.items():
        counts: Counter[str] = Counter()
        for b in bs[:-1] if len(bs) >= 2 else bs:
            counts.update(b)
        train[member] = counts
        if len(bs) >= 2:
            held[member] = bs[-1]

    pairs = [(m, sku) for m, counts in train.items() for sku in counts]
    import scipy.sparse  # noqa: F401 (loaded before the clock starts: the fit alone is timed)

    started = time.perf_counter()
    fitted = fit_neighbours(pairs)
    fit_seconds = time.perf_counter() - started
    sims: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for n in fitted.neighbours:
        sims[n.sku].append((n.neighbour, n.score))
    buyers: Counter[str] = Counter(sku for _, sku in pairs)
    popular = [sku for sku, _ in sorted(buyers.items(), key=lambda kv: (-kv[1], kv[0]))]

    def item_item(counts: Counter[str], *, new_only: bool) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for sku, n in counts.items():
            if not new_only:
                scores[sku] += n  # an item is most similar to itself
            for other, s in sims.get(sku, []):
                scores[other] += n * s
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [s for s, _ in ranked if not (new_only and s in counts)][:K]

    def by_popularity(counts: Counter[str], *, new_only: bool) -> list[str]:
        return [s for s in popular if not (new_only and s in counts)][:K]

    print(
        f"demo history: {len(baskets):,} members, {sum(map(len, baskets.values())):,} purchases,"
        f" {len(buyers)} items (simulated in {simulated:.1f} s); {len(held):,} members with a"
        f" held-out last purchase"
    )
    print(
        f"fit: {fitted.members:,} members × {fitted.items} items, "
        f"{len(fitted.neighbours):,} neighbours in {fit_seconds * 1000:.0f} ms"
    )
    print(f"{'task':<11} {'ranker':<11} {'members':>8} {'hit@10':>8} {'NDCG@10':>8}")
    for task, new_only in (("all items", False), ("new items", True)):
        for name, ranker in (("item-item", item_item), ("popularity", by_popularity)):
            hits = gains = 0.0
            counted = 0
            for member, out in held.items():
                relevant = {s for s in out if s not in train[member]} if new_only else out
                if not relevant:
                    continue
                ranked = ranker(train[member], new_only=new_only)
                counted += 1
                hits += bool(relevant & set(ranked))
                gains += ndcg(ranked, relevant)
            print(
                f"{task:<11} {name:<11} {counted:>8,} {hits / counted:>8.3f}"
                f" {gains / counted:>8.3f}"
            )


if __name__ == "__main__":
    main()
