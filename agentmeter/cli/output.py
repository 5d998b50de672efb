"""Rendering shared by the subcommands: tables, CSV, JSON, progress bars.

- Counts get thousands separators (``1,234,567``); money is shown exact and
  normalized (``1,234.0075``, ``4.05`` not ``4.0500``, ``100`` not
  ``1E+2``) and is never passed through a float.
- Every value that comes from data (ids, names, descriptions, metadata,
  messages) is printed as text, never read as rich markup: ``[admin]`` stays
  ``[admin]``.
- CSV and JSON carry money as its plain decimal text (``1234.0075``), the
  wire form, so they parse back to the exact value.
- ``--output FILE`` is written to a temporary file next to it and renamed
  when complete: a failed export never leaves half a file behind.
- Progress bars go to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from ..core.jsonio import format_time
from ..pricing import money_text

if TYPE_CHECKING:  # rich loads where a console or a table is made: CSV and JSON need none
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "csv")
# Wide enough that a table written to a pipe or a file is never wrapped.
_PIPE_WIDTH = 10_000


def format_option(
    default: str = "table", extra: Sequence[str] = (), extra_help: str = ""
) -> Callable[[F], F]:
    """``--format`` with the usual choices, and a command's ``extra`` ones."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice((*FORMATS, *extra)),
        default=default,
        show_default=True,
        help="table for people; json or csv for programs and spreadsheets" + extra_help + ".",
    )


def output_option() -> Callable[[F], F]:
    return click.option(
        "--output",
        "-o",
        "output",
        metavar="FILE",
        type=click.Path(dir_okay=False, writable=False, path_type=Path),
        callback=_writable_folder,
        help="Write to FILE instead of stdout (replaced only when complete).",
    )


def _writable_folder(
    ctx: click.Context, param: click.Parameter, output: Path | None
) -> Path | None:
    """Refuse an output whose folder cannot take it before any work is done
    (``destination`` still reports a failure found only when writing)."""
    if output is None:
        return None
    folder = output.resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"cannot write {output}: no such folder", ctx, param)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write {output}: permission denied", ctx, param)
    return output


# ------------------------------------------------------------- numbers


def count_text(value: int) -> str:
    return f"{value:,}"


def plural(count: int, noun: str) -> str:
    """``1 event``, ``1,234 events``."""
    return f"{count_text(count)} {noun}{'' if count == 1 else 's'}"


def money_plain(value: Decimal) -> str:
    """Exact, without trailing zeros or an exponent: ``4.05``, ``100``, ``0.0000001``."""
    return format(_normalized(value), "f")


def money_display(value: Decimal) -> str:
    """:func:`money_plain` with thousands separators in the integer part: ``1,234.0075``."""
    return format(_normalized(value), ",f")


def _normalized(value: Decimal) -> Decimal:
    return value.normalize() if value else Decimal(0)  # no -0, no 0E-3


def align_money(values: Sequence[Decimal]) -> list[str]:
    """The display texts of a money column (right-aligned by the table, not padded)."""
    return [money_display(value) for value in values]


def now_text() -> str:
    return format_time(datetime.now(timezone.utc))


def time_text(moment: datetime) -> str:
    return format_time(moment)


