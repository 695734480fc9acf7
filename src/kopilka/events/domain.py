"""Pure shapes of the ingest pipeline, shared by everything that produces purchases."""

from typing import NamedTuple


class LineItem(NamedTuple):
    """One purchase line as the API takes it (money in minor units)."""

    sku: str
    name: str
    category: str
    quantity: int
    unit_price: int
    discount: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price - self.discount

    def to_api(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "discount": self.discount,
        }
