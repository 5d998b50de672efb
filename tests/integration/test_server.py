"""The server process itself: restarts, its OpenAPI document, its admin key, its secrets."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import requests

from agentmeter import AgentMeterClient
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, TokenBasedPayEvent
from agentmeter.testing import LiveServer, free_port

from .conftest import BASE_TIME

# Every path of WIRE.md, with its methods.
WIRE_PATHS = {
    "/health": {"get"},
    "/api/meter/event": {"post"},
    "/api/meter/events/batch": {"post"},
    "/api/meter/events": {"get"},
    "/api/meter/stats": {"get"},
    "/api/meter/usage": {"get"},
    "/api/meter": {"put"},
    "/api/meter/increment": {"post"},
    "/api/meter/reset": {"post"},
    "/api/meter/report": {"get"},
    "/projects": {"get", "post"},
    "/projects/{project_id}": {"get", "patch", "delete"},
    "/billing-records": {"get", "post"},
    "/billing-records/{record_id}": {"patch"},
}


def test_the_openapi_document_lists_every_wire_path(live_server):
    response = requests.get(f"{live_server.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path, methods in WIRE_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    bodies = [
        (path, method)
        for path, methods in WIRE_PATHS.items()
        for method in methods
        if method in {"post", "put", "patch"}
    ]
    assert len(bodies) == 9
    for path, method in bodies:  # the server reads bodies itself, yet documents them
        content = paths[path][method]["requestBody"]["content"]["application/json"]
        name = content["schema"]["$ref"].rsplit("/", 1)[-1]
        assert name in document["components"]["schemas"], (path, method)
    # The query parameters of WIRE.md are documented, though the API (not FastAPI)
    # validates them, so that both modes answer a bad query alike.
    for path, names in [
        (
            "/api/meter/events",
            [
                "project_id",
                "agent_id",
                "user_id",
                "event_type",
                "payment_type",
                "model",
                "start_date",
                "end_date",
                "limit",
                "offset",
            ],
        ),
        ("/api/meter/stats", ["project_id", "all_projects", "timeframe"]),  # issue 18
        ("/api/meter/usage", ["project_id", "user_id"]),
        (
            "/api/meter/report",
            [
                "project_id",
                "all_projects",  # issue 18: admin only
                "granularity",
                "group_by",
                "start_date",
                "end_date",
                "user_id",
                "agent_id",
            ],
        ),
        ("/billing-records", ["project_id"]),
        (  # issue 20
            "/api/meter/summary",
            ["project_id", "all_projects", "start_date", "end_date", "user_id"],
        ),
    ]:
        documented = [parameter["name"] for parameter in paths[path]["get"]["parameters"]]
        assert documented == names, path
    event_schema = document["components"]["schemas"]["EventInput"]
    assert "discriminator" in event_schema or "oneOf" in event_schema


def test_the_ledger_survives_a_restart(tmp_path):
    """Record everything, kill the server (SIGKILL), start another on the file: all there."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LiveServer(url) as first:
        admin = first.client(retry_attempts=0)
        project = admin.create_project("durable", description="survives")
        key = project.api_key.get_secret_value()
        client = first.client(key, project_id=project.id, agent_id="a1", retry_attempts=0)
        events = [
            APIRequestPayEvent(
                project_id=project.id,
                agent_id="a1",
                user_id="u1",
                api_calls=3,
                unit_price="0.30000000000000001",
                timestamp=BASE_TIME,
                metadata={"model": "gpt-4o"},
            ),
            TokenBasedPayEvent(
                project_id=project.id,
                agent_id="a2",
                user_id="u2",
                tokens_in=1234,
                tokens_out=567,
                input_token_price="0.000003",
                output_token_price="0.000015",
                timestamp=BASE_TIME + timedelta(hours=1),
            ),
            InstantPayEvent(
                project_id=project.id,
                agent_id="a1",
                user_id="u1",
                amount="0.125",
                description="one report",
                timestamp=BASE_TIME + timedelta(days=1),
            ),
        ]
        assert client.record_events(events).accepted == 3
        client.set_user_meter(threshold_amount="50", user_id="u1")
        client.increment_user_meter("0.000000000000000001", user_id="u2")
        bill = client.create_billing_record(
            period_start=BASE_TIME, period_end=BASE_TIME + timedelta(days=2)
        )
        before = {
            "events": [event.to_dict() for event in client.get_events()],
            "stats": client.get_meter_stats(timeframe="all"),
            "report": client.get_report(granularity="hour", group_by=["user", "model"]),
            "u1": client.get_user_meter("u1"),
            "u2": client.get_user_meter("u2"),
            "bills": client.list_billing_records(),
            "project": admin.get_project(project.id),
        }
        client.close()
        admin.close()
        first.kill()

    with LiveServer(url, admin_key=first.admin_key) as second:
        admin = second.client(retry_attempts=0)
        client = second.client(key, project_id=project.id, agent_id="a1", retry_attempts=0)
        after = {
            "events": [event.to_dict() for event in client.get_events()],
            "stats": client.get_meter_stats(timeframe="all"),
            "report": client.get_report(granularity="hour", group_by=["user", "model"]),
            "u1": client.get_user_meter("u1"),
            "u2": client.get_user_meter("u2"),
            "bills": client.list_billing_records(),
            "project": admin.get_project(project.id),
        }
        # The resent events are still duplicates: the ledger remembers ids.
        assert client.record_events(events).duplicates == 3
        client.close()
        admin.close()

    assert after == before
    assert [event["id"] for event in after["events"]] == [event.id for event in reversed(events)]
    assert after["stats"].total_cost == sum((event.total_cost for event in events), Decimal(0))
    assert after["u2"].current_usage == events[1].total_cost + Decimal("1E-18")
    # 0.90000000000000003 + 0.012207 + 0.125 = 1.03720700000000003 -> 1.04
    assert bill.amount == Decimal("1.04")


