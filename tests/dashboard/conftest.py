"""Fixtures of the dashboard tests (the site itself: dashboard_site.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .dashboard_site import Site, start_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from start_site(tmp_path)
