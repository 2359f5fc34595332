"""The CLI's fixed cost: ``vidkompy BG FG`` end to end minus its stages, with and without a Prefect server.

Without ``PREFECT_API_URL`` every run starts (and stops) a temporary Prefect
server; against a running ``prefect server start`` it only connects. Both are
measured on one small pair, each run with a fresh cache (so every stage runs),
and reported as medians. The very first run in a fresh ``PREFECT_HOME`` would
also create Prefect's database: `init_database` does that up front, timed on
its own, so that no case pays it. The server is started here and stopped by its
process group id at the end.
"""

from __future__ import annotations

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


def measure(truth: Truth, work: Path, env: dict[str, str], *, runs: int, gpu: bool, timeout: float) -> dict:
    """``runs`` runs with no server, ``runs`` against a server started here; medians."""
    work.mkdir(parents=True, exist_ok=True)
    ephemeral_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    ephemeral = [cli_compose(truth, work, ephemeral_env, gpu, timeout) for _ in range(runs)]
    align = cli_align(truth, ephemeral[-1]["cache"], work, ephemeral_env, gpu, timeout)
    server: dict = {"runs": [], "start_s": None, "error": None}
    try:
        proc, url, started = start_server(ephemeral_env, work / "prefect-server.log")
    except RuntimeError as exc:
        server["error"] = str(exc)
    else:
        try:
            server["start_s"] = round(started, 3)
            server_env = {**ephemeral_env, "PREFECT_API_URL": url}
            server["runs"] = [cli_compose(truth, work, server_env, gpu, timeout) for _ in range(runs)]
        finally:
            stop_server(proc)
    for r in [*ephemeral, *server["runs"]]:
        r.pop("cache", None)
    return {
        "ephemeral": {"runs": ephemeral, "seconds": _median(ephemeral, "seconds"),
                      "overhead_s": _median(ephemeral, "overhead_s")},
        "server": {**server, "seconds": _median(server["runs"], "seconds"),
                   "overhead_s": _median(server["runs"], "overhead_s")},
        "align_json": align,
    }
