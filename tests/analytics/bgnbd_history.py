"""Purchase histories drawn from a known BG/NBD process (fixed seed), for the prediction
tests: the fitted parameters should come back near the true ones.

While alive a customer buys as a Poisson process whose weekly rate is gamma(r, α)
across customers; after each purchase they drop out with a probability that is beta(a, b)
across customers."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.bulk import insert_rows
from kopilka.kit.ids import new_id
from kopilka.models import Member, Purchase
from kopilka.models.base import table

# Near the CDNOW estimates (Fader, Hardie and Lee 2005), with faster buying so that a few
# hundred customers over a year carry enough repeats.
TRUE_PARAMS = {"r": 0.8, "alpha": 4.0, "a": 0.8, "b": 2.5}


@dataclass(frozen=True)
class Customer:
    index: int
    days: list[date]  # purchase days, the first one first
    amounts: list[int]  # minor units, one per day


def simulate(customers: int, start: date, end: date, seed: int = 15) -> list[Customer]:
    """``customers`` whose first purchase falls in the first eight weeks after ``start``,
    observed until ``end``; each buys for a customer-specific mean amount."""
    rng = np.random.default_rng(seed)
    params = TRUE_PARAMS
    weeks = (end - start).days / 7
    found = []
    for index in range(customers):
        rate = rng.gamma(params["r"], 1 / params["alpha"])
        drop = rng.beta(params["a"], params["b"])
        mean_amount = rng.gamma(4.0, 25_000 / 4.0)  # about 250.00 per purchase
        birth = float(rng.integers(0, 56)) / 7
        times = [birth]
        while True:
            nxt = times[-1] + rng.exponential(1 / rate)
            if nxt > weeks:
                break
            times.append(nxt)
            # The chance to drop out comes after each repeat purchase (FHL 2005).
            if rng.random() < drop:
                break
        days = sorted({start + timedelta(days=int(t * 7)) for t in times})
        amounts = [max(100, int(rng.gamma(6.0, mean_amount / 6.0))) for _ in days]
        found.append(Customer(index, days, amounts))
    return found


async def load(
    engine: AsyncEngine, program_id: UUID, customers: list[Customer], at: datetime
) -> dict[int, UUID]:
    """Members and their purchases written straight into the tables (a year of history
    for hundreds of members in a blink; the purchase path is tested elsewhere): customer
    index → member id. Each purchase at noon UTC of its day."""
    members: dict[int, UUID] = {}
    member_rows: list[dict[str, Any]] = []
    purchase_rows: list[dict[str, Any]] = []
    for customer in customers:
        member_id = members[customer.index] = new_id()
        member_rows.append(
            {
                "id": member_id,
                "program_id": program_id,
                "name": f"Simulated {customer.index}",
                "consents": {},
                "status": "active",
                "tags": [],
                "attributes": {},
                "created_at": at,
                "updated_at": at,
            }
        )
        for day, amount in zip(customer.days, customer.amounts, strict=True):
            when = datetime.combine(day, time(12, 0), tzinfo=UTC)
            purchase_rows.append(purchase_row(program_id, member_id, when, amount))
    async with transaction(engine) as conn:
        await insert_rows(conn, table(Member), member_rows)
        await insert_rows(conn, table(Purchase), purchase_rows)
    return members


def purchase_row(
    program_id: UUID, member_id: UUID, when: datetime, total: int, returned: int = 0
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "program_id": program_id,
        "member_id": member_id,
        "external_id": f"sim-{new_id().hex}",
        "occurred_at": when,
        "store": None,
        "channel": "pos",
        "currency": "RUB",
        "total": total,
        "returned_amount": returned,
        "context": None,
        "payments": None,
        "earned": {},
        "reversed": {},
        "request_hash": "simulated",
        "answer": {},
        "created_at": when,
    }
