"""``agentmeter projects create|list`` as a user runs them: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

from agentmeter import AgentMeterClient


def agentmeter(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    return subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def parse_created(stdout):
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    assert lines[0].startswith("project id: ")
    assert lines[1].startswith("project key (shown once, store it now): am_proj_")
    return lines[0].split(": ", 1)[1], lines[1].rsplit(" ", 1)[1]


def test_projects_create_on_a_server(live_server, unique):
    done = agentmeter(
        "projects",
        "create",
        "CLI shop",
        "--description",
        "from the shell",
        "--id",
        f"proj_cli_{unique}",
        "--base-url",
        live_server.url,
        "--api-key",
        live_server.admin_key,
    )

    assert done.returncode == 0, done.stderr
    project_id, key = parse_created(done.stdout)
    assert project_id == f"proj_cli_{unique}"
    assert done.stdout.count(key) == 1
    assert key not in done.stderr
    with live_server.client(key, project_id=project_id, agent_id="cli") as client:
        assert client.record_instant_pay(amount="0.5").cost == Decimal("0.5")
        assert client.get_project(project_id).description == "from the shell"

    listed = agentmeter(
        "projects", "list", "--base-url", live_server.url, "--api-key", live_server.admin_key
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{project_id}\tCLI shop\tfrom the shell" in listed.stdout.splitlines()
    assert live_server.admin_key not in listed.stdout + listed.stderr


def test_projects_create_with_a_generated_id(live_server):
    done = agentmeter(
        "projects",
        "create",
        "generated",
        "--base-url",
        live_server.url,
        "--api-key",
        live_server.admin_key,
    )
    assert done.returncode == 0, done.stderr
    project_id, _ = parse_created(done.stdout)
    assert project_id.startswith("proj_")


def test_projects_create_needs_the_admin_key(live_server, http_backend):
    project = http_backend.new_project("not admin")
    key = project.api_key.get_secret_value()
    denied = agentmeter("projects", "create", "x", "--base-url", live_server.url, "--api-key", key)
    assert denied.returncode == 1
    assert "403" in denied.stderr
    assert key not in denied.stderr + denied.stdout
    wrong = agentmeter(
        "projects", "create", "x", "--base-url", live_server.url, "--api-key", "am_admin_wrong"
    )
    assert wrong.returncode == 1
    assert "401" in wrong.stderr
    assert "am_admin_wrong" not in wrong.stderr


def test_projects_create_and_list_embedded(tmp_path, scan):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"

    done = agentmeter("projects", "create", "local", "--id", "proj_local", "--db", db)

    assert done.returncode == 0, done.stderr
    project_id, key = parse_created(done.stdout)
    assert project_id == "proj_local"
    assert scan(list(tmp_path.glob("ledger.db*")), [key]) == []  # stored hashed only
    with AgentMeterClient(base_url=db) as client:
        assert client.get_project("proj_local").name == "local"
    listed = agentmeter("projects", "list", "--db", db)
    # The embedded ledger always has its "default" project (no key).
    assert listed.stdout.splitlines() == ["default\tDefault project\t", "proj_local\tlocal\t"]
    again = agentmeter("projects", "create", "local", "--id", "proj_local", "--db", db)
    assert again.returncode == 1
    assert "409" in again.stderr
