"""The client's read endpoints: stored events, totals, the usage report, and health.

Each method turns its arguments into a wire query (checked there, nothing
sent when one is wrong) and the answer into models. Each method is a plan
(:mod:`agentmeter.endpoints.plan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.answers import report_rows_from
from ..core.summary_answers import UsageSummary
from ..core.wire import EventQuery, ReportQuery, StatsQuery, SummaryQuery
from ..models import EventType, MeterEvent, MeterStats, PaymentType, ReportRow, parse_event
from .connection import Connection
from .inputs import Moment
from .plan import Call, Plan, endpoint


class QueryEndpoints:
    """Read what was stored: events, totals over a timeframe, a report per period."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @endpoint
    def get_events(
        self,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        event_type: EventType | str | None = None,
        start_date: Moment | None = None,
        end_date: Moment | None = None,
        limit: int | None = None,
        offset: int | None = None,
        payment_type: PaymentType | str | None = None,
        model: str | None = None,
    ) -> Plan[list[MeterEvent]]:
        """Stored events, newest first (``limit`` at most 1000, default 100)."""
        query = EventQuery(
            project_id=self._connection.resolve_project(project_id),
            agent_id=agent_id,
            user_id=user_id,
            event_type=event_type,
            payment_type=payment_type,
            model=model,
            start_date=start_date,
            end_date=end_date,
            limit=100 if limit is None else limit,
            offset=offset or 0,
        )
        answer = yield Call("GET", "/api/meter/events", params=query.to_params())
        items = answer.get("events", []) if isinstance(answer, Mapping) else answer
        return [parse_event(item) for item in items]

    @endpoint
    def get_meter_stats(
        self, project_id: str | None = None, timeframe: str = "30 days", all_projects: bool = False
    ) -> Plan[MeterStats]:
        """Totals over ``timeframe``: ``"1 hour"``, ``"24 hours"``, ``"7 days"``,
        ``"30 days"``, ``"all"`` (or ``"N hours"``, ``"N days"``).

        ``all_projects`` (admin key): the totals of every project, and each
        project's under ``projects``."""
        query = StatsQuery(
            project_id=self._project_unless(all_projects, project_id),
            timeframe=timeframe,
            all_projects=all_projects or None,
        )
        answer = yield Call("GET", "/api/meter/stats", params=query.to_params())
        return MeterStats.from_dict(answer)

    @endpoint
    def get_report(
        self,
        project_id: str | None = None,
        granularity: str = "day",
        group_by: Sequence[str] | str | None = None,
        start_date: Moment | None = None,
        end_date: Moment | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        all_projects: bool = False,
    ) -> Plan[list[ReportRow]]:
        """Usage and cost per period (hour, day, month), grouped by any of
        user, agent, payment_type, model and ``metadata.<key>`` (the row's
        values of those are in ``row.metadata``).

        ``all_projects`` (admin key): every project's usage, grouped by project
        first (``row.project_id``)."""
        groups = [group_by] if isinstance(group_by, str) else list(group_by or [])
        query = ReportQuery(
            project_id=self._project_unless(all_projects, project_id),
            all_projects=all_projects or None,
            granularity=granularity,
            group_by=groups,
            start_date=start_date,
            end_date=end_date,
            user_id=user_id,
            agent_id=agent_id,
        )
        answer = yield Call("GET", "/api/meter/report", params=query.to_params())
        rows = answer.get("rows", []) if isinstance(answer, Mapping) else answer
        return report_rows_from(rows)

    @endpoint
    def get_usage_summary(
        self,
        project_id: str | None = None,
        start_date: Moment | None = None,
        end_date: Moment | None = None,
        user_id: str | None = None,
        all_projects: bool = False,
    ) -> Plan[UsageSummary]:
        """Usage per user over ``start_date <= time < end_date``: events, API calls,
        tokens, cost, first and last event time, and the exact totals.

        ``all_projects`` (admin key): one row per project instead."""
        query = SummaryQuery(
            project_id=self._project_unless(all_projects, project_id),
            all_projects=all_projects or None,
            start_date=start_date,
            end_date=end_date,
            user_id=user_id,
        )
        answer = yield Call("GET", "/api/meter/summary", params=query.to_params())
        return UsageSummary.from_dict(answer)

    def _project_unless(self, all_projects: bool, project_id: str | None) -> str | None:
        """The project a read names; none when it reads every project."""
        return None if all_projects else self._connection.resolve_project(project_id)

    @endpoint
    def health_check(self) -> Plan[dict[str, Any]]:
        """``GET /health``: ``{"status": "healthy", "version": ...}``."""
        answer = yield Call("GET", "/health")
        return dict(answer) if isinstance(answer, Mapping) else {"status": answer}
