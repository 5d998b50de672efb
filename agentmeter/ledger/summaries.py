"""Usage per user or per project: the summary, and the stats of every project.

The sums come from the same facts as the reports (rollups where they fit,
exact either way). A summary's first and last event times come from the
events table, in one ``MIN(ts), MAX(ts) ... GROUP BY`` that the indexes
``(project_id, user_id, ts)`` and ``(project_id, ts)`` answer on their own.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from ..core.answers import MeterStats, ProjectStats
from ..core.summary_answers import SummaryRow, UsageSummary
from ..core.wire import StatsQuery, SummaryQuery, parse_timeframe
from ..pricing import MONEY_CONTEXT
from .base import from_micros, now_micros, to_micros
from .queries import Queries
from .rollups import facts
from .schema import events


class SummaryQueries(Queries):
    def stats_of(self, query: StatsQuery) -> MeterStats:
        """The stats of the query's project, or of every project (``all_projects``)."""
        if query.all_projects:
            return self.all_project_stats(query.timeframe)
        return self.stats(query.project_id or "", query.timeframe)

    def all_project_stats(self, timeframe: str) -> MeterStats:
        """Every project's totals over ``timeframe``, and their exact sum."""
        projects = self.project_stats(timeframe)
        stats = MeterStats(timeframe=timeframe, projects=projects)
        for project in projects:
            stats.total_events += project.total_events
            stats.total_api_calls += project.total_api_calls
            stats.total_tokens_in += project.total_tokens_in
            stats.total_tokens_out += project.total_tokens_out
            stats.total_cost = MONEY_CONTEXT.add(stats.total_cost, project.total_cost)
        return stats

    def project_stats(self, timeframe: str) -> list[ProjectStats]:
        """Each project's totals over ``timeframe`` (ending now), by project id."""
        window = parse_timeframe(timeframe)
        now = now_micros()
        start = None if window is None else now - window // timedelta(microseconds=1)
        source = facts(None, start, now + 1, {}, self._rollup([], {}, None))
        statement = (
            select(source.c.project_id, *self._sums(source))
            .group_by(source.c.project_id)
            .order_by(source.c.project_id)
        )
        with self.reading() as connection:
            rows = connection.execute(statement).all()
        return [
            ProjectStats(
                project_id=row.project_id,
                total_events=int(row.events),
                total_api_calls=int(row.api_calls),
                total_tokens_in=int(row.tokens_in),
                total_tokens_out=int(row.tokens_out),
                total_cost=row.cost or Decimal(0),
            )
            for row in rows
        ]

    def usage_summary(self, query: SummaryQuery) -> UsageSummary:
        """One row per user of the project (per project with ``all_projects``), by name."""
        group = "project" if query.all_projects else "user"
        column = "project_id" if query.all_projects else "user_id"
        project_id = None if query.all_projects else query.project_id
        start = None if query.start_date is None else to_micros(query.start_date)
        end = None if query.end_date is None else to_micros(query.end_date)
        filters = {"user_id": query.user_id}
        keys = [] if query.all_projects else [column]
        source = facts(project_id, start, end, filters, self._rollup(keys, filters, None))
        sums = select(source.c[column], *self._sums(source)).group_by(source.c[column])
        times = self._event_times(column, project_id, start, end, query.user_id)
        with self.reading() as connection:
            found = {row[0]: row for row in connection.execute(sums)}
            spans = {row[0]: (row[1], row[2]) for row in connection.execute(times)}
        rows = [_summary_row(column, name, found[name], spans.get(name)) for name in sorted(found)]
        return UsageSummary(group=group, rows=rows, totals=SummaryRow.total_of(rows))

    @staticmethod
    def _event_times(
        column: str, project_id: str | None, start: int | None, end: int | None, user: str | None
    ) -> Any:
        statement = select(events.c[column], func.min(events.c.ts), func.max(events.c.ts))
        if project_id is not None:
            statement = statement.where(events.c.project_id == project_id)
        if user is not None:
            statement = statement.where(events.c.user_id == user)
        if start is not None:
            statement = statement.where(events.c.ts >= start)
        if end is not None:
            statement = statement.where(events.c.ts < end)
        return statement.group_by(events.c[column])


def _summary_row(column: str, name: str, sums: Any, span: tuple[int, int] | None) -> SummaryRow:
    return SummaryRow(
        **{column: name},
        events=int(sums.events),
        api_calls=int(sums.api_calls),
        tokens_in=int(sums.tokens_in),
        tokens_out=int(sums.tokens_out),
        cost=sums.cost or Decimal(0),
        first_event=None if span is None else from_micros(int(span[0])),
        last_event=None if span is None else from_micros(int(span[1])),
    )
