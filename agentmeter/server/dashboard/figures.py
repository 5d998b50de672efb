"""What each dashboard page shows, read through the ledger queries the wire API uses.

The overview is four of them, run side by side: ``report`` per bucket (the
chart; its rows summed exactly give the totals) and ``breakdown`` by model,
by agent and by user (the costliest, and how many were active). So a page's
figures are the API's figures, and the heavy lifting stays in SQL: no query
returns more rows than the page shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ...core.answers import ReportTotals
from ...core.wire import ReportQuery
from ...ledger import Ledger
from ...ledger.base import to_micros
from ...ledger.queries import period_label
from ...models import ReportRow, UserMeter
from .periods import Period, bucket_starts

TOP = 10
SHARES = 20
PAGE = 50


Sums = ReportTotals  # events, calls, tokens and exact cost of some events


@dataclass
class Share:
    """One value of a breakdown (a model, agent or user) and its sums."""

    name: str | None
    sums: Sums


@dataclass
class Overview:
    totals: Sums
    series: list[tuple[str, Sums]]  # (bucket label, sums), every bucket of the period
    by_model: list[Share]
    by_agent: list[Share]
    top_users: list[Share]
    active_users: int
    models: int = 0  # how many models had events (the table shows the costliest SHARES)
    agents: int = 0
    by_metadata: list[Share] = field(default_factory=list)  # by the key the viewer typed
    metadata_values: int = 0


@dataclass
class UserRow:
    share: Share
    meter: UserMeter | None = None

    @property
    def remaining(self) -> Decimal | None:
        meter = self.meter
        if meter is None or meter.threshold_amount is None:
            return None
        return meter.threshold_amount - meter.current_usage


@dataclass
class UsersPage:
    rows: list[UserRow] = field(default_factory=list)
    total: int = 0  # users with events in the period (matching the search)


def overview(
    ledger: Ledger, project_id: str, period: Period, metadata_key: str | None = None
) -> Overview:
    """The overview's figures; with ``metadata_key`` (checked by the caller) also
    the cost by that metadata key's values (events without it: ``None``)."""

    def breakdown(key: str, limit: int) -> tuple[list[ReportRow], int]:
        return ledger.breakdown(_query(project_id, period, [key]), limit=limit)

    # PostgreSQL runs the four side by side on its own cores; SQLite's exact
    # sums call back into Python for every row, so there they take turns.
    workers = 4 if ledger.dialect == "postgresql" else 1
    with ThreadPoolExecutor(workers, thread_name_prefix="agentmeter-overview") as pool:
        series_rows = pool.submit(ledger.report, _query(project_id, period, []))
        models = pool.submit(breakdown, "model", SHARES)
        agents = pool.submit(breakdown, "agent", SHARES)
        users = pool.submit(breakdown, "user", TOP)
    totals = Sums()
    for row in series_rows.result():
        totals.add(row)
    top_users, active = users.result()
    by_metadata: tuple[list[ReportRow], int] = ([], 0)
    if metadata_key:
        by_metadata = breakdown(f"metadata.{metadata_key}", SHARES)
    return Overview(
        by_metadata=[
            Share(row.metadata.get(metadata_key or "") or None, _sums(row))
            for row in by_metadata[0]
        ],
        metadata_values=by_metadata[1],
        totals=totals,
        series=series_of(series_rows.result(), period),
        by_model=_shares(models.result()[0], "model"),
        by_agent=_shares(agents.result()[0], "agent_id"),
        top_users=_shares(top_users, "user_id"),
        active_users=active,
        models=models.result()[1],
        agents=agents.result()[1],
    )


def cost_over_time(
    ledger: Ledger, project_id: str, period: Period, user_id: str
) -> list[tuple[str, Sums]]:
    """One user's sums per bucket of the period."""
    query = _query(project_id, period, [], user_id=user_id)
    return series_of(ledger.report(query), period)


def users_page(
    ledger: Ledger, project_id: str, period: Period, search: str, page: int
) -> UsersPage:
    query = _query(project_id, period, ["user"])
    rows, total = ledger.breakdown(query, contains=search or None, limit=PAGE, offset=page * PAGE)
    user_ids = [row.user_id for row in rows if row.user_id is not None]
    meters = ledger.meters_of(project_id, user_ids)
    shares = [Share(row.user_id, _sums(row)) for row in rows]
    return UsersPage([UserRow(share, meters.get(share.name or "")) for share in shares], total)


def series_of(rows: Iterable[ReportRow], period: Period) -> list[tuple[str, Sums]]:
    """Report rows summed per bucket, with an empty entry for each quiet bucket."""
    buckets = {_label(start, period.bucket): Sums() for start in bucket_starts(period)}
    for row in rows:
        buckets.setdefault(row.period, Sums()).add(row)
    return list(buckets.items())


def _query(
    project_id: str, period: Period, group_by: list[str], user_id: str | None = None
) -> ReportQuery:
    return ReportQuery(
        project_id=project_id,
        granularity=period.bucket,
        group_by=group_by,
        start_date=period.start,
        end_date=period.end,
        user_id=user_id,
    )


def _label(start: datetime, bucket: str) -> str:
    if bucket == "month":
        return start.strftime("%Y-%m")
    return period_label(to_micros(start), bucket)


def _shares(rows: Iterable[ReportRow], key: str) -> list[Share]:
    return [Share(getattr(row, key), _sums(row)) for row in rows]


def _sums(row: ReportRow) -> Sums:
    return Sums.of([row])
