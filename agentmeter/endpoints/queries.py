"""The client's read, user-meter, project and billing endpoints.

Split from :mod:`agentmeter.client` to keep each module readable; the
client class combines these mixins with its event methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from ..config import AgentMeterConfig
from ..core.wire import (
    BillingCreateBody,
    BillingListQuery,
    BillingUpdateBody,
    EventQuery,
    IncrementMeterBody,
    MeterKey,
    ProjectCreateBody,
    ProjectUpdateBody,
    ReportQuery,
    SetMeterBody,
    StatsQuery,
)
from ..errors import AgentMeterValidationError, NotFoundError
from ..models import (
    BillingRecord,
    BillingStatus,
    EventType,
    MeterEvent,
    MeterStats,
    PaymentType,
    Project,
    ReportRow,
    UserMeter,
    parse_event,
)
from ..transport import Transport

Moment = datetime | date | str
MoneyInput = Decimal | float | int | str


def _segment(value: str, field: str) -> str:
    if not value:
        raise AgentMeterValidationError.for_field(field, "must not be empty")
    return quote(value, safe="")


class _ClientCore:
    """What the endpoint mixins need from the client."""

    config: AgentMeterConfig
    _transport: Transport
    _batch_endpoint_missing: bool

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        raise NotImplementedError

    def _project(self, project_id: str | None) -> str:
        raise NotImplementedError

    def _user(self, user_id: str | None) -> str:
        raise NotImplementedError

    def _agent(self, agent_id: str | None) -> str:
        raise NotImplementedError

    def _settle_before_meter_change(self) -> None:
        """Deliver what was tracked so far (before a reset)."""

    def _meter_changed(self, project_id: str, user_id: str) -> None:
        """A user's meter was set or reset: cached readings are stale."""


