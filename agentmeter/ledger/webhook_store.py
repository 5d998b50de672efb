"""Webhook endpoints, the events sent to them, and each delivery's attempts.

:func:`enqueue` runs inside the transaction that found the alert: the event
and one delivery per subscribed endpoint are stored with the write that
caused them, or not at all. Senders (one or many servers) take due
deliveries with a lease (:meth:`WebhookStore.claim_due`), so one sender at a
time holds a delivery; a sender that dies leaves it to another when the
lease runs out.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update

from ..core import jsonio
from ..core.jsonio import format_time
from ..core.webhook_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from . import driver_sql
from .alert_schema import webhook_deliveries, webhook_endpoints, webhook_events
from .base import LedgerBase, from_micros, now_micros
from .errors import not_found


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class DueDelivery:
    """A delivery a sender holds: where to, what, and the secret to sign it."""

    id: str
    event_id: str
    url: str
    secret: str
    body: str
    attempts: int
    event_created_at: int

    def __repr__(self) -> str:  # never the secret
        return f"DueDelivery(id={self.id!r}, url={self.url!r}, attempts={self.attempts})"


def enqueue(
    connection: Connection,
    project_id: str,
    event_type: str,
    data: dict[str, Any],
    now: int,
    only_endpoint: str | None = None,
) -> list[str]:
    """Store an event for the project's enabled endpoints that subscribe to its
    type (or for ``only_endpoint``); return the new deliveries' ids."""
    query = select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
        webhook_endpoints.c.project_id == project_id
    )
    if only_endpoint is not None:
        query = query.where(webhook_endpoints.c.id == only_endpoint)
    else:
        query = query.where(webhook_endpoints.c.enabled.is_(True))
    rows = connection.execute(query).all()
    targets = [row.id for row in rows if only_endpoint or event_type in json.loads(row.event_types)]
    if not targets:
        return []
    event_id = new_id("evt")
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": format_time(from_micros(now)),
        "project_id": project_id,
        "data": data,
    }
    connection.execute(
        webhook_events.insert().values(
            id=event_id,
            project_id=project_id,
            type=event_type,
            body=jsonio.dumps(body),
            created_at=now,
        )
    )
    deliveries = [
        {
            "id": new_id("whdl"),
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "project_id": project_id,
            "event_type": event_type,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "last_status_code": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "delivered_at": None,
        }
        for endpoint_id in sorted(targets)
    ]
    connection.execute(webhook_deliveries.insert(), deliveries)
    return [delivery["id"] for delivery in deliveries]


