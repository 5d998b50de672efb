"""Events recorded at 0 for want of a price, by model: what ``prices missing`` lists.

The SDK records a token charge of a model no price is known for at cost 0,
with ``metadata["unpriced"] = true``; the ledger marks such rows (the
``unpriced`` column) and finds them through a partial index that holds only
them, so this query reads no priced event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true

from ..models import UnpricedModel
from .base import LedgerBase, from_micros, to_micros
from .schema import events


class UnpricedQueries(LedgerBase):
    def unpriced_models(
        self, project_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[UnpricedModel]:
        """The project's unpriced events (``start <= time < end``) by model, by name."""
        statement = select(
            events.c.model,
            func.count().label("events"),
            func.coalesce(func.sum(events.c.tokens_in), 0).label("tokens_in"),
            func.coalesce(func.sum(events.c.tokens_out), 0).label("tokens_out"),
            func.min(events.c.ts).label("first_seen"),
            func.max(events.c.ts).label("last_seen"),
        ).where(events.c.project_id == project_id, events.c.unpriced == true())
        if start is not None:
            statement = statement.where(events.c.ts >= to_micros(start))
        if end is not None:
            statement = statement.where(events.c.ts < to_micros(end))
        statement = statement.group_by(events.c.model).order_by(events.c.model.asc().nulls_first())
        with self.reading() as connection:
            return [_unpriced_model(row) for row in connection.execute(statement)]


def _unpriced_model(row: Any) -> UnpricedModel:
    return UnpricedModel(
        model=row.model,
        events=int(row.events),
        tokens_in=int(row.tokens_in),
        tokens_out=int(row.tokens_out),
        first_seen=from_micros(int(row.first_seen)),
        last_seen=from_micros(int(row.last_seen)),
    )
