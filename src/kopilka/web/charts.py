"""Charts drawn on the server as SVG: no script, no library, readable without colour (each
bar and point has its value in a ``<title>``, and pages show the numbers in a table beside
the chart). Styled by ``static/kopilka.css`` (classes ``chart``, ``bar``, ``line`` …)."""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 56
PAD_BOTTOM = 28
PAD_TOP = 12
PAD_RIGHT = 12


@dataclass(frozen=True)
class Point:
    label: str  # the x-axis label (a week, a tier)
    value: float
    shown: str  # the value as the page shows it (formatted for the locale)


def _nice_top(value: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _frame(title: str, body: list[str], top: float, top_label: str) -> Markup:
    plot_bottom = HEIGHT - PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{plot_bottom}"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{plot_bottom}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{plot_bottom}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end">'
        f"{escape(top_label)}</text>",
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{plot_bottom}" text-anchor="end">0</text>',
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))


def _x_labels(points: Sequence[Point], centres: list[float]) -> list[str]:
    # At most ~12 labels, so that they never overlap on a phone.
    every = max(1, len(points) // 12 + (1 if len(points) % 12 else 0))
    return [
        f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(p.label)}</text>"
        for i, (p, x) in enumerate(zip(points, centres, strict=True))
        if i % every == 0
    ]


def bar_chart(title: str, points: Sequence[Point], top_label: str | None = None) -> Markup:
    """Vertical bars, one per point."""
    top = _nice_top(max((p.value for p in points), default=0))
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_width / max(len(points), 1)
    bar = max(slot * 0.7, 1.0)
    body: list[str] = []
    centres: list[float] = []
    for index, point in enumerate(points):
        height = plot_height * max(point.value, 0) / top
        x = PAD_LEFT + index * slot + (slot - bar) / 2
        y = PAD_TOP + plot_height - height
        centres.append(x + bar / 2)
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}">'
            f"<title>{escape(point.label)}: {escape(point.shown)}</title></rect>"
        )
    body.extend(_x_labels(points, centres))
    return _frame(title, body, top, top_label or _short(top))


def line_chart(title: str, points: Sequence[Point], top_label: str | None = None) -> Markup:
    """A line through the points, each marked with a dot that names its value."""
    top = _nice_top(max((p.value for p in points), default=0))
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_width / max(len(points) - 1, 1)
    coords = [
        (PAD_LEFT + i * step, PAD_TOP + plot_height - plot_height * max(p.value, 0) / top)
        for i, p in enumerate(points)
    ]
    body: list[str] = []
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline class="line" points="{path}"/>')
    for (x, y), point in zip(coords, points, strict=True):
        body.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{escape(point.label)}: {escape(point.shown)}</title></circle>"
        )
    body.extend(_x_labels(points, [x for x, _ in coords]))
    return _frame(title, body, top, top_label or _short(top))


def progress_bar(share: float, label: str) -> Markup:
    """A horizontal progress bar (tier progress), ``share`` from 0 to 1."""
    share = min(max(share, 0.0), 1.0)
    width = round(share * 100, 1)
    return Markup(
        f'<svg class="progress" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<rect class="track" x="0" y="0" width="100" height="8" rx="4"/>'
        f'<rect class="fill" x="0" y="0" width="{width}" height="8" rx="4"/></svg>'
    )


def _short(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"
