"""The ready journeys in examples/journeys pass the checks a save makes."""

import json
from pathlib import Path

import pytest

from kopilka.journeys.service import journey_service

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "journeys").glob("*.json"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_is_a_valid_journey(path: Path) -> None:
    document = journey_service.checked(json.loads(path.read_text()))
    assert document.steps
