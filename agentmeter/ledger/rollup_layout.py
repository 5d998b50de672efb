"""Which usage rollups exist and which one answers a report: plain data, no SQL library.

``rollup_schema.py`` makes each layout's table; the full query path
(``rollups.py``) and the driver-only reader (``fast_reports.py``) both pick
a table with :func:`choose_layout`, so the two never disagree on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .micros import DAY_MICROS, HOUR_MICROS

DETAIL_COLUMNS = ("user_id", "agent_id", "model", "payment_type")
_GRAIN_OF = {"hour": HOUR_MICROS, "day": DAY_MICROS, "month": DAY_MICROS}  # month: whole days


@dataclass(frozen=True)
class RollupLayout:
    name: str  # the table
    grain: int  # micros: an hour or a day
    columns: tuple[str, ...]  # the events columns it keeps apart
    # Its key is its columns' values, none of them NULL: a row per report row
    # of exactly those groups, stored in the report's order.
    keyed_by_values: bool = False

    @property
    def single(self) -> bool:
        """One column, stored encoded in ``value`` (see ``rollup_schema.encode``)."""
        return len(self.columns) == 1


# The order is the planner's preference: the smallest table that answers first.
LAYOUTS = (
    RollupLayout("usage_hour_model", HOUR_MICROS, ("model",)),
    RollupLayout("usage_hour_agent", HOUR_MICROS, ("agent_id",)),
    RollupLayout("usage_day_user", DAY_MICROS, ("user_id",)),
    RollupLayout("usage_hour_agent_user", HOUR_MICROS, ("agent_id", "user_id"), True),
    RollupLayout("usage_hour_detail", HOUR_MICROS, DETAIL_COLUMNS),
)


def choose_layout(
    keys: Iterable[str], filters: Mapping[str, Any], granularity: str | None
) -> RollupLayout | None:
    """The rollup that can answer a grouping by ``keys`` with ``filters`` (columns
    with a value) per ``granularity`` ("hour", "day", "month", None: no periods)."""
    touched = set(keys) | {name for name, value in filters.items() if value is not None}
    for layout in LAYOUTS:
        fits_grain = granularity is None or layout.grain <= _GRAIN_OF[granularity]
        if touched <= set(layout.columns) and fits_grain:
            return layout
    return None


def whole_buckets(grain: int, start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """The first and last bucket boundary inside ``start <= ts < end``: the
    rollup answers between them, the events outside them."""
    first = None if start is None else -(-start // grain) * grain
    last = None if end is None else end // grain * grain
    return first, last
