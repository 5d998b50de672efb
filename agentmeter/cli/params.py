"""Option types shared by the subcommands: moments in time and exact money.

Times (``--since``, ``--until``) are read as:

- a relative time before now: ``24h`` hours, ``7d`` days, ``2w`` weeks,
  ``3m`` calendar months (not minutes: ``3m`` on 31 May is the last day of
  February, same time of day);
- ``now`` or ``today`` (midnight UTC);
- a date, ``2025-01-31``: midnight UTC that day;
- an RFC 3339 datetime, ``2025-01-31T12:00:00Z`` or with an offset; a time
  without an offset is UTC.

Money (prices, amounts, thresholds) is parsed straight to :class:`Decimal`,
never through a float.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from ..core.groups import GROUP_COLUMNS, metadata_key_of, metadata_key_problem
from ..core.jsonio import format_time
from ..errors import AgentMeterValidationError
from ..pricing import to_money

_RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([hdwm])\s*$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click < 8.3 has no type parameters
    _ParamType = click.ParamType
TIME_HELP = "date (2025-01-31), RFC 3339 time, or relative: 24h, 7d, 2w, 3m (months)"


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to the
    month's last day: 3 months before 31 May is the end of February)."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """A UTC datetime from the forms in this module's docstring; ValueError otherwise."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    lowered = value.lower()
    if lowered == "now":
        return now
    if lowered == "today":
        return datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        if unit == "m":
            return months_before(now, amount)
        hours = {"h": 1, "d": 24, "w": 24 * 7}[unit]
        return now - timedelta(hours=amount * hours)
    try:
        if _DATE.match(value):
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        moment = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", value))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use a date (2025-01-31), an RFC 3339 time "
            "(2025-01-31T12:00:00Z) or a relative time (24h, 7d, 2w, 3m)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class MomentType(_ParamType):
    """A point in time (see the module docstring); converts to a UTC datetime."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value))
        except (ValueError, OverflowError) as exc:
            self.fail(str(exc), param, ctx)


class MoneyType(_ParamType):
    """An exact, non-negative decimal amount."""

    name = "DECIMAL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Decimal):
            return value
        try:
            return to_money(str(value), param.name if param and param.name else "value")
        except AgentMeterValidationError as exc:
            self.fail(str(exc), param, ctx)


class GroupType(_ParamType):
    """A report group: user, agent, payment_type, model, or metadata.KEY."""

    name = "GROUP"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        key = metadata_key_of(text)
        if key is None and text not in GROUP_COLUMNS:
            choices = ", ".join(GROUP_COLUMNS)
            self.fail(f"{text!r} is not one of {choices} or metadata.KEY", param, ctx)
        problem = None if key is None else metadata_key_problem(key)
        if problem is not None:
            self.fail(problem, param, ctx)
        return text


MOMENT = MomentType()
MONEY = MoneyType()
GROUP = GroupType()


def check_range(since: datetime | None, until: datetime | None) -> None:
    """--until is exclusive: it must come after --since."""
    if since is not None and until is not None and until <= since:
        raise click.UsageError(
            f"--until ({format_time(until)}) must be after --since ({format_time(since)})"
        )


def metadata_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--metadata key=value`` (repeatable) as a dict."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--metadata'")
        result[key.strip()] = value
    return result


def end_or_now(until: datetime | None) -> datetime:
    """A window's end: ``--until``, else now, so an event stamped a little ahead
    (within the server's allowed clock skew) is not counted before its time."""
    return until if until is not None else datetime.now(timezone.utc)
