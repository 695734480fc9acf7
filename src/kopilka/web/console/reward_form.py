"""The console's reward form: its fields read into what ``POST /v1/rewards`` and ``PATCH
/v1/rewards/{key}`` take, and a reward shown back in it.

Stock is typed as the **total** number of items (those already redeemed included), which
is how people count a shelf; the service turns it into what is left
(``reward_service.set_total_stock``).
"""

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from kopilka.kit.clock import as_utc
from kopilka.programs.service import ProgramContext
from kopilka.rewards.judging import ladder_ids
from kopilka.rewards.schemas import Reward, RewardCreate, RewardUpdate
from kopilka.web.console.catalog_fields import (
    FieldReader,
    checked,
    local_input,
    money_input,
    raw_values,
)
from kopilka.web.forms import FormInvalid, integer, text

# The fields of the form that are the API's fields of the same name.
SHARED_FIELDS = (
    "name",
    "description",
    "image_url",
    "category",
    "currency",
    "price",
    "available_from",
    "available_until",
    "min_tier",
    "per_member_limit",
    "coupon_campaign",
    "gift_amount",
    "code_source",
    "code_pattern",
    "status",
)
TEXTS = ("name", "description", "image_url", "category", "code_pattern")
CHOICES = ("currency", "min_tier", "coupon_campaign", "code_source", "status")
TIER_PRICE = "tier_price_"
STOCK_TOTAL = "stock_total"
STOCK_TOTAL_WAS = "stock_total_was"  # the total the edited page showed


def form_fields(program: ProgramContext, *, creating: bool) -> list[str]:
    names = [*SHARED_FIELDS, STOCK_TOTAL, *(TIER_PRICE + t for t in ladder_ids(program))]
    return ["key", "kind", *names] if creating else names


def api_field(name: str) -> str:
    """The form's field that shows an error the API reports on ``name``."""
    if name.startswith("tier_prices."):
        return TIER_PRICE + name.split(".", 1)[1]
    if name == "stock":
        return STOCK_TOTAL
    return name.split(".", 1)[0]


@dataclass(frozen=True)
class RewardForm:
    """A submitted form: the API's fields, and the total stock typed (``None``:
    unlimited) with whether it was changed from what the page showed."""

    values: dict[str, Any]
    stock_total: int | None
    stock_changed: bool


def read_reward(form: FormData, program: ProgramContext, *, creating: bool) -> RewardForm:
    """The form's fields, every unreadable one named (``FormInvalid``)."""
    reader = FieldReader(form)
    zone = program.settings.timezone
    values: dict[str, Any] = {}
    for name in TEXTS:
        values[name] = reader.text(name, limit=20_000)
    for name in CHOICES:
        values[name] = text(form, name, limit=200)
    values["price"] = reader.integer("price", required=True)
    values["per_member_limit"] = reader.integer("per_member_limit")
    for name in ("available_from", "available_until"):
        values[name] = reader.instant(name, zone)
    currency = program.settings.money_currency
    values["gift_amount"] = reader.money("gift_amount", currency)
    tier_prices: dict[str, Any] = {}
    for tier in ladder_ids(program):
        name = TIER_PRICE + tier
        found = reader.integer(name)
        if found is not None:
            tier_prices[tier] = found
    values["tier_prices"] = tier_prices or None
    total = reader.integer(STOCK_TOTAL, minimum=0)
    was = reader.take(STOCK_TOTAL, integer, form, STOCK_TOTAL_WAS)
    if creating:
        values["key"] = text(form, "key", limit=200)
        values["kind"] = text(form, "kind", limit=50)
    reader.done()
    return RewardForm(values, total, total != was)


def new_reward(submitted: RewardForm) -> RewardCreate:
    """What ``POST /v1/rewards`` takes (the total stock is what is left: nothing is
    redeemed yet)."""
    values = {k: v for k, v in submitted.values.items() if v is not None}
    if submitted.stock_total is not None:
        values["stock"] = submitted.stock_total
    return checked(RewardCreate, values)


def reward_changes(current: Reward, submitted: RewardForm) -> RewardUpdate:
    """What ``PATCH /v1/rewards/{key}`` takes: only the fields that differ from the reward
    as it is (a field emptied is cleared)."""
    changes = {
        name: value for name, value in submitted.values.items() if value != _current(current, name)
    }
    if "status" in changes and changes["status"] is None:
        raise FormInvalid({"status": "choose a status"})
    return checked(RewardUpdate, changes)


def _current(reward: Reward, name: str) -> Any:
    value = getattr(reward, name)
    if name in ("available_from", "available_until") and value is not None:
        return as_utc(value)
    if name == "tier_prices":
        return value or None
    return value


def reward_values(reward: Reward, redeemed: int, program: ProgramContext) -> dict[str, str]:
    """A reward as its edit form shows it."""
    zone = program.settings.timezone
    values = {
        name: "" if getattr(reward, name) is None else str(getattr(reward, name))
        for name in (*TEXTS, *CHOICES, "price", "per_member_limit")
    }
    values["available_from"] = local_input(reward.available_from, zone)
    values["available_until"] = local_input(reward.available_until, zone)
    values["gift_amount"] = money_input(reward.gift_amount, program.settings.money_currency)
    for tier in ladder_ids(program):
        price = (reward.tier_prices or {}).get(tier)
        values[TIER_PRICE + tier] = "" if price is None else str(price)
    total = "" if reward.stock is None else str(reward.stock + redeemed)
    values[STOCK_TOTAL] = values[STOCK_TOTAL_WAS] = total
    return values


def submitted_values(form: FormData, program: ProgramContext, *, creating: bool) -> dict[str, str]:
    """The form as it was sent, to show it again beside its errors."""
    return raw_values(form, [*form_fields(program, creating=creating), STOCK_TOTAL_WAS])
