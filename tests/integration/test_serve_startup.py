"""``agentmeter serve`` takes its port before it makes the one-time admin key,
and every ledger file it (or the SDK) creates is private to its owner (0600)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import agentmeter.transport.local
from agentmeter import AgentMeterClient
from agentmeter.ledger import Ledger
from agentmeter.testing import free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("AGENTMETER_")}


def _serve_command(db_url: str, port: int) -> list[str]:
    return [sys.executable, "-m", "agentmeter.cli", "serve", "--db", db_url, "--port", str(port)]


def _umask_022() -> None:
    os.umask(0o022)  # the usual default: files would be world-readable


def _run_until_healthy(db_url: str, port: int) -> str:
    """Start a server, wait for /health, stop it; return what it printed on stdout."""
    process = subprocess.Popen(
        _serve_command(db_url, port),
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=_umask_022,
    )
    try:
        _wait_healthy(process, port)
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=30)
    return stdout.decode()


def _wait_healthy(process: subprocess.Popen[bytes], port: int) -> None:
    for _ in range(600):
        assert process.poll() is None, "the server exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    pytest.fail("the server never answered")


def test_a_busy_port_makes_no_admin_key_and_says_why(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = subprocess.run(
            _serve_command(db_url, port),
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert busy.returncode == 2
    assert "admin key" not in busy.stdout + busy.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
    # The next start, on a free port, still shows the one-time key.
    assert "admin key (shown once" in _run_until_healthy(db_url, free_port())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_ledger_made_by_serve_is_private(tmp_path: Path) -> None:
    ledger = tmp_path / "served.db"
    _run_until_healthy(f"sqlite:///{ledger}", free_port())
    made = [path for path in tmp_path.iterdir() if path.name.startswith("served.db")]
    assert ledger in made
    assert {path.name: _mode(path) for path in made} == {path.name: 0o600 for path in made}


def test_a_ledger_made_by_the_sdk_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "sdk.db"
    previous = os.umask(0o002)
    try:
        ledger = Ledger.open(f"sqlite:///{path}")
        try:
            with ledger.writing() as connection:  # a write makes the -wal and -shm files
                connection.exec_driver_sql("SELECT 1")
            made = [item for item in tmp_path.iterdir() if item.name.startswith("sdk.db")]
            assert len(made) >= 2
            assert all(_mode(item) == 0o600 for item in made), [oct(_mode(i)) for i in made]
        finally:
            ledger.close()
    finally:
        os.umask(previous)


def test_the_embedded_default_ledger_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "home" / "ledger.db"
    monkeypatch.setattr(agentmeter.transport.local, "DEFAULT_LEDGER", default)
    previous = os.umask(0o022)
    try:
        with AgentMeterClient(project_id="p") as client:
            client.health_check()
    finally:
        os.umask(previous)
    assert _mode(default) == 0o600


def test_an_existing_ledger_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "kept.db"
    Ledger.open(f"sqlite:///{path}").close()
    path.chmod(0o640)
    Ledger.open(f"sqlite:///{path}").close()
    assert _mode(path) == 0o640


def test_connections_to_the_bound_socket_send_without_delay():
    """Regression: the socket bound before the admin key was made had proto 0, so
    asyncio did not set TCP_NODELAY on its connections, and every answer waited
    out the client's delayed ACK: 40 ms more per request (ingest fell 2-3x)."""
    import asyncio
    import socket

    from agentmeter.server import listen_socket

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listening = listen_socket("127.0.0.1", 0)
        server = await asyncio.start_server(connected, sock=listening)
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
