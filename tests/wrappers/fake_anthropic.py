"""Anthropic's Messages API, faked for the real ``anthropic`` SDK.

:class:`AnthropicFake` is a handler for ``fake_server`` (conftest.py). It
answers ``POST /v1/messages`` as the API does: a ``Message`` as JSON, or, for
``"stream": true``, the server-sent events in the API's order::

    message_start      message.usage: input, cache read, cache creation, output so far
    content_block_start
    ping
    content_block_delta  (one per piece of text)
    content_block_stop
    message_delta      usage: the running totals (output only, in older API versions)
    message_stop

Each answer has a new message id (``msg_0001``, ...). Replies put in
``first`` are given before the normal ones, one per request (a 500 for the
SDK to retry, a 400 to raise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .conftest import Reply

MODEL = "claude-3-5-sonnet-20241022"


def error_reply(status: int, kind: str, message: str, **headers: str) -> Reply:
    """An API error as Anthropic sends it (``kind``: ``api_error``, ``invalid_request_error``)."""
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply(status, body, headers=headers)


@dataclass
class AnthropicFake:
    """``POST /v1/messages`` with these counts (Anthropic's: ``input_tokens``
    leaves out the cache reads and the cache writes)."""

    input_tokens: int = 25
    output_tokens: int = 12
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    model: str | None = MODEL  # None: the requested one
    text: tuple[str, ...] = ("Hello", ", ", "world")
    start_output_tokens: int = 1  # the output counted in message_start
    delta_counts: str = "all"  # message_delta's usage: "all" running totals, or "output" only
    delta_input_tokens: int | None = None  # message_delta's input total, if not input_tokens
    usage: bool = True  # False: a Message without usage
    first: list[Reply] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # the ids answered, in order

    def __call__(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        if method != "POST" or path.split("?")[0] != "/v1/messages":
            return error_reply(404, "not_found_error", f"{method} {path}")
        if self.first:
            return self.first.pop(0)
        message_id = f"msg_{len(self.served) + 1:04d}"
        self.served.append(message_id)
        model = self.model or body["model"]
        if body.get("stream"):
            return Reply(events=self.events(message_id, model))
        message = self.message(message_id, model, "".join(self.text), self.output_tokens)
        if not self.usage:
            del message["usage"]
        return Reply(body=message)

    def message(self, message_id: str, model: str, text: str, output_tokens: int) -> dict:
        content = [{"type": "text", "text": text}] if text else []
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn" if text else None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens,
                "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "output_tokens": output_tokens,
            },
        }

    def events(self, message_id: str, model: str) -> list[tuple[str | None, Any]]:
        start = self.message(message_id, model, "", self.start_output_tokens)
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            for piece in self.text
        ]
        usage: dict[str, int] = {"output_tokens": self.output_tokens}
        if self.delta_counts == "all":
            usage.update(
                input_tokens=self.input_tokens
                if self.delta_input_tokens is None
                else self.delta_input_tokens,
                cache_read_input_tokens=self.cache_read_input_tokens,
                cache_creation_input_tokens=self.cache_creation_input_tokens,
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": usage,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return events
