"""User meters: a running usage per (project, user) and an optional budget threshold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select

from ..models import UserMeter
from ..pricing import ZERO
from . import driver_sql
from .alerts import announce_crossings, rearm
from .base import LedgerBase, from_micros, now_micros
from .dialect import insert_for
from .events import add_usage
from .schema import user_meters


def _meter(row: Any | None, project_id: str, user_id: str) -> UserMeter:
    if row is None:  # never charged, never set: zero usage, no budget
        return UserMeter(project_id=project_id, user_id=user_id, current_usage=ZERO)
    return UserMeter(
        project_id=row.project_id,
        user_id=row.user_id,
        threshold_amount=row.threshold_amount,
        current_usage=row.current_usage,
        last_reset_at=from_micros(row.last_reset_at) if row.last_reset_at is not None else None,
        updated_at=from_micros(row.updated_at),
    )


class MeterStore(LedgerBase):
    def get_meter(self, project_id: str, user_id: str) -> UserMeter | None:
        """The user's meter; None for a user never charged nor given a budget."""
        if self.dialect == "sqlite":  # a budget check per call: straight to the driver
            found = driver_sql.read_one(self.engine, _SQLITE_FIND, (project_id, user_id))
            row = None if found is None else _MeterRow(*found)
        else:
            with self.reading() as connection:
                row = _find(connection, project_id, user_id)
        return None if row is None else _meter(row, project_id, user_id)

    def get_meter_now(self, project_id: str, user_id: str) -> UserMeter | None:
        """:meth:`get_meter` without waiting for anything, or :class:`.nowait.WouldWait`."""
        found = self.nowait.read_one(_SQLITE_FIND, (project_id, user_id))
        return None if found is None else _meter(_MeterRow(*found), project_id, user_id)

    def meters_of(self, project_id: str, user_ids: list[str]) -> dict[str, UserMeter]:
        """The meters of these users that exist, by user id (one query)."""
        if not user_ids:
            return {}
        statement = select(user_meters).where(
            user_meters.c.project_id == project_id, user_meters.c.user_id.in_(user_ids)
        )
        with self.reading() as connection:
            rows = connection.execute(statement).all()
        return {row.user_id: _meter(row, project_id, row.user_id) for row in rows}

    def set_threshold(self, project_id: str, user_id: str, threshold: Decimal) -> UserMeter:
        return self._upsert(project_id, user_id, threshold, {"threshold_amount": threshold})

    def increment_meter(self, project_id: str, user_id: str, amount: Decimal) -> UserMeter:
        now = now_micros()
        with self.writing() as connection:
            add_usage(connection, self.dialect, project_id, user_id, amount, now)
            announce_crossings(connection, self.dialect, {(project_id, user_id): amount}, now)
            return self._load(connection, project_id, user_id)

    def reset_meter(self, project_id: str, user_id: str) -> UserMeter:
        return self._upsert(project_id, user_id, None, {"current_usage": ZERO}, reset=True)

    def _upsert(
        self,
        project_id: str,
        user_id: str,
        threshold: Decimal | None,
        changes: dict[str, Any],
        reset: bool = False,
    ) -> UserMeter:
        """Create the meter (no usage) or apply ``changes`` to it; return it."""
        now = now_micros()
        changes = {**changes, "updated_at": now, **({"last_reset_at": now} if reset else {})}
        statement = insert_for(self.dialect, user_meters).values(
            project_id=project_id,
            user_id=user_id,
            threshold_amount=threshold,
            current_usage=ZERO,
            last_reset_at=now if reset else None,  # None: never reset
            updated_at=now,
        )
        with self.writing() as connection:
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["project_id", "user_id"], set_=changes
                )
            )
            rearm(connection, project_id, user_id, reset)
            return self._load(connection, project_id, user_id)

    @staticmethod
    def _load(connection: Connection, project_id: str, user_id: str) -> UserMeter:
        return _meter(_find(connection, project_id, user_id), project_id, user_id)


def _find(connection: Connection, project_id: str, user_id: str) -> Any | None:
    return connection.execute(_FIND, {"project_id": project_id, "user_id": user_id}).first()


_FIND = select(user_meters).where(
    user_meters.c.project_id == bindparam("project_id"),
    user_meters.c.user_id == bindparam("user_id"),
)
_SQLITE_FIND = (
    "SELECT project_id, user_id, threshold_amount, current_usage, last_reset_at, updated_at "
    "FROM user_meters WHERE project_id = ? AND user_id = ?"
)


class _MeterRow(NamedTuple):
    """A meter as SQLite's driver returns it: money still decimal text."""

    project_id: str
    user_id: str
    threshold_text: str | None
    usage_text: str
    last_reset_at: int | None
    updated_at: int

    @property
    def threshold_amount(self) -> Decimal | None:
        return None if self.threshold_text is None else Decimal(self.threshold_text)

    @property
    def current_usage(self) -> Decimal:
        return Decimal(self.usage_text)
