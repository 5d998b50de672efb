"""``agentmeter prices``: a project's model prices from a shell (issue 13), on each
backend the CLI reaches (the embedded ledger, a live server)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal


def test_set_import_markup_list_and_delete(am, target, tmp_path):
    done = am("prices", "set", "house-model", *target.flags, "--input", "3", "--output", "12",
              "--cached-input", "0.3")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    sheet = tmp_path / "prices.csv"
    sheet.write_text("model,input,output,cached_input\ngpt-4o,2,8,1\nclaude-x,3,15,\n")
    assert am("prices", "import", sheet, *target.flags).stdout.strip() == "2 prices set"
    assert am("prices", "markup", "20", *target.flags).exit_code == 0

    listed = am("prices", "list", *target.flags, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["model"], r["source"], r["input"], r["cached_input"]) for r in rows] == [
        ("claude-x", "project", "3", ""),
        ("gpt-4o", "project", "2", "1"),
        ("house-model", "project", "3", "0.3"),
    ]
    both = json.loads(
        am("prices", "list", *target.flags, "--model", "gpt-4o", "--format", "json").stdout
    )
    assert [(row["source"], row["input"]) for row in both] == [
        ("project", "2"),
        ("catalog (gpt-4o)", "2.5"),
    ]
    table = target.client.get_prices()
    assert table.markup_percent == Decimal(20)

    assert am("prices", "delete", "gpt-4o", *target.flags).exit_code == 0
    assert [row.model for row in target.client.get_prices().prices] == ["claude-x", "house-model"]


def test_a_bad_sheet_stores_nothing_and_names_the_row(am, target, tmp_path, error_line):
    sheet = tmp_path / "prices.csv"
    sheet.write_text("gpt-4o,2,8\nbroken,1\n")
    done = am("prices", "import", sheet, *target.flags)
    assert done.exit_code == 2
    assert "row 2" in error_line(done)
    assert target.client.get_prices().prices == []


def test_deleting_a_price_the_project_lacks_is_an_error(am, target, error_line):
    done = am("prices", "delete", "never-set", *target.flags)
    assert done.exit_code == 1
    assert "never-set" in error_line(done)


def test_a_model_unknown_to_the_catalog_says_so(am, target):
    done = am("prices", "list", *target.flags, "--model", "gemini-1.5-flash-8b", "--format", "json")
    assert json.loads(done.stdout)[0]["source"] == "unknown to the catalog"
