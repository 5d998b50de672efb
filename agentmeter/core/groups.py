"""A report's groups: the column each fills, and the ``metadata.<key>`` groups' keys.

Plain functions and constants, no pydantic: the ``agentmeter report`` command
checks its ``--group-by`` flags with them before anything heavy is imported.
:mod:`agentmeter.core.wire` builds the report query's validation on them.
"""

from __future__ import annotations

import re

from ..errors import AgentMeterValidationError

# A report group key -> the column (and JSON field) it groups by.
GROUP_COLUMNS: dict[str, str] = {
    "user": "user_id",
    "agent": "agent_id",
    "payment_type": "payment_type",
    "model": "model",
}
# ``metadata.<key>`` groups a report by one metadata key: letters, digits, _ - and .
METADATA_GROUP_PREFIX = "metadata."
METADATA_KEY_PATTERN = r"[A-Za-z0-9_.\-]{1,100}"
_METADATA_KEY = re.compile(f"^{METADATA_KEY_PATTERN}$")
GROUP_PATTERN = rf"^(user|agent|payment_type|model|metadata\.{METADATA_KEY_PATTERN})$"


def metadata_key_of(group: str) -> str | None:
    """The metadata key a group names (``"metadata.provider"`` -> ``"provider"``), else None."""
    if group.startswith(METADATA_GROUP_PREFIX):
        return group[len(METADATA_GROUP_PREFIX) :]
    return None


def group_column(group: str) -> str:
    """The row field a report group fills: ``user`` -> ``user_id``; ``metadata.k`` stays."""
    return GROUP_COLUMNS.get(group, group)


def metadata_key_problem(key: str) -> str | None:
    """What is wrong with a metadata key a report would group by; None if nothing."""
    if _METADATA_KEY.match(key):
        return None
    return f"metadata key {key[:40]!r} must be 1 to 100 letters, digits, '_', '-' or '.'"


def check_metadata_key(key: str, field: str = "group_by") -> str:
    """A metadata key a report may group by, or AgentMeterValidationError naming ``field``."""
    problem = metadata_key_problem(key)
    if problem is not None:
        raise AgentMeterValidationError.for_field(field, problem)
    return key
