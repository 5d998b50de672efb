"""The client and the CLI manage webhooks and alerts on a real server, and the
receiver gets what they set up."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner
from standardwebhooks import Webhook

from agentmeter import AgentMeterClient
from agentmeter.cli.app import cli
from agentmeter.testing import LiveServer

from .conftest import Wire
from .receiver import Receiver


def test_the_client_sets_up_an_endpoint_and_alerts_that_then_fire(
    server: LiveServer, wire: Wire, receiver: Receiver
) -> None:
    with AgentMeterClient(api_key=wire.key, base_url=server.url, project_id="p") as client:
        endpoint = client.create_webhook_endpoint(receiver.url, ["project.spend_exceeded"])
        assert endpoint.secret is not None
        assert "whsec" not in repr(endpoint)
        settings = client.set_alert_settings(monthly_limit=Decimal("1.00"))
        assert settings.monthly_limit == Decimal("1.00")
        assert [e.id for e in client.list_webhook_endpoints()] == [endpoint.id]
        client.record_instant_pay(amount="1.50", user_id="u", agent_id="a")
        receiver.wait_for(lambda got: len(got) == 1)
        (delivery,) = client.list_webhook_deliveries()
        assert delivery.event_type == "project.spend_exceeded"
        again = client.redeliver_webhook(delivery.id)
        assert again.status == "pending"
        receiver.wait_for(lambda got: len(got) == 2)
        secret = endpoint.secret.get_secret_value()
        for item in receiver.received:
            assert Webhook(secret).verify(item.body, item.headers)["data"]["limit"] == "1.00"
        assert client.delete_webhook_endpoint(endpoint.id) is True
        assert client.list_webhook_endpoints() == []


def test_the_cli_adds_an_endpoint_and_sends_a_test(
    server: LiveServer, wire: Wire, receiver: Receiver
) -> None:
    options = ["--base-url", server.url, "--api-key", wire.key, "--project-id", "p"]
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["webhooks", "add", receiver.url, "--events", "meter.threshold_crossed",
         "--format", "json", *options],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.stdout)
    assert endpoint["secret"].startswith("whsec_")
    tested = runner.invoke(cli, ["webhooks", "test", endpoint["id"], *options])
    assert tested.exit_code == 0, tested.output
    receiver.wait_for(lambda got: len(got) == 1)
    (item,) = receiver.received
    assert Webhook(endpoint["secret"]).verify(item.body, item.headers)["type"] == "webhook.test"
    alerts = runner.invoke(cli, ["alerts", "set", "--shares", "90", "--format", "json", *options])
    assert alerts.exit_code == 0, alerts.output
    assert json.loads(alerts.stdout)["threshold_shares"] == ["90"]