def test_keys_never_reach_the_log_or_the_ledger_file(tmp_path, scan):
    db = tmp_path / "ledger.db"
    log = tmp_path / "server.log"
    with LiveServer(f"sqlite:///{db}", log_path=log, extra_args=("--log-level", "debug")) as server:
        admin = server.client(retry_attempts=0)
        project = admin.create_project("secretive")
        key = project.api_key.get_secret_value()
        client = server.client(key, project_id=project.id, agent_id="a1", retry_attempts=0)
        client.record_instant_pay(amount="1", metadata={"note": "hello"})
        client.get_events()
        client.get_meter_stats()
        admin.list_projects()
        for bad in (f"{key}x", f"{server.admin_key}x"):  # near misses
            requests.get(
                f"{server.url}/projects", headers={"Authorization": f"Bearer {bad}"}, timeout=10
            )
        requests.get(f"{server.url}/api/meter/stats", params={"api_key": key}, timeout=10)
        client.close()
        admin.close()
        files = [db, db.with_name("ledger.db-wal"), db.with_name("ledger.db-shm")]
        assert scan(files, [key, server.admin_key]) == []  # while running (WAL not merged)
    log_text = log.read_text()
    assert "DEBUG" in log_text  # the positive control: debug logging was on
    assert "GET /api/meter/stats?api_key=*** " in log_text  # a key in a URL is masked
    assert scan([log], [key, server.admin_key]) == []
    assert scan(files, [key, server.admin_key]) == []


class Serve:
    """``agentmeter serve`` as a user starts it: no AGENTMETER_* set unless given."""

    def __init__(self, *args, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
        command = [sys.executable, "-m", "agentmeter.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--log-level", "warning", *args],
            env={**clean, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise AssertionError(f"serve did not start: {self.stop()}")

    def stop(self):
        """End the server; return what it wrote to stdout and stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        out, err = self.process.communicate(timeout=15)
        return out.decode() + err.decode()


def test_without_admin_key_serve_prints_one_once(tmp_path):
    """No AGENTMETER_ADMIN_KEY: the first start makes a key and prints it; later ones do not."""
    db = f"sqlite:///{tmp_path / 'ledger.db'}"

    server = Serve("--db", db)
    try:
        line = server.process.stdout.readline().decode()
        assert line.startswith("admin key (shown once, store it now): am_admin_")
        key = line.rsplit(" ", 1)[-1].strip()
        answer = requests.post(
            f"{server.url}/projects",
            json={"name": "bootstrapped"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert answer.status_code == 201
    finally:
        rest = server.stop()
    assert key not in rest

    server = Serve("--db", db)
    try:
        listed = requests.get(
            f"{server.url}/projects", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert listed.status_code == 200  # the stored (hashed) key still works
        assert [project["name"] for project in listed.json()] == ["bootstrapped"]
    finally:
        assert "admin key" not in server.stop()


def test_serve_without_db_uses_the_default_ledger_file(tmp_path):
    """On a fresh machine (no ~/.agentmeter yet) the default ledger file is made."""
    home = tmp_path / "home"
    home.mkdir()
    server = Serve(HOME=str(home), AGENTMETER_ADMIN_KEY="am_admin_default-ledger-test")
    try:
        answer = requests.post(
            f"{server.url}/projects",
            json={"name": "at home", "id": "proj_home"},
            headers={"Authorization": "Bearer am_admin_default-ledger-test"},
            timeout=10,
        )
        assert answer.status_code == 201
    finally:
        output = server.stop()
    ledger = home / ".agentmeter" / "ledger.db"
    assert str(ledger) in output
    assert "admin key" not in output  # the environment's key is the admin key
    with AgentMeterClient(base_url=f"sqlite:///{ledger}") as embedded:
        assert embedded.get_project("proj_home").name == "at home"


def test_serve_makes_the_directory_of_its_ledger_file(tmp_path):
    db = tmp_path / "not" / "yet" / "there.db"
    with LiveServer(f"sqlite:///{db}") as server:
        assert server.client().health_check()["status"] == "healthy"
    assert db.exists()


def test_online_backup_of_a_running_server(tmp_path):
    """docs/self-hosting.md: the backup API copies everything; the main file alone does not."""
    db = tmp_path / "ledger.db"
    with LiveServer(f"sqlite:///{db}") as server, server.client(retry_attempts=0) as admin:
        project = admin.create_project("backed up", project_id="proj_backup")
        with server.client(
            project.api_key.get_secret_value(), project_id=project.id, agent_id="a1"
        ) as client:
            for amount in ("0.1", "0.2", "0.3"):
                client.record_instant_pay(amount=amount, user_id="u1")

        source = sqlite3.connect(db)
        target = sqlite3.connect(tmp_path / "backup.db")
        source.backup(target)
        target.close()
        source.close()
        shutil.copyfile(db, tmp_path / "naive.db")  # what the docs say not to do

    with AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'backup.db'}") as restored:
        stats = restored.get_meter_stats(project_id="proj_backup", timeframe="all")
        assert (stats.total_events, stats.total_cost) == (3, Decimal("0.6"))
        assert restored.get_user_meter("u1", project_id="proj_backup").current_usage == Decimal(
            "0.6"
        )
    naive = sqlite3.connect(tmp_path / "naive.db")
    try:
        count = naive.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.OperationalError:  # not even the tables made it
        count = 0
    finally:
        naive.close()
    assert count < 3  # the recent writes were still in ledger.db-wal
