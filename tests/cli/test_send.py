"""``agentmeter send`` as a user drives it: in a pseudo-terminal (pexpect), piped, and with --yes.

Each interactive test runs the real command in a child process on its own
ledger file, answers its prompts, and reads the ledger back with the client:
what was sent is stored with its exact cost, and what was cancelled is not.
Timeouts are generous (a shared, slow machine); no test measures time.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pexpect
import pytest

from agentmeter import AgentMeterClient
from agentmeter.core.catalog import model_prices
from agentmeter.pricing import token_cost

TIMEOUT = 180
TEMPLATE_PROMPT = r"Template \[1-7\]: "
CHOICE = r"Choice: "


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", **extra})
    return env


def spawn(*args: str, **env: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agentmeter.cli", "send", *args],
        env=clean_env(**env),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(60, 200),
    )
    child.logfile_read = LogTail()
    return child


class LogTail:
    """What the child printed, for the assertion messages."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, data: str) -> None:
        self.text += data

    def flush(self) -> None:
        pass


def answer(child: pexpect.spawn, prompt: str, text: str) -> None:
    child.expect(prompt)
    child.sendline(text)


def finish(child: pexpect.spawn) -> str:
    """The rest of the output; asserts the command ended with exit code 0."""
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.logfile_read.text
    return str(child.logfile_read.text)


def sent_id(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("event id: ")]
    assert len(lines) == 1, output
    return lines[0].split(": ", 1)[1].strip()


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def stored(url: str) -> list:
    with AgentMeterClient(base_url=url, retry_attempts=0) as client:
        return client.get_events(limit=100)


def fill_api_request(child: pexpect.spawn, user: str = "alice") -> None:
    answer(child, TEMPLATE_PROMPT, "1")
    answer(child, r"User \[anonymous\]: ", user)
    answer(child, r"Agent \[default\]: ", "")
    answer(child, r"API calls \[1\]: ", "3")
    answer(child, r"Price per call \[0.001\]: ", "0.0025")


def test_a_validation_error_is_shown_and_the_field_asked_again(ledger):
    child = spawn("--db", ledger)
    answer(child, TEMPLATE_PROMPT, "9")  # no such template: asked again
    answer(child, TEMPLATE_PROMPT, "api")
    answer(child, r"User \[anonymous\]: ", "alice")
    answer(child, r"Agent \[default\]: ", "search")
    answer(child, r"API calls \[1\]: ", "three")
    child.expect(r"error: api_calls: must be a whole number, got 'three'")
    answer(child, r"API calls \[1\]: ", "-2")
    child.expect(r"error: api_calls: must not be negative")
    answer(child, r"API calls \[1\]: ", "3")
    answer(child, r"Price per call \[0.001\]: ", "0,5")
    child.expect(r"error: unit_price: must be a decimal number")
    answer(child, r"Price per call \[0.001\]: ", "0.00000033")
    child.expect(r"CloudEvent:")
    child.expect(r"Cost: 0.00000099")
    answer(child, CHOICE, "1")
    output = finish(child)

    assert "cost: 0.00000099" in output
    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert (event.user_id, event.agent_id, event.api_calls) == ("alice", "search", 3)
    assert event.unit_price == Decimal("0.00000033")
    assert event.total_cost == Decimal("0.00000099")


def test_token_prices_default_to_the_model_catalog(ledger):
    listed = model_prices("gpt-4o")
    assert listed is not None
    child = spawn("--db", ledger, "--user", "alice")  # given: not asked
    answer(child, TEMPLATE_PROMPT, "2")
    answer(child, r"Agent \[default\]: ", "chat")
    answer(child, r"Model \[gpt-4o\]: ", "")
    answer(child, r"Input tokens \[0\]: ", "1200")
    answer(child, r"Output tokens \[0\]: ", "340")
    answer(child, rf"Price per input token \[{listed.input.normalize():f}\]: ", "")
    answer(child, rf"Price per output token \[{listed.output.normalize():f}\]: ", "")
    answer(child, CHOICE, "send")
    output = finish(child)

    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert event.metadata == {"model": "gpt-4o"}
    assert event.total_cost == token_cost(1200, 340, listed.input, listed.output)


def test_a_model_without_a_price_needs_typed_prices(ledger):
    child = spawn("--db", ledger, "-t", "tokens", "--user", "alice", "--agent", "chat")
    answer(child, r"Model \[gpt-4o\]: ", "in-house-7b")
    answer(child, r"Input tokens \[0\]: ", "1000")
    answer(child, r"Output tokens \[0\]: ", "10")
    answer(child, r"Price per input token: ", "")  # no default: asked again
    answer(child, r"Price per input token: ", "0.000001")
    answer(child, r"Price per output token: ", "0.000002")
    answer(child, CHOICE, "1")
    finish(child)

    (event,) = stored(ledger)
    assert event.metadata == {"model": "in-house-7b"}
    assert event.total_cost == Decimal("0.00102")


