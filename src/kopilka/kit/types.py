"""Value types the API takes everywhere: money and points are integers, identifiers bounded."""

from typing import Annotated

from pydantic import Field

Money = Annotated[int, Field(ge=0, le=10**13, description="Minor units (kopecks, cents).")]
ExternalId = Annotated[str, Field(min_length=1, max_length=200)]
