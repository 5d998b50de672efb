"""agentmeter.wrap(): bill every OpenAI call to the user it was made for.

Runs offline as is: it starts a tiny stand-in for OpenAI's Chat Completions
API on 127.0.0.1 (standard library only, below) and records to a ledger file
in a temporary folder. With a real key, drop the fake and ``base_url``: the
rest of the code is the same.

    python examples/openai_wrapper.py

``agentmeter.wrap(client, meter)`` returns a copy of your ``OpenAI`` client
(still an ``OpenAI``) whose calls are each billed once, by token class, at
the model's catalog prices. Inside ``with agentmeter.attribute(user_id=...)``
they are billed to that user. A streamed call is billed when the stream ends.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from openai import OpenAI

import agentmeter
from agentmeter import AgentMeterClient

MODEL = "gpt-4o-mini-2024-07-18"
WORDS = ["Metered", " and", " billed."]
USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
ANSWER_IDS = itertools.count(1)  # each answer its own id, as OpenAI's: one call, one event


class FakeOpenAI(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: a fixed answer, as JSON or as server-sent events."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer_id = f"chatcmpl-demo{next(ANSWER_IDS)}"
        head = {"id": answer_id, "created": 1_700_000_000, "model": MODEL}
        if not request.get("stream"):
            message = {"role": "assistant", "content": "".join(WORDS)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            body = {**head, "object": "chat.completion", "choices": [choice], "usage": USAGE}
            return self.send(200, "application/json", json.dumps(body).encode())
        chunk = {**head, "object": "chat.completion.chunk"}
        chunks = [
            {**chunk, "choices": [{"index": 0, "delta": {"content": word}}]} for word in WORDS
        ]
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({**chunk, "choices": [], "usage": USAGE})  # the usage, last
        events = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
        return self.send(200, "text/event-stream", (events + "data: [DONE]\n\n").encode())

    def send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # quiet
        pass


def start_fake_openai() -> tuple[ThreadingHTTPServer, str]:
    """The fake on a free port, served by a daemon thread; and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def main() -> None:
    server, base_url = start_fake_openai()
    folder = tempfile.TemporaryDirectory()
    ledger = f"sqlite:///{Path(folder.name) / 'ledger.db'}"  # or a server's URL and a key
    with folder, AgentMeterClient(base_url=ledger, project_id="demo") as meter:
        client = agentmeter.wrap(OpenAI(api_key="sk-demo", base_url=base_url), meter)
        ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}

        with agentmeter.attribute(user_id="alice"):
            reply = client.chat.completions.create(**ask)
            print("reply:   ", reply.choices[0].message.content)
            stream = client.chat.completions.create(stream=True, **ask)
            streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
            print("streamed:", streamed)

        meter.flush()
        events = meter.get_events(user_id="alice")
        total = sum((event.total_cost for event in events), Decimal(0))
        tokens = sum(event.tokens_in + event.tokens_out for event in events)
        print(f"alice was billed {total} USD for {len(events)} calls, {tokens} tokens")
    server.shutdown()


if __name__ == "__main__":
    main()
