"""API shapes of webhook endpoints and their deliveries."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kopilka.kit.types import Flag
from kopilka.webhooks.domain import event_type_problem, url_problem

EventType = Annotated[str, Field(min_length=1, max_length=100)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=100)]


def _valid_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _valid_types(values: list[str]) -> list[str]:
    for value in values:
        problem = event_type_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r}: {problem}")
    return list(dict.fromkeys(values))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(max_length=2000, description="http:// or https:// URL that gets the POSTs.")
    event_types: EventTypes = Field(
        default_factory=lambda: ["*"],
        description="Event types to send: '*', a type ('tier.upgraded') or a prefix ('points.*').",
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: Flag = True

    _url = field_validator("url")(_valid_url)
    _types = field_validator("event_types")(_valid_types)


class WebhookUpdate(BaseModel):
    """Fields to change; enabling a disabled endpoint clears its failure record."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str | None = Field(default=None, max_length=2000)
    event_types: EventTypes | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: Flag | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _valid_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _valid_types(values)


class Webhook(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why the endpoint was disabled, if it was.")
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last success."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_… signing secret; shown only now.")


class WebhookPage(BaseModel):
    items: list[Webhook]
    next_cursor: str | None


class Attempt(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    response: str | None = Field(description="The first 1,000 characters of the answer.")
    duration_ms: int
    error: str | None
    succeeded: bool


class Delivery(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    event_id: UUID = Field(description="The event's id, sent as webhook-id.")
    event_type: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(Delivery):
    body: str = Field(description="The JSON body as sent.")
    log: list[Attempt]


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None
