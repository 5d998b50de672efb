"""What a report groups by: columns of the events, the project, or metadata keys.

A ``metadata.<key>`` group reads the key out of each event's metadata (JSON
text) with the database's own JSON functions: ``json_extract`` on SQLite,
``->`` / ``->>`` on PostgreSQL. The key is checked (letters, digits, ``_``,
``-``, ``.``) and sent as a bound parameter, never written into the SQL;
on SQLite it is quoted inside the JSON path (``$."a.b"``) so a dot is part
of the key, not a step into an object. A string value groups as itself; a
number, a boolean, an object or a list as its JSON text (``2``, ``true``);
an event without the key (or with ``null``, or metadata no JSON reader
takes) under ``""``. Metadata groups are read from the events, never from
the rollups (which do not keep metadata).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal

from ..core.wire import GROUP_COLUMNS, ReportQuery, check_metadata_key, metadata_key_of
from .schema import events


def metadata_value(dialect: str, key: str) -> ColumnElement[str]:
    """The text of each event's ``metadata[key]`` ("" without it), as described above."""
    check_metadata_key(key)
    column = events.c.metadata
    if dialect == "sqlite":
        path = literal(f'$."{key}"', String())
        kind = func.json_type(column, path)
        value = func.json_extract(column, path)
        by_kind = case(
            (kind == "text", value),
            (kind == "true", "true"),
            (kind == "false", "false"),
            (kind.in_(["integer", "real", "object", "array"]), func.json_quote(value)),
            else_="",
        )
        return case((func.json_valid(column) == 1, by_kind), else_="")
    from sqlalchemy.dialects.postgresql import JSONB  # on PostgreSQL only: SQLite never loads it

    document = cast(column, JSONB)
    name = cast(literal(key, String()), Text())
    item = document.op("->")(name)
    return case(
        (func.jsonb_typeof(item) == "string", document.op("->>")(name)),
        (func.jsonb_typeof(item).in_(["number", "boolean", "object", "array"]), cast(item, Text())),
        else_="",
    )


@dataclass
class Grouping:
    """A report's group columns as the facts carry them.

    ``columns``: the facts' column of each group, in order (``project_id``
    first across projects); ``extra``: the expressions of the metadata
    columns (labelled ``meta_0``, ``meta_1``...); ``keys``: the metadata key
    of each such label.
    """

    columns: list[str] = field(default_factory=list)
    extra: dict[str, ColumnElement[Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, query: ReportQuery, dialect: str) -> Grouping:
        grouping = cls(["project_id"] if query.all_projects else [])
        for group in dict.fromkeys(query.group_by):
            key = metadata_key_of(group)
            if key is None:
                if GROUP_COLUMNS[group] not in grouping.columns:
                    grouping.columns.append(GROUP_COLUMNS[group])
                continue
            label = f"meta_{len(grouping.keys)}"
            grouping.columns.append(label)
            grouping.extra[label] = metadata_value(dialect, key)
            grouping.keys[label] = key
        return grouping

    @property
    def rollup_keys(self) -> list[str]:
        """The event columns a rollup would have to hold (the project is in every one)."""
        return [column for column in self.columns if column != "project_id"]

    def row_fields(self, row: Any) -> Mapping[str, Any]:
        """A result row's group values as ReportRow fields."""
        fields: dict[str, Any] = {}
        metadata: dict[str, str] = {}
        for column in self.columns:
            value = getattr(row, column)
            if column in self.keys:
                metadata[self.keys[column]] = "" if value is None else str(value)
            else:
                fields[column] = value
        if metadata:
            fields["metadata"] = metadata
        return fields
