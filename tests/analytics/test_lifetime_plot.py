"""The cumulative tracking plot is well-formed SVG that a strict CSP page can show."""

import xml.etree.ElementTree as ET

from kopilka.analytics.lifetime.plot import tracking_svg
from kopilka.analytics.lifetime.validation import Tracking

SVG = "{http://www.w3.org/2000/svg}"


def test_tracking_plot_has_a_line_per_series_the_calibration_line_and_a_legend() -> None:
    tracking = Tracking(
        periods=[1, 2, 3, 4],
        actual=[1.0, 2.0, 0.0, 3.0],
        expected={"bgnbd": [1.5, 1.5, 1.0, 1.0], "pareto": [1.0, 2.0, 1.0, 2.0]},
        calibration_periods=2,
        unit_days=7,
    )
    text = tracking_svg(tracking, title="CDNOW <sample>")
    root = ET.fromstring(text)
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 3
    # Cumulative, from 0 at the origin: the actual line ends at 6, the highest value, at
    # the top of the axis's range.
    assert lines[0].get("points", "").split()[0] == "70.0,340.0"
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"Actual", "BG/NBD", "Pareto/NBD", "Week", "end of calibration"} <= set(labels)
    assert "CDNOW <sample>" in labels  # escaped in the file, intact once parsed
    assert "style=" not in text and "<script" not in text
    calibration = [
        line for line in root.findall(f"{SVG}line") if line.get("stroke-dasharray") == "3 3"
    ]
    assert len(calibration) == 1 and calibration[0].get("x1") == "385.0"  # halfway: 2 of 4
