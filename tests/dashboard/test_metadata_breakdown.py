"""Issue 20: the overview breaks cost down by a metadata key the viewer types
(``?by=provider``), with the report API's query, its key check and exact sums."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from .dashboard_site import Site

PROVIDERS = [("openai", "1.25"), ("openai", "0.005"), ("anthropic", "2"), (None, "0.3"),
             ("<script>x</script>", "0.1"), (7, "0.01")]  # fmt: skip


def add_events(site: Site) -> None:
    now = datetime.now(timezone.utc)
    events = []
    for index, (provider, amount) in enumerate(PROVIDERS):
        metadata = {} if provider is None else {"provider": provider, "team.name": "core"}
        events.append({
            "id": f"m{index}", "project_id": "shop", "user_id": "dee", "agent_id": "a",
            "payment_type": "instant_pay", "event_type": "instant_payment",
            "timestamp": (now - timedelta(hours=2 + index)).isoformat(),
            "amount": amount, "description": "", "metadata": metadata,
        })  # fmt: skip
    answer = site.client.post(
        "/api/meter/events/batch",
        json={"events": events},
        headers={"Authorization": f"Bearer {site.keys['shop']}"},
    )
    assert answer.json()["accepted"] == len(events)


def breakdown_rows(html: str) -> dict[str, Decimal]:
    """Name -> cost of the rows of the "Cost by metadata..." table."""
    section = html.split("<h2>Cost by metadata.", 1)[1].split("</section>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>\s*<td>(.*?)</td>(.*?)</tr>", section, re.S):
        cells = re.findall(r'<td class="num">([^<]*)</td>', row[1])
        rows[row[0]] = Decimal(cells[3].replace(",", "").removeprefix("$"))
    return rows


def test_the_overview_breaks_cost_down_by_a_typed_key(site: Site) -> None:
    add_events(site)
    site.sign_in(site.keys["shop"])
    html = site.client.get("/dashboard/", params={"period": "7d", "by": "provider"}).text
    assert 'name="by" value="provider"' in html
    rows = breakdown_rows(html)
    # Events without the key, the other events of the seed included, are "(none)".
    report = site.client.get(
        "/api/meter/report",
        params={"group_by": "metadata.provider", "granularity": "month",
                "start_date": (datetime.now(timezone.utc) - timedelta(days=7)).isoformat()},
        headers={"Authorization": f"Bearer {site.keys['shop']}"},
    ).json()  # fmt: skip
    assert rows["openai"] == Decimal("1.255")
    assert rows["anthropic"] == Decimal("2")
    assert rows["7"] == Decimal("0.01")
    assert rows["&lt;script&gt;x&lt;/script&gt;"] == Decimal("0.1")
    assert "<script>x" not in html
    by_api = {row["metadata.provider"]: Decimal(row["cost"]) for row in report}
    assert rows["(none)"] == by_api[""]


def test_a_key_with_a_dot_is_one_key(site: Site) -> None:
    add_events(site)
    site.sign_in(site.keys["shop"])
    html = site.client.get("/dashboard/", params={"period": "7d", "by": "team.name"}).text
    assert breakdown_rows(html)["core"] == Decimal("3.365")


def test_a_bad_key_is_refused_naming_the_field(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    for key in ("a b", "x')--", "<b>", "é", "k" * 101):
        answer = site.client.get("/dashboard/", params={"by": key})
        assert answer.status_code == 422, key
        assert "by" in answer.text
        assert "<b>" not in answer.text


def test_without_a_key_there_is_only_the_form(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    html = site.client.get("/dashboard/").text
    assert 'name="by"' in html
    assert "Cost by metadata." not in html