def test_a_bad_option_is_corrected_at_the_prompt(ledger):
    child = spawn("--db", ledger, "-t", "api", "--user", "alice", "-f", "unit_price=free")
    answer(child, r"Agent \[default\]: ", "")
    answer(child, r"API calls \[1\]: ", "2")
    child.expect(r"error: unit_price: must be a decimal number, got 'free'")
    answer(child, r"Price per call \[0.001\]: ", "")
    child.expect(r"Cost: 0.002")
    answer(child, CHOICE, "1")
    finish(child)

    (event,) = stored(ledger)
    assert event.total_cost == Decimal("0.002")


def test_an_edited_field_is_what_is_sent(ledger):
    child = spawn("--db", ledger)
    answer(child, TEMPLATE_PROMPT, "4")  # compute hours
    answer(child, r"User \[anonymous\]: ", "bob")
    answer(child, r"Agent \[default\]: ", "trainer")
    answer(child, r"Compute hours \(whole hours\) \[1\]: ", "12")
    answer(child, r"Price per hour: ", "2.40")
    answer(child, r"Resource .*: ", "gpu-a100")
    child.expect(r"Cost: 28.8")
    answer(child, CHOICE, "2")
    child.expect(r"3\) hours = 12")
    answer(child, r"Field \[1-5\]: ", "3")
    answer(child, r"Compute hours \(whole hours\) \[12\]: ", "1.5")
    child.expect(r"error: hours \(api_calls\): must be a whole number")
    answer(child, r"Compute hours \(whole hours\) \[12\]: ", "10")
    child.expect(r"Cost: 24")
    answer(child, CHOICE, "1")
    output = finish(child)

    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert event.api_calls == 10
    assert event.unit_price == Decimal("2.40")
    assert event.total_cost == Decimal("24.00")
    assert event.metadata == {"unit": "compute_hour", "quantity": 10, "resource": "gpu-a100"}


