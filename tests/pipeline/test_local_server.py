"""The CLI's own local Prefect server: started once, reused, stopped when idle or asked."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from tests.helpers import VIDKOMPY
from vidkompy.pipeline import local_server


def gone(pid: int, within: float = 30.0) -> bool:
    """The process has exited within ``within`` seconds (reaped here when this process started it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:  # not ours: its parent reaps it, or init once the parent is gone
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_runs_share_one_local_server_which_stops_when_idle(crop, crop_cache, tmp_path):
    """Two CLI runs on a cache the library filled (`crop_cache`: the server, not the stages, is the point)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"), VIDKOMPY_LOCAL_SERVER_IDLE="8")
    state_file = tmp_path / "home" / "vidkompy-server.json"

    def align() -> None:
        r = subprocess.run([VIDKOMPY, "align", str(crop.bg), str(crop.fg), "--json", "--no-gpu", "--cache-dir",
                            str(crop_cache)], capture_output=True, text=True, env=env, timeout=300)
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


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_server_stop_stops_it(tmp_path, monkeypatch):
    """`vidkompy server stop` ends the supervisor and its Prefect server. The server is started as a run starts
    it (`local_server.ensure`), and stopped while it boots: a run would only add the wait for a whole boot
    (the test above has one) to what is checked here. Started from this process, the supervisor is this
    process's child: a thread reaps it when it ends, as init does for a CLI run's (otherwise `server stop` would
    wait its whole 10 s for a zombie to go)."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL")
    local_server.ensure()
    pid = json.loads((tmp_path / "home" / "vidkompy-server.json").read_text())["pid"]
    threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    deadline = time.monotonic() + 30
    while not children(pid) and time.monotonic() < deadline:  # its server started, so its SIGTERM handler is set
        time.sleep(0.05)
    server = children(pid)
    assert server, "the supervisor started no server"
    stop = subprocess.run([VIDKOMPY, "server", "stop"], capture_output=True, text=True, env=os.environ.copy())
    assert "stopped" in stop.stdout
    assert gone(pid) and gone(server[0])
    assert not (tmp_path / "home" / "vidkompy-server.json").exists()
