"""The wire API over the ledger, without HTTP: parse, authorize, store, answer.

The FastAPI server and the embedded transport both call these functions, so
a request means the same in both modes: the same validation (422 naming the
field), the same access rules (403 for another project's data) and the same
JSON answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from .._version import __version__
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
from ..errors import AgentMeterValidationError
from ..models import AgentMeterModel, MeterEvent
from . import Ledger
from .admission import DEFAULT_MAX_FUTURE_SKEW, FutureLimit, KnownProjects, unknown_project
from .errors import WireError, forbidden, idempotency_conflict, not_found
from .event_input import (
    MAX_BATCH_EVENTS,
    parse_valid_batch,
    parse_wire_event,
    rejection,
)
from .nowait import WouldWait

MAX_BODY_BYTES = 10 * 1024 * 1024
M = TypeVar("M", bound=AgentMeterModel)


@dataclass(frozen=True)
class Principal:
    """Who is asking: an admin key, or the key of one project."""

    kind: str  # "admin" | "project"
    project_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def check_project(self, project_id: str) -> None:
        if not self.is_admin and project_id != self.project_id:
            raise forbidden(f"this key cannot access project {project_id!r}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise forbidden("this needs an admin key")


ADMIN = Principal("admin")
# Query parameters that may repeat; every other one takes its last value.
LIST_PARAMS = frozenset({"group_by"})


def query_dict(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query-string pairs as the API's parsers take them."""
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key in LIST_PARAMS:
            params.setdefault(key, []).append(value)
        else:
            params[key] = value
    return params


def parse(model: Callable[..., M], data: Any) -> M:
    if not isinstance(data, Mapping):
        raise WireError(400, "bad_request", "the body must be a JSON object")
    try:
        return model(**dict(data))
    except AgentMeterValidationError as exc:
        raise WireError.from_validation(exc) from None


class LedgerAPI:
    """The wire API over ``ledger``.

    ``max_future_skew``: how far in the future an event's time may lie (None:
    any). ``create_projects``: make a project on its first use instead of
    answering 404 (the embedded mode, whose users never create projects).
    ``private_webhooks``: whether webhook endpoints may point at private and
    loopback addresses.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_future_skew: timedelta | None = DEFAULT_MAX_FUTURE_SKEW,
        create_projects: bool = False,
        private_webhooks: bool = True,
    ) -> None:
        self.ledger = ledger
        self.private_webhooks = private_webhooks
        self.future = FutureLimit(max_future_skew)
        self.projects = KnownProjects(ledger, create_missing=create_projects)

    def health(self) -> dict[str, Any]:
        return {"status": "healthy", "version": __version__}

    # ------------------------------------------------------------ events

    def record_event(self, who: Principal, body: Any, *, now: bool = False) -> dict[str, Any]:
        """``now``: store without waiting (on an event loop), or raise
        ``nowait.WouldWait`` before anything is stored."""
        if now and who.is_admin:  # an admin's write may look its project up first
            raise WouldWait("an admin's event is written on a worker thread")
        if not isinstance(body, Mapping):
            raise WireError(400, "bad_request", "the body must be a JSON object")
        event, metadata = parse_wire_event(body)
        who.check_project(event.project_id)
        too_late = self.future.error(event.timestamp, self.future.latest(), body.get("timestamp"))
        if too_late is not None:
            raise too_late
        self.require_projects(who, [event.project_id])
        stored = self.ledger.record_events([event], [metadata], wait=not now)[0]
        if stored.conflicts:
            raise idempotency_conflict(event.id, stored.conflicts)
        return {
            "success": True,
            "event_id": stored.id,
            "cost": stored.cost,
            "message": "duplicate event: nothing changed" if stored.duplicate else "event recorded",
            "timestamp": stored.timestamp,
            "duplicate": stored.duplicate,
        }

    def record_batch(self, who: Principal, body: Any) -> dict[str, Any]:
        items = body.get("events") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise WireError(
                422,
                "validation_error",
                "events: must be a list of events",
                [{"field": "events", "message": "must be a list"}],
            )
        if len(items) > MAX_BATCH_EVENTS:
            raise WireError(
                413,
                "too_many_events",
                f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(items)}",
            )
        valid = parse_valid_batch(items)
        rejected: list[dict[str, Any]] = []
        if valid is None:  # some event is invalid: find which, one by one
            valid = []
            for index, item in enumerate(items):
                try:
                    valid.append((index, *parse_wire_event(item)))
                except WireError as exc:
                    rejected.append(rejection(index, item, exc))
        for _, event, _ in valid:
            who.check_project(event.project_id)
        return self._store_batch(self._admissible(who, items, valid, rejected), rejected)

    def _admissible(
        self,
        who: Principal,
        items: list[Any],
        valid: list[tuple[int, MeterEvent, str]],
        rejected: list[dict[str, Any]],
    ) -> list[tuple[int, MeterEvent, str]]:
        """The events of a known project and not in the future; the others go to ``rejected``."""
        missing = self._missing_projects(who, {event.project_id for _, event, _ in valid})
        latest = self.future.latest()
        if not missing and latest is None:
            return valid
        admitted: list[tuple[int, MeterEvent, str]] = []
        for item in valid:
            index, event, _ = item
            error = (
                unknown_project(event.project_id)
                if event.project_id in missing
                else self.future.error(event.timestamp, latest, items[index].get("timestamp"))
            )
            if error is None:
                admitted.append(item)
            else:
                rejected.append(rejection(index, {"id": event.id}, error))
        return admitted

    def _store_batch(
        self, valid: list[tuple[int, MeterEvent, str]], rejected: list[dict[str, Any]]
    ) -> dict[str, Any]:
        stored = self.ledger.record_events(
            [event for _, event, _ in valid], [metadata for _, _, metadata in valid]
        )
        accepted = duplicates = 0
        for (index, event, _), outcome in zip(valid, stored, strict=True):
            if outcome.conflicts:
                error = idempotency_conflict(event.id, outcome.conflicts)
                rejected.append(rejection(index, {"id": event.id}, error))
            elif outcome.duplicate:
                duplicates += 1
            else:
                accepted += 1
        rejected.sort(key=lambda item: item["index"])
        return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}

    def list_events(self, who: Principal, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        query = parse(EventQuery, self.scoped(who, params))
        return self.ledger.list_events(query)

    def stats(self, who: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
        query = parse(StatsQuery, self.scoped(who, params))
        if query.all_projects:
            who.require_admin()
        return self.ledger.stats_of(query).to_dict()

    def report(self, who: Principal, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        query = parse(ReportQuery, self.scoped(who, params))
        if query.all_projects:
            who.require_admin()
        return [row.to_dict() for row in self.ledger.report(query)]

    # ------------------------------------------------------- user meters

    def get_meter(
        self, who: Principal, params: Mapping[str, Any], *, now: bool = False
    ) -> dict[str, Any]:
        """``now``: read without waiting (on an event loop), or raise ``nowait.WouldWait``."""
        key = parse(MeterKey, self.scoped(who, params))
        read = self.ledger.get_meter_now if now else self.ledger.get_meter
        meter = read(key.project_id, key.user_id)
        if meter is None:  # 404 rather than nulls an AgentMeter 0.2 client cannot read
            raise not_found(f"meter of user {key.user_id!r} (nothing charged or set yet)")
        return meter.to_dict()

    def set_meter(self, who: Principal, body: Any) -> dict[str, Any]:
        request = parse(SetMeterBody, self.scoped(who, body))
        self.require_projects(who, [request.project_id])
        meter = self.ledger.set_threshold(
            request.project_id, request.user_id, request.threshold_amount
        )
        return meter.to_dict()

    def increment_meter(self, who: Principal, body: Any) -> dict[str, Any]:
        request = parse(IncrementMeterBody, self.scoped(who, body))
        self.require_projects(who, [request.project_id])
        return self.ledger.increment_meter(
            request.project_id, request.user_id, request.amount
        ).to_dict()

    def reset_meter(self, who: Principal, body: Any) -> dict[str, Any]:
        key = parse(MeterKey, self.scoped(who, body))
        self.require_projects(who, [key.project_id])
        return self.ledger.reset_meter(key.project_id, key.user_id).to_dict()

    # ---------------------------------------------------------- projects

    def create_project(self, who: Principal, body: Any) -> dict[str, Any]:
        who.require_admin()
        request = parse(ProjectCreateBody, body)
        project, key = self.ledger.create_project(request.name, request.description, request.id)
        return {**project.to_dict(), "api_key": key}

    def list_projects(self, who: Principal) -> list[dict[str, Any]]:
        only = None if who.is_admin else who.project_id
        return [project.to_dict() for project in self.ledger.list_projects(only)]

    def get_project(self, who: Principal, project_id: str) -> dict[str, Any]:
        who.check_project(project_id)
        return self.ledger.get_project(project_id).to_dict()

    def update_project(self, who: Principal, project_id: str, body: Any) -> dict[str, Any]:
        who.require_admin()
        changes = parse(ProjectUpdateBody, body).to_params()
        if not changes:
            return self.ledger.get_project(project_id).to_dict()
        return self.ledger.update_project(project_id, changes).to_dict()

    def delete_project(self, who: Principal, project_id: str) -> dict[str, Any]:
        who.require_admin()
        self.ledger.delete_project(project_id)
        self.projects.forget(project_id)
        return {"deleted": True}

    # --------------------------------------------------- billing records

    def create_billing_record(self, who: Principal, body: Any) -> dict[str, Any]:
        request = parse(BillingCreateBody, self.scoped(who, body))
        self.require_projects(who, [request.project_id])
        record = self.ledger.create_billing_record(
            request.project_id,
            request.period_start,
            request.period_end,
            request.amount,
            request.status,
        )
        return record.to_dict()

    def list_billing_records(
        self, who: Principal, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        query = parse(BillingListQuery, self.scoped(who, params))
        return [record.to_dict() for record in self.ledger.list_billing_records(query.project_id)]

    def update_billing_record(self, who: Principal, record_id: str, body: Any) -> dict[str, Any]:
        record = self.ledger.get_billing_record(record_id)
        who.check_project(record.project_id)
        update = parse(BillingUpdateBody, body)
        changes: dict[str, Any] = {}
        if update.status is not None:
            changes["status"] = update.status.value
        if update.amount is not None:
            changes["amount"] = update.amount
        if not changes:
            return record.to_dict()
        return self.ledger.update_billing_record(record_id, changes).to_dict()

    # ------------------------------------------------------------ access

    def _missing_projects(self, who: Principal, project_ids: Iterable[str]) -> set[str]:
        """Projects written to that do not exist. A project key implies its project
        (keys are deleted with it), so only an admin's writes are looked up."""
        return self.projects.missing(project_ids) if who.is_admin else set()

    def require_projects(self, who: Principal, project_ids: Iterable[str]) -> None:
        missing = self._missing_projects(who, project_ids)
        if missing:
            raise unknown_project(min(missing))

    @staticmethod
    def scoped(who: Principal, data: Any) -> Any:
        """Fill a missing project_id from a project key, then check access."""
        if not isinstance(data, Mapping):
            return data
        scoped = dict(data)
        if not scoped.get("project_id") and who.project_id:
            scoped["project_id"] = who.project_id
        project_id = scoped.get("project_id")
        if isinstance(project_id, str) and project_id:
            who.check_project(project_id)
        return scoped
