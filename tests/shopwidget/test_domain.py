"""Pure rules of the widget: shops' origins as a browser sends them, tokens, the cap."""

import uuid
from datetime import UTC, datetime

import pytest

from kopilka.errors import InvalidInput
from kopilka.shopwidget import domain
from kopilka.shopwidget.domain import WidgetSession

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://shop.example", "https://shop.example"),
        ("HTTPS://Shop.Example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("  https://xn--80ak6aa92e.com ", "https://xn--80ak6aa92e.com"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://10.0.0.7", "https://10.0.0.7"),
    ],
)
def test_an_origin_is_written_as_a_browser_sends_it(given: str, origin: str) -> None:
    assert domain.origin_of(given) == origin


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("http://shop.example", "HTTPS"),
        ("https://shop.example/checkout", "without a path"),
        ("https://shop.example?x=1", "without a path"),
        ("https://shop.example#top", "without a path"),
        ("https://user:pw@shop.example", "user name"),
        ("https://*.shop.example", "not an origin"),
        ("shop.example", "not an origin"),
        ("ftp://shop.example", "not an origin"),
        ("https://", "not an origin"),
        ("https://shop.example:99999", "not an origin"),
        ("https://магазин.рф", "punycode"),
        ("https://shop_example.com", "not a host name"),
        ("https://-shop.example", "not a host name"),
        ("", "1 to 300"),
        ("https://" + "a" * 300 + ".example", "1 to 300"),
    ],
)
def test_anything_but_an_https_origin_is_refused_saying_why(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        domain.origin_of(given)


def test_origins_are_kept_once_in_the_order_given() -> None:
    assert domain.distinct(["https://b.example", "https://a.example", "https://b.example"]) == [
        "https://b.example",
        "https://a.example",
    ]


def test_a_token_is_random_prefixed_and_stored_only_as_its_hash() -> None:
    first, second = domain.new_token(), domain.new_token()
    assert first.startswith("kw_") and first != second
    assert domain.looks_like_token(first)
    assert not domain.looks_like_token("km_" + first[3:])
    assert len(domain.token_hash(first)) == 64 and first not in domain.token_hash(first)


def test_a_session_lasts_an_hour() -> None:
    assert (domain.session_expiry(T0) - T0).total_seconds() == 3600


def session(max_points: int | None, held: int) -> WidgetSession:
    return WidgetSession(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), T0, max_points, held)


def test_a_session_holds_at_most_what_the_shop_allowed() -> None:
    capped = session(500, 200)
    assert capped.points_left == 300
    domain.check_allowance(capped, 300)
    with pytest.raises(InvalidInput) as refused:
        domain.check_allowance(capped, 301)
    assert refused.value.field == "points"
    assert refused.value.extra == {"allowed": 300}
    assert session(100, 150).points_left == 0


def test_a_session_without_a_cap_is_bounded_by_the_balance_only() -> None:
    free = session(None, 10_000)
    assert free.points_left is None
    domain.check_allowance(free, 10**12)
