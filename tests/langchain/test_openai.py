"""The real langchain-openai ChatOpenAI client, against an OpenAI-compatible fake
server this test serves itself on 127.0.0.1 (no real network): what it bills is
exactly what the server reported, streamed or not, read once."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

langchain_openai = pytest.importorskip("langchain_openai")

from langchain_core.messages import HumanMessage  # noqa: E402

from agentmeter import LangChainAgentMeterCallback  # noqa: E402

PRICES = ("0.000003", "0.000015")
SERVED_MODEL = "gpt-4o-mini-2024-07-18"


class FakeOpenAI(ThreadingHTTPServer):
    """``POST /v1/chat/completions``: JSON with ``usage``, or SSE chunks that end,
    when the request asks for ``stream_options.include_usage``, with a chunk
    carrying the usage, then ``data: [DONE]``. Each answer reports new numbers;
    ``reported`` keeps them in order, with the request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.reported: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_usage(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            n = next(self.counter)
            usage = {
                "prompt_tokens": 100 * n + 7,
                "completion_tokens": 10 * n + 3,
                "total_tokens": 110 * n + 10,
                "prompt_tokens_details": {"cached_tokens": 50 * n},
                "completion_tokens_details": {"reasoning_tokens": 0},
            }
            self.requests.append(request)
            self.reported.append(usage)
            return usage


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request"}})
            return
        usage = self.server.next_usage(request)
        words = ["Hello", " from", " the", " fake"]
        if not request.get("stream"):
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(words)},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for i in range(request.get("n") or 1)
            ]
            self._send_json(200, {**_head("chat.completion"), "choices": choices, "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for index, word in enumerate(words):
            delta = {"content": word, **({"role": "assistant"} if index == 0 else {})}
            self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            self._event({"choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, body: dict[str, Any]) -> None:
        chunk = {**_head("chat.completion.chunk"), **body}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()


def _head(kind: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": kind, "created": 1735689600, "model": SERVED_MODEL}


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _chat(server: FakeOpenAI, **options: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        base_url=server.base_url, api_key="sk-test", model="gpt-4o-mini", max_retries=0, **options
    )


def _reported(server: FakeOpenAI) -> list[tuple[int, int]]:
    return [(u["prompt_tokens"], u["completion_tokens"]) for u in server.reported]


def test_chatopenai_bills_what_the_server_reported(client, lc, openai_server):
    handler = LangChainAgentMeterCallback(client, prices={"gpt-4o-mini": PRICES})
    config = {"callbacks": [handler], "metadata": {"user_id": "olga"}}
    answer = _chat(openai_server).invoke("hi", config=config)
    assert answer.content == "Hello from the fake"
    # ChatOpenAI puts these numbers in three places; they are read once.
    assert answer.usage_metadata["input_tokens"] == 107
    assert answer.response_metadata["token_usage"]["prompt_tokens"] == 107

    chunks = list(_chat(openai_server, stream_usage=True).stream("hi", config=config))
    assert "".join(str(c.content) for c in chunks) == "Hello from the fake"
    assert openai_server.requests[1]["stream_options"] == {"include_usage": True}

    async def main():
        await _chat(openai_server).ainvoke("hi", config=config)
        return [
            c async for c in _chat(openai_server, stream_usage=True).astream("hi", config=config)
        ]

    assert asyncio.run(main())

    billed = lc.events(client)
    assert [(e.tokens_in, e.tokens_out) for e in billed] == _reported(openai_server)
    for event in billed:
        assert event.user_id == "olga"
        assert event.metadata["model"] == SERVED_MODEL  # dated: priced by prefix
        assert (event.input_token_price, event.output_token_price) == tuple(map(Decimal, PRICES))
        assert event.total_cost == lc.cost((event.tokens_in, event.tokens_out), PRICES)


def test_chatopenai_streaming_without_stream_usage_bills_nothing_and_warns(
    client, lc, openai_server, caplog
):
    handler = LangChainAgentMeterCallback(client)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert list(
            _chat(openai_server, stream_usage=False).stream("hi", config={"callbacks": [handler]})
        )
    assert "stream_options" not in openai_server.requests[0]
    assert lc.events(client) == []
    assert [r for r in caplog.records if "stream_usage=True" in r.getMessage()]


def test_chatopenai_n_2_is_billed_once(client, lc, openai_server):
    handler = LangChainAgentMeterCallback(client)
    result = _chat(openai_server, n=2).generate([[HumanMessage("hi")]], callbacks=[handler])
    assert len(result.generations[0]) == 2
    [event] = lc.events(client)
    assert [(event.tokens_in, event.tokens_out)] == _reported(openai_server)
