"""The webhook endpoints' rules over HTTP, in process: URLs, access, secrets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmeter.ledger import Ledger
from agentmeter.server import create_app

ADMIN = {"Authorization": "Bearer am_admin_webhook-api-tests-0123456789"}


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Any]:
    ledgers: list[Ledger] = []

    def make(private_webhooks: bool) -> TestClient:
        ledger = Ledger.open(f"sqlite:///{tmp_path / f'{len(ledgers)}.db'}")
        ledgers.append(ledger)
        app = create_app(
            ledger, admin_key=ADMIN["Authorization"][7:], private_webhooks=private_webhooks
        )
        client = TestClient(app)
        for project in ("p", "q"):
            client.post("/projects", json={"name": project, "id": project}, headers=ADMIN)
        return client

    yield make
    for ledger in ledgers:
        ledger.close()


def endpoint(url: str, **extra: Any) -> dict[str, Any]:
    return {"project_id": "p", "url": url, "event_types": ["meter.threshold_crossed"], **extra}


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/h", "http://localhost/h", "http://10.0.0.5/h", "http://[::1]/h",
     "http://169.254.169.254/latest/meta-data", "http://192.168.1.10/h"],
)  # fmt: skip
def test_a_server_that_forbids_private_addresses_refuses_them(make_client: Any, url: str) -> None:
    answer = make_client(private_webhooks=False).post(
        "/api/webhooks", json=endpoint(url), headers=ADMIN
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "url"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (endpoint("ftp://example.com/h"), "url"),
        (endpoint("http://user:pw@example.com/h"), "url"),
        (endpoint("not a url"), "url"),
        ({**endpoint("https://example.com/h"), "event_types": ["meter.everything"]}, "event_types"),
        ({**endpoint("https://example.com/h"), "event_types": []}, "event_types"),
        ({**endpoint("https://example.com/h"), "event_types": ["webhook.test"]}, "event_types"),
    ],
)
def test_bad_endpoints_are_refused_with_the_field_named(
    make_client: Any, body: dict[str, Any], field: str
) -> None:
    answer = make_client(private_webhooks=True).post("/api/webhooks", json=body, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == field


def test_the_secret_is_shown_once_and_a_project_key_sees_only_its_own(make_client: Any) -> None:
    client = make_client(private_webhooks=True)
    created = client.post("/api/webhooks", json=endpoint("http://127.0.0.1:9/h"), headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    listed = client.get("/api/webhooks", params={"project_id": "p"}, headers=ADMIN).json()
    assert "secret" not in listed[0]
    other_key = client.post("/projects", json={"name": "r", "id": "r"}, headers=ADMIN).json()[
        "api_key"
    ]
    theirs = {"Authorization": f"Bearer {other_key}"}
    assert (
        client.get("/api/webhooks", params={"project_id": "p"}, headers=theirs).status_code == 403
    )
    gone = client.delete(
        f"/api/webhooks/{created.json()['id']}", params={"project_id": "r"}, headers=theirs
    )
    assert gone.status_code == 404


def test_alert_settings_are_validated(make_client: Any) -> None:
    client = make_client(private_webhooks=True)
    for body, field in [
        ({"project_id": "p", "threshold_shares": ["0"]}, "threshold_shares"),
        ({"project_id": "p", "daily_limit": "-5"}, "daily_limit"),
        ({"project_id": "p", "monthly_limit": "ten"}, "monthly_limit"),
    ]:
        answer = client.put("/api/alerts", json=body, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["field"].startswith(field)
    assert client.get("/api/alerts", params={"project_id": "p"}, headers=ADMIN).json() == {
        "project_id": "p", "threshold_shares": ["50", "80", "100"],
        "daily_limit": None, "monthly_limit": None,
    }  # fmt: skip
