"""The cumulative tracking plot of a validation as SVG text (no library, no script, no
``style`` attribute: pages served under a strict Content-Security-Policy show it as is)."""

import math
from collections.abc import Callable
from html import escape

from kopilka.analytics.lifetime.validation import Tracking

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60
# Actual is solid black; each model its own colour and dash pattern, distinguishable in print.
SERIES_STYLES = (
    ("#1f77b4", "6 4"),
    ("#d62728", "2 3"),
    ("#2ca02c", "8 3 2 3"),
    ("#9467bd", "4 2"),
)
LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}
Scale = Callable[[float], float]  # a value on an axis → its SVG coordinate


def tracking_svg(tracking: Tracking, *, title: str = "Cumulative repeat transactions") -> str:
    """A line chart of cumulative repeat transactions per period: actual and each model,
    periods on the x axis, a vertical line where calibration ends, axis labels and a
    legend. Returns a complete ``<svg>`` element."""
    periods = len(tracking.periods)
    series: list[tuple[str, list[float], str, str | None]] = [
        ("Actual", tracking.cumulative_actual, "#000000", None)
    ]
    for index, model in enumerate(tracking.expected):
        colour, pattern = SERIES_STYLES[index % len(SERIES_STYLES)]
        series.append(
            (LABELS.get(model, model), tracking.cumulative_expected(model), colour, pattern)
        )
    top = _nice_ceiling(max((max(values, default=0.0) for _, values, _, _ in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(period: float) -> float:
        return LEFT + plot_w * period / max(periods, 1)

    def y_at(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    unit = "Week" if tracking.unit_days == 7 else f"Period ({tracking.unit_days} days)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2:.1f}" y="22" text-anchor="middle" font-size="15">'
        f"{escape(title)}</text>",
    ]
    parts += _axes(periods, top, x_at, y_at, unit)
    calibration_x = x_at(tracking.calibration_periods)
    parts.append(
        f'<line x1="{calibration_x:.1f}" y1="{TOP}" x2="{calibration_x:.1f}" '
        f'y2="{TOP + plot_h}" stroke="#777777" stroke-dasharray="3 3"/>'
    )
    parts.append(
        f'<text x="{calibration_x + 4:.1f}" y="{TOP + 14}" fill="#555555">end of calibration</text>'
    )
    for _label, values, colour, dash in series:
        points = " ".join(
            f"{x_at(k):.1f},{y_at(v):.1f}"
            for k, v in zip(range(periods + 1), [0.0, *values], strict=False)
        )
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"'
            f"{dash_attribute}/>"
        )
    parts += _legend([(label, colour, dash) for label, _, colour, dash in series])
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(periods: int, top: float, x_at: Scale, y_at: Scale, unit: str) -> list[str]:
    bottom_y, left_x = y_at(0), x_at(0)
    parts = [
        f'<line x1="{left_x:.1f}" y1="{bottom_y:.1f}" x2="{x_at(periods):.1f}" '
        f'y2="{bottom_y:.1f}" stroke="#000000"/>',
        f'<line x1="{left_x:.1f}" y1="{y_at(top):.1f}" x2="{left_x:.1f}" '
        f'y2="{bottom_y:.1f}" stroke="#000000"/>',
    ]
    for tick in _ticks(periods):
        x = x_at(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom_y:.1f}" x2="{x:.1f}" y2="{bottom_y + 5:.1f}" '
            'stroke="#000000"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom_y + 18:.1f}" text-anchor="middle">{tick}</text>'
        )
    for tick in _ticks(top):
        y = y_at(tick)
        parts.append(
            f'<line x1="{left_x - 5:.1f}" y1="{y:.1f}" x2="{left_x:.1f}" y2="{y:.1f}" '
            'stroke="#000000"/>'
        )
        parts.append(
            f'<text x="{left_x - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{tick:,.0f}</text>'
        )
    parts.append(
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.1f}" y="{HEIGHT - 15}" '
        f'text-anchor="middle">{escape(unit)}</text>'
    )
    middle = TOP + (HEIGHT - TOP - BOTTOM) / 2
    parts.append(
        f'<text x="18" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {middle:.1f})">Cumulative repeat transactions</text>'
    )
    return parts


def _legend(entries: list[tuple[str, str, str | None]]) -> list[str]:
    parts = []
    x, y = LEFT + 12, TOP + 32
    for index, (label, colour, dash) in enumerate(entries):
        row = y + 18 * index
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="{row - 4}" x2="{x + 28}" y2="{row - 4}" stroke="{colour}" '
            f'stroke-width="2"{dash_attribute}/>'
        )
        parts.append(f'<text x="{x + 34}" y="{row}">{escape(label)}</text>')
    return parts


def _ticks(upper: float) -> list[int]:
    """About five round tick values from 0 to ``upper``."""
    if upper <= 0:
        return [0]
    step = _nice_ceiling(upper / 5)
    return [int(step * k) for k in range(int(upper // step) + 1)]


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))
