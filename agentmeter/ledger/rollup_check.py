"""``agentmeter ledger check``: the rollups and spend totals recomputed from the events.

A rollup row or a day's spend total that differs from the events' own sums
(a bug, or a hand edit of the database) is reported; ``repair`` rebuilds
both from the events in one transaction, as schema steps 6, 7, 9 and 10 do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from ..pricing import money_text
from .alert_schema import expected_spend, rebuild_spend_totals, spend_totals
from .base import LedgerBase
from .rollup_schema import ROLLUPS, SUMS, expected_rows, rebuild_rollups
from .schema import events

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Difference:
    table: str
    key: Key  # (project_id, bucket or period start, the group's value(s) or period)
    stored: tuple[Any, ...] | None  # None: the row is missing
    expected: tuple[Any, ...] | None  # None: the row should not exist

    def __str__(self) -> str:
        key = " ".join(str(part) for part in self.key)
        stored, expected = _text(self.stored), _text(self.expected)
        return f"{self.table} {key}: stored {stored}, from the events {expected}"


def _text(sums: tuple[Any, ...] | None) -> str:
    if sums is None:
        return "nothing"
    return "/".join(
        money_text(value) if isinstance(value, Decimal) else str(value) for value in sums
    )


@dataclass(frozen=True)
class CheckResult:
    rows: int  # rows compared
    differences: list[Difference]


class RollupCheck(LedgerBase):
    def check_rollups(self) -> CheckResult:
        """Compare every rollup row and spend total with the events' sums (read only)."""
        with self.reading() as connection:
            compared, found = 0, []
            for table, stored, expected in _tables(connection):
                compared += len(stored.keys() | expected.keys())
                found += _differences(table, stored, expected)
        return CheckResult(compared, found)

    def repair_rollups(self) -> None:
        """Rebuild the rollups and spend totals from the events."""
        with self.writing() as connection:
            rebuild_rollups(connection, events)
            rebuild_spend_totals(connection, events)


def _tables(connection: Connection) -> Iterable[tuple[str, dict[Key, Any], dict[Key, Any]]]:
    for rollup in ROLLUPS:
        table = rollup.table
        key_names = ("project_id", "bucket", *rollup.key_names)
        stored = {
            tuple(getattr(row, name) for name in key_names): tuple(
                getattr(row, name) for name in SUMS
            )
            for row in connection.execute(select(table))
        }
        expected = {
            tuple(row[name] for name in key_names): tuple(
                Decimal(row[name]) if name == "cost" else int(row[name]) for name in SUMS
            )
            for row in expected_rows(connection, events, rollup)
        }
        yield table.name, stored, expected
    yield "spend_totals", _spend(connection), _expected_spend(connection)


def _spend(connection: Connection) -> dict[Key, Any]:
    rows = connection.execute(select(spend_totals))
    return {(row.project_id, row.period_start, row.period): (row.amount,) for row in rows}


def _expected_spend(connection: Connection) -> dict[Key, Any]:
    totals = expected_spend(connection, events)
    return {
        (project, start, period): (amount,) for (project, period, start), amount in totals.items()
    }


def _differences(table: str, stored: dict[Key, Any], expected: dict[Key, Any]) -> list[Difference]:
    return [
        Difference(table, key, stored.get(key), expected.get(key))
        for key in sorted(stored.keys() | expected.keys(), key=str)
        if stored.get(key) != expected.get(key)
    ]
