"""The demo's shopper simulation: how fast it yields events, and how soon a big one starts.

  .venv/bin/python benchmarks/demo_simulation.py

Prints the events per second of the default run (500 members, a year) and the time to the
first 500 events of a 100,000-member run (the stream must not build the year first).
Target: the default run well under a second; the big run's first events at once.
"""

import itertools
import time

from kopilka.demo.domain import SimulationConfig, simulate


def main() -> None:
    started = time.perf_counter()
    count = sum(1 for _ in simulate(SimulationConfig()))
    spent = time.perf_counter() - started
    print(f"default run: {count:,} events in {spent:.2f} s ({count / spent:,.0f} events/s)")
    started = time.perf_counter()
    first = list(itertools.islice(simulate(SimulationConfig(members=100_000)), 500))
    spent = time.perf_counter() - started
    print(f"100,000 members: first {len(first)} events after {spent * 1000:.0f} ms")


if __name__ == "__main__":
    main()
