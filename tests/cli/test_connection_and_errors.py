"""Connection flags, environment variables, the default ledger; errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentmeter.transport import local


def agentmeter(*args, env=None):
    """A real ``agentmeter`` process, as a shell runs it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    return subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
        check=False,
    )


def assert_one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "key", ["am_proj_Wr0ngWr0ngWr0ngWr0ngWr0ng", "sk-live-9f8e7d6c5b4a3210-not-ours"]
)
@pytest.mark.parametrize("command", [["report"], ["events"], ["billing", "list"]])
def test_a_bad_key_exits_1_and_is_never_printed(am, live_server, error_line, key, command):
    done = am(*command, "--base-url", live_server.url, "--api-key", key, "--project-id", "p")
    assert done.exit_code == 1
    assert "401" in error_line(done)
    assert key not in done.stdout + done.stderr


def test_a_bad_key_in_a_real_process(live_server):
    key = "sk-live-0123456789abcdef-secret"
    for command in (["report"], ["stats"], ["events"], ["meter", "get", "--user", "u"]):
        done = agentmeter(
            *command, "--base-url", live_server.url, "--api-key", key, "--project-id", "p"
        )
        assert done.returncode == 1, (command, done.stderr)
        assert_one_line(done.stderr)
        assert key not in done.stdout + done.stderr


def test_a_bad_key_from_the_environment_is_not_printed(live_server):
    key = "sk-env-key-fedcba9876543210"
    env = {
        "AGENTMETER_BASE_URL": live_server.url,
        "AGENTMETER_API_KEY": key,
        "AGENTMETER_PROJECT_ID": "p",
    }
    done = agentmeter("stats", env=env)
    assert done.returncode == 1
    assert "401" in assert_one_line(done.stderr)
    assert key not in done.stdout + done.stderr


