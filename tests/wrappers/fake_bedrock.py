"""Bedrock Runtime's Converse API, faked for the real ``boto3`` SDK.

:class:`BedrockFake` is a handler for ``fake_server`` (conftest.py). It
answers ``POST /model/{modelId}/converse`` with the JSON ``converse`` returns,
and ``/model/{modelId}/converse-stream`` with an AWS event stream
(``application/vnd.amazon.eventstream``), in the API's order::

    messageStart
    contentBlockDelta   (one per piece of text)
    contentBlockStop
    messageStop
    metadata            usage: input, output, cache read, cache write; metrics

Counts are Bedrock's: ``inputTokens`` leaves out ``cacheReadInputTokens`` and
``cacheWriteInputTokens``. Each answer has a new request id (``req-0001``,
...) in its ``x-amzn-RequestId`` header. Replies put in ``first`` are given
before the normal ones, one per request (a 500 for botocore to retry, a 400
to raise).

:func:`event_frame` encodes one event-stream message: a prelude (total
length, headers length, the prelude's CRC32), the headers (each: name
length u8, name, type 7 = string, value length u16, value), the JSON payload,
and the CRC32 of everything before it.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .conftest import Reply

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<operation>converse|converse-stream)$")
_STRING = 7  # the event-stream header value type of a UTF-8 string
_EVENT_STREAM = "application/vnd.amazon.eventstream"


def event_frame(event_type: str, payload: Any) -> bytes:
    """One event-stream message: ``:event-type`` names the union member."""
    headers = b"".join(
        _header(name, value)
        for name, value in (
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        )
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def error_reply(status: int, kind: str, message: str) -> Reply:
    """An API error as Bedrock sends it (``kind``: ``ValidationException``, ...)."""
    return Reply(status, {"message": message}, headers={"x-amzn-ErrorType": kind})


@dataclass
class BedrockFake:
    """``converse`` / ``converse-stream`` with these counts (Bedrock's)."""

    input_tokens: int = 25  # cache reads and writes apart
    output_tokens: int = 12
    cache_read: int = 0
    cache_write: int = 0
    text: tuple[str, ...] = ("Hello", ", ", "world")
    first: list[Reply] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # the request ids answered, in order
    models: list[str] = field(default_factory=list)  # the model ids asked for

    def __call__(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        match = _PATH.match(path)
        if method != "POST" or match is None:
            return error_reply(404, "ResourceNotFoundException", f"{method} {path}")
        if self.first:
            return self.first.pop(0)
        self.models.append(unquote(match["model"]))
        request_id = f"req-{len(self.served) + 1:04d}"
        self.served.append(request_id)
        ids = {"x-amzn-RequestId": request_id}
        if match["operation"] == "converse":
            return Reply(body=self._converse(), headers=ids)
        frames = [event_frame(kind, payload) for kind, payload in self._events()]
        return Reply(chunks=frames, headers={**ids, "Content-Type": _EVENT_STREAM})

    def _usage(self) -> dict[str, int]:
        usage = {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens,
        }
        if self.cache_read:
            usage["cacheReadInputTokens"] = self.cache_read
        if self.cache_write:
            usage["cacheWriteInputTokens"] = self.cache_write
        return usage

    def _converse(self) -> dict[str, Any]:
        content = [{"text": "".join(self.text)}]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "end_turn",
            "usage": self._usage(),
            "metrics": {"latencyMs": 120},
        }

    def _events(self) -> list[tuple[str, Any]]:
        deltas = [
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            for piece in self.text
        ]
        return [
            ("messageStart", {"role": "assistant"}),
            *deltas,
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "end_turn"}),
            ("metadata", {"usage": self._usage(), "metrics": {"latencyMs": 120}}),
        ]