def optional_time_text(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def wire_value(value: Any) -> Any:
    """A value as CSV/JSON carries it: money as plain decimal text."""
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return value.value
    return value


# ------------------------------------------------------------ consoles


def stdout_console(file: IO[str] | None = None) -> Console:
    """A console for the result: the terminal's width there, unwrapped elsewhere."""
    from rich.console import Console

    if file is None:
        terminal = Console(highlight=False)
        if terminal.is_terminal:
            return terminal
    return Console(file=file, highlight=False, width=_PIPE_WIDTH, color_system=None)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def progress_bar(console: Console | None = None) -> Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = console or stderr_console()
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


# -------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """One table column: its header, and whether it holds numbers (right-aligned)."""

    header: str
    numeric: bool = False


class TextTable:
    """Rows of text in aligned columns, drawn like rich's SIMPLE_HEAVY box.

    Written line by line (no measuring or wrapping per cell), so a table of
    tens of thousands of rows prints in well under a second; a cell is never
    cut, so no digit of a cost is ever hidden.
    """

    def __init__(self, columns: Sequence[Column], title: str | None = None) -> None:
        self.columns = list(columns)
        self.title = title
        self.rows: list[list[str]] = []
        self.total: list[str] | None = None

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def set_total(self, *cells: str) -> None:
        self.total = list(cells)

    def _widths(self) -> list[int]:
        widths = [len(column.header) for column in self.columns]
        for row in [*self.rows, *([self.total] if self.total else [])]:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
        return widths

    def _line(self, cells: Sequence[str], widths: Sequence[int]) -> str:
        parts = [
            cell.rjust(width) if column.numeric else cell.ljust(width)
            for column, cell, width in zip(self.columns, cells, widths, strict=True)
        ]
        return ("  " + "   ".join(parts)).rstrip()

    def lines(self) -> Iterator[tuple[str, str | None]]:
        """``(text, rich style)`` for each line."""
        widths = self._widths()
        rule_width = sum(widths) + 3 * (len(widths) - 1) + 2
        if self.title:
            yield self.title, "italic"
            yield "", None
        yield self._line([column.header for column in self.columns], widths), "bold"
        yield " " + "━" * rule_width, None
        for row in self.rows:
            yield self._line(row, widths), None
        if self.total is not None:
            yield " " + "─" * rule_width, None
            yield self._line(self.total, widths), "bold"


def key_value_table(pairs: Sequence[tuple[str, str]], title: str | None = None) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(title) if title is not None else None,
        box=box.SIMPLE,
        show_header=False,
        title_justify="left",
        min_width=len(title) if title else None,
    )
    table.add_column("field", style="bold")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in pairs:
        table.add_row(Text(key), Text(value))  # data, never markup
    return table


# ------------------------------------------------------------ writing


@contextlib.contextmanager
def destination(
    output: Path | None, *, newline: str | None = None, what: str | None = ""
) -> Iterator[IO[str]]:
    """stdout, or a temporary file renamed to ``output`` once complete.

    A written file is confirmed on stderr: ``12 rows written to usage.csv``
    (``what=None``: the caller confirms it, once it knows the count).
    """
    if output is None:
        yield sys.stdout
        return
    folder = output.resolve().parent
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write {output}: {exc.strerror or exc}", param_hint="'--output'"
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        os.replace(temp_name, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    if what is not None:
        confirm_written(output, what)


def confirm_written(output: Path, what: str = "") -> None:
    click.echo(f"{what} written to {output}" if what else f"written to {output}", err=True)


def print_table(
    table: TextTable | Table, output: Path | None, footer: Sequence[str] = (), what: str = ""
) -> None:
    with destination(output, what=what) as stream:
        console = stdout_console(stream if output is not None else None)
        if not isinstance(table, TextTable):  # a rich Table
            console.print(table)
        elif console.is_terminal:
            for text, style in table.lines():
                console.print(text, style=style, markup=False, soft_wrap=True)
        else:
            out = console.file
            for text, _ in table.lines():
                out.write(text + "\n")
        if footer and isinstance(table, TextTable):
            console.print()
        for line in footer:
            console.print(line, markup=False, soft_wrap=True)


def csv_writer(stream: IO[str]) -> Any:
    """RFC 4180 quoting, one record per line (``\\n``)."""
    return csv.writer(stream, lineterminator="\n")


def write_csv(
    output: Path | None,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    what: str = "",
    *,
    ready: bool = False,
) -> None:
    """``ready``: the rows hold text, numbers and None only (no :func:`wire_value` needed)."""
    with destination(output, newline="", what=what) as stream:
        writer = csv_writer(stream)
        writer.writerow(header)
        if ready:
            writer.writerows(rows)
            return
        for row in rows:
            writer.writerow([wire_value(value) for value in row])


def dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=wire_value)


def write_json(output: Path | None, document: Any, what: str = "") -> None:
    with destination(output, what=what) as stream:
        stream.write(dump_json(document))
        stream.write("\n")
