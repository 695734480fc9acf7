"""Distances on the globe and the bounding boxes that find stores near a point. Pure.

Distances are great-circle (haversine) distances on a sphere of the Earth's mean radius
(IUGG, 6,371,008.8 m): within 0.5 % of the ellipsoid's everywhere, which no one choosing
the nearest shop can tell apart. Answers round them to whole metres.

A box is a latitude range and a longitude range in degrees. The boxes of a circle contain
every point of the circle (and some that are not in it, at the corners): a query by box
on indexed coordinates, then the exact distance of each row found, is exact. Near the
antimeridian a circle's longitudes wrap and it takes two boxes; a circle around a pole
takes every longitude.
"""

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8
# Half the circumference: no two points of the sphere are farther apart.
MAX_DISTANCE_M = math.pi * EARTH_RADIUS_M
# Boxes are widened by this much (about a millimetre) so that a point exactly on the circle
# is not lost to rounding.
PAD_DEGREES = 1e-8


@dataclass(frozen=True, slots=True)
class Box:
    """Latitudes ``south``…``north`` and longitudes ``west``…``east`` (degrees, inclusive,
    ``west <= east``: a box never crosses the antimeridian)."""

    south: float
    north: float
    west: float
    east: float

    def contains(self, latitude: float, longitude: float) -> bool:
        return self.south <= latitude <= self.north and self.west <= longitude <= self.east


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    # Rounding can push h a hair past 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h))))


def whole_metres(metres: float) -> int:
    return round(metres)


def boxes_around(latitude: float, longitude: float, radius_m: float) -> list[Box]:
    """One or two boxes that together contain every point within ``radius_m`` of the
    point (J. P. Matuschek's bounding coordinates, with the antimeridian split)."""
    delta = radius_m / EARTH_RADIUS_M  # the radius as an angle, radians
    if delta >= math.pi:
        return [Box(-90.0, 90.0, -180.0, 180.0)]
    phi = math.radians(latitude)
    south, north = phi - delta, phi + delta
    if south <= -math.pi / 2 or north >= math.pi / 2:
        # A pole is inside the circle: every longitude is.
        return [
            Box(
                max(math.degrees(south) - PAD_DEGREES, -90.0),
                min(math.degrees(north) + PAD_DEGREES, 90.0),
                -180.0,
                180.0,
            )
        ]
    # The longitudes of the two meridians tangent to the circle; |phi| + delta < 90°,
    # so sin(delta) < cos(phi) and the arcsine is defined.
    dlambda = math.degrees(math.asin(math.sin(delta) / math.cos(phi)))
    south_deg = math.degrees(south) - PAD_DEGREES
    north_deg = math.degrees(north) + PAD_DEGREES
    west = longitude - dlambda - PAD_DEGREES
    east = longitude + dlambda + PAD_DEGREES
    # -180° and 180° are one meridian: a box reaching either takes the other side too.
    if west <= -180.0:
        return [
            Box(south_deg, north_deg, min(west + 360.0, 180.0), 180.0),
            Box(south_deg, north_deg, -180.0, east),
        ]
    if east >= 180.0:
        return [
            Box(south_deg, north_deg, west, 180.0),
            Box(south_deg, north_deg, -180.0, max(east - 360.0, -180.0)),
        ]
    return [Box(south_deg, north_deg, west, east)]