class QueryEndpointsMixin(_ClientCore):
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
    ) -> list[MeterEvent]:
        """Stored events, newest first (``limit`` at most 1000, default 100)."""
        query = EventQuery(
            project_id=self._project(project_id),
            agent_id=agent_id,
            user_id=user_id,
            event_type=event_type,
            payment_type=payment_type,
            start_date=start_date,
            end_date=end_date,
            limit=100 if limit is None else limit,
            offset=offset or 0,
        )
        answer = self._request("GET", "/api/meter/events", params=query.to_params())
        items = answer.get("events", []) if isinstance(answer, Mapping) else answer
        return [parse_event(item) for item in items]

    def get_meter_stats(
        self, project_id: str | None = None, timeframe: str = "30 days"
    ) -> MeterStats:
        """Totals over ``timeframe``: ``"1 hour"``, ``"24 hours"``, ``"7 days"``,
        ``"30 days"``, ``"all"`` (or ``"N hours"``, ``"N days"``)."""
        query = StatsQuery(project_id=self._project(project_id), timeframe=timeframe)
        return MeterStats.from_dict(
            self._request("GET", "/api/meter/stats", params=query.to_params())
        )

    def get_report(
        self,
        project_id: str | None = None,
        granularity: str = "day",
        group_by: Sequence[str] | str | None = None,
        start_date: Moment | None = None,
        end_date: Moment | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[ReportRow]:
        """Usage and cost per period (hour, day, month), grouped by any of
        user, agent, payment_type and model."""
        groups = [group_by] if isinstance(group_by, str) else list(group_by or [])
        query = ReportQuery(
            project_id=self._project(project_id),
            granularity=granularity,
            group_by=groups,
            start_date=start_date,
            end_date=end_date,
            user_id=user_id,
            agent_id=agent_id,
        )
        answer = self._request("GET", "/api/meter/report", params=query.to_params())
        rows = answer.get("rows", []) if isinstance(answer, Mapping) else answer
        return [ReportRow.from_dict(row) for row in rows]

    # ------------------------------------------------------- user meters

    def get_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> UserMeter:
        """The user's usage and threshold (``threshold_amount`` is None when never set).

        A user never charged nor given a budget has a zero meter (the server
        answers 404 for it; this method turns that into the zero meter).
        """
        key = MeterKey(project_id=self._project(project_id), user_id=self._user(user_id))
        try:
            answer = self._request("GET", "/api/meter/usage", params=key.to_params())
        except NotFoundError:
            return UserMeter(project_id=key.project_id, user_id=key.user_id)
        return UserMeter.from_dict(answer)

    def set_user_meter(
        self,
        threshold_amount: MoneyInput,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> UserMeter:
        """Set the user's budget threshold."""
        body = SetMeterBody(
            project_id=self._project(project_id),
            user_id=self._user(user_id),
            threshold_amount=threshold_amount,
        )
        answer = self._request("PUT", "/api/meter", body=body.to_params())
        self._meter_changed(body.project_id, body.user_id)
        return UserMeter.from_dict(answer)

    def increment_user_meter(
        self, amount: MoneyInput, user_id: str | None = None, project_id: str | None = None
    ) -> UserMeter:
        """Add ``amount`` to the user's usage (not retried where it may have been applied)."""
        body = IncrementMeterBody(
            project_id=self._project(project_id), user_id=self._user(user_id), amount=amount
        )
        answer = self._request(
            "POST", "/api/meter/increment", body=body.to_params(), idempotent=False
        )
        return UserMeter.from_dict(answer)

    def reset_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> UserMeter:
        """Set the user's usage back to 0 (``last_reset_at`` becomes now).

        Events tracked before the reset are delivered first (the default
        tracker is flushed, bounded), so they count before it, not after.
        """
        key = MeterKey(project_id=self._project(project_id), user_id=self._user(user_id))
        self._settle_before_meter_change()
        # Not retried where it may have been applied: a late retry would wipe
        # usage charged after the first reset.
        answer = self._request("POST", "/api/meter/reset", body=key.to_params(), idempotent=False)
        self._meter_changed(key.project_id, key.user_id)
        return UserMeter.from_dict(answer)


class AdminEndpointsMixin(_ClientCore):
    # ---------------------------------------------------------- projects

    def create_project(
        self, name: str, description: str | None = None, project_id: str | None = None
    ) -> Project:
        """Create a project (admin key). Its ``api_key`` is in this answer only."""
        body = ProjectCreateBody(name=name, description=description, id=project_id)
        return Project.from_dict(
            self._request("POST", "/projects", body=body.to_params(), idempotent=False)
        )

    def get_project(self, project_id: str) -> Project:
        return Project.from_dict(
            self._request("GET", f"/projects/{_segment(project_id, 'project_id')}")
        )

    def list_projects(self) -> list[Project]:
        answer = self._request("GET", "/projects")
        items = answer.get("projects", []) if isinstance(answer, Mapping) else answer
        return [Project.from_dict(item) for item in items]

    def update_project(
        self, project_id: str, name: str | None = None, description: str | None = None
    ) -> Project:
        body = ProjectUpdateBody(name=name, description=description)
        path = f"/projects/{_segment(project_id, 'project_id')}"
        return Project.from_dict(self._request("PATCH", path, body=body.to_params()))

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """Delete a project and everything stored for it: ``{"deleted": true}``."""
        answer = self._request("DELETE", f"/projects/{_segment(project_id, 'project_id')}")
        return dict(answer) if isinstance(answer, Mapping) else {"deleted": True}

    # --------------------------------------------------- billing records

    def create_billing_record(
        self,
        project_id: str | None = None,
        period_start: Moment | None = None,
        period_end: Moment | None = None,
        amount: MoneyInput | None = None,
        status: BillingStatus | str = BillingStatus.PENDING,
    ) -> BillingRecord:
        """Record a bill for a period. Without ``amount`` the server sums the
        period's event costs and rounds the sum to cents (half-even)."""
        body = BillingCreateBody(
            project_id=self._project(project_id),
            period_start=period_start,
            period_end=period_end,
            amount=amount,
            status=status,
        )
        answer = self._request("POST", "/billing-records", body=body.to_params(), idempotent=False)
        return BillingRecord.from_dict(answer)

    def list_billing_records(self, project_id: str | None = None) -> list[BillingRecord]:
        query = BillingListQuery(project_id=self._project(project_id))
        answer = self._request("GET", "/billing-records", params=query.to_params())
        items = answer.get("billing_records", []) if isinstance(answer, Mapping) else answer
        return [BillingRecord.from_dict(item) for item in items]

    def update_billing_record(
        self,
        record_id: str,
        status: BillingStatus | str | None = None,
        amount: MoneyInput | None = None,
    ) -> BillingRecord:
        body = BillingUpdateBody(status=status, amount=amount)
        path = f"/billing-records/{_segment(record_id, 'record_id')}"
        return BillingRecord.from_dict(self._request("PATCH", path, body=body.to_params()))
