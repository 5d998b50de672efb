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
import shutil
import socket
import subprocess
import sys
import tempfile
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


# ------------------------------------------------------------- PostgreSQL


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major, reverse=True)
    return candidates[0].parent if candidates else None


def _major(path: Path) -> int:
    version = path.parent.parent.name
    return int(version) if version.isdigit() else 0


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temporary directory, on a free local port.

    ``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package; run as
    the ``postgres`` user when we are root (initdb refuses root). ``fast``
    turns fsync off: fine for tests, not for benchmarks of durability.
    """

    def __init__(self, *, port: int | None = None, fast: bool = True) -> None:
        self.port = port or free_port()
        self.fast = fast
        self.directory: Path | None = None
        self._bin: Path | None = None

    def url(self, database: str = "agentmeter") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - fixed commands of our own
            [*as_postgres, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> PostgresCluster:
        self._bin = find_postgres_bin()
        if self._bin is None:
            raise RuntimeError(
                "PostgreSQL is not installed (no initdb): apt-get install postgresql, "
                "or set AGENTMETER_TEST_PG_URL, or AGENTMETER_TEST_PG=0 to skip"
            )
        self.directory = Path(tempfile.mkdtemp(prefix="agentmeter-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run(str(self._bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N")
        settings = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        if self.fast:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.directory / "postgres.log"
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            settings,
            "-l",
            str(log),
            "-w",
            "start",
        )
        self.create_database("agentmeter")
        return self

    def create_database(self, name: str) -> str:
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # names are ours, not input
        return self.url(name)

    def stop(self) -> None:
        if self.directory is None or self._bin is None:
            return
        try:
            self._run(
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _cli(arguments: list[str]) -> int:
    """``python -m agentmeter.testing pg-start`` prints shell exports; ``pg-stop DIR PORT``."""
    if arguments[:1] == ["pg-start"]:
        cluster = PostgresCluster().start()
        sys.stdout.write(f"export AGENTMETER_TEST_PG_URL={cluster.url()}\n")
        sys.stdout.write(f"export AGENTMETER_TEST_PG_DIR={cluster.directory}\n")
        sys.stdout.write(f"export AGENTMETER_TEST_PG_PORT={cluster.port}\n")
        return 0
    if arguments[:1] == ["pg-stop"] and len(arguments) == 3:
        cluster = PostgresCluster(port=int(arguments[2]))
        cluster.directory, cluster._bin = Path(arguments[1]), find_postgres_bin()
        cluster.stop()
        return 0
    sys.stderr.write("usage: python -m agentmeter.testing pg-start | pg-stop DIR PORT\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_cli(sys.argv[1:]))
