"""Exact sums over report rows: a report's totals line, a dashboard's figures.

Here, apart from the pydantic answers (:mod:`agentmeter.core.answers` re-exports
it), so ``agentmeter report --help`` imports no model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeVar

from ..pricing import MONEY_CONTEXT, ZERO


class SummedRow(Protocol):
    """What a row needs to be summed: a ReportRow, or any row with these figures."""

    @property
    def events(self) -> int: ...
    @property
    def api_calls(self) -> int: ...
    @property
    def tokens_in(self) -> int: ...
    @property
    def tokens_out(self) -> int: ...
    @property
    def cost(self) -> Decimal: ...


# typing_extensions.Self would cost the report command a few ms to import.
AnyTotals = TypeVar("AnyTotals", bound="ReportTotals")


@dataclass
class ReportTotals:
    """Exact sums over report rows (a report's totals line, a dashboard's figures)."""

    events: int = 0
    api_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = ZERO

    @classmethod
    def of(cls: type[AnyTotals], rows: Iterable[SummedRow]) -> AnyTotals:
        totals = cls()
        for row in rows:
            totals.add(row)
        return totals

    def add(self, row: SummedRow) -> None:
        self.events += row.events
        self.api_calls += row.api_calls
        self.tokens_in += row.tokens_in
        self.tokens_out += row.tokens_out
        self.cost = MONEY_CONTEXT.add(self.cost, row.cost)
