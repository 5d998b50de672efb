"""A separate virtualenv holding the published ``agentmeter==0.2.0`` client.

The venv lives in ``<repo>/.compat-venv`` (git-ignored; while one is built,
also ``.compat-venv.building-*``) and is reused while it still imports 0.2.0;
set ``AGENTMETER_COMPAT_VENV_DIR`` to put it elsewhere. It is built in a
temporary sibling directory and renamed into place, so an interrupted build
never leaves a half-made venv behind.

The tests skip only when pip cannot reach the package index (a network
error in pip's output); any other install failure fails them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.2.0"
# 0.2.0 imports requests but does not declare it (see the test module), so
# its users must install it themselves; so do we.
REQUIREMENTS = [f"agentmeter=={VERSION}", "requests"]
NETWORK_ERRORS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "nodename nor servname",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Connection refused",
    "ProxyError",
    "Could not fetch URL",
)


def venv_dir() -> Path:
    # Not an AGENTMETER_* setting of the SDK, so tests/conftest.py leaves it be.
    override = os.environ.get("AGENTMETER_COMPAT_VENV_DIR")
    return Path(override) if override else REPO / ".compat-venv"


def venv_python(directory: Path) -> Path:
    return directory / "bin" / "python"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for the 0.2 venv's processes: nothing of this repo's venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")
        and not key.startswith("AGENTMETER_")
    }
    env.update(extra)
    return env


def is_usable(directory: Path) -> bool:
    python = venv_python(directory)
    if not python.exists():
        return False
    check = (
        "import agentmeter, requests, sys; "
        f"assert agentmeter.__version__ == {VERSION!r}, agentmeter.__version__; "
        "assert agentmeter.__file__.startswith(sys.prefix), agentmeter.__file__"
    )
    result = subprocess.run(
        [str(python), "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tempfile.gettempdir(),
        check=False,
    )
    return result.returncode == 0


def build(target: Path) -> None:
    """Create the venv next to ``target`` and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.building-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(staging)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        install = subprocess.run(
            [
                str(venv_python(staging)),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--retries",
                "2",
                "--timeout",
                "30",
                *REQUIREMENTS,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=clean_env(),
            check=False,
        )
        if install.returncode != 0:
            output = f"{install.stdout}\n{install.stderr}"
            network = [
                line.strip()
                for line in output.splitlines()
                if any(marker in line for marker in NETWORK_ERRORS)
            ]
            if network:
                pytest.skip(
                    f"pip cannot reach the package index to install agentmeter=={VERSION} "
                    f"(network error: {network[0][:300]})"
                )
            pytest.fail(
                f"pip install {' '.join(REQUIREMENTS)} failed ({install.returncode}):\n"
                + output[-4000:],
                pytrace=False,
            )
        if target.exists():
            shutil.rmtree(target)
        # The renamed venv works: its python finds sys.prefix from its own
        # location. Only the shebangs of bin/pip & co. name the staging path,
        # so pip is always run as ``python -m pip``.
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def v02_python() -> Path:
    """The python of a venv where ``import agentmeter`` is the published 0.2.0."""
    directory = venv_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (pytest-xdist workers, two sessions); the lock file
    # is in the temp directory, named after the venv's path, not in the repo.
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"agentmeter-compat-venv-{digest}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not is_usable(directory):
                build(directory)
                if not is_usable(directory):
                    pytest.fail(f"the venv in {directory} does not import agentmeter {VERSION}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return venv_python(directory)


@pytest.fixture(scope="session")
def v02_environ():
    """Make the environment for a process of the 0.2 venv: ``v02_environ(TZ="UTC")``."""
    return clean_env
