"""What the CRM and segment tests share: members and purchases through the API, and the
worker with the facts and segments consumers."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.outbox.consumers import Consumer, registry
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body, unique


async def new_member(api: Api, **fields: Any) -> dict[str, Any]:
    body = member_body(**fields)
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    found["external_id"] = body["external_id"]
    return found


async def buy(
    api: Api,
    member: dict[str, Any],
    total: int,
    at: datetime,
    *,
    category: str = "coffee",
    store: str = "store-01",
    sku: str = "SKU-1",
) -> dict[str, Any]:
    body = purchase_body(member["external_id"], total, occurred_at=at.isoformat(), store=store)
    body["lines"][0]["category"] = category
    body["lines"][0]["sku"] = sku
    response = await api.post("/v1/purchases", body)
    assert response.status_code in (200, 201), response.text
    return body


async def give_back(
    api: Api, purchase: dict[str, Any], at: datetime, amount: int | None = None
) -> None:
    body: dict[str, Any] = {
        "external_id": unique("r"),
        "purchase_external_id": purchase["external_id"],
        "occurred_at": at.isoformat(),
    }
    if amount is not None:
        body["amount"] = amount
    response = await api.post("/v1/returns", body)
    assert response.status_code == 201, response.text


def consumers(*names: str) -> list[Consumer]:
    import_consumers()
    found = [registry.get(name) for name in names]
    assert all(c is not None for c in found)
    return [c for c in found if c is not None]


def worker(engine: AsyncEngine, *names: str) -> Worker:
    return Worker(engine, consumers(*(names or ("crm.facts",))))
