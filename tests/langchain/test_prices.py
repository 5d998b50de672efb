"""Per-model prices: flat prices win, then the user's table (exact name or
longest prefix), then the catalog's list price, then the client's configured
defaults; a model none of them prices is recorded unpriced."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agentmeter import LangChainAgentMeterCallback
from agentmeter.core.catalog import model_prices


def _billed(lc, client):
    return {e.metadata["model"]: e for e in lc.events(client)}


def _prices(event):
    return (event.input_token_price, event.output_token_price)


def _table(name):
    """The catalog's list prices of ``name`` (per token)."""
    listed = model_prices(name)
    assert listed is not None, name
    return (listed.input, listed.output)


def test_the_default_table_matches_dated_names_by_longest_prefix(client, lc):
    handler = LangChainAgentMeterCallback(client)
    for name in ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-haiku-20241022"):
        lc.TokenChat(response_model=name).invoke("in=1000 out=100", config={"callbacks": [handler]})
    billed = _billed(lc, client)
    assert _prices(billed["gpt-4o-mini-2024-07-18"]) == _table("gpt-4o-mini")
    assert _prices(billed["gpt-4o-2024-08-06"]) == _table("gpt-4o")
    assert _prices(billed["claude-3-5-haiku-20241022"]) == _table("claude-3-5-haiku")
    expected = 1000 * Decimal("0.00000015") + 100 * Decimal("0.0000006")
    assert billed["gpt-4o-mini-2024-07-18"].total_cost == expected


def test_the_users_table_overrides_and_extends_the_default(client, lc):
    handler = LangChainAgentMeterCallback(
        client,
        prices={
            "gpt-4o-mini": ("0.000001", "0.000002"),
            "house-model": {"input_token_price": "0.5", "output_token_price": 1},
        },
    )
    for name in ("gpt-4o-mini-2024-07-18", "house-model-v2", "gpt-4o"):
        lc.TokenChat(response_model=name).invoke("in=3 out=2", config={"callbacks": [handler]})
    billed = _billed(lc, client)
    assert _prices(billed["gpt-4o-mini-2024-07-18"]) == (Decimal("0.000001"), Decimal("0.000002"))
    assert _prices(billed["house-model-v2"]) == (Decimal("0.5"), Decimal(1))
    assert billed["house-model-v2"].total_cost == Decimal("3.5")
    assert _prices(billed["gpt-4o"]) == _table("gpt-4o")  # untouched defaults stay


def test_flat_prices_win_over_any_table(client, lc):
    handler = LangChainAgentMeterCallback(
        client,
        input_token_price="0.01",
        output_token_price="0.02",
        prices={"gpt-4o": ("1", "1")},
    )
    lc.TokenChat(response_model="gpt-4o").invoke("in=3 out=2", config={"callbacks": [handler]})
    [event] = lc.events(client)
    assert _prices(event) == (Decimal("0.01"), Decimal("0.02"))
    assert event.total_cost == Decimal("0.07")


def test_one_flat_price_leaves_the_other_to_the_models_list_price(live_server, project, lc):
    """The model's price comes before the client's defaults (issue 13)."""
    with live_server.client(project.key, project_id=project.id, output_token_price="0.3") as client:
        handler = LangChainAgentMeterCallback(client, input_token_price="0.1")
        lc.TokenChat(response_model="gpt-4o").invoke("in=1 out=1", config={"callbacks": [handler]})
        lc.TokenChat(response_model="house-1").invoke("in=1 out=1", config={"callbacks": [handler]})
        billed = _billed(lc, client)
    assert _prices(billed["gpt-4o"]) == (Decimal("0.1"), _table("gpt-4o")[1])
    assert _prices(billed["house-1"]) == (Decimal("0.1"), Decimal("0.3"))  # the client's


