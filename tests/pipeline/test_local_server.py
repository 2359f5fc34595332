"""The CLI's own local Prefect server: started once, reused, stopped when idle or asked."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.helpers import VIDKOMPY


def gone(pid: int, within: float = 30.0) -> bool:
    """The process has exited (or is a zombie of an exited parent) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_runs_share_one_local_server_which_stops_when_idle(crop, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"), VIDKOMPY_LOCAL_SERVER_IDLE="8")
    state_file = tmp_path / "home" / "vidkompy-server.json"

    def align() -> None:
        r = subprocess.run([VIDKOMPY, "align", str(crop.bg), str(crop.fg), "--json", "--no-gpu", "--cache-dir",
                            str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)["frames"]) == len(crop.frames)

    align()
    first = json.loads(state_file.read_text())
    align()
    assert json.loads(state_file.read_text())["pid"] == first["pid"]
    status = subprocess.run([VIDKOMPY, "server", "status"], capture_output=True, text=True, env=env)
    assert first["url"] in status.stdout

    deadline = time.monotonic() + 90
    while state_file.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not state_file.exists(), "still running after its idle time"
    assert gone(first["pid"])


def test_server_stop_stops_it(crop, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"))
    r = subprocess.run([VIDKOMPY, "align", str(crop.bg), str(crop.fg), "--no-gpu", "--cache-dir",
                        str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    pid = json.loads((tmp_path / "home" / "vidkompy-server.json").read_text())["pid"]
    stop = subprocess.run([VIDKOMPY, "server", "stop"], capture_output=True, text=True, env=env)
    assert "stopped" in stop.stdout
    assert gone(pid)
