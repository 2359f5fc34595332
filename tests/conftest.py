"""Fixtures: sample pairs with exact truth, and one Prefect server for the tests that run Prefect.

The environment is set at import, before anything imports Prefect: Prefect reads
its settings then. Every flow call of the session, in this process and in CLI
subprocesses, talks to that one server instead of starting a temporary one each
(`prefect_server`; the conftests of tests/pipeline and tests/cli ask for it in
every test there). Run alone, the first test that asks starts it. Under
pytest-xdist the controller starts it for all its workers as soon as it is
configured, when tests/pipeline or tests/cli are selected: it boots (some 13 s
of CPU) once instead of once a worker, while the workers collect.
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
from typing import IO

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Guarded: a second import of this module (as `tests.conftest`) must not pick another port. Under
# pytest-xdist every worker inherits the controller's environment: with the controller's server (SHARED) the
# workers keep its PREFECT_HOME and port; otherwise each worker has a server and a PREFECT_HOME of its own.
SHARED = "VIDKOMPY_TEST_PREFECT_SHARED"
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get(SHARED) != "1" and os.environ.get("VIDKOMPY_TEST_PREFECT_OWNER") != _WORKER:
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

# The test server's database lives in memory, behind one connection: on a file, SQLite refuses a write that meets
# the task-run recorder's (a "database is locked" that is no busy wait), the server answers 503 and the client sleeps
# 2 s before it retries; that came at one flow call in two here. Services no test needs are off: their polling is CPU
# the two test workers share with the server. No test uses a block: registering Prefect's block types costs a
# fifth of the boot (17 -> 13 s of CPU).
SERVER_ENV = {
    "PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///:memory:",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "FOREMAN", "TRIGGERS",
        "EVENT_PERSISTER", "EVENT_LOGGER", "DB_VACUUM", "REPOSSESSOR")},
}


def _start_server() -> tuple[subprocess.Popen, IO[str]]:
    log_file = (_home / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(_port)],
        stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **SERVER_ENV},
    )
    return proc, log_file


def _wait_until_healthy(proc: subprocess.Popen | None) -> None:
    """``proc``: the server, when it is this process's own (a worker only sees the controller's answer)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{_port}/api/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            if proc is not None:
                proc.kill()
            raise RuntimeError(f"prefect server did not start: {(_home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)


def _stop_server(proc: subprocess.Popen, log_file: IO[str]) -> None:
    """By its process id, then its PREFECT_HOME removed."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log_file.close()
    shutil.rmtree(_home, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_server():
    """`prefect server start` on loopback: the xdist controller's (`pytest_configure`), or this process's own,
    stopped by its process id at the end."""
    if os.environ.get(SHARED) == "1":
        _wait_until_healthy(None)
        yield os.environ["PREFECT_API_URL"]
        return
    proc, log_file = _start_server()
    _wait_until_healthy(proc)
    yield os.environ["PREFECT_API_URL"]
    _stop_server(proc, log_file)


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


@pytest.fixture(scope="session")
def crop_composed(crop, prefect_server, tmp_path_factory) -> Path:
    """A cache holding every stage of one compose of the crop pair, by the library (once a worker)."""
    import vidkompy

    folder = tmp_path_factory.mktemp("crop-composed")
    vidkompy.compose(crop.bg, crop.fg, folder / "o.mp4", gpu=False, cache_dir=folder / "cache")
    return folder / "cache"


@pytest.fixture
def crop_cache(crop_composed, tmp_path) -> Path:
    """A copy of `crop_composed` as ``tmp_path / "cache"``, the test's own to use and change: for tests whose point
    comes after the alignment (the composite, the CLI's contract, what a damaged cache does), not the stages."""
    return shutil.copytree(crop_composed, tmp_path / "cache")


# The longest files first (`--durations` on two cores), so that under `-n auto --dist loadfile` neither worker is
# left with a long file at the end while the other waits: the deployment test (one test, a minute) came last when
# xdist ordered files by how many tests they hold.
RUN_FIRST = (
    # no Prefect in these two: the workers decode and encode while the controller's server boots (some 14 s),
    # instead of waiting for it in their first test
    "tests/media/test_decode.py",
    "tests/overlay/test_output_formats.py",
    "tests/pipeline/test_reliability.py",
    "tests/pipeline/test_crashes.py",
    "tests/pipeline/test_deployments.py",
    "tests/pipeline/test_long.py",
    "tests/pipeline/test_realworld.py",
    "tests/pipeline/test_local_server.py",
    "tests/pipeline/test_segments_flow.py",
    "tests/pipeline/test_compose.py",
    "tests/cli/test_batch.py",
)


PREFECT_TESTS = (Path(__file__).parent / "pipeline", Path(__file__).parent / "cli")
_controller_server: list[tuple[subprocess.Popen, IO[str]]] = []


def _selects_prefect_tests(config) -> bool:
    """Whether a path the run was given is, holds or lies in a folder whose tests run Prefect."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if any(path == d or d in path.parents or path in d.parents for d in PREFECT_TESTS):
            return True
    return False


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # keep the order below: xdist's own is by number of tests
    is_controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if is_controller and os.environ.get(SHARED) != "1" and _selects_prefect_tests(config):
        _controller_server.append(_start_server())
        os.environ[SHARED] = "1"  # before the workers start: they inherit it


def pytest_unconfigure(config):
    while _controller_server:
        _stop_server(*_controller_server.pop())


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: each file's own order, and the other files' collection order, are kept
