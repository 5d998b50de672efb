"""``--month``, ``--hour`` and ``--days``: shorthands for a ``--since``/``--until`` window.

- ``--month 2025-01``: the UTC month, ``2025-01-01T00:00Z <= time < 2025-02-01T00:00Z``;
- ``--hour 2025-03-01T10``: the UTC hour, ``10:00Z <= time < 11:00Z``;
- ``--days N``: the last N days, ``now - N days <= time`` (until now).

:func:`time_shorthands` adds them to a command that takes ``--since`` and
``--until`` and turns them into those two arguments before the command
runs, so the command itself never sees them. One shorthand at a time, and
never with ``--since``/``--until``: anything else is a usage error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click < 8.3 has no type parameters
    _ParamType = click.ParamType

F = TypeVar("F", bound=Callable[..., Any])
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_HOUR = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2})Z?$", re.IGNORECASE)
MAX_DAYS = 100_000


class MonthType(_ParamType):
    """``YYYY-MM``: the first moment of that UTC month."""

    name = "YYYY-MM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        match = _MONTH.match(str(value).strip())
        try:
            if match is None:
                raise ValueError
            return datetime(int(match[1]), int(match[2]), 1, tzinfo=timezone.utc)
        except ValueError:
            self.fail(f"{value!r} is not a month: use YYYY-MM, like 2025-01", param, ctx)


class HourType(_ParamType):
    """``YYYY-MM-DDTHH``: the first moment of that UTC hour."""

    name = "YYYY-MM-DDTHH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        match = _HOUR.match(str(value).strip())
        try:
            if match is None:
                raise ValueError
            year, month, day, hour = (int(part) for part in match.groups())
            return datetime(year, month, day, hour, tzinfo=timezone.utc)
        except ValueError:
            self.fail(
                f"{value!r} is not an hour: use YYYY-MM-DDTHH, like 2025-03-01T10", param, ctx
            )


def next_month(start: datetime) -> datetime:
    year, month = divmod(start.year * 12 + start.month, 12)  # month is 1..12: +1 month
    return start.replace(year=year, month=month + 1)


def shorthand_window(
    month: datetime | None,
    hour: datetime | None,
    days: int | None,
    now: datetime | None = None,
) -> tuple[datetime, datetime | None] | None:
    """``(since, until)`` of the one shorthand given (until None: now); None if none is."""
    given = [flag for flag, value in (("--month", month), ("--hour", hour), ("--days", days))
             if value is not None]  # fmt: skip
    if len(given) > 1:
        raise click.UsageError(f"give one of {' and '.join(given)}, not both")
    if month is not None:
        return month, next_month(month)
    if hour is not None:
        return hour, hour + timedelta(hours=1)
    if days is not None:
        return (now or datetime.now(timezone.utc)) - timedelta(days=days), None
    return None


def time_shorthands(
    *, required: bool = False, since: str = "since", until: str = "until"
) -> Callable[[F], F]:
    """Add ``--month``, ``--hour`` and ``--days`` to a command whose ``--since`` and
    ``--until`` arguments are named ``since`` and ``until``. ``required``: the
    command needs both ends, from those two flags or from ``--month``/``--hour``."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(
            *args: Any,
            month: datetime | None = None,
            hour: datetime | None = None,
            days: int | None = None,
            **kwargs: Any,
        ) -> Any:
            window = shorthand_window(month, hour, days)
            if window is not None:
                if kwargs.get(since) is not None or kwargs.get(until) is not None:
                    raise click.UsageError(
                        "--month, --hour and --days stand for --since/--until: "
                        "give one or the other"
                    )
                kwargs[since], kwargs[until] = window
                if required and days is not None:  # a period needs its end: now
                    kwargs[until] = datetime.now(timezone.utc)
            if required and (kwargs.get(since) is None or kwargs.get(until) is None):
                raise click.UsageError(
                    "give the period: --since and --until, or --month, --hour or --days"
                )
            return command(*args, **kwargs)

        options = [
            click.option(
                "--days",
                type=click.IntRange(1, MAX_DAYS),
                metavar="N",
                help="The last N days (instead of --since/--until).",
            ),
            click.option(
                "--hour",
                type=HourType(),
                help="One UTC hour, e.g. 2025-03-01T10 (instead of --since/--until).",
            ),
            click.option(
                "--month",
                type=MonthType(),
                help="One UTC month, e.g. 2025-01 (instead of --since/--until).",
            ),
        ]
        decorated: Any = run
        for option in options:
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate
