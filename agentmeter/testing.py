"""Run a real ``agentmeter serve`` for tests and benchmarks.

>>> with LiveServer("sqlite:////tmp/ledger.db") as server:     # doctest: +SKIP
...     admin = server.client()                                # admin key
...     project = admin.create_project("test")
...     client = server.client(project.api_key.get_secret_value(), project_id=project.id)

The server runs as a subprocess on a free port of 127.0.0.1, with a fresh
admin key in ``AGENTMETER_ADMIN_KEY``; ``stop()`` ends it (SIGTERM, then
SIGKILL after a bound).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from .client import AgentMeterClient


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``agentmeter serve`` in a subprocess; a context manager."""

    def __init__(
        self,
        db_url: str,
        *,
        port: int | None = None,
        admin_key: str | None = None,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.admin_key = admin_key or f"am_admin_{secrets.token_urlsafe(24)}"
        self.log_path = log_path
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        env = {**os.environ, "AGENTMETER_ADMIN_KEY": self.admin_key}
        command = [
            sys.executable,
            "-m",
            "agentmeter.cli",
            "serve",
            "--db",
            self.db_url,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *self.extra_args,
        ]
        output: Any = subprocess.DEVNULL
        if self.log_path:
            self._log = output = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=output, stderr=output)  # noqa: S603
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"agentmeter serve exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"agentmeter serve did not answer on {self.url}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL: the server dies at once, mid-request if need be."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self, api_key: str | None = None, **settings: Any) -> AgentMeterClient:
        """A client of this server; with no key, the admin's."""
        return AgentMeterClient(api_key=api_key or self.admin_key, base_url=self.url, **settings)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
