"""The ``agentmeter`` group imports a command's module only when that command runs.

Its help lists every command from a table of short helps (``COMMANDS`` in
cli/app.py), checked here against the commands themselves; what a command
loads is looked at in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agentmeter.cli import lazy
from agentmeter.cli.app import COMMANDS, EXAMPLES, AgentMeterGroup, cli
from agentmeter.cli.lazy import LazyCommand, LazyGroup

RUN_AND_LIST_MODULES = """
import json, sys
from agentmeter.cli.app import cli
try:
    cli.main({args!r}, prog_name="agentmeter")
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""


def run_listing_modules(*args: str) -> tuple[int, set[str]]:
    script = RUN_AND_LIST_MODULES.format(args=list(args))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    last = json.loads(done.stdout.splitlines()[-1])
    return last["code"], set(last["modules"])


def test_the_table_names_every_command_with_its_own_short_help():
    """A command added to the group must be added to COMMANDS (with its short help)."""
    assert set(COMMANDS) == set(cli.commands)
    for name, entry in COMMANDS.items():
        command = cli.commands[name]
        assert command.name == name
        assert entry.short_help == command.get_short_help_str(limit=10_000), name


def test_the_help_is_the_same_before_and_after_the_commands_load():
    group = AgentMeterGroup("agentmeter", lazy_commands=COMMANDS, epilog=EXAMPLES)
    runner = CliRunner()
    before = runner.invoke(group, ["--help"], prog_name="agentmeter")
    assert not any(group.commands.is_loaded(name) for name in COMMANDS)  # type: ignore[attr-defined]
    for name in COMMANDS:
        group.commands[name]
    after = runner.invoke(group, ["--help"], prog_name="agentmeter")
    assert before.exit_code == after.exit_code == 0
    assert before.output == after.output
    for name in COMMANDS:
        assert f"\n  {name} " in before.output


def test_the_top_level_help_imports_no_command():
    code, modules = run_listing_modules("--help")
    assert code == 0
    ours = sorted(name for name in modules if name.startswith("agentmeter"))
    assert ours == [
        "agentmeter",
        "agentmeter._version",
        "agentmeter.cli",
        "agentmeter.cli.app",
        "agentmeter.cli.common",
        "agentmeter.cli.lazy",
        "agentmeter.errors",
    ]
    heavy = ("sqlalchemy", "pydantic", "rich", "requests", "urllib3", "tenacity", "asyncio")
    assert sorted(name for name in modules if name.split(".")[0] in heavy) == []


def test_the_help_of_report_and_stats_imports_no_model_nor_client():
    for command in ("report", "stats"):
        code, modules = run_listing_modules(command, "--help")
        assert code == 0
        heavy = ("sqlalchemy", "pydantic", "rich", "requests")
        assert sorted(name for name in modules if name.split(".")[0] in heavy) == [], command
        assert "agentmeter.client" not in modules
        assert "agentmeter.models" not in modules


def test_a_report_on_a_ledger_file_loads_only_what_it_uses(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    recorded = CliRunner().invoke(cli, ["record", "instant", "--amount", "1.5", "--db", db])
    assert recorded.exit_code == 0, recorded.output
    code, modules = run_listing_modules("report", "--db", db, "--format", "csv")
    assert code == 0
    assert "agentmeter.cli.report" in modules
    assert "agentmeter.ledger" in modules
    unused = (
        "requests",  # HTTP: the ledger is in-process
        "tenacity",
        "rich",  # CSV needs no console
        "sqlalchemy",  # the report fits the rollups: read with sqlite3 alone
        "pydantic",
        "fastapi",
        "uvicorn",
        "stripe",
        "agentmeter.server",
        "agentmeter.tracker",
        "agentmeter.delivery",
        "agentmeter.capture.blocks",
        "agentmeter.integrations",
        "agentmeter.transport.http",
        "agentmeter.cli.stripe_sync",
        "agentmeter.cli.importer",
        "agentmeter.cli.send",
        "agentmeter.cli.serve",
    )
    loaded = [name for name in modules if name.split(".")[0] in unused or name in unused]
    loaded += [name for name in modules if name.startswith(tuple(f"{u}." for u in unused))]
    assert sorted(loaded) == []


def test_a_command_that_needs_a_missing_package_says_which(monkeypatch: pytest.MonkeyPatch):
    def missing(name: str) -> None:
        raise ModuleNotFoundError("No module named 'rich'", name="rich")

    monkeypatch.setattr(lazy.importlib, "import_module", missing)
    group = LazyGroup("agentmeter", lazy_commands={"report": COMMANDS["report"]})
    done = CliRunner().invoke(group, ["report"])
    assert done.exit_code == 2
    assert "rich is missing" in done.output
    assert "pip install 'agentmeter[cli]'" in done.output


def test_the_commands_mapping_behaves_like_a_dict():
    entry = LazyCommand("stats:stats", "Totals.")
    commands = lazy.LazyCommands({"stats": entry})
    assert "stats" in commands
    assert len(commands) == 1
    assert list(commands) == ["stats"]
    assert not commands.is_loaded("stats")
    assert commands["stats"].name == "stats"
    extra = click.Command("extra", help="Added the click way.")
    commands["extra"] = extra
    assert list(commands) == ["extra", "stats"]
    assert commands["extra"] is extra
    del commands["stats"]
    assert list(commands) == ["extra"]
    with pytest.raises(KeyError):
        commands["stats"]