def test_a_model_only_the_catalog_knows_is_billed_at_its_list_price(client, lc):
    """Regression (issue 13): the handler's own table lacked gpt-4 and claude-3-opus,
    which were billed at the generic defaults (an 18x under-bill for gpt-4)."""
    handler = LangChainAgentMeterCallback(client)
    for name in ("gpt-4", "claude-3-opus-20240229"):
        lc.TokenChat(response_model=name).invoke(
            "in=1000 out=1000", config={"callbacks": [handler]}
        )
    billed = _billed(lc, client)
    assert billed["gpt-4"].total_cost == Decimal("0.09")
    assert billed["claude-3-opus-20240229"].total_cost == Decimal("0.09")


def test_a_model_nobody_prices_is_recorded_unpriced(client, lc, caplog):
    handler = LangChainAgentMeterCallback(client)
    for _ in range(2):
        lc.TokenChat(response_model="mystery-2").invoke(
            "in=5 out=5", config={"callbacks": [handler]}
        )
    events = lc.events(client)
    assert [(e.tokens_in, e.total_cost, e.metadata["unpriced"]) for e in events] == [
        (5, Decimal(0), True),
        (5, Decimal(0), True),
    ]
    warnings = [r for r in caplog.records if "mystery-2" in r.getMessage()]
    assert len(warnings) == 1


def test_an_unknown_model_is_billed_at_the_clients_prices(live_server, project, lc):
    with live_server.client(
        project.key,
        project_id=project.id,
        input_token_price="0.000007",
        output_token_price="0.000009",
    ) as client:
        handler = LangChainAgentMeterCallback(client)
        lc.TokenChat(response_model="mystery-1").invoke(
            "in=2 out=1", config={"callbacks": [handler]}
        )
        [event] = lc.events(client)
    assert event.metadata["model"] == "mystery-1"
    assert _prices(event) == (Decimal("0.000007"), Decimal("0.000009"))


def test_a_missing_model_name_is_recorded_as_unknown(client, lc):
    handler = LangChainAgentMeterCallback(client)
    usage = lc.usage_metadata(4, 4)
    model = GenericFakeChatModel(messages=iter([AIMessage("ok", usage_metadata=usage)]))
    model.invoke("hi", config={"callbacks": [handler]})
    [event] = lc.events(client)
    assert event.metadata["model"] == "unknown"
    assert (event.tokens_in, event.tokens_out) == (4, 4)


class _InvocationOnlyChat:
    """Makes a TokenChat class whose name LangChain reports only in invocation_params."""

    @staticmethod
    def make(lc, name: str) -> Any:
        class Hidden(lc.TokenChat):
            def _get_ls_params(self, stop=None, **kwargs):
                params = super()._get_ls_params(stop=stop, **kwargs)
                params.pop("ls_model_name", None)
                return params

            @property
            def _identifying_params(self):
                return {"model": name}

        return Hidden()


def test_the_model_name_comes_from_the_first_place_that_has_one(client, lc):
    handler = LangChainAgentMeterCallback(client)
    spy = lc.Spy()
    config = {"callbacks": [handler, spy]}
    # 1. response_metadata["model_name"] beats the start's ls_model_name.
    lc.TokenChat(model_name="gpt-4o", response_model="gpt-4.1-nano").invoke("in=1 out=0", config)
    # 2. llm_output["model_name"] (legacy shape).
    lc.TokenChat(model_name="gpt-4o", shape="llm_output", response_model="o3-mini").invoke(
        "in=2 out=0", config
    )
    # 3. The start's ls_model_name.
    lc.TokenChat(model_name="gemini-1.5-flash-002").invoke("in=3 out=0", config)
    # 4. invocation_params["model"].
    _InvocationOnlyChat.make(lc, "claude-opus-4-1").invoke("in=4 out=0", config)
    starts = list(spy.starts.values())
    assert "ls_model_name" not in starts[3]["metadata"]
    assert starts[3]["invocation_params"]["model"] == "claude-opus-4-1"
    models = {e.tokens_in: e.metadata["model"] for e in lc.events(client)}
    assert models == {
        1: "gpt-4.1-nano",
        2: "o3-mini",
        3: "gemini-1.5-flash-002",
        4: "claude-opus-4-1",
    }
    prices = {e.tokens_in: _prices(e) for e in lc.events(client)}
    assert prices[4] == _table("claude-opus-4")
