"""The answer of ``GET /api/meter/summary``: usage per user (or per project), with totals.

Each row carries the exact sums of its events and the times of its first and
last event; the totals are the exact sums of the rows. The figures people
read below a summary (users, averages, the top users) are methods here, so
the CLI, the tests and any client compute them the same way. An average is
the one figure that is not exact: it is rounded half-even once, to
:data:`AVERAGE_COST_PLACES` places for money and two for tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Literal

from pydantic import Field, computed_field

from ..pricing import MONEY_CONTEXT, ZERO
from .base_model import AgentMeterModel
from .fields import MoneyTotal, UtcDatetime

AVERAGE_COST_PLACES = 8
_WIDE = Context(prec=100)


class SummaryRow(AgentMeterModel):
    """One user's (or, across projects, one project's) usage over the range."""

    user_id: str | None = None
    project_id: str | None = None
    events: int = 0
    api_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: MoneyTotal = ZERO
    first_event: UtcDatetime | None = None
    last_event: UtcDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @classmethod
    def total_of(cls, rows: Iterable[SummaryRow]) -> SummaryRow:
        """The exact sums of ``rows``, from the first first event to the last last one."""
        total = cls()
        for row in rows:
            total.events += row.events
            total.api_calls += row.api_calls
            total.tokens_in += row.tokens_in
            total.tokens_out += row.tokens_out
            total.cost = MONEY_CONTEXT.add(total.cost, row.cost)
            if row.first_event is not None:
                first = total.first_event
                total.first_event = (
                    row.first_event if first is None else min(first, row.first_event)
                )
            if row.last_event is not None:
                last = total.last_event
                total.last_event = row.last_event if last is None else max(last, row.last_event)
        return total

    def to_dict(self) -> dict[str, Any]:
        answer = super().to_dict()
        for name in ("user_id", "project_id"):
            if answer[name] is None:
                del answer[name]
        return answer


class UsageSummary(AgentMeterModel):
    """Rows per user (``group="user"``) or per project (``"project"``), costliest first."""

    group: Literal["user", "project"] = "user"
    rows: list[SummaryRow] = Field(default_factory=list)
    totals: SummaryRow = Field(default_factory=SummaryRow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "rows": [row.to_dict() for row in self.rows],
            "totals": self.totals.to_dict(),
        }

    def name_of(self, row: SummaryRow) -> str:
        return (row.project_id if self.group == "project" else row.user_id) or ""

    def average_cost(self) -> Decimal:
        """Cost per row (user or project), rounded half-even to 8 places (0 without rows)."""
        if not self.rows:
            return ZERO
        average = _WIDE.divide(self.totals.cost, len(self.rows))
        return average.quantize(Decimal(1).scaleb(-AVERAGE_COST_PLACES), ROUND_HALF_EVEN, _WIDE)

    def average_tokens(self) -> Decimal:
        """Tokens (in + out) per row, rounded half-even to 2 places (0 without rows)."""
        if not self.rows:
            return ZERO
        average = _WIDE.divide(Decimal(self.totals.total_tokens), len(self.rows))
        return average.quantize(Decimal("0.01"), ROUND_HALF_EVEN, _WIDE)

    def top_by_cost(self) -> SummaryRow | None:
        """The costliest row (ties: the first name); None without rows."""
        return min(self.rows, key=lambda row: (-row.cost, self.name_of(row)), default=None)

    def top_by_tokens(self) -> SummaryRow | None:
        """The row with the most tokens (ties: the first name); None without rows."""
        return min(self.rows, key=lambda row: (-row.total_tokens, self.name_of(row)), default=None)
