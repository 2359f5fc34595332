"""A local Prefect server that outlives one CLI run and serves the next ones.

Without PREFECT_API_URL, every Prefect flow call starts a temporary API server
and stops it again: measured here, 7.8 s per run (12.7 s in a new PREFECT_HOME),
against 2.4 s when a server is already running. So the CLI keeps one: the first
run starts it on loopback (in parallel with its own imports and input checks),
later runs find it through a state file in PREFECT_HOME, and a small supervisor
stops it after ``idle`` seconds without a run. ``VIDKOMPY_LOCAL_SERVER=0`` turns
this off (plain temporary servers again).

This module never imports Prefect: it starts ``python -m prefect server start``
as a process and talks to it over HTTP only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

ENV_SWITCH = "VIDKOMPY_LOCAL_SERVER"
IDLE_SECONDS = 600
STATE_FILE = "vidkompy-server.json"
# Services a CLI run does not need; the task-run recorder and event persister stay (task states).
_SERVICES_OFF = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "CANCELLATION_CLEANUP", "PAUSE_EXPIRATIONS",
                 "REPOSSESSOR", "TRIGGERS", "EVENT_LOGGER")


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _state_path() -> Path:
    return prefect_home() / STATE_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def answers(url: str, timeout: float = 5.0) -> bool:
    """Whether anything answers HTTP at ``url`` (any status, even 401 from a server that wants a key):
    False only when nothing is there to answer (refused, unknown host, no reply within ``timeout``)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):  # URLError (refused, no such host), a timeout, a URL urllib cannot use
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_state() -> dict | None:
    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return None


def touch() -> None:
    """Mark the server as used now: the supervisor counts idle time from the state file's mtime."""
    with contextlib.suppress(OSError):
        os.utime(_state_path())


def ensure(idle: int | None = None) -> str:
    """The API URL of the local server: the running one, or one started now (maybe not ready yet).

    ``idle`` seconds without a run stop it (default ``$VIDKOMPY_LOCAL_SERVER_IDLE`` or 600).
    """
    idle = idle if idle is not None else int(os.environ.get("VIDKOMPY_LOCAL_SERVER_IDLE", IDLE_SECONDS))
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / "vidkompy-server.lock"), timeout=120):
        state = read_state()
        if state and _alive(int(state["pid"])):
            touch()
            return state["url"]
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        log = (home / "vidkompy-server.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidkompy.pipeline.local_server", "--port", str(port), "--idle", str(idle)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=_server_env(),
        )
        tmp = _state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": proc.pid, "port": port, "url": url, "started": time.time()}))
        os.replace(tmp, _state_path())
        return url


def wait_until_healthy(url: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url):
            touch()  # booting is not idling
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def keepalive(period: float = 5.0) -> Iterator[None]:
    """Touch the state file while a run lasts, so a long run is never counted as idle."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            touch()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        touch()


def stop_server() -> bool:
    """Stop the local server (by the supervisor's process id); False if none ran."""
    state = read_state()
    if not state or not _alive(int(state["pid"])):
        return False
    os.kill(int(state["pid"]), signal.SIGTERM)
    for _ in range(100):
        if not _alive(int(state["pid"])):
            break
        time.sleep(0.1)
    return True


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)
    for name in _SERVICES_OFF:
        env[f"PREFECT_SERVER_SERVICES_{name}_ENABLED"] = "false"
    return env


def supervise(port: int, idle: int) -> int:
    """Run ``prefect server start`` on loopback; stop it once the state file is ``idle`` seconds old."""
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], stdin=subprocess.DEVNULL, env=_server_env())
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    url = f"http://127.0.0.1:{port}/api"
    try:
        # idle time counts from readiness: a first boot (database creation) can take longer than `idle`
        while not stopping.is_set() and server.poll() is None and not healthy(url):
            stopping.wait(0.2)
        touch()
        while not stopping.wait(2.0) and server.poll() is None:
            try:
                last = _state_path().stat().st_mtime
            except OSError:
                break  # the state file is gone: nobody can find this server any more
            if time.time() - last > idle:
                break
    finally:
        with contextlib.suppress(OSError):
            state = read_state()
            if state and int(state["pid"]) == os.getpid():
                _state_path().unlink()
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="vidkompy's local Prefect server supervisor (internal)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=int, default=IDLE_SECONDS)
    args = parser.parse_args()
    return supervise(args.port, args.idle)


if __name__ == "__main__":
    sys.exit(main())
