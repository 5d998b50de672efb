"""A project's own model prices (per 1,000,000 tokens) and its markup on the catalog.

The SDK merges these with its catalog: a project row overrides the catalog's
price of that model; the markup applies to catalog prices only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, select

from ..models import ModelPrice, ProjectPrices
from ..pricing import ZERO
from .base import LedgerBase, from_micros, now_micros
from .dialect import insert_for
from .schema import model_prices, price_settings


def _row(row: Any) -> ModelPrice:
    return ModelPrice(
        model=row.model,
        input=row.input,
        output=row.output,
        cached_input=row.cached_input,
        cache_write=row.cache_write,
        updated_at=from_micros(row.updated_at),
    )


class PriceStore(LedgerBase):
    def project_prices(self, project_id: str) -> ProjectPrices:
        """The project's markup and its own rows, by model name."""
        with self.reading() as connection:
            return _project_prices(connection, project_id)

    def set_price(self, project_id: str, price: ModelPrice) -> ModelPrice:
        """Create or replace the project's price of ``price.model``."""
        now = now_micros()
        values = {
            "project_id": project_id,
            "model": price.model,
            "input": price.input,
            "output": price.output,
            "cached_input": price.cached_input,
            "cache_write": price.cache_write,
            "updated_at": now,
        }
        statement = insert_for(self.dialect, model_prices).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "model"],
            set_={
                key: value for key, value in values.items() if key not in ("project_id", "model")
            },
        )
        with self.writing() as connection:
            connection.execute(statement)
        return price.model_copy(update={"updated_at": from_micros(now)})

    def delete_price(self, project_id: str, model: str) -> bool:
        """Remove the project's price of ``model``; False if it had none."""
        with self.writing() as connection:
            result = connection.execute(
                delete(model_prices).where(
                    model_prices.c.project_id == project_id, model_prices.c.model == model
                )
            )
        return bool(result.rowcount)

    def set_markup(self, project_id: str, markup_percent: Decimal) -> ProjectPrices:
        values = {"project_id": project_id, "markup_percent": markup_percent}
        values["updated_at"] = now_micros()
        statement = insert_for(self.dialect, price_settings).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["project_id"],
            set_={"markup_percent": markup_percent, "updated_at": values["updated_at"]},
        )
        with self.writing() as connection:
            connection.execute(statement)
            return _project_prices(connection, project_id)


def _project_prices(connection: Connection, project_id: str) -> ProjectPrices:
    markup = connection.execute(
        select(price_settings.c.markup_percent).where(price_settings.c.project_id == project_id)
    ).scalar_one_or_none()
    rows = connection.execute(
        select(model_prices)
        .where(model_prices.c.project_id == project_id)
        .order_by(model_prices.c.model)
    )
    return ProjectPrices(
        markup_percent=ZERO if markup is None else markup, prices=[_row(row) for row in rows]
    )
