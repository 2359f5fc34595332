"""The CLI's fixed cost: ``vidkompy BG FG`` end to end minus its stages, by how Prefect is reached.

Three ways, each N runs on one small pair with a fresh cache (so every stage
runs), reported as medians:

- ``no server configured`` (no ``PREFECT_API_URL``), vidkompy's default: the
  first run boots vidkompy's local Prefect server and is reported on its own;
  N more runs reuse it.
- ``temporary server per run`` (``VIDKOMPY_LOCAL_SERVER=0``): Prefect's own
  ephemeral mode, a server started and stopped inside every run.
- ``running server``: ``PREFECT_API_URL`` pointing at a ``prefect server start
  --host 127.0.0.1`` that the benchmark starts and stops (by its process group).

Prefect's database is created up front (`init_database`), timed on its own, so
that no run pays it. The local server is left running for the cases (they then
all measure the warm path a user's second run gets) and stopped at the end with
``vidkompy server stop``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import REPO
from benchmarks.footage import Truth
from benchmarks.process import Measured, run_measured

BIN = Path(sys.executable).parent
_STAGE = re.compile(r"([\w-]+) ([0-9.]+)s")


def stage_seconds(stdout: str) -> dict[str, float]:
    """The CLI's ``computed: decode-bg 0.45s, ...`` line as a dict."""
    for line in stdout.splitlines():
        if line.startswith("computed:"):
            return {k: float(v) for k, v in _STAGE.findall(line)}
    return {}


def _one(m: Measured) -> dict:
    stages = stage_seconds(m.stdout)
    return {"rc": m.rc, "seconds": round(m.seconds, 3), "stages_s": round(sum(stages.values()), 3),
            "overhead_s": round(m.seconds - sum(stages.values()), 3), "max_rss_mb": round(m.max_rss / 2**20, 1),
            "error": None if m.rc == 0 else m.tail()}


def cli_compose(truth: Truth, work: Path, env: dict[str, str], gpu: bool, timeout: float) -> dict:
    """One ``vidkompy BG FG -o OUT --cache-dir DIR`` run with a fresh cache: every stage computes."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    cmd = [str(BIN / "vidkompy"), str(truth.bg), str(truth.fg), "-o", str(cache / "out.mp4"),
           "--gpu" if gpu else "--no-gpu", "--cache-dir", str(cache)]
    result = _one(run_measured(cmd, env=env, cwd=work, timeout=timeout))
    result["cache"] = str(cache)
    return result


def cli_align(truth: Truth, cache: str, work: Path, env: dict[str, str], gpu: bool, timeout: float) -> dict:
    """``vidkompy align --json`` on a warm cache: what a user scripts against."""
    cmd = [str(BIN / "vidkompy"), "align", str(truth.bg), str(truth.fg), "--json",
           "--gpu" if gpu else "--no-gpu", "--cache-dir", cache]
    m = run_measured(cmd, env=env, cwd=work, timeout=timeout)
    found = None
    if m.rc == 0:
        try:
            found = json.loads(m.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            found = None
    return {"rc": m.rc, "seconds": round(m.seconds, 3), "json": found,
            "error": None if m.rc == 0 and found is not None else m.tail()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], log: Path, timeout: float = 180.0) -> tuple[subprocess.Popen, str, float]:
    """``prefect server start`` on loopback; returns it, its API URL and the seconds until it answered."""
    port = _free_port()
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"prefect server did not answer within {timeout:.0f} s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (started by us, in its own session), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


def init_database(env: dict[str, str], work: Path) -> float:
    """Create Prefect's database in the fresh PREFECT_HOME (what a user's very first run pays once)."""
    m = run_measured([str(BIN / "prefect"), "server", "database", "upgrade", "-y"], env=env, cwd=work, timeout=600)
    if m.rc != 0:
        raise RuntimeError(f"prefect server database upgrade failed: {m.tail()}")
    return round(m.seconds, 3)


def _median(runs: list[dict], key: str) -> float | None:
    ok = [r[key] for r in runs if r["rc"] == 0]
    return round(statistics.median(ok), 3) if ok else None


def has_local_server() -> bool:
    """Whether this vidkompy keeps a local Prefect server between runs (``vidkompy server``)."""
    return importlib.util.find_spec("vidkompy.pipeline.local_server") is not None


_WARM = ("import sys; from vidkompy.pipeline import local_server as s; u = s.ensure(); "
         "sys.exit(0 if s.wait_until_healthy(u) else 1)")


def start_local_server(env: dict[str, str], work: Path) -> float | None:
    """Boot vidkompy's local server (what a first CLI run does) so that timed runs find it warm."""
    if not has_local_server():
        return None
    m = run_measured([sys.executable, "-c", _WARM], env=env, cwd=work, timeout=180)
    return round(m.seconds, 3) if m.rc == 0 else None


def stop_local_server(env: dict[str, str], work: Path) -> None:
    """``vidkompy server stop``: the local server lives in its own session, beyond our process groups."""
    if has_local_server():
        run_measured([str(BIN / "vidkompy"), "server", "stop"], env=env, cwd=work, timeout=60)


def _block(runs: list[dict]) -> dict:
    for r in runs:
        r.pop("cache", None)
    return {"runs": runs, "seconds": _median(runs, "seconds"), "overhead_s": _median(runs, "overhead_s")}


def measure(truth: Truth, work: Path, env: dict[str, str], *, runs: int, gpu: bool, timeout: float) -> dict:
    """``runs`` CLI runs per way of reaching Prefect, then ``align --json`` on a warm cache; medians.

    Ends with vidkompy's local server running (when this vidkompy has one).
    """
    work.mkdir(parents=True, exist_ok=True)
    plain = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    local = has_local_server()
    stop_local_server(plain, work)
    temporary = [cli_compose(truth, work, {**plain, "VIDKOMPY_LOCAL_SERVER": "0"}, gpu, timeout)
                 for _ in range(runs)] if local else []
    server: dict = {"start_s": None, "error": None}
    server_runs: list[dict] = []
    try:
        proc, url, started = start_server(plain, work / "prefect-server.log")
    except RuntimeError as exc:
        server["error"] = str(exc)
    else:
        try:
            server["start_s"] = round(started, 3)
            server_runs = [cli_compose(truth, work, {**plain, "PREFECT_API_URL": url}, gpu, timeout)
                           for _ in range(runs)]
        finally:
            stop_server(proc)
    first = cli_compose(truth, work, plain, gpu, timeout)
    default = [cli_compose(truth, work, plain, gpu, timeout) for _ in range(runs)] if local else []
    align = cli_align(truth, first["cache"], work, plain, gpu, timeout)
    first.pop("cache")
    return {
        "local_server": local,
        # without a local server every run is alike: the first is one of the N
        "no_server": {**_block(default or [first]), "first": first},
        "temporary": _block(temporary),
        "server": {**server, **_block(server_runs)},
        "align_json": align,
    }
