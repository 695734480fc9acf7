"""A basket line as the API takes it; the rules see it as ``BasketLine``."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.types import Int, Money


class PurchaseLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(min_length=1, max_length=100)]
    name: str | None = Field(default=None, max_length=300)
    category: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    tags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    quantity: Int = Field(ge=1, le=1_000_000)
    unit_price: Money
    discount: Money = 0

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price - self.discount

    @model_validator(mode="after")
    def _discount_fits(self) -> "PurchaseLineIn":
        if self.discount > self.quantity * self.unit_price:
            raise ValueError("discount is larger than quantity × unit_price")
        return self
