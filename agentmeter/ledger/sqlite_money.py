"""Exact money in SQL on SQLite: functions registered on each connection.

SQLite has no exact decimal type: the ledger stores money as decimal text,
and these sum, add and order it with Python's Decimal, on every connection
of the ledger's engine (``register``). Kept apart from ``dialect.py`` so
that they import no SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from ..pricing import MONEY_CONTEXT, ZERO, money_text


class DecimalSum:
    """SQLite aggregate ``decimal_sum``: the exact sum of decimal texts."""

    def __init__(self) -> None:
        self.total = ZERO

    def step(self, value: str | int | None) -> None:
        if value is not None:
            self.total = MONEY_CONTEXT.add(self.total, Decimal(value))

    def finalize(self) -> str:
        return money_text(self.total)


_KEY_DIGITS = 60  # each side of the point: far beyond any amount the ledger holds
_FLIP = str.maketrans("0123456789", "9876543210")


def decimal_key(value: str | int | None) -> str | None:
    """Text that sorts like the number: SQLite stores money as decimal text,
    which sorts "2" after "100"; ordering by this key sorts by value, exactly."""
    if value is None:
        return None
    number = Decimal(value)
    digits = format(number.copy_abs(), "f")  # abs() would round to the context precision
    whole, _, fraction = digits.partition(".")
    fixed = whole.rjust(_KEY_DIGITS, "0") + fraction.ljust(_KEY_DIGITS, "0")
    if number < 0:
        return "0" + fixed.translate(_FLIP)
    return "1" + fixed


def decimal_add(left: str | int | None, right: str | int | None) -> str:
    return money_text(MONEY_CONTEXT.add(Decimal(left or 0), Decimal(right or 0)))


def register(connection: sqlite3.Connection) -> None:
    connection.create_function("decimal_add", 2, decimal_add, deterministic=True)
    connection.create_aggregate("decimal_sum", 1, DecimalSum)  # type: ignore[arg-type]
    connection.create_function("decimal_key", 1, decimal_key, deterministic=True)
