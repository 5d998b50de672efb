"""The API key never shows: not in a repr, an error, a log line, nor an event."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
import requests

from agentmeter import AgentMeterClient, AgentMeterConfig, AgentMeterError
from agentmeter.errors import scrub, scrub_data

EVENT_URL = "/api/meter/event"
HEALTH = "/health"
ECHOES = ["key {key} is not valid", "got header Authorization: Bearer {key}", "{key}"]


def assert_hidden(key, *texts):
    for text in texts:
        assert key not in text


def test_the_key_is_sent_in_the_authorization_header_only(client, server, api_key):
    server.post(EVENT_URL, status=201, json={"event_id": "e1"})

    client.record_api_request_pay(unit_price="0.01", metadata={"note": "hello"})

    request = server.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {api_key}"  # the positive control
    assert_hidden(api_key, request.url, request.body.decode())


def test_reprs_hide_the_key(client, api_key):
    config = client.config
    assert config.api_key_value == api_key  # the client does hold it
    assert_hidden(
        api_key,
        repr(client),
        str(client),
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(config.model_dump()),
        repr(client.transport),
        repr(AgentMeterConfig(api_key=api_key)),
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 429, 500, 503])
@pytest.mark.parametrize("echo", ECHOES)
def test_errors_that_echo_the_key_are_scrubbed(client, server, status, echo, api_key):
    echo = echo.format(key=api_key)
    body = {"error": {"code": "bad_key", "message": echo, "details": [{"message": echo}]}}
    server.get("/projects/p", status=status, json=body)

    with pytest.raises(AgentMeterError) as raised:
        client.get_project("p")

    error = raised.value
    assert_hidden(api_key, str(error), repr(error), error.message, json.dumps(error.response_data))
    assert_hidden(api_key, *(str(item) for item in error.details))
    assert_hidden(api_key, "".join(traceback.format_exception(error)))


def test_a_plain_text_error_body_echoing_the_key_is_scrubbed(client, server, api_key):
    server.get(HEALTH, status=500, body=f"upstream refused Bearer {api_key}")

    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_hidden(api_key, str(raised.value), repr(raised.value))


def test_connection_errors_that_echo_the_key_are_scrubbed(client, server, api_key):
    server.get(HEALTH, body=requests.ConnectionError(f"proxy rejected {api_key}"))

    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_hidden(api_key, str(raised.value), repr(raised.value))
    assert_hidden(api_key, "".join(traceback.format_exception(raised.value)))


def test_no_log_record_holds_the_key(make_client, server, caplog, api_key):
    echo = {"error": {"code": "bad_key", "message": f"Bearer {api_key} refused"}}
    server.get(HEALTH, status=503, json=echo)
    server.get(HEALTH, body=requests.ConnectionError(f"reset while sending {api_key}"))
    server.get(HEALTH, status=429, headers={"Retry-After": "0"}, json=echo)
    server.get(HEALTH, json={"status": "healthy"})
    server.post("/api/meter/events/batch", status=404, json=echo)
    server.post(EVENT_URL, status=422, json=echo)
    server.get("/projects/p", status=401, json=echo)
    for _ in range(4):
        server.get("/api/meter/usage", status=500, json=echo)

    with caplog.at_level(logging.DEBUG):
        client = make_client(max_attempts=4)
        client.health_check()
        client.record_events([client.build_instant_pay("1")])
        for call in (lambda: client.get_project("p"), client.get_user_meter):
            with pytest.raises(AgentMeterError) as raised:
                call()
            # What an application does with our errors: log them with a traceback.
            logging.getLogger("app").error(
                "metering failed: %r", raised.value, exc_info=raised.value
            )

    assert len(server.calls) == 11
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    for record in caplog.records:
        assert_hidden(api_key, record.getMessage(), repr(record.args))
    assert_hidden(api_key, caplog.text)


def test_scrub_masks_the_given_secrets_and_key_shaped_tokens():
    text = "a sk-1 b Bearer abc.def c am_proj_0123abc d am_admin_x-y_z e"
    assert scrub(text, ["sk-1", None, ""]) == "a *** b Bearer *** c *** d *** e"


def test_scrub_data_reaches_into_nested_json():
    data = {"error": {"message": "key sk-1", "details": [{"hint": "Bearer sk-1"}, 3, None]}}
    assert scrub_data(data, ["sk-1"]) == {
        "error": {"message": "key ***", "details": [{"hint": "Bearer ***"}, 3, None]}
    }


def test_a_client_from_the_environment_hides_the_key(monkeypatch, api_key, base_url):
    monkeypatch.setenv("AGENTMETER_API_KEY", api_key)
    monkeypatch.setenv("AGENTMETER_BASE_URL", base_url)

    client = AgentMeterClient()
    assert client.config.api_key_value == api_key
    assert_hidden(api_key, repr(client), repr(client.config))


# --- issue 11 item 8: encoded keys, exact-match masking, nothing reachable ---

PROJ_KEY = "am_proj_Zx81kQ2mW7"


@pytest.mark.parametrize(
    "path",
    [
        f"/x?authorization=Bearer%20{PROJ_KEY}",
        f"/x?authorization=Bearer+{PROJ_KEY}",
        f"/x?api_key=%22{PROJ_KEY}%22",
        f"/x?q=%2522{PROJ_KEY}%2522",  # doubly encoded
        f"/x?q=%22am%5fproj%5F{PROJ_KEY[8:]}%22",  # mixed-case hex
        f"/x?q=am%255Fproj%255F{PROJ_KEY[8:]}",
        f"/x?q=Bearer%2520{PROJ_KEY}",
        "/x?token=secretvalue&b=1",
        "/x?ApiKey=secretvalue",
        "/x?x-api-key=secretvalue",
        "/x?access_token=secretvalue",
        "/x?key=secretvalue",
    ],
)
def test_the_access_log_masks_encoded_keys_and_credential_parameters(path, caplog):
    from agentmeter.server import _ScrubKeys

    logger = logging.getLogger("test.access")
    logger.addFilter(_ScrubKeys("am_admin_unrelated"))
    with caplog.at_level(logging.INFO, logger="test.access"):
        logger.info('%s - "%s %s HTTP/1.1" %d', "127.0.0.1:5", "GET", path, 401)
    line = caplog.records[-1].getMessage()
    assert PROJ_KEY[8:] not in line
    assert "secretvalue" not in line
    assert '"GET /x?' in line  # the rest of the line is kept
    assert line.endswith('HTTP/1.1" 401')


def test_a_short_key_is_masked_only_as_a_whole_token():
    assert scrub("Max retries: a failed", ["a"]) == "Max retries: *** failed"
    assert scrub("Mark and Ma retries", ["Ma"]) == "Mark and *** retries"
    assert scrub("key=k1, k1x xk1", ["k1"]) == "key=***, k1x xk1"


def test_key_shaped_tokens_are_masked_whatever_the_given_secrets():
    assert scrub(f"echo {PROJ_KEY} and am_admin_abc", []) == "echo *** and ***"
    assert scrub("Authorization: Bearer abc.def", []) == "Authorization: Bearer ***"


def test_unencoded_text_is_left_as_written():
    assert scrub("GET /p?q=a%2Fb&n=1+2 200", ["zz"]) == "GET /p?q=a%2Fb&n=1+2 200"


def _texts_reachable_from(value, depth=0, seen=None):
    """Every str/bytes reachable from an exception: its chain, args, attributes
    (a requests PreparedRequest's headers included), depth-bounded."""
    seen = set() if seen is None else seen
    if depth > 8 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, (int, float, type(None), type)):
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts_reachable_from(key, depth + 1, seen)
            yield from _texts_reachable_from(item, depth + 1, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _texts_reachable_from(item, depth + 1, seen)
    else:
        if isinstance(value, BaseException):
            for linked in (value.args, value.__cause__, value.__context__):
                yield from _texts_reachable_from(linked, depth + 1, seen)
        headers = getattr(value, "headers", None)
        if headers is not None:
            yield from _texts_reachable_from(dict(headers), depth + 1, seen)
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            yield from _texts_reachable_from(attributes, depth + 1, seen)


def assert_unreachable(key, error):
    texts = list(_texts_reachable_from(error))
    assert texts  # the walk did reach something
    assert not [text for text in texts if key in text]


def _closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _SilentServer:
    """Accepts connections and never answers (read timeouts), or answers
    garbage to a TLS hello (SSL errors)."""

    def __init__(self, reply: bytes | None = None):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.reply is not None:
                try:
                    conn.recv(1024)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


def _http_client(url, api_key, attempts=1, **options):
    from agentmeter.transport.http import HttpTransport
    from agentmeter.transport.retry import RetryPolicy

    retry = RetryPolicy(max_attempts=attempts, sleep=lambda _s: None, random=lambda: 0.0)
    transport = HttpTransport(url, api_key, retry=retry, **options)
    return AgentMeterClient(api_key=api_key, base_url=url, project_id="p", transport=transport)


@pytest.mark.parametrize("attempts", [1, 3])
def test_no_key_is_reachable_from_a_connection_refused_error(attempts):
    client = _http_client(f"http://127.0.0.1:{_closed_port()}", PROJ_KEY, attempts)
    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_unreachable(PROJ_KEY, raised.value)
    assert_unreachable(PROJ_KEY[8:], raised.value)


def test_no_key_is_reachable_from_a_timeout_error():
    silent = _SilentServer()
    try:
        client = _http_client(f"http://127.0.0.1:{silent.port}", PROJ_KEY, 2, timeout=0.2)
        with pytest.raises(AgentMeterError) as raised:
            client.health_check()
    finally:
        silent.close()
    assert raised.value.timeout
    assert_unreachable(PROJ_KEY[8:], raised.value)


def test_no_key_is_reachable_from_an_ssl_error():
    garbage = _SilentServer(reply=b"HTTP/1.1 200 OK\r\n\r\nnot tls at all")
    try:
        client = _http_client(f"https://127.0.0.1:{garbage.port}", PROJ_KEY)
        with pytest.raises(AgentMeterError) as raised:
            client.health_check()
    finally:
        garbage.close()
    assert_unreachable(PROJ_KEY[8:], raised.value)


def test_no_key_is_reachable_from_an_invalid_url_error():
    client = _http_client("http://", PROJ_KEY)
    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_unreachable(PROJ_KEY[8:], raised.value)


def test_no_key_is_reachable_through_the_failover_transport():
    from agentmeter.transport.failover import FailoverTransport
    from agentmeter.transport.retry import RetryPolicy

    urls = [f"http://127.0.0.1:{_closed_port()}" for _ in range(2)]
    retry = RetryPolicy(max_attempts=3, sleep=lambda _s: None)
    transport = FailoverTransport(urls, PROJ_KEY, retry=retry)
    client = AgentMeterClient(api_key=PROJ_KEY, project_id="p", transport=transport)
    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_unreachable(PROJ_KEY[8:], raised.value)


def test_no_key_is_reachable_from_a_connection_error_echoing_it(server, api_key):
    server.get(HEALTH, body=requests.ConnectionError(f"proxy rejected Bearer {api_key}"))
    client = _http_client(server.base_url, api_key)
    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_unreachable(api_key, raised.value)


def test_an_embedded_client_error_keeps_no_ledger_exception(tmp_path):
    """Regression: ``raise ... from None`` still left the ledger's exception (its SQL
    and parameters) on ``__context__``."""
    from agentmeter import AgentMeterClient
    from agentmeter.errors import AgentMeterAPIError

    client = AgentMeterClient(base_url=f"sqlite:///{tmp_path}/l.db", project_id="p")
    with client, pytest.raises(AgentMeterAPIError) as caught:
        client.get_project("no-such-project")
    assert caught.value.status_code == 404
    assert caught.value.__context__ is None
