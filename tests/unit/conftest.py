"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmeter.ledger import Ledger


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A ledger file with project ``p``, closed after the test."""
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    opened.ensure_project("p", "P")
    yield opened
    opened.close()
