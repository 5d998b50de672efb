"""Charts drawn on the server as SVG: numbers in, coordinates out, no script.

The template turns a :class:`LineChart` into an inline ``<svg>``; each point
carries a ``<title>``, which browsers show on hover. Why SVG from the server
rather than a JavaScript library: docs/dashboard.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ...pricing import ZERO

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28  # room for the axis labels


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the bucket and its value, for the point's <title>


@dataclass(frozen=True)
class Tick:
    position: float
    text: str
    anchor: str = "middle"  # SVG text-anchor: the last x label ends at the edge


@dataclass(frozen=True)
class LineChart:
    points: list[Point]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom_y: float = HEIGHT - BOTTOM

    @property
    def path(self) -> str:
        """The line through every point, as SVG path data."""
        steps = (
            f"{'M' if index == 0 else 'L'}{p.x:.1f},{p.y:.1f}"
            for index, p in enumerate(self.points)
        )
        return " ".join(steps)

    @property
    def area(self) -> str:
        """The line closed down to the x axis, to fill under it."""
        if not self.points:
            return ""
        first, last = self.points[0], self.points[-1]
        return f"{self.path} L{last.x:.1f},{self.bottom_y:.1f} L{first.x:.1f},{self.bottom_y:.1f} Z"


def line_chart(values: list[tuple[str, Decimal]], unit: str = "$") -> LineChart:
    """A chart of one value per bucket (label, amount), oldest first."""
    top = max((amount for _, amount in values), default=ZERO)
    scale = top if top > 0 else Decimal(1)
    inner_width = WIDTH - LEFT - RIGHT
    inner_height = HEIGHT - TOP - BOTTOM
    step = inner_width / max(len(values) - 1, 1)
    points = [
        Point(
            x=LEFT + index * step,
            y=TOP + inner_height * (1 - float(amount / scale)),  # a position, not money
            label=f"{label}: {unit}{_short(amount)}",
        )
        for index, (label, amount) in enumerate(values)
    ]
    y_ticks = [
        Tick(TOP + inner_height * (1 - share), f"{unit}{_short(scale * Decimal(share))}")
        for share in (0.0, 0.5, 1.0)
    ]
    return LineChart(points, y_ticks, _x_ticks(values, step))


def _x_ticks(values: list[tuple[str, Decimal]], step: float) -> list[Tick]:
    if not values:
        return []
    last = len(values) - 1
    chosen = sorted({0, len(values) // 2, last})
    anchors = {0: "start", last: "end"}
    return [
        Tick(LEFT + index * step, values[index][0], anchors.get(index, "middle"))
        for index in chosen
    ]


def _short(amount: Decimal) -> str:
    """An axis or hover label: cents for large amounts, more places for tiny ones."""
    if amount == 0:
        return "0"
    places = 2 if abs(amount) >= 1 else 6
    return f"{amount:,.{places}f}"
