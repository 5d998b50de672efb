"""``import agentmeter`` is cheap; every public name of 0.2 still imports as before.

The names load on first use (PEP 562 ``__getattr__`` in ``agentmeter/__init__.py``),
so the ``agentmeter`` command, the server and a webhook receiver load only what
they use. What each import loads is looked at in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import agentmeter

# Packages a bare `import agentmeter` must not load (each costs tens of milliseconds).
HEAVY = ("requests", "urllib3", "sqlalchemy", "pydantic", "pydantic_core", "rich", "click")
HEAVY += ("httpx", "tenacity", "asyncio", "fastapi", "uvicorn", "stripe", "langchain_core")


def modules_loaded_by(code: str) -> set[str]:
    """The modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_import_agentmeter_loads_no_heavy_package_and_none_of_its_modules():
    modules = modules_loaded_by("import agentmeter")
    assert heavy_among(modules) == []
    assert sorted(name for name in modules if name.startswith("agentmeter")) == [
        "agentmeter",
        "agentmeter._version",
    ]


def test_a_name_loads_only_what_it_needs():
    modules = modules_loaded_by("from agentmeter import AgentMeterError, __version__")
    assert heavy_among(modules) == []
    assert "agentmeter.errors" in modules
    assert "agentmeter.client" not in modules


@pytest.mark.parametrize("name", agentmeter.__all__)
def test_every_public_name_imports_from_the_package(name):
    namespace: dict[str, object] = {}
    exec(f"from agentmeter import {name}", namespace)  # the statement users write
    assert namespace[name] is getattr(agentmeter, name)
    assert name in dir(agentmeter)


def test_each_name_is_the_object_of_its_home_module():
    homes = agentmeter._HOMES  # type: ignore[attr-defined]
    assert set(homes) | set(agentmeter._EXTRAS) | {"__version__"} == set(agentmeter.__all__)  # type: ignore[attr-defined]
    for name, home in homes.items():
        module = importlib.import_module(f"agentmeter.{home}")
        assert getattr(agentmeter, name) is getattr(module, name), name


def test_star_import_and_unknown_names():
    modules = modules_loaded_by(
        "from agentmeter import *\n"
        "assert AgentMeterClient and track_usage and meter_agent and ReportRow and wrap"
    )
    assert "agentmeter.client" in modules
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        agentmeter.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from agentmeter import no_such_name", {})


def test_the_0_2_import_styles_work_in_a_fresh_interpreter():
    modules_loaded_by(
        "import agentmeter\n"
        "from agentmeter import AgentMeterClient, track_api_request_pay, meter_function\n"
        "from agentmeter.models import APIRequestPayEvent\n"
        "assert agentmeter.AgentMeterClient is AgentMeterClient\n"
        "assert agentmeter.APIRequestPayEvent is APIRequestPayEvent\n"
        "assert isinstance(agentmeter.AgentMeterTracker, type)"
    )
