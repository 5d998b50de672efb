"""Alerts, found in the transaction that changes what they watch.

``meter.threshold_crossed``: after a write adds usage to some meters, each
meter with a threshold is read back (its row is locked by that write until
commit, so racing writers take turns on it) and every share of the threshold
that the usage passed in this write is marked and announced, once: the mark's
primary key refuses a second. A reset clears the user's marks; a threshold
change clears those the usage no longer reaches, so they can fire again.

``project.spend_exceeded``: the project's spend today and this month is kept
in ``spend_totals`` (:mod:`.spend`); a write that takes it past the limit
announces it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from ..core.webhook_models import THRESHOLD_CROSSED, AlertSettings
from ..pricing import MONEY_CONTEXT, money_text
from .alert_schema import alert_marks, alert_settings
from .base import LedgerBase, from_micros, now_micros
from .dialect import insert_for
from .schema import user_meters
from .webhook_store import enqueue

_HUNDRED = Decimal(100)
UserKey = tuple[str, str]  # (project_id, user_id)


_SETTINGS = select(alert_settings).where(alert_settings.c.project_id == bindparam("project_id"))
_METERS = select(user_meters).where(
    user_meters.c.project_id == bindparam("project_id"),
    user_meters.c.user_id.in_(bindparam("user_ids", expanding=True)),
    user_meters.c.threshold_amount.is_not(None),
)


def settings_of(
    connection: Connection, project_id: str, known: dict[str, AlertSettings] | None = None
) -> AlertSettings:
    """The project's alert settings (read once per write when ``known`` is its cache)."""
    if known is not None and project_id in known:
        return known[project_id]
    settings = _read_settings(connection, project_id)
    if known is not None:
        known[project_id] = settings
    return settings


def _read_settings(connection: Connection, project_id: str) -> AlertSettings:
    row = connection.execute(_SETTINGS, {"project_id": project_id}).first()
    if row is None:
        return AlertSettings(project_id=project_id)
    return AlertSettings(
        project_id=project_id,
        threshold_shares=[Decimal(share) for share in json.loads(row.threshold_shares)],
        daily_limit=row.daily_limit,
        monthly_limit=row.monthly_limit,
    )


def announce_crossings(
    connection: Connection, dialect: str, charges: Mapping[UserKey, Decimal], now: int,
    known: dict[str, AlertSettings] | None = None,
) -> None:  # fmt: skip
    """Mark and announce every threshold share the ``charges`` just carried
    a meter past (call after they were added, in the same transaction)."""
    for row in _thresholded(connection, list(charges)):
        key = (row.project_id, row.user_id)
        after = row.current_usage
        before = MONEY_CONTEXT.subtract(after, charges[key])
        for share in settings_of(connection, row.project_id, known).threshold_shares:
            level = MONEY_CONTEXT.multiply(row.threshold_amount, share / _HUNDRED)
            if before < level <= after and _mark(connection, dialect, key, share, now):
                enqueue(connection, row.project_id, THRESHOLD_CROSSED, _crossing(row, share), now)


def rearm(connection: Connection, project_id: str, user_id: str, reset: bool) -> None:
    """After a reset, every share may fire again; after a threshold change,
    those the usage no longer reaches."""
    marks = delete(alert_marks).where(
        alert_marks.c.project_id == project_id, alert_marks.c.user_id == user_id
    )
    if reset:
        connection.execute(marks)
        return
    meter = connection.execute(
        select(user_meters.c.threshold_amount, user_meters.c.current_usage).where(
            user_meters.c.project_id == project_id, user_meters.c.user_id == user_id
        )
    ).first()
    if meter is None or meter.threshold_amount is None:
        connection.execute(marks)
        return
    marked = connection.execute(
        select(alert_marks.c.share).where(
            alert_marks.c.project_id == project_id, alert_marks.c.user_id == user_id
        )
    ).scalars()
    unreached = [
        text
        for text in marked
        if meter.current_usage
        < MONEY_CONTEXT.multiply(meter.threshold_amount, Decimal(text) / _HUNDRED)
    ]
    if unreached:
        connection.execute(marks.where(alert_marks.c.share.in_(unreached)))


def _thresholded(connection: Connection, users: list[UserKey]) -> list[Any]:
    rows: list[Any] = []
    by_project: dict[str, list[str]] = {}
    for project_id, user_id in users:
        by_project.setdefault(project_id, []).append(user_id)
    for project_id, user_ids in sorted(by_project.items()):
        for start in range(0, len(user_ids), 500):
            chunk = {"project_id": project_id, "user_ids": user_ids[start : start + 500]}
            rows += connection.execute(_METERS, chunk).all()
    return rows


def _mark(connection: Connection, dialect: str, key: UserKey, share: Decimal, now: int) -> bool:
    """Record that ``share`` fired; False when it had fired already."""
    statement = (
        insert_for(dialect, alert_marks)
        .values(project_id=key[0], user_id=key[1], share=money_text(share), created_at=now)
        .on_conflict_do_nothing()
    )
    return bool(connection.execute(statement).rowcount)


def _crossing(row: Any, share: Decimal) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "share": money_text(share),
        "threshold_amount": money_text(row.threshold_amount),
        "current_usage": money_text(row.current_usage),
        "period_start": None
        if row.last_reset_at is None
        else from_micros(row.last_reset_at).isoformat().replace("+00:00", "Z"),
    }


class AlertStore(LedgerBase):
    def alert_settings(self, project_id: str) -> AlertSettings:
        with self.reading() as connection:
            return settings_of(connection, project_id)

    def set_alert_settings(self, project_id: str, changes: Mapping[str, Any]) -> AlertSettings:
        """Apply the given fields (a None limit clears it); the rest stay."""
        with self.writing() as connection:
            current = settings_of(connection, project_id)
            merged = current.model_copy(update=dict(changes))
            values = {
                "project_id": project_id,
                "threshold_shares": json.dumps([money_text(s) for s in merged.threshold_shares]),
                "daily_limit": merged.daily_limit,
                "monthly_limit": merged.monthly_limit,
                "updated_at": now_micros(),
            }
            statement = insert_for(self.dialect, alert_settings).values(values)
            connection.execute(
                statement.on_conflict_do_update(index_elements=["project_id"], set_=values)
            )
            return settings_of(connection, project_id)


__all__ = ["AlertStore", "announce_crossings", "rearm", "settings_of"]
