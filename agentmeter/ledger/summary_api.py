"""The wire API of the usage summary, and of the stats of every project.

``GET /api/meter/summary``: one row per user of a project (a project key,
or an admin key naming the project), or with ``all_projects=true`` (admin
key only; 403 otherwise) one row per project. ``GET /api/meter/stats`` with
``all_projects=true`` answers the totals of every project with one entry
per project under ``"projects"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.wire import SummaryQuery
from .api import Principal, parse

if TYPE_CHECKING:
    from .api import LedgerAPI


def summary(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
    query = parse(SummaryQuery, api.scoped(who, params))
    if query.all_projects:
        who.require_admin()
    return api.ledger.usage_summary(query).to_dict()
