"""Stores without a database: opening hours, distances and bounding boxes, CSV rows,
merging a change into a store."""

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.stores import domain, geo, hours, rows
from kopilka.stores.schemas import StoreCreate

# --- hours ---------------------------------------------------------------------------------

WEEKDAYS = {"mon": ["09:00-21:00"], "fri": ["09:00-21:00", "22:00-02:00"], "sun": []}
MOSCOW = ZoneInfo("Europe/Moscow")


def local(text: str, zone: ZoneInfo = MOSCOW) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def open_at(
    week: dict[str, list[str]], at: datetime, special: dict[str, list[str]] | None = None
) -> bool:
    return hours.is_open(hours.week_of(week), hours.special_of(special or {}), at)


def test_intervals_parse_and_format_back() -> None:
    assert hours.parse_interval("09:00-21:00") == (540, 1260)
    assert hours.parse_interval("22:00-02:00") == (1320, 1560)
    assert hours.parse_interval("00:00-24:00") == (0, 1440)
    assert hours.format_interval((1320, 1560)) == "22:00-02:00"
    assert hours.format_interval((0, 1440)) == "00:00-24:00"


@pytest.mark.parametrize(
    "bad", ["9-21", "25:00-26:00", "10:00-10:00", "10:60-11:00", "24:30-01:00"]
)
def test_bad_intervals_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError):
        hours.parse_interval(bad)


def test_overlapping_intervals_of_a_day_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        hours.day_intervals(["09:00-13:00", "12:00-18:00"])
    assert hours.day_intervals(["14:00-18:00", "09:00-13:00"]) == [(540, 780), (840, 1080)]


def test_open_within_an_interval_and_closed_at_its_end() -> None:
    monday = local("2026-12-07T09:00:00")
    assert monday.weekday() == 0
    assert open_at(WEEKDAYS, monday)
    assert open_at(WEEKDAYS, local("2026-12-07T20:59:59"))
    assert not open_at(WEEKDAYS, local("2026-12-07T21:00:00"))
    assert not open_at(WEEKDAYS, local("2026-12-07T08:59:00"))
    # Tuesday is not listed: closed all day.
    assert not open_at(WEEKDAYS, local("2026-12-08T12:00:00"))


def test_an_interval_past_midnight_runs_into_the_next_day() -> None:
    assert open_at(WEEKDAYS, local("2026-12-11T23:30:00"))  # Friday night
    assert open_at(WEEKDAYS, local("2026-12-12T01:59:00"))  # Saturday small hours
    assert not open_at(WEEKDAYS, local("2026-12-12T02:00:00"))
    # Sunday is closed, and Saturday has no interval running past midnight into it.
    assert not open_at(WEEKDAYS, local("2026-12-13T01:00:00"))


def test_special_dates_override_the_week_but_not_the_night_before() -> None:
    special = {"2026-12-31": ["10:00-16:00"], "2027-01-01": []}
    thursday = {"thu": ["09:00-21:00"], "fri": ["09:00-21:00"]}
    assert open_at(thursday, local("2026-12-31T15:00:00"), special)
    assert not open_at(thursday, local("2026-12-31T17:00:00"), special)
    assert not open_at(thursday, local("2027-01-01T12:00:00"), special)
    # A night interval of the day before runs into a closed holiday.
    night = {"thu": ["20:00-03:00"]}
    assert open_at(night, local("2027-01-01T02:00:00"), {"2027-01-01": []})


def test_open_now_is_read_on_the_stores_own_wall_clock() -> None:
    week = {"mon": ["09:00-18:00"]}
    instant = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)  # 10:30 in Moscow, 16:30 in Tokyo
    assert domain.open_at("open", "Europe/Moscow", week, {}, instant) is True
    assert domain.open_at("open", "Asia/Tokyo", week, {}, instant) is True
    assert domain.open_at("open", "America/New_York", week, {}, instant) is False  # 02:30
    assert domain.open_at("closed", "Europe/Moscow", week, {}, instant) is False
    assert domain.open_at("open", "Europe/Moscow", None, {}, instant) is None


def test_summer_time_changes_move_nothing_on_the_wall_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    week = {"sun": ["09:00-18:00"]}
    # 29 March 2026: clocks go from 02:00 to 03:00; 09:00 local is 07:00 UTC.
    assert domain.open_at(
        "open", "Europe/Berlin", week, {}, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    )
    assert not domain.open_at(
        "open", "Europe/Berlin", week, {}, datetime(2026, 3, 29, 6, 59, tzinfo=UTC)
    )
    assert open_at(week, datetime(2026, 3, 29, 9, 0, tzinfo=berlin))


