"""Server-drawn charts and the export's CSV cells."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from agentmeter.server.dashboard.charts import HEIGHT, line_chart
from agentmeter.server.dashboard.exports import COLUMNS, _cells, _line


def test_a_chart_has_one_point_per_bucket_and_the_highest_on_top() -> None:
    chart = line_chart([("a", Decimal("1")), ("b", Decimal("3")), ("c", Decimal(0))])
    assert len(chart.points) == 3
    assert min(point.y for point in chart.points) == chart.points[1].y
    assert chart.points[2].y == HEIGHT - 28  # zero sits on the x axis
    assert chart.path.startswith("M")
    assert chart.path.count("L") == 2
    assert chart.points[1].label == "b: $3.00"


def test_an_empty_or_all_zero_chart_draws_flat() -> None:
    assert line_chart([]).path == ""
    flat = line_chart([("a", Decimal(0)), ("b", Decimal(0))])
    assert {point.y for point in flat.points} == {HEIGHT - 28}


def test_csv_cells_that_start_a_formula_are_defused() -> None:
    event = {
        "id": '=HYPERLINK("http://x")',
        "user_id": "+1",
        "agent_id": "@agent",
        "payment_type": "instant_pay",
        "amount": "-1.50",
        "total_cost": "-1.50",
        "metadata": {"note": "=1"},
    }
    cells = dict(zip(COLUMNS, _cells(event), strict=False))
    assert cells["id"].startswith("'=")
    assert cells["user_id"] == "'+1"
    assert cells["agent_id"] == "'@agent"
    assert cells["total_cost"] == "-1.50"  # numbers stay numbers
    assert cells["metadata"] == '{"note":"=1"}'


def test_a_csv_line_round_trips_quotes_commas_and_newlines() -> None:
    cells = ['a,"b"', "line\nbreak", "<img src=x>"]
    assert next(csv.reader(io.StringIO(_line(cells)))) == cells