def test_usage_errors_in_a_real_process(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    for args in (
        ["report", "--db", db, "--since", "yesterday-ish"],
        ["report", "--db", db, "--no-such-flag"],
        ["record", "api", "--db", db, "--unit-price", "0.1.2"],
        ["record", "instant", "--db", db],  # --amount missing
        ["nonsense"],
    ):
        done = agentmeter(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert_one_line(done.stderr)
        assert done.stdout == ""


def test_an_unreachable_server_exits_1_with_one_line(am, error_line):
    done = am(
        "stats", "--base-url", "http://127.0.0.1:9", "--api-key", "am_proj_x", "--project-id",
        "p", env={"AGENTMETER_RETRY_ATTEMPTS": "0"},
    )  # fmt: skip
    assert done.exit_code == 1
    assert "127.0.0.1:9" in error_line(done)


def test_db_and_base_url_together_is_a_usage_error(am, error_line, tmp_path):
    done = am("stats", "--db", f"sqlite:///{tmp_path}/l.db", "--base-url", "http://x")
    assert done.exit_code == 2
    assert "either --db or --base-url" in error_line(done)


def test_db_takes_a_ledger_url_not_a_server(am, error_line):
    done = am("stats", "--db", "http://127.0.0.1:8787")
    assert done.exit_code == 2
    assert "--base-url" in error_line(done)


def test_a_missing_project_id_on_a_server_is_a_usage_error(am, live_server, error_line):
    done = am("stats", "--base-url", live_server.url, "--api-key", live_server.admin_key)
    assert done.exit_code == 2
    assert "project_id" in error_line(done)
    assert live_server.admin_key not in done.stderr


def test_the_environment_names_the_server(am, seeded, oracle):
    if seeded.mode == "embedded":
        env = {"AGENTMETER_BASE_URL": seeded.flags[1], "AGENTMETER_PROJECT_ID": seeded.project_id}
    else:
        env = {
            "AGENTMETER_BASE_URL": seeded.url,
            "AGENTMETER_API_KEY": seeded.key,
            "AGENTMETER_PROJECT_ID": seeded.project_id,
        }
    done = am("stats", "--timeframe", "all", "--format", "csv", env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[1].split(",")[1] == str(len(oracle.events))


def test_flags_win_over_the_environment(am, seeded, oracle):
    env = {"AGENTMETER_PROJECT_ID": "some-other-project"}
    done = am("stats", "--timeframe", "all", "--format", "csv", *seeded.flags, env=env)
    assert done.stdout.splitlines()[1].split(",")[1] == str(len(oracle.events))


def test_without_flags_the_default_ledger_is_used(am, tmp_path, monkeypatch):
    ledger = tmp_path / "home" / "ledger.db"
    monkeypatch.setattr(local, "DEFAULT_LEDGER", ledger)
    monkeypatch.setattr(local, "_warned_default", type(local._warned_default)())
    recorded = am("record", "instant", "--user", "u", "--amount", "2.50")
    assert recorded.exit_code == 0, recorded.stderr
    assert str(ledger) in recorded.stderr  # one warning naming the file
    assert recorded.stderr.startswith("warning: ")
    done = am("stats", "--timeframe", "all", "--format", "csv")
    assert done.stdout.splitlines()[1] == "all,1,0,0,0,2.50"
    assert ledger.exists()


def test_an_unexpected_failure_is_one_line_not_a_traceback(am, monkeypatch, error_line, tmp_path):
    from agentmeter.cli import report as report_module

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line am_proj_SECRETSECRET")

    monkeypatch.setattr(report_module.Totals, "of", explode)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert am("record", "instant", "--amount", "1", "--db", db).exit_code == 0
    done = am("report", "--db", db)
    assert done.exit_code == 1
    line = error_line(done)
    assert "RuntimeError: disk on fire second line ***" in line
    assert "SECRET" not in done.stderr


def test_an_unexpected_failure_never_shows_the_key_of_the_flag(
    am, admins, embedded_url, monkeypatch
):
    from agentmeter.cli import report as report_module

    key = "plain-key-without-a-known-shape-42"

    def explode(*args, **kwargs):
        raise ValueError(f"could not use {key}")

    monkeypatch.setattr(report_module.Totals, "of", explode)
    done = am("report", "--db", embedded_url, "--api-key", key)
    assert done.exit_code == 1, done.stderr
    assert "unexpected" in done.stderr
    assert key not in done.stderr + done.stdout


def test_an_unwritable_output_is_a_usage_error(am, seeded, error_line, tmp_path):
    done = am("report", *seeded.flags, "-o", tmp_path / "missing-dir" / "out.csv")
    assert done.exit_code == 2
    assert "cannot write" in error_line(done)


def test_an_unwritable_output_is_refused_before_the_server_is_asked(am, error_line, tmp_path):
    # Nothing listens on port 9: asking first would end in a connection error.
    flags = ["--base-url", "http://127.0.0.1:9", "--api-key", "k", "--project-id", "p"]
    done = am("report", *flags, "-o", tmp_path / "missing-dir" / "out.csv")
    assert done.exit_code == 2
    assert "cannot write" in error_line(done)


@pytest.mark.parametrize(
    "command",
    [["report"], ["stats"], ["events"], ["billing", "list"], ["meter", "get", "--user", "u"]],
)
def test_reading_a_missing_ledger_is_a_usage_error_and_creates_nothing(
    am, tmp_path, error_line, command
):
    path = tmp_path / "typo" / "ledger.db"
    done = am(*command, "--db", f"sqlite:///{path}")
    assert done.exit_code == 2
    assert f"no ledger file at {path}" in error_line(done)
    assert not path.parent.exists()


def test_a_reader_that_leaves_early_is_not_an_api_error(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    for _ in range(3):
        assert agentmeter("record", "instant", "--amount", "1", "--db", db).returncode == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "agentmeter.cli", "events", "--db", db, "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=base,
    )
    assert process.stdout is not None
    process.stdout.close()  # like `| head -0`: nobody reads
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, 141), stderr
    assert b"Traceback" not in stderr


def test_no_arguments_shows_help(am):
    done = am()
    assert done.exit_code == 0
    assert "Examples:" in done.stdout


def test_version(am):
    done = am("--version")
    assert done.exit_code == 0
    assert done.stdout.startswith("agentmeter, version ")
