"""The price book (each project's table, cached with a TTL) and the price
table (its rows, else the catalog plus its markup): issue 13."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter.core.build import finalize, token_event
from agentmeter.core.catalog import model_prices
from agentmeter.core.price_book import REPRICE, PriceBook
from agentmeter.core.price_table import PriceTable
from agentmeter.core.token_prices import TokenPricer
from agentmeter.errors import AgentMeterAPIError, AgentMeterValidationError, NotFoundError
from agentmeter.models import ModelPrice, ProjectPrices
from agentmeter.pricing import MAX_DECIMAL_PLACES, to_money

MILLION = 1_000_000


class Reader:
    """A price endpoint that counts its reads, and fails when told to."""

    def __init__(self, answer: ProjectPrices | Exception) -> None:
        self.answer = answer
        self.reads = 0

    def get_prices(self, project_id: str | None = None) -> ProjectPrices:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def table_of(markup: str = "0", **rows: tuple[str, str]) -> ProjectPrices:
    prices = [ModelPrice(model=name, input=i, output=o) for name, (i, o) in rows.items()]
    return ProjectPrices(markup_percent=Decimal(markup), prices=prices)


def test_a_table_is_read_once_per_ttl_and_peeking_never_reads():
    reader = Reader(table_of("10"))
    book = PriceBook(reader, ttl=3600)
    assert book.peek("p") == (None, False)
    assert reader.reads == 0
    first = book.current("p")
    assert first is not None
    assert first.markup_percent == 10
    assert book.current("p") is first
    assert book.peek("p") == (first, True)
    assert reader.reads == 1
    book.forget("p")
    book.current("p")
    assert reader.reads == 2


def test_a_server_without_price_endpoints_means_catalog_prices():
    book = PriceBook(Reader(NotFoundError("no such path", status_code=404)), ttl=60)
    table = book.current("p", strict=True)
    assert table is not None
    assert table.rows == 0
    assert table.markup_percent == 0
    assert table.entry("gpt-4") is not None


def test_an_unreadable_table_fails_open_and_is_asked_again_only_after_the_ttl(caplog):
    reader = Reader(AgentMeterAPIError("down", status_code=503))
    book = PriceBook(reader, ttl=3600)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert book.current("p") is None
        assert book.current("p") is None
    assert reader.reads == 1
    assert "could not read the prices of project 'p'" in caplog.text
    with pytest.raises(AgentMeterAPIError):  # a direct call asks again, and says why not
        book.current("p", strict=True)
    assert reader.reads == 2


def test_rows_match_exact_names_case_and_the_catalog_id_a_name_resolves_to():
    table = PriceTable(rows=table_of(**{"GPT-4o": ("1", "2"), "house": ("3", "4")}).prices)
    for name in ("gpt-4o", "GPT-4o", "gpt-4o-2024-08-06", "openai/gpt-4o"):
        entry = table.entry(name)
        assert entry is not None, name
        assert entry.bands[0].input == Decimal("0.000001"), name
    mini = table.entry("gpt-4o-mini")  # a longer name is another model: the catalog's
    assert mini is not None
    assert mini.bands[0].input == model_prices("gpt-4o-mini").input
    assert table.entry("house").bands[0].output == Decimal("0.000004")
    assert table.entry("unknown-model-x") is None


def test_the_markup_multiplies_every_class_and_every_tier_exactly():
    table = PriceTable(Decimal("12.5"))
    small = table.entry("gemini-1.5-pro").at(1000)
    large = table.entry("gemini-1.5-pro").at(200_000)
    factor = Decimal("1.125")
    assert small.input == model_prices("gemini-1.5-pro", prompt_tokens=1000).input * factor
    assert large.input == model_prices("gemini-1.5-pro", prompt_tokens=200_000).input * factor
    assert large.input > small.input
    sonnet = table.entry("claude-3-5-sonnet-20241022").bands[0]
    listed = model_prices("claude-3-5-sonnet-20241022")
    assert sonnet.cached_input == listed.cached_input * factor
    assert sonnet.cache_write == listed.cache_write * factor


@given(
    markup=st.decimals(min_value=0, max_value=10_000, places=4),
    model=st.sampled_from(["gpt-4", "gpt-4o-mini", "claude-3-opus", "gemini-1.5-flash"]),
)
def test_a_marked_up_catalog_price_is_valid_money(markup, model):
    """A markup of up to 4 decimal places keeps every price within the 18
    decimal places the ledger stores exactly (no rounding anywhere)."""
    band = PriceTable(markup).entry(model).bands[0]
    for price in (band.input, band.output, band.cached_input):
        if price is not None:
            assert -price.as_tuple().exponent <= MAX_DECIMAL_PLACES
            assert to_money(price, "input_token_price") == price


def test_a_direct_charge_reads_the_table_and_an_unknown_model_names_the_fix():
    reader = Reader(table_of(house=("1", "1")))
    pricer = TokenPricer((Decimal(0), Decimal(0)), False, PriceBook(reader))
    priced = pricer.price_now("house", None, 10, (None, None, None, None), "p")
    assert priced[:2] == (Decimal("0.000001"), Decimal("0.000001"))
    assert priced[4] == {"model": "house"}
    assert priced[5] == "house"
    with pytest.raises(AgentMeterValidationError, match="agentmeter prices set acme"):
        pricer.price_now("acme", None, 10, (None, None, None, None), "p")
    pricer.price_now(None, None, 10, (None, None, None, None), "other")  # names no model
    assert reader.reads == 1  # no model, or explicit prices: no table needed


def test_the_hot_path_prices_from_the_catalog_then_settles_at_finalize():
    reader = Reader(table_of("100"))
    pricer = TokenPricer((Decimal(0), Decimal(0)), False, PriceBook(reader, ttl=3600))
    given_prices = (None, None, None, None)
    priced = pricer.price_queued("gpt-4", None, 5, given_prices, "p", "raise")
    settle_later = priced[6]
    assert settle_later
    assert reader.reads == 0
    event = token_event("p", "a", "u", MILLION, MILLION, priced[0], priced[1], priced[4])
    event[REPRICE] = (pricer.book, given_prices, "gpt-4")
    finalize(event)
    assert REPRICE not in event
    assert reader.reads == 1
    assert Decimal(event["total_cost"]) == 180  # (30 + 60) x 2
    priced = pricer.price_queued("gpt-4", None, 5, given_prices, "p", "raise")
    settle_later = priced[6]
    assert not settle_later
    assert priced[0] == Decimal("0.00006")


def test_an_unknown_model_on_the_hot_path_reads_the_table_once_before_raising():
    reader = Reader(table_of(house=("2", "2")))
    pricer = TokenPricer((Decimal(0), Decimal(0)), False, PriceBook(reader, ttl=3600))
    priced = pricer.price_queued("house", None, 5, (None,) * 4, "p", "raise")
    assert priced[0] == Decimal("0.000002")
    assert reader.reads == 1
    with pytest.raises(AgentMeterValidationError, match="acme"):
        pricer.price_queued("acme", None, 5, (None,) * 4, "p", "raise")
    assert reader.reads == 1


def test_settling_keeps_the_prices_given_with_the_charge():
    reader = Reader(table_of("50"))
    book = PriceBook(reader)
    event = token_event("p", "a", "u", 10, 10, Decimal("1"), Decimal("0.00006"), None)
    event[REPRICE] = (book, (Decimal("1"), None, None, None), "gpt-4")
    finalize(event)
    assert event["input_token_price"] == Decimal("1")  # given: kept
    assert event["output_token_price"] == Decimal("0.00009")  # 0.00006 x 1.5


def test_settling_never_breaks_delivery(caplog):
    class Broken:
        def get_prices(self, project_id: str | None = None) -> ProjectPrices:
            raise RuntimeError("a bug in a fake")

    event = token_event("p", "a", "u", 10, 10, Decimal("1"), Decimal("2"), None)
    event[REPRICE] = (PriceBook(Broken()), (None, None, None, None), "gpt-4")
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        finalize(event)
    assert Decimal(event["total_cost"]) == 30
    assert "could not settle the prices" in caplog.text
