"""The ``agentmeter`` command (click + rich, extra ``cli``; ``serve`` needs ``server``)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .app import cli
    except ImportError as exc:  # pragma: no cover - only without the extra
        sys.stderr.write(
            f"agentmeter: the command needs extra packages ({exc.name} is missing): "
            "pip install 'agentmeter[cli]'\n"
        )
        raise SystemExit(2) from None
    cli(prog_name="agentmeter")


__all__ = ["main"]
