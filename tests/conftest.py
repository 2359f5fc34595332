"""Fixtures: sample pairs with exact truth, and one Prefect server for the tests that run Prefect.

The environment is set at import, before anything imports Prefect: Prefect reads
its settings then. The server itself starts only when a test asks for it
(`prefect_server`; the conftests of tests/pipeline and tests/cli ask for every
test there): every flow call of the session, in this process and in CLI
subprocesses, then talks to that one server instead of starting a temporary
one each. Tests of media/, align/, overlay/ and store/ never start it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Guarded: a second import of this module (as `tests.conftest`) must not pick another port. Under
# pytest-xdist every worker inherits the controller's environment, so the guard is per worker: each worker
# has a server (and a PREFECT_HOME) of its own.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get("VIDKOMPY_TEST_PREFECT_OWNER") != _WORKER:
    os.environ["VIDKOMPY_TEST_PREFECT_OWNER"] = _WORKER
    os.environ["VIDKOMPY_TEST_PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"vidkompy-prefect-{_WORKER}-")
    os.environ["VIDKOMPY_TEST_PREFECT_PORT"] = str(_free_port())
_home = Path(os.environ["VIDKOMPY_TEST_PREFECT_HOME"])
_port = int(os.environ["VIDKOMPY_TEST_PREFECT_PORT"])
os.environ.update(
    PREFECT_HOME=str(_home),
    PREFECT_API_URL=f"http://127.0.0.1:{_port}/api",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
    PREFECT_LOGGING_TO_API_ENABLED="false",  # nothing left to flush to a server stopped at the end
    VIDKOMPY_MOBILENET_WEIGHTS="",
    TORCH_HOME=str(_home / "torch"),  # no stray cached weights change what a test exercises
)

from tests.helpers import CASES  # noqa: E402
from vidkompy.samples import SamplePair, make_pair  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server():
    """`prefect server start` on loopback, stopped by its process id at the end."""
    log_file = (_home / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(_port)],
        stdout=log_file, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{_port}/api/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"prefect server did not start: {(_home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield os.environ["PREFECT_API_URL"]
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log_file.close()
    shutil.rmtree(_home, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_logged_errors(caplog):
    """A test that makes vidkompy log an ERROR fails, as PySceneDetect's suite does."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("vidkompy")]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, SamplePair]:
    folder = tmp_path_factory.mktemp("samples")
    return {name: make_pair(folder, name=name, **kw) for name, kw in CASES.items()}


@pytest.fixture(scope="session")
def crop(samples) -> SamplePair:
    return samples["crop"]


# The longest files first (`--durations` on two cores), so that under `-n auto --dist loadfile` neither worker is
# left with a long file at the end while the other waits: the deployment test (one test, a minute) came last when
# xdist ordered files by how many tests they hold.
RUN_FIRST = (
    "tests/pipeline/test_reliability.py",
    "tests/pipeline/test_deployments.py",
    "tests/pipeline/test_long.py",
    "tests/pipeline/test_realworld.py",
    "tests/pipeline/test_local_server.py",
    "tests/pipeline/test_segments_flow.py",
    "tests/pipeline/test_compose.py",
    "tests/cli/test_batch.py",
)


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # keep the order below: xdist's own is by number of tests


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: each file's own order, and the other files' collection order, are kept
