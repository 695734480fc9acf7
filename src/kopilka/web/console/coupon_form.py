"""The console's coupon-campaign form: its fields read into what ``POST
/v1/coupon-campaigns`` and ``PATCH /v1/coupon-campaigns/{key}`` take, and a campaign shown
back in it.

A discount is typed in the words of its kind: a percentage for ``percent``, a sum of money
for ``fixed`` (minor units for the API), a product's SKU for ``free_product``.
"""

from typing import Any

from starlette.datastructures import FormData

from kopilka.coupons.schemas import CampaignCreate, CampaignUpdate
from kopilka.programs.service import ProgramContext
from kopilka.web.console.catalog_fields import (
    FieldReader,
    checked,
    local_input,
    raw,
    raw_values,
    words,
)
from kopilka.web.forms import flag, text

DISCOUNT_FIELDS = ("discount_kind", "percent", "amount_off", "max_discount", "free_sku")
TERMS_FIELDS = ("min_basket", "categories", "skus", "uses_per_code", "code_pattern")
EDITABLE = (
    "name",
    "description",
    "valid_from",
    "valid_until",
    "per_member_limit",
    "total_limit",
    "stackable",
    "give_back_on_return",
    "valid_days",
    "status",
)
NEW_FIELDS = ("key", *DISCOUNT_FIELDS, *TERMS_FIELDS, *EDITABLE)
COUNTS = ("per_member_limit", "total_limit", "valid_days")
CHECKBOXES = ("stackable", "give_back_on_return")
# Where a refusal of the discount is shown, by the discount's kind.
VALUE_FIELD = {"percent": "percent", "fixed": "amount_off", "free_product": "free_sku"}


def discount_field(kind: str | None) -> Any:
    """The form's field that shows an error the API reports on ``name``."""

    def rename(name: str) -> str:
        if name in ("discount", "discount.value"):
            return VALUE_FIELD.get(kind or "", "discount_kind")
        if name == "discount.kind":
            return "discount_kind"
        if name.startswith("discount."):
            return name.split(".", 1)[1]
        return name.split(".", 1)[0]

    return rename


def _editable(form: FormData, reader: FieldReader, zone: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": reader.text("name", limit=1000),
        "description": reader.text("description", limit=20_000),
        "status": text(form, "status", limit=50),
    }
    for name in ("valid_from", "valid_until"):
        values[name] = reader.instant(name, zone)
    for name in COUNTS:
        values[name] = reader.integer(name)
    for name in CHECKBOXES:
        values[name] = flag(form, name)
    return values


def read_new_campaign(form: FormData, program: ProgramContext) -> CampaignCreate:
    """A new campaign from its form; every bad field named (``FormInvalid``)."""
    reader = FieldReader(form)
    currency = program.settings.money_currency
    values = _editable(form, reader, program.settings.timezone)
    kind = text(form, "discount_kind", limit=50)
    discount: dict[str, Any] = {"kind": kind, "value": 0}
    if kind == "percent":
        discount["value"] = reader.integer("percent") or 0
        discount["max_discount"] = reader.money("max_discount", currency)
    elif kind == "fixed":
        discount["value"] = reader.money("amount_off", currency) or 0
    elif kind == "free_product":
        discount["free_sku"] = text(form, "free_sku", limit=200)
    values["discount"] = discount
    values["key"] = text(form, "key", limit=200)
    values["min_basket"] = reader.money("min_basket", currency) or 0
    values["categories"] = words(raw(form, "categories"))
    values["skus"] = words(raw(form, "skus"))
    values["uses_per_code"] = reader.integer("uses_per_code")
    values["code_pattern"] = text(form, "code_pattern", limit=200) or "####-####-####"
    reader.done()
    # An empty "uses per code" is sent as null: unlimited uses (left out it would be 1).
    given = {k: v for k, v in values.items() if v is not None or k == "uses_per_code"}
    return checked(CampaignCreate, given)


def read_campaign_changes(
    form: FormData, program: ProgramContext, current: dict[str, Any]
) -> CampaignUpdate:
    """The fields of the edit form that differ from the campaign as it is (an emptied limit
    or date is cleared)."""
    reader = FieldReader(form)
    values = _editable(form, reader, program.settings.timezone)
    reader.done()
    return checked(CampaignUpdate, {k: v for k, v in values.items() if v != current.get(k)})


def campaign_values(campaign: dict[str, Any], program: ProgramContext) -> dict[str, str]:
    """A campaign as its edit form shows it."""
    zone = program.settings.timezone
    values = {
        name: "" if campaign.get(name) is None else str(campaign[name])
        for name in ("name", "description", "status", *COUNTS)
    }
    values["valid_from"] = local_input(campaign["valid_from"], zone)
    values["valid_until"] = local_input(campaign["valid_until"], zone)
    for name in CHECKBOXES:
        values[name] = "on" if campaign[name] else ""
    return values


def new_campaign_values() -> dict[str, str]:
    """A new campaign's form as it first shows: single-use codes, given back on returns."""
    return {
        "discount_kind": "percent",
        "uses_per_code": "1",
        "give_back_on_return": "on",
        "code_pattern": "####-####-####",
        "status": "active",
    }


def submitted(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The form as it was sent, to show it again beside its errors."""
    return raw_values(form, names)
