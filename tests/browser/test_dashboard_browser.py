"""The dashboard in a real browser: sign-in, figures equal to the API, a drawn chart,
text that stays text, a CSV download, refusals, and the cookie's flags."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentmeter.testing import LiveServer

from .conftest import XSS_USER

FIGURES = {
    "total_cost": "total_cost",
    "total_events": "total_events",
    "total_api_calls": "total_api_calls",
    "total_tokens_in": "total_tokens_in",
    "total_tokens_out": "total_tokens_out",
}


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.dialogs = []  # any alert() would land here: none may
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def sign_in(page: Any, key: str) -> None:
    page.goto("/")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def shoot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def number(text: str) -> Decimal:
    return Decimal(text.replace(",", "").removeprefix("$"))


def test_the_overview_shows_the_stats_figures_and_draws_a_chart(
    page: Any, server: LiveServer, projects: dict[str, str], screenshots: Path
) -> None:
    sign_in(page, projects["shop"])
    page.wait_for_selector("[data-figure=total_cost]")
    with server.client(projects["shop"], retry_attempts=0) as client:
        stats = client.get_meter_stats("shop", timeframe="30 days")
    for figure, field in FIGURES.items():
        shown = page.text_content(f"[data-figure={figure}]") or ""
        assert number(shown) == Decimal(getattr(stats, field)), figure
    assert stats.total_events == 301
    points = page.locator("svg[data-chart=cost] circle.point")
    assert points.count() == 31
    assert page.get_attribute("svg[data-chart=cost] path.line", "d").count("L") == 30
    box = page.locator("svg[data-chart=cost]").bounding_box()
    assert box["width"] > 300
    assert box["height"] > 50
    shoot(page, screenshots, "overview")


def test_user_ids_are_text_and_run_nothing(
    page: Any, projects: dict[str, str], screenshots: Path
) -> None:
    sign_in(page, projects["shop"])
    page.click("nav >> text=Users")
    page.wait_for_selector("table")
    assert page.get_by_role("link", name=XSS_USER, exact=True).count() == 1
    assert page.locator("main img").count() == 0
    assert page.locator("main b").count() == 0
    shoot(page, screenshots, "users")
    page.get_by_role("link", name=XSS_USER, exact=True).click()
    page.wait_for_selector("[data-user]")
    assert page.text_content("[data-user]") == XSS_USER
    assert page.locator("svg[data-chart=user-cost] circle.point").count() > 0
    shoot(page, screenshots, "user")
    page.goto("/dashboard/events")
    shoot(page, screenshots, "events")
    assert page.dialogs == []


def test_an_export_downloads_the_filtered_rows(
    page: Any, projects: dict[str, str], screenshots: Path
) -> None:
    sign_in(page, projects["shop"])
    page.goto("/dashboard/events")
    page.fill("input[name=user_id]", "alice")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**user_id=alice**")
    with page.expect_download() as download_info:
        page.click("a[data-export=csv]")
    download = download_info.value
    assert download.suggested_filename == "agentmeter-events-shop.csv"
    with open(download.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows
    assert {row["user_id"] for row in rows} == {"alice"}
    assert "shop-charge" in {row["id"] for row in rows}
    shoot(page, screenshots, "events-filtered")


def test_a_wrong_key_is_refused(page: Any, projects: dict[str, str]) -> None:
    sign_in(page, "am_proj_wrong-key-000000000000")
    assert "not valid" in page.text_content("[role=alert]")
    assert page.url.endswith("/dashboard/sign-in")
    assert page.context.cookies() == []


def test_a_project_key_cannot_see_another_project(page: Any, projects: dict[str, str]) -> None:
    sign_in(page, projects["shop"])
    page.wait_for_selector("[data-figure=total_cost]")
    answer = page.goto("/dashboard/?project=other")
    assert answer.status == 403
    assert "cannot see that project" in page.text_content("[role=alert]")
    answer = page.goto("/dashboard/events.csv?project=other")
    assert answer.status == 403


def test_the_session_cookie_has_its_flags(page: Any, projects: dict[str, str]) -> None:
    sign_in(page, projects["shop"])
    page.wait_for_selector("[data-figure=total_cost]")
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "agentmeter_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # served over plain HTTP here; Secure over HTTPS
    assert projects["shop"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    policy = page.goto("/dashboard/").headers["content-security-policy"]
    assert "script-src 'none'" in policy


def test_billing_prices_and_the_project_picker(
    page: Any, server: LiveServer, projects: dict[str, str], screenshots: Path
) -> None:
    sign_in(page, server.admin_key)
    page.wait_for_url("**/dashboard/projects")
    shoot(page, screenshots, "projects")
    page.click("text=Other")
    page.wait_for_selector("[data-figure=total_cost]")
    page.click("nav >> text=Billing")
    page.fill("input[name=start]", "2000-01-01")
    page.fill("input[name=end]", "2100-12-31")
    page.click("text=Preview")
    amount = page.text_content("[data-figure=preview_amount]")
    page.click("text=Create the record")
    page.wait_for_selector("[role=status]")
    assert page.locator("td.num", has_text=amount).count() == 1
    shoot(page, screenshots, "billing")
    page.click("nav >> text=Prices")
    page.fill("form.inline input[name=model]", "gpt-4o")
    page.fill("form.inline input[name=input]", "2.00")
    page.fill("form.inline input[name=output]", "8.00")
    page.click("text=Save price")
    page.wait_for_selector("[data-table=own]")
    assert "$2.00" in page.text_content("[data-table=own]")
    shoot(page, screenshots, "prices")
    assert page.dialogs == []
