"""The README's command-line block, run as written by a new user (issue 11, item 15).

A fresh HOME, a fresh folder, bash running the block line by line: the
server it starts in the background, the project it creates, the event it
records, then a report and a bill that must hold that event.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
PORT = 8787  # the block's own port


def cli_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The server and the command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block.group(1)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_readme_cli_block_runs_as_written(tmp_path: Path) -> None:
    if not port_is_free(PORT):
        pytest.skip(f"port {PORT}, which the README uses, is busy")
    lines = [line for line in cli_block().splitlines() if not line.startswith("pip install")]
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    bin_dir = str(Path(sys.executable).parent)  # agentmeter and python of this venv
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "LANG": "C.UTF-8",
    }
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "project id: my_app" in out
    assert re.search(r"^cost: 0\.006$", out, re.MULTILINE), out
    assert re.search(r"alice\s.*0\.006", out), out  # the report holds the event
    assert re.search(r"\s0\.01\s+pending", out), out  # the bill: 0.006 rounded to cents
    assert re.search(r"^my_app\tMy app", out, re.MULTILINE), out
    assert "unexpected" not in err
    assert not (tmp_path / ".agentmeter" / "ledger.db").exists()  # the server's ledger only