def test_the_text_form_of_a_week() -> None:
    week = hours.parse_week_text("Mo-Fr 09:00-21:00; Sa 10:00-18:00; Su off")
    assert week["mon"] == week["fri"] == ["09:00-21:00"]
    assert week["sat"] == ["10:00-18:00"] and week["sun"] == []
    assert hours.parse_week_text("24/7") == {k: ["00:00-24:00"] for k in hours.DAY_KEYS}
    assert hours.parse_week_text("mon 9:00 - 13:00")["mon"] == ["09:00-13:00"]
    # Ranges wrap over the weekend; a later rule overrides an earlier one.
    wrapped = hours.parse_week_text("Fr-Mo 10:00-14:00,15:00-20:00; Su off")
    assert wrapped["fri"] == wrapped["sat"] == wrapped["mon"] == ["10:00-14:00", "15:00-20:00"]
    assert wrapped["sun"] == [] and wrapped["tue"] == []
    with pytest.raises(ValueError, match="not a day"):
        hours.parse_week_text("Xx 09:00-10:00")
    with pytest.raises(ValueError, match="give days and times"):
        hours.parse_week_text("Mo-Fr")


def test_the_text_form_of_special_dates() -> None:
    assert hours.parse_special_text("2026-12-31 10:00-16:00; 2027-01-01 off") == {
        "2026-12-31": ["10:00-16:00"],
        "2027-01-01": [],
    }
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        hours.parse_special_text("31.12.2026 10:00-16:00")


minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@given(start=minutes, length=st.integers(min_value=1, max_value=24 * 60 - 1), at=minutes)
def test_a_single_interval_is_open_exactly_for_its_length(start: int, length: int, at: int) -> None:
    """One interval on Monday: open at a minute of Monday or Tuesday exactly when that
    minute is within [start, start + length)."""
    end = (start + length) % (24 * 60)
    text = f"{start // 60:02d}:{start % 60:02d}-" + (
        "24:00" if start + length == 24 * 60 else f"{end // 60:02d}:{end % 60:02d}"
    )
    week = {"mon": [text]}
    monday = datetime(2026, 12, 7, at // 60, at % 60, tzinfo=MOSCOW)
    tuesday = datetime(2026, 12, 8, at // 60, at % 60, tzinfo=MOSCOW)
    assert open_at(week, monday) == (start <= at < start + length)
    assert open_at(week, tuesday) == (at + 24 * 60 < start + length)


# --- distances and boxes ------------------------------------------------------------------


def test_known_distances() -> None:
    # Moscow (Red Square) to St Petersburg (Palace Square): about 634 km.
    assert 630_000 < geo.distance_m(55.7539, 37.6208, 59.9390, 30.3158) < 640_000
    # A quarter of a meridian.
    assert geo.distance_m(0, 0, 90, 0) == pytest.approx(math.pi / 2 * geo.EARTH_RADIUS_M)
    # Across the antimeridian: one degree of longitude on the equator, not 359.
    assert geo.distance_m(0, 179.5, 0, -179.5) == pytest.approx(111_195, abs=5)
    assert geo.distance_m(10, 20, 10, 20) == 0
    assert geo.distance_m(0, 0, 0, 180) == pytest.approx(geo.MAX_DISTANCE_M)


def destination(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lat, lon) along ``bearing`` on the sphere (the direct
    formula, written out independently of the code under test)."""
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing)
    delta = metres / geo.EARTH_RADIUS_M
    phi2 = math.asin(
        math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi),
        math.cos(delta) - math.sin(phi) * math.sin(phi2),
    )
    lon2 = (math.degrees(lam2) + 540) % 360 - 180
    return math.degrees(phi2), lon2


@given(
    lat=st.floats(min_value=-90, max_value=90),
    lon=st.floats(min_value=-180, max_value=180),
    radius=st.floats(min_value=1, max_value=25_000_000),
    bearing=st.floats(min_value=0, max_value=360),
    share=st.floats(min_value=0, max_value=1),
)
def test_the_boxes_hold_every_point_of_the_circle(
    lat: float, lon: float, radius: float, bearing: float, share: float
) -> None:
    """Whatever the centre (poles and the antimeridian included) and the radius, a point
    within the radius is inside one of the boxes, and no box crosses the antimeridian."""
    boxes = geo.boxes_around(lat, lon, radius)
    assert 1 <= len(boxes) <= 2
    assert all(-90 <= b.south <= b.north <= 90 and -180 <= b.west <= b.east <= 180 for b in boxes)
    point = destination(lat, lon, bearing, radius * share)
    # The same meridian may be written -180 or 180.
    spellings = {point, (point[0], point[1] - 360 if point[1] > 0 else point[1] + 360)}
    assert any(b.contains(*p) for b in boxes for p in spellings if -180 <= p[1] <= 180)


def test_boxes_near_the_antimeridian_and_the_poles() -> None:
    east, west = geo.boxes_around(0, 179.9, 50_000)
    assert east.east == 180 and west.west == -180 and west.east < -179.0
    (polar,) = geo.boxes_around(89.9, 10, 50_000)
    assert (polar.west, polar.east, polar.north) == (-180, 180, 90)
    (everything,) = geo.boxes_around(10, 10, geo.MAX_DISTANCE_M)
    assert (everything.south, everything.north) == (-90, 90)


def test_the_search_widens_by_density_up_to_the_limit() -> None:
    assert domain.first_radius(1_000) == 1_000 and domain.first_radius(None) == 2_000
    assert domain.next_radius(2_000, 10, 10, None) is None  # enough found
    assert domain.next_radius(2_000, 0, 10, None) == 8_000  # none yet: four times wider
    assert domain.next_radius(2_000, 0, 10, 5_000) == 5_000  # never past the limit asked
    assert domain.next_radius(5_000, 0, 10, 5_000) is None
    # 1 of 10 in the circle: √10 × 1.3 ≈ 4.1, at most four times wider; 9 of 10: 1.5 times.
    assert domain.next_radius(2_000, 1, 10, None) == 8_000
    assert domain.next_radius(2_000, 9, 10, None) == 3_000
    assert domain.next_radius(2_000, 4, 10, None) == pytest.approx(2_000 * math.sqrt(2.5) * 1.3)
    assert domain.next_radius(geo.MAX_DISTANCE_M, 0, 10, None) is None


@given(
    found=st.integers(min_value=0, max_value=200),
    wanted=st.integers(min_value=1, max_value=100),
    radius=st.floats(min_value=1, max_value=geo.MAX_DISTANCE_M),
)
def test_the_search_always_ends(found: int, wanted: int, radius: float) -> None:
    """Each step widens by at least half or ends, and never passes the whole globe."""
    steps = 0
    current: float | None = radius
    while current is not None:
        following = domain.next_radius(current, found, wanted, None)
        assert following is None or current * 1.5 <= following or following == geo.MAX_DISTANCE_M
        assert following is None or following <= geo.MAX_DISTANCE_M
        current = following
        steps += 1
        assert steps <= 43  # from 1 m to the whole globe, 1.5 times wider each step


# --- CSV rows and changes ------------------------------------------------------------------

CSV = "\n".join(
    [
        "code,name,lat,lon,timezone,hours,special_hours,tags,status",
        'MSK-1,Tverskaya,55.7650,37.6050,Europe/Moscow,"Mo-Fr 09:00-21:00; Sa-Su 10:00-20:00",'
        '2026-12-31 10:00-16:00,"24h;coffee",',
        'MSK-2,"Arbat, 12",,,,,,,closed',
        "",
    ]
)


def test_csv_rows_become_import_values() -> None:
    found = rows.parse_csv(CSV)
    assert found.errors == []
    first, second = found.rows
    assert first.line == 2 and second.line == 3
    assert first.values["latitude"] == 55.765 and first.values["tags"] == ["24h", "coffee"]
    assert first.values["hours"]["sat"] == ["10:00-20:00"]
    assert first.values["special_hours"] == {"2026-12-31": ["10:00-16:00"]}
    assert "status" not in first.values  # empty: keep
    assert second.values["name"] == "Arbat, 12" and second.values["latitude"] is None
    assert second.values["status"] == "closed" and "timezone" not in second.values


def test_csv_errors_are_named_by_line() -> None:
    bad = "code,name,lat,colour\n"
    assert [str(e) for e in rows.parse_csv(bad).errors] == [
        "line 1: unknown column 'colour': the columns are " + ", ".join(rows.COLUMNS)
    ]
    text = 'code,name,lat,hours\nA,One,north,\nB,Two,1.5,"Mo 25:00-26:00"\n\nC,Three,1,\n'
    found = rows.parse_csv(text)
    assert [(e.line, e.column) for e in found.errors] == [(2, "latitude"), (3, "hours")]
    assert [r.line for r in found.rows] == [5]
    assert rows.parse_csv("name\nx\n").errors[0].message == "the header needs a 'code' column"
    assert rows.parse_csv("").errors[0].line == 1


def test_a_quoted_cell_over_two_lines_keeps_the_line_numbers_right() -> None:
    found = rows.parse_csv('code,name\nA,"first\nsecond"\nB,lat\nC,x,extra\n')
    assert [(r.line, r.values["code"]) for r in found.rows] == [(2, "A"), (4, "B")]
    assert [(e.line, e.message) for e in found.errors] == [(5, "3 cells, the header has 2")]


def test_a_change_lists_only_what_it_altered() -> None:
    current = {**domain.defaults("Europe/Moscow"), "name": "One", "tags": ["a"]}
    merged = domain.merge(current, {"name": "One", "tags": ["a", "b"], "hours": None})
    assert merged.changed == ["tags"] and merged.values["tags"] == ["a", "b"]
    body = StoreCreate.model_validate(
        {"code": "A", "name": "x", "special_hours": {"2026-12-31": []}, "hours": {"mon": []}}
    )
    stored = domain.merge(current, body.model_dump(exclude={"code"}))
    assert stored.values["special_hours"] == {"2026-12-31": []}
    assert stored.values["hours"]["mon"] == [] and set(stored.values["hours"]) == set(
        hours.DAY_KEYS
    )
    assert domain.coordinates_problem({"latitude": 1.0, "longitude": None}) == "longitude"
    assert date(2026, 12, 31).isoformat() in stored.values["special_hours"]
