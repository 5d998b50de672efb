"""The client's admin endpoints: projects, and billing records per period.

Project endpoints need the admin key (a project key reaches its own project
only). Ids in paths are percent-encoded, and an empty one is refused before
anything is sent. Each method is a plan (:mod:`agentmeter.endpoints.plan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..core.wire import (
    BillingCreateBody,
    BillingListQuery,
    BillingUpdateBody,
    ProjectCreateBody,
    ProjectUpdateBody,
)
from ..errors import AgentMeterValidationError
from ..models import BillingRecord, BillingStatus, Project
from .connection import Connection
from .inputs import Moment, MoneyInput
from .plan import Call, Plan, endpoint


def _segment(value: str, field: str) -> str:
    if not value:
        raise AgentMeterValidationError.for_field(field, "must not be empty")
    return quote(value, safe="")


class AdminEndpoints:
    """Create, read, change and delete projects; record and list bills."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # ---------------------------------------------------------- projects

    @endpoint
    def create_project(
        self, name: str, description: str | None = None, project_id: str | None = None
    ) -> Plan[Project]:
        """Create a project (admin key). Its ``api_key`` is in this answer only."""
        body = ProjectCreateBody(name=name, description=description, id=project_id)
        answer = yield Call("POST", "/projects", body=body.to_params(), idempotent=False)
        return Project.from_dict(answer)

    @endpoint
    def get_project(self, project_id: str) -> Plan[Project]:
        """One project by id (its ``api_key`` is not shown again)."""
        path = f"/projects/{_segment(project_id, 'project_id')}"
        return Project.from_dict((yield Call("GET", path)))

    @endpoint
    def list_projects(self) -> Plan[list[Project]]:
        """Every project (admin key); a project key sees only its own."""
        answer = yield Call("GET", "/projects")
        items = answer.get("projects", []) if isinstance(answer, Mapping) else answer
        return [Project.from_dict(item) for item in items]

    @endpoint
    def update_project(
        self, project_id: str, name: str | None = None, description: str | None = None
    ) -> Plan[Project]:
        """Rename a project or change its description (admin key; None leaves a field as is)."""
        body = ProjectUpdateBody(name=name, description=description)
        path = f"/projects/{_segment(project_id, 'project_id')}"
        return Project.from_dict((yield Call("PATCH", path, body=body.to_params())))

    @endpoint
    def delete_project(self, project_id: str) -> Plan[dict[str, Any]]:
        """Delete a project and everything stored for it: ``{"deleted": true}``."""
        path = f"/projects/{_segment(project_id, 'project_id')}"
        answer = yield Call("DELETE", path)
        return dict(answer) if isinstance(answer, Mapping) else {"deleted": True}

    # --------------------------------------------------- billing records

    @endpoint
    def create_billing_record(
        self,
        project_id: str | None = None,
        period_start: Moment | None = None,
        period_end: Moment | None = None,
        amount: MoneyInput | None = None,
        status: BillingStatus | str = BillingStatus.PENDING,
    ) -> Plan[BillingRecord]:
        """Record a bill for a period. Without ``amount`` the server sums the
        period's event costs and rounds the sum to cents (half-even)."""
        body = BillingCreateBody(
            project_id=self._connection.resolve_project(project_id),
            period_start=period_start,
            period_end=period_end,
            amount=amount,
            status=status,
        )
        answer = yield Call("POST", "/billing-records", body=body.to_params(), idempotent=False)
        return BillingRecord.from_dict(answer)

    @endpoint
    def list_billing_records(self, project_id: str | None = None) -> Plan[list[BillingRecord]]:
        """The project's billing records."""
        query = BillingListQuery(project_id=self._connection.resolve_project(project_id))
        answer = yield Call("GET", "/billing-records", params=query.to_params())
        items = answer.get("billing_records", []) if isinstance(answer, Mapping) else answer
        return [BillingRecord.from_dict(item) for item in items]

    @endpoint
    def update_billing_record(
        self,
        record_id: str,
        status: BillingStatus | str | None = None,
        amount: MoneyInput | None = None,
    ) -> Plan[BillingRecord]:
        """Change a billing record's status or amount (None leaves a field as it is)."""
        body = BillingUpdateBody(status=status, amount=amount)
        path = f"/billing-records/{_segment(record_id, 'record_id')}"
        return BillingRecord.from_dict((yield Call("PATCH", path, body=body.to_params())))
