"""The async client has a twin of every public method of the sync client, with
the same signature, and both run the same endpoint code (one definition per
endpoint: only the transport call differs).

Documented exceptions (docs/client.md, "The async client"):
- ``flush`` and ``close`` are ``aflush`` and ``aclose`` (coroutines, same parameters);
- the ``build_*`` methods send nothing: plain methods on both clients.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading
from typing import Any

import pytest

from agentmeter import AgentMeterClient, AsyncAgentMeterClient, NotFoundError
from agentmeter.endpoints.plan import Blocking, Call, arun, endpoint, plan_of, run

RENAMED = {"flush": "aflush", "close": "aclose"}
SYNC_ON_BOTH = {"build_api_request_pay", "build_token_based_pay", "build_instant_pay"}


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: getattr(cls, name)
        for name in dir(cls)
        if not name.startswith("_")
        and not isinstance(inspect.getattr_static(cls, name), property)
        and callable(getattr(cls, name))
    }


SYNC = public_methods(AgentMeterClient)


def test_the_sync_client_has_the_methods_this_suite_expects():
    assert len(SYNC) >= 33
    assert {"record_event", "get_user_meter", "create_billing_record", "get_prices"} <= set(SYNC)


@pytest.mark.parametrize("name", sorted(SYNC))
def test_every_sync_method_has_an_async_twin_with_the_same_signature(name):
    twin = getattr(AsyncAgentMeterClient, RENAMED.get(name, name), None)
    assert twin is not None, f"AsyncAgentMeterClient has no twin of {name}"
    assert inspect.signature(twin) == inspect.signature(SYNC[name])
    assert inspect.iscoroutinefunction(twin) is (name not in SYNC_ON_BOTH)
    assert inspect.getdoc(twin)


def test_the_async_client_has_nothing_public_the_sync_client_lacks():
    twins = {RENAMED.get(name, name) for name in SYNC}
    assert set(public_methods(AsyncAgentMeterClient)) == twins


@pytest.mark.parametrize("name", sorted(set(SYNC) - SYNC_ON_BOTH - set(RENAMED) - {"check_budget"}))
def test_both_clients_run_the_same_plan(name):
    """Not a copy: the coroutine carries out the very plan the sync method runs."""
    assert plan_of(getattr(AsyncAgentMeterClient, name)) is plan_of(SYNC[name])


# ------------------------------------------------------------- the drivers


class Answers:
    """A transport (sync or async) that answers from a table and records the threads."""

    describe = "answers"
    default_project_id = "p"
    concurrency = 2

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.threads: list[int] = []

    def _answer(self, path: str) -> Any:
        self.threads.append(threading.get_ident())
        answer = self.table[path]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def request(self, method: str, path: str, **options: Any) -> Any:
        return self._answer(path)

    def close(self) -> None:
        pass


class AsyncAnswers(Answers):
    async def request(self, method: str, path: str, **options: Any) -> Any:  # type: ignore[override]
        return self._answer(path)

    async def aclose(self) -> None:
        pass


def a_plan(log: list[Any]):
    log.append(("blocking ran on", (yield Blocking(threading.get_ident))))
    try:
        yield Call("GET", "/missing")
    except NotFoundError as exc:
        log.append(("caught", exc.status_code))
    answer = yield Call("GET", "/there")
    return answer["value"] * 2


TABLE = {"/missing": NotFoundError("no", 404), "/there": {"value": 21}}


def test_the_sync_driver_does_every_step_in_place():
    log: list[Any] = []
    assert run(a_plan(log), Answers(TABLE)) == 42
    assert log == [("blocking ran on", threading.get_ident()), ("caught", 404)]


def test_the_async_driver_awaits_calls_and_moves_blocking_work_off_the_loop():
    log: list[Any] = []
    transport = AsyncAnswers(TABLE)

    async def scenario():
        return await arun(a_plan(log), transport), threading.get_ident()

    result, loop_thread = asyncio.run(scenario())
    assert result == 42
    assert log[0][1] != loop_thread  # the Blocking step ran on a worker thread
    assert log[1] == ("caught", 404)
    assert transport.threads == [loop_thread, loop_thread]  # the calls were awaited on the loop


def test_an_error_the_plan_does_not_catch_reaches_the_caller_unchanged():
    error = NotFoundError("gone", 404)

    def plan():
        yield Call("GET", "/x")

    with pytest.raises(NotFoundError) as raised:
        run(plan(), Answers({"/x": error}))
    assert raised.value is error
    assert raised.value.__context__ is None


def test_endpoint_keeps_the_plan_and_shows_the_result_type():
    class Group:
        def __init__(self) -> None:
            self._connection = type("C", (), {"transport": Answers({"/y": 5})})()

        @endpoint
        def read(self, scale: int = 1):
            """Read y."""
            return (yield Call("GET", "/y")) * scale

    read: Any = Group.read
    assert Group().read(3) == 15
    assert read.__doc__ == "Read y."
    assert list(inspect.signature(read).parameters) == ["self", "scale"]
    assert inspect.isgeneratorfunction(plan_of(read))
    with pytest.raises(TypeError, match="not an endpoint"):
        plan_of(AgentMeterClient.__init__)


# ----------------------------------------------------------- the extra


def test_import_agentmeter_needs_no_httpx_and_the_async_client_names_its_extra():
    script = """
import sys
sys.modules["httpx"] = None  # as if it were not installed
import agentmeter
client = agentmeter.AgentMeterClient(base_url="http://127.0.0.1:9", project_id="p")
try:
    agentmeter.AsyncAgentMeterClient
except ImportError as exc:
    print("ERROR:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "pip install 'agentmeter[async]'" in done.stdout
    assert "httpx" in done.stdout
    assert "langchain" not in done.stdout
