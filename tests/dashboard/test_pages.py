"""The dashboard end to end over HTTP: sign-in, access, figures, changes, exports."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

from agentmeter.models import BillingStatus

from .dashboard_site import ADMIN_KEY, XSS_USER, Site

STATS_FIGURES = (
    "total_cost",
    "total_events",
    "total_api_calls",
    "total_tokens_in",
    "total_tokens_out",
)


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found, f"no figure {name}"
    return found.group(1).replace(",", "").removeprefix("$")


def test_the_root_leads_to_the_dashboard_and_it_asks_to_sign_in(site: Site) -> None:
    assert site.client.get("/").headers["location"] == "/dashboard/"
    answer = site.client.get("/dashboard/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/sign-in"
    assert "Sign in" in site.client.get("/dashboard/sign-in").text


def test_a_wrong_key_is_refused_and_gets_no_cookie(site: Site) -> None:
    answer = site.sign_in("am_proj_not-a-key")
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert "set-cookie" not in answer.headers


def test_the_session_cookie_has_its_flags(site: Site) -> None:
    answer = site.sign_in(site.keys["shop"])
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("agentmeter_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert site.keys["shop"] not in cookie


def test_over_https_the_cookie_is_secure_and_host_only(site: Site) -> None:
    site.client.base_url = site.client.base_url.copy_with(scheme="https")
    cookie = site.sign_in(site.keys["shop"]).headers["set-cookie"]
    assert cookie.startswith("__Host-agentmeter_session=")
    assert "Secure" in cookie


def test_the_overview_totals_equal_the_stats_endpoint(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    html = site.client.get("/dashboard/", params={"period": "30d"}).text
    stats = site.client.get(
        "/api/meter/stats",
        params={"project_id": "shop", "timeframe": "30 days"},
        headers={"Authorization": f"Bearer {site.keys['shop']}"},
    ).json()
    for name in STATS_FIGURES:
        assert Decimal(figure(html, name)) == Decimal(str(stats[name])), name
    assert figure(html, "active_users") == "4"
    assert html.count('class="point"') == 31  # a point per day of the 30 days


def test_user_controlled_text_is_shown_as_text(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    for path in ("/dashboard/", "/dashboard/users", "/dashboard/events"):
        html = site.client.get(path).text
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, path
        assert "<img" not in html, path
        assert "<b>agent" not in html, path


def test_pages_carry_a_strict_content_security_policy(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    answer = site.client.get("/dashboard/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'none'" in policy
    assert "default-src 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"


def test_a_project_key_cannot_see_another_project(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    for path in ("/dashboard/", "/dashboard/events", "/dashboard/events.csv", "/dashboard/prices"):
        assert site.client.get(path, params={"project": "other"}).status_code == 403, path
    picker = site.client.get("/dashboard/projects").text
    assert "shop" in picker
    assert "other" not in picker


def test_the_admin_picks_a_project(site: Site) -> None:
    site.sign_in(ADMIN_KEY)
    assert site.client.get("/dashboard/").headers["location"] == "/dashboard/projects"
    picker = site.client.get("/dashboard/projects").text
    assert "/dashboard/?project=shop" in picker
    assert "/dashboard/?project=other" in picker
    assert site.client.get("/dashboard/", params={"project": "other"}).status_code == 200
    assert site.client.get("/dashboard/", params={"project": "nope"}).status_code == 404


def test_a_change_needs_the_csrf_token_and_our_origin(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    token = site.csrf(site.client.get("/dashboard/users").text)
    form = {"user_id": "alice", "threshold": "25.50"}
    assert site.post("/dashboard/meter", form).status_code == 403
    assert site.post("/dashboard/meter", {**form, "csrf": "guess"}).status_code == 403
    foreign = site.client.post(
        "/dashboard/meter", data={**form, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert site.ledger.get_meter("shop", "alice").threshold_amount is None
    done = site.post("/dashboard/meter", {**form, "csrf": token})
    assert done.status_code == 303
    assert site.ledger.get_meter("shop", "alice").threshold_amount == Decimal("25.50")


def test_a_bad_threshold_names_its_field(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    token = site.csrf(site.client.get("/dashboard/users").text)
    answer = site.post("/dashboard/meter", {"user_id": "alice", "threshold": "ten", "csrf": token})
    assert answer.status_code == 422
    assert "threshold_amount" in answer.text


def test_the_users_page_searches_and_shows_meters(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    site.ledger.set_threshold("shop", "bob", Decimal("10"))
    html = site.client.get("/dashboard/users", params={"q": "bo", "period": "30d"}).text
    assert "bob" in html
    assert "alice" not in html
    assert "$10" in html
    assert "<meter" in html
    user_page = site.client.get("/dashboard/user", params={"id": XSS_USER})
    assert user_page.status_code == 200
    assert "&lt;img" in user_page.text


def test_the_csv_export_has_the_filtered_rows(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    answer = site.client.get("/dashboard/events.csv", params={"user_id": "alice"})
    assert (
        answer.headers["content-disposition"] == 'attachment; filename="agentmeter-events-shop.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(row["id"] for row in rows) == ["e1", "e2"]
    assert {row["model"] for row in rows} == {"gpt-4o"}
    listed = site.client.get("/dashboard/events.json", params={"payment_type": "instant_pay"})
    assert [event["id"] for event in json.loads(listed.text)] == ["e6"]


def test_the_events_page_filters_by_model_and_refuses_a_bad_filter(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    html = site.client.get("/dashboard/events", params={"model": "claude-sonnet-4"}).text
    assert ">e3<" in html
    assert ">e1<" not in html
    bad = site.client.get("/dashboard/events", params={"payment_type": "free"})
    assert bad.status_code == 422
    assert "payment_type" in bad.text


def test_a_billing_record_is_previewed_created_and_paid(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    first, last = "2000-01-01", "2100-01-01"
    page = site.client.get("/dashboard/billing", params={"start": first, "end": last}).text
    total = site.ledger.stats("shop", "all").total_cost
    assert figure(page, "preview_amount") == str(total.quantize(Decimal("0.01")))
    token = site.csrf(page)
    assert (
        site.post("/dashboard/billing", {"start": first, "end": last, "csrf": token}).status_code
        == 303
    )
    (record,) = site.ledger.list_billing_records("shop")
    assert (
        site.post(
            "/dashboard/billing/status", {"record_id": record.id, "status": "paid", "csrf": token}
        ).status_code
        == 303
    )
    assert site.ledger.get_billing_record(record.id).status.value == "paid"
    theirs = site.ledger.create_billing_record(
        "other", record.period_start, record.period_end, None, BillingStatus.PENDING
    )
    stolen = site.post(
        "/dashboard/billing/status", {"record_id": theirs.id, "status": "void", "csrf": token}
    )
    assert stolen.status_code == 404
    assert site.ledger.get_billing_record(theirs.id).status.value == "pending"


def test_a_project_price_is_saved_and_listed(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    token = site.csrf(site.client.get("/dashboard/prices").text)
    form = {"model": "gpt-4o", "input": "2.00", "output": "8.00", "csrf": token}
    assert site.post("/dashboard/prices", form).status_code == 303
    html = site.client.get("/dashboard/prices", params={"q": "gpt-4o"}).text
    assert "$2.00" in html
    assert "project" in html
    bad = site.post("/dashboard/prices", {**form, "input": "-1"})
    assert bad.status_code == 422
    assert "input" in bad.text


def test_signing_out_ends_the_session(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    token = site.csrf(site.client.get("/dashboard/").text)
    old_cookie = site.client.cookies.get("agentmeter_session")
    assert site.post("/dashboard/sign-out", {"csrf": token}).status_code == 303
    site.client.cookies.set("agentmeter_session", old_cookie or "")
    assert site.client.get("/dashboard/").status_code == 303


def test_deleting_the_project_and_its_key_ends_the_session(site: Site) -> None:
    site.sign_in(site.keys["shop"])
    assert site.client.get("/dashboard/").status_code == 200
    site.ledger.delete_project("shop")  # beside the server: its key cache is not told
    cache = site.client.app.state.key_checker.cache  # type: ignore[attr-defined]
    real_clock = cache.clock
    cache.clock = lambda: real_clock() + cache.ttl  # so it holds the key no longer
    answer = site.client.get("/dashboard/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/sign-in"