def subscriptions(connection: Connection, project_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(project, event type) pairs some enabled endpoint listens to: a write
    looks for alerts of those types only."""
    wanted = sorted(set(project_ids))
    if not wanted:
        return set()
    if connection.dialect.name == "sqlite":  # asked by every write: straight to the driver
        marks = ", ".join("?" for _ in wanted)
        sql = _SQLITE_SUBSCRIPTIONS.format(marks=marks)
        rows: Iterable[Any] = driver_sql.execute(connection, sql, wanted).fetchall()
    else:
        rows = connection.execute(_SUBSCRIPTIONS, {"projects": wanted}).all()
    return {(project_id, kind) for project_id, types in rows for kind in json.loads(types)}


_SUBSCRIPTIONS = select(webhook_endpoints.c.project_id, webhook_endpoints.c.event_types).where(
    webhook_endpoints.c.project_id.in_(bindparam("projects", expanding=True)),
    webhook_endpoints.c.enabled.is_(True),
)
_SQLITE_SUBSCRIPTIONS = (
    "SELECT project_id, event_types FROM webhook_endpoints "
    "WHERE project_id IN ({marks}) AND enabled = 1"
)


class WebhookStore(LedgerBase):
    # ------------------------------------------------------------ endpoints

    def add_endpoint(
        self,
        project_id: str,
        url: str,
        event_types: list[str],
        enabled: bool,
        description: str | None,
        secret: str,
    ) -> WebhookEndpoint:
        endpoint_id = new_id("whep")
        with self.writing() as connection:
            connection.execute(
                webhook_endpoints.insert().values(
                    id=endpoint_id,
                    project_id=project_id,
                    url=url,
                    event_types=json.dumps(event_types),
                    enabled=enabled,
                    description=description,
                    secret=secret,
                    created_at=now_micros(),
                )
            )
        endpoint = self.get_endpoint(project_id, endpoint_id)
        return endpoint.model_copy(update={"secret": SecretStr(secret)})

    def get_endpoint(self, project_id: str, endpoint_id: str) -> WebhookEndpoint:
        with self.reading() as connection:
            row = connection.execute(
                select(webhook_endpoints).where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.project_id == project_id,
                )
            ).first()
        if row is None:
            raise not_found(f"webhook endpoint {endpoint_id!r}")
        return _endpoint(row)

    def list_endpoints(self, project_id: str) -> list[WebhookEndpoint]:
        query = (
            select(webhook_endpoints)
            .where(webhook_endpoints.c.project_id == project_id)
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        )
        with self.reading() as connection:
            return [_endpoint(row) for row in connection.execute(query)]

    def delete_endpoint(self, project_id: str, endpoint_id: str) -> None:
        """Delete the endpoint; its pending deliveries stop (marked failed)."""
        now = now_micros()
        with self.writing() as connection:
            gone = connection.execute(
                delete(webhook_endpoints).where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.project_id == project_id,
                )
            )
            if gone.rowcount == 0:
                raise not_found(f"webhook endpoint {endpoint_id!r}")
            connection.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.endpoint_id == endpoint_id,
                    webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
                )
                .values(
                    status="failed",
                    next_attempt_at=None,
                    updated_at=now,
                    last_error="the endpoint was deleted",
                )
            )

    def send_test(self, project_id: str, endpoint_id: str) -> WebhookDelivery:
        self.get_endpoint(project_id, endpoint_id)  # 404 for another project's
        data = {"endpoint_id": endpoint_id, "message": "a test event from agentmeter"}
        with self.writing() as connection:
            (delivery_id,) = enqueue(
                connection, project_id, "webhook.test", data, now_micros(), endpoint_id
            )
        return self.get_delivery(project_id, delivery_id)

    # ----------------------------------------------------------- deliveries

    def get_delivery(self, project_id: str, delivery_id: str) -> WebhookDelivery:
        with self.reading() as connection:
            row = connection.execute(
                select(webhook_deliveries).where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.project_id == project_id,
                )
            ).first()
        if row is None:
            raise not_found(f"webhook delivery {delivery_id!r}")
        return _delivery(row)

    def list_deliveries(
        self,
        project_id: str,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WebhookDelivery]:
        query = select(webhook_deliveries).where(webhook_deliveries.c.project_id == project_id)
        if endpoint_id is not None:
            query = query.where(webhook_deliveries.c.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        query = query.order_by(
            webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc()
        )
        with self.reading() as connection:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
        return [_delivery(row) for row in rows]

    def redeliver(self, project_id: str, delivery_id: str) -> WebhookDelivery:
        self.get_delivery(project_id, delivery_id)
        now = now_micros()
        with self.writing() as connection:
            connection.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(status="pending", next_attempt_at=now, lease_until=None, updated_at=now)
            )
        return self.get_delivery(project_id, delivery_id)

    def claim_due(self, lease_micros: int, limit: int = 20) -> list[DueDelivery]:
        """Take up to ``limit`` due deliveries for ``lease_micros``: nobody else
        sends them until the lease ends or :meth:`finish_attempt` records one."""
        now = now_micros()
        due = and_(
            webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
            webhook_deliveries.c.next_attempt_at <= now,
            or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
        )
        with self.writing() as connection:
            query = (
                select(webhook_deliveries.c.id)
                .where(due)
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(connection.execute(query).scalars())
            if not ids:
                return []
            connection.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(ids), due)
                .values(lease_until=now + lease_micros)
            )
            return _due(connection, ids)

    def finish_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        next_attempt_at: int | None,
    ) -> None:
        """Record one attempt: delivered, failed for good, or due again later."""
        now = now_micros()
        values: dict[str, Any] = {
            "status": status.value,
            "attempts": webhook_deliveries.c.attempts + 1,
            "next_attempt_at": next_attempt_at,
            "lease_until": None,
            "last_status_code": status_code,
            "last_error": (error or None) and error[:500],
            "updated_at": now,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        with self.writing() as connection:
            connection.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )


def _due(connection: Connection, ids: list[str]) -> list[DueDelivery]:
    query = (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.event_id,
            webhook_deliveries.c.attempts,
            webhook_endpoints.c.url,
            webhook_endpoints.c.secret,
            webhook_events.c.body,
            webhook_events.c.created_at,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
        .where(webhook_deliveries.c.id.in_(ids))
    )
    return [
        DueDelivery(
            row.id, row.event_id, row.url, row.secret, row.body, row.attempts, row.created_at
        )
        for row in connection.execute(query)
    ]


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        project_id=row.project_id,
        url=row.url,
        event_types=json.loads(row.event_types),
        enabled=bool(row.enabled),
        description=row.description,
        created_at=from_micros(row.created_at),
    )


def _delivery(row: Any) -> WebhookDelivery:
    def moment(value: int | None) -> Any:
        return None if value is None else from_micros(value)

    return WebhookDelivery(
        id=row.id,
        event_id=row.event_id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=moment(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=moment(row.created_at),
        updated_at=moment(row.updated_at),
        delivered_at=moment(row.delivered_at),
    )
