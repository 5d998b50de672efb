"""Projects, their API keys (stored only as SHA-256 hashes), and billing records."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from ..core.webhook_models import BILLING_CREATED, BILLING_UPDATED
from ..models import BillingRecord, BillingStatus, Project
from ..pricing import round_to_cents
from . import driver_sql
from .alert_schema import alert_metadata
from .base import from_micros, now_micros, to_micros
from .errors import conflict, not_found
from .queries import Queries
from .rollup_schema import rollup_metadata
from .schema import api_keys, billing_records, events, projects, user_meters
from .stripe_schema import stripe_metadata
from .webhook_store import enqueue


def new_api_key(kind: str) -> str:
    """A fresh key: ``am_proj_...`` or ``am_admin_...`` with 192 random bits."""
    return f"am_{kind}_{secrets.token_urlsafe(24)}"


def hash_key(key: str) -> str:
    # Keys are long and random, so a plain SHA-256 is enough (no salt needed).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    kind: str  # "admin" | "project"
    project_id: str | None


def _project(row: Any) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
    )


UNREGISTERED = "(no project record: found in events)"


def _unregistered(row: Any) -> Project:
    return Project(
        id=row.project_id,
        name=row.project_id,
        description=UNREGISTERED,
        created_at=from_micros(row.first),
        updated_at=from_micros(row.last),
    )


def _find_billing(connection: Connection, record_id: str) -> BillingRecord:
    row = connection.execute(
        select(billing_records).where(billing_records.c.id == record_id)
    ).first()
    if row is None:
        raise not_found(f"billing record {record_id!r}")
    return _billing(row)


def _billing(row: Any) -> BillingRecord:
    return BillingRecord(
        id=row.id,
        project_id=row.project_id,
        period_start=from_micros(row.period_start),
        period_end=from_micros(row.period_end),
        amount=row.amount,
        status=row.status,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
    )


_KEY_BY_HASH = select(api_keys.c.kind, api_keys.c.project_id).where(
    api_keys.c.key_hash == bindparam("key_hash")
)
_SQLITE_KEY_BY_HASH = "SELECT kind, project_id FROM api_keys WHERE key_hash = ?"


class AdminStore(Queries):  # billing records are priced by the report queries
    # ------------------------------------------------------------- keys

    def add_key(self, key: str, kind: str, project_id: str | None = None) -> None:
        with self.writing() as connection:
            connection.execute(
                api_keys.insert().values(
                    key_hash=hash_key(key),
                    kind=kind,
                    project_id=project_id,
                    prefix=key[:16],
                    created_at=now_micros(),
                )
            )

    def find_key(self, key: str) -> KeyRecord | None:
        return self.find_key_hash(hash_key(key))

    def find_key_hash(self, key_hash: str) -> KeyRecord | None:
        """The stored key with this hash (a dashboard session keeps only the hash)."""
        if self.dialect == "sqlite":  # every request not answered from the key cache
            found = driver_sql.read_one(self.engine, _SQLITE_KEY_BY_HASH, (key_hash,))
            return None if found is None else KeyRecord(*found)
        with self.reading() as connection:
            row = connection.execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
        return KeyRecord(row.kind, row.project_id) if row else None

    def has_admin_key(self) -> bool:
        with self.reading() as connection:
            query = select(func.count()).select_from(api_keys).where(api_keys.c.kind == "admin")
            return bool(connection.execute(query).scalar_one())

    # --------------------------------------------------------- projects

    def create_project(
        self, name: str, description: str | None, project_id: str | None
    ) -> tuple[Project, str]:
        """Create a project and its first key; the key is returned once, never stored."""
        chosen = project_id or f"proj_{secrets.token_hex(6)}"
        key = new_api_key("proj")
        now = now_micros()
        with self.writing() as connection:
            exists = connection.execute(select(projects.c.id).where(projects.c.id == chosen))
            if exists.first():
                raise conflict(f"project {chosen!r} already exists")
            connection.execute(
                projects.insert().values(
                    id=chosen, name=name, description=description, created_at=now, updated_at=now
                )
            )
            connection.execute(
                api_keys.insert().values(
                    key_hash=hash_key(key),
                    kind="project",
                    project_id=chosen,
                    prefix=key[:16],
                    created_at=now,
                )
            )
            row = connection.execute(select(projects).where(projects.c.id == chosen)).one()
        return _project(row), key

    def ensure_project(self, project_id: str, name: str) -> None:
        """Make the project if it does not exist (no key: for embedded use).

        An existing one is found by a read: no write lock is taken (a read-only
        command on a ledger another process is writing need not wait)."""
        with self.reading() as connection:
            found = connection.execute(select(projects.c.id).where(projects.c.id == project_id))
            if found.first() is not None:
                return
        now = now_micros()
        with self.writing() as connection:
            exists = connection.execute(select(projects.c.id).where(projects.c.id == project_id))
            if exists.first() is None:
                connection.execute(
                    projects.insert().values(
                        id=project_id, name=name, description=None, created_at=now, updated_at=now
                    )
                )

    def get_project(self, project_id: str) -> Project:
        with self.reading() as connection:
            row = connection.execute(select(projects).where(projects.c.id == project_id)).first()
        if row is None:
            raise not_found(f"project {project_id!r}")
        return _project(row)

    def list_projects(self, only: str | None = None) -> list[Project]:
        """The projects, then the ids that have events but no project record.

        Such events come from an older embedded ledger, which made no project
        record; each is listed with its id as name and :data:`UNREGISTERED`
        as description, so every event shows up under some project.
        """
        query = select(projects).order_by(projects.c.created_at, projects.c.id)
        orphans = (
            select(
                events.c.project_id,
                func.min(events.c.recorded_at).label("first"),
                func.max(events.c.recorded_at).label("last"),
            )
            .where(events.c.project_id.not_in(select(projects.c.id)))
            .group_by(events.c.project_id)
            .order_by(events.c.project_id)
        )
        if only is not None:
            query = query.where(projects.c.id == only)
            orphans = orphans.where(events.c.project_id == only)
        with self.reading() as connection:
            found = [_project(row) for row in connection.execute(query)]
            found += [_unregistered(row) for row in connection.execute(orphans)]
        return found

    def update_project(self, project_id: str, changes: dict[str, Any]) -> Project:
        with self.writing() as connection:
            result = connection.execute(
                update(projects)
                .where(projects.c.id == project_id)
                .values(**changes, updated_at=now_micros())
            )
            if result.rowcount == 0:
                raise not_found(f"project {project_id!r}")
        return self.get_project(project_id)

    def delete_project(self, project_id: str) -> None:
        """Delete a project with its keys, events, meters, billing records, alerts,
        webhooks, rollups, Stripe customer map and Stripe sync log."""
        with self.writing() as connection:
            for table in (
                events,
                user_meters,
                billing_records,
                api_keys,
                *alert_metadata.sorted_tables,
                *rollup_metadata.sorted_tables,
                *stripe_metadata.sorted_tables,
            ):
                connection.execute(delete(table).where(table.c.project_id == project_id))
            result = connection.execute(delete(projects).where(projects.c.id == project_id))
            if result.rowcount == 0:
                raise not_found(f"project {project_id!r}")

    # -------------------------------------------------- billing records

    def create_billing_record(
        self,
        project_id: str,
        period_start: datetime,
        period_end: datetime,
        amount: Decimal | None,
        status: BillingStatus,
    ) -> BillingRecord:
        """Without ``amount``: the period's exact cost, rounded to cents once (half-even)."""
        if amount is None:
            amount = round_to_cents(self.period_cost(project_id, period_start, period_end))
        record_id = f"bill_{secrets.token_hex(8)}"
        now = now_micros()
        with self.writing() as connection:
            connection.execute(
                billing_records.insert().values(
                    id=record_id,
                    project_id=project_id,
                    period_start=to_micros(period_start),
                    period_end=to_micros(period_end),
                    amount=amount,
                    status=status.value,
                    created_at=now,
                    updated_at=now,
                )
            )
            record = _find_billing(connection, record_id)
            enqueue(
                connection, project_id, BILLING_CREATED, {"billing_record": record.to_dict()}, now
            )
        return record

    def get_billing_record(self, record_id: str) -> BillingRecord:
        with self.reading() as connection:
            return _find_billing(connection, record_id)

    def list_billing_records(self, project_id: str) -> list[BillingRecord]:
        query = (
            select(billing_records)
            .where(billing_records.c.project_id == project_id)
            .order_by(billing_records.c.period_start.desc(), billing_records.c.id)
        )
        with self.reading() as connection:
            return [_billing(row) for row in connection.execute(query)]

    def update_billing_record(self, record_id: str, changes: dict[str, Any]) -> BillingRecord:
        now = now_micros()
        with self.writing() as connection:
            before = _find_billing(connection, record_id)
            connection.execute(
                update(billing_records)
                .where(billing_records.c.id == record_id)
                .values(**changes, updated_at=now)
            )
            after = _find_billing(connection, record_id)
            data = {"billing_record": after.to_dict(), "previous_status": before.status.value}
            enqueue(connection, after.project_id, BILLING_UPDATED, data, now)
        return after