def editor_script(tmp_path: Path, change: dict) -> str:
    """An $EDITOR that merges ``change`` into the event file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "path = sys.argv[-1]\n"
        "with open(path) as f:\n"
        "    event = json.load(f)\n"
        f"event.update({json.dumps(change)})\n"
        "with open(path, 'w') as f:\n"
        "    json.dump(event, f)\n"
        "seen = os.stat(path).st_mtime\n"
        "os.utime(path, (seen + 2, seen + 2))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def fill_instant(child: pexpect.spawn) -> None:
    answer(child, TEMPLATE_PROMPT, "3")
    answer(child, r"User \[anonymous\]: ", "carol")
    answer(child, r"Agent \[default\]: ", "")
    answer(child, r"Amount: ", "4.99")
    answer(child, r"Description: ", "PDF export")
    child.expect(r"Cost: 4.99")


def test_an_edit_in_the_editor_is_validated_and_sent(ledger, tmp_path):
    change = {"amount": "5.25", "metadata": {"order": "A-17"}}
    child = spawn("--db", ledger, EDITOR=editor_script(tmp_path, change))
    fill_instant(child)
    answer(child, CHOICE, "3")
    child.expect(r'"order": "A-17"')
    child.expect(r"Cost: 5.25")
    answer(child, CHOICE, "s")
    output = finish(child)

    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert (event.amount, event.total_cost) == (Decimal("5.25"), Decimal("5.25"))
    assert (event.description, event.metadata) == ("PDF export", {"order": "A-17"})


def test_an_invalid_edit_in_the_editor_is_refused(ledger, tmp_path):
    child = spawn("--db", ledger, EDITOR=editor_script(tmp_path, {"amount": "-1"}))
    fill_instant(child)
    answer(child, CHOICE, "3")
    child.expect(r"error: amount: must not be negative, got -1")
    answer(child, CHOICE, "1")  # the event as it was before the edit
    output = finish(child)

    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert event.total_cost == Decimal("4.99")


def test_an_editor_that_fails_returns_to_the_menu(ledger, tmp_path):
    child = spawn("--db", ledger, EDITOR=str(tmp_path / "no-such-editor"))
    fill_instant(child)
    answer(child, CHOICE, "3")
    child.expect(r"error: .*[Ee]dit")
    answer(child, CHOICE, "4")
    finish(child)

    assert stored(ledger) == []


def test_cancel_sends_nothing(ledger):
    child = spawn("--db", ledger)
    fill_api_request(child)
    answer(child, CHOICE, "4")
    output = finish(child)

    assert "cancelled: nothing sent" in output
    assert "event id" not in output
    assert stored(ledger) == []


def test_interactive_dry_run_sends_nothing(ledger):
    child = spawn("--db", ledger, "--dry-run")
    fill_api_request(child)
    output = finish(child)

    assert "Cost: 0.0075" in output
    assert "dry run: nothing was sent" in output
    assert CHOICE.strip() not in output
    assert stored(ledger) == []


def test_yes_in_a_terminal_sends_without_prompts(ledger):
    child = spawn(
        "--db", ledger, "--yes", "-t", "storage", "--user", "dave",
        "-f", "gb_months=120.5", "-f", "unit_price=0.023", "-m", "bucket=logs",
    )  # fmt: skip
    output = finish(child)

    assert "Choice" not in output
    assert "Template" not in output
    (event,) = stored(ledger)
    assert event.id == sent_id(output)
    assert event.amount == event.total_cost == Decimal("2.7715")
    assert event.description == "storage: 120.5 GB-month x 0.023"
    assert event.metadata == {
        "bucket": "logs",
        "unit": "gb_month",
        "quantity": "120.5",
        "unit_price": "0.023",
    }


def run_piped(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", "send", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=TIMEOUT,
        check=False,
    )


def test_piped_stdin_sends_from_the_options(ledger):
    done = run_piped(
        "--db", ledger, "-t", "saas", "--user", "erin", "--agent", "maps-proxy",
        "-f", "service=geocoder", "-f", "calls=250", "-f", "unit_price=0.0005",
        "--format", "json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    answer_json = json.loads(done.stdout)
    assert answer_json["cost"] == "0.1250"
    (event,) = stored(ledger)
    assert event.id == answer_json["event_id"]
    assert (event.user_id, event.agent_id, event.api_calls) == ("erin", "maps-proxy", 250)
    assert event.total_cost == Decimal("0.125")
    assert event.metadata == {"unit": "api_call", "service": "geocoder", "quantity": 250}


def test_a_missing_field_is_a_usage_error_naming_it(ledger):
    done = run_piped("--db", ledger, "-t", "credits", "-f", "credits=40")

    assert done.returncode == 2
    assert "missing field 'unit_price'" in done.stderr
    assert "--field unit_price=VALUE" in done.stderr
    assert stored(ledger) == []


def test_an_invalid_option_value_is_a_usage_error(ledger):
    done = run_piped("--db", ledger, "-t", "credits", "-f", "credits=4.5", "-f", "unit_price=1")
    assert done.returncode == 2
    assert "credits (api_calls): must be a whole number" in done.stderr
    unknown = run_piped("--db", ledger, "-t", "api", "-f", "price=1")
    assert unknown.returncode == 2
    assert "has no field 'price'" in unknown.stderr
    assert stored(ledger) == []


def test_piped_dry_run_prints_the_event_and_its_cloudevent(ledger):
    done = run_piped(
        "--db", ledger, "-t", "credits", "--user", "frank", "-f", "credits=40",
        "-f", "unit_price=0.125", "-f", "batch=nightly-7", "--dry-run", "--format", "json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["sent"] is False
    assert shown["event"]["total_cost"] == "5.000"
    assert shown["cloudevent"]["type"] == "agentmeter.api_request_pay"
    assert shown["cloudevent"]["subject"] == "frank"
    assert shown["cloudevent"]["data"]["metadata"]["batch"] == "nightly-7"
    assert stored(ledger) == []


def test_without_a_terminal_the_template_is_needed(ledger):
    done = run_piped("--db", ledger)
    assert done.returncode == 2
    assert "give --template" in done.stderr


def test_against_a_server_the_key_is_asked_without_echo(live_server):
    with live_server.client(retry_attempts=0) as admin:
        project = admin.create_project("send over http")
    assert project.api_key is not None
    key = project.api_key.get_secret_value()
    child = spawn("--base-url", live_server.url, "--project-id", project.id)
    answer(child, r"API key: ", key)
    fill_api_request(child, user="grace")
    answer(child, CHOICE, "1")
    output = finish(child)

    assert key not in output
    with live_server.client(key, project_id=project.id, retry_attempts=0) as client:
        (event,) = client.get_events(limit=10)
    assert event.id == sent_id(output)
    assert (event.user_id, event.total_cost) == ("grace", Decimal("0.0075"))
