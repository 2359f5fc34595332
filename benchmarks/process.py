"""Running one measured command in a fresh process: wall seconds from start to exit, and peak RSS.

``os.wait4`` gives the resource use of exactly that child (with the children it
reaped, such as Prefect's temporary server), where ``RUSAGE_CHILDREN`` would mix
in every earlier case. Linux reports ``ru_maxrss`` as the largest single
process's peak, not a sum.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    """What a command did: exit code, seconds from start to exit, peak RSS, its output."""

    rc: int
    seconds: float
    max_rss: int  # bytes
    stdout: str
    stderr: str
    timed_out: bool = False

    def tail(self, n: int = 400) -> str:
        """The end of stderr (or stdout), for a one-line failure note."""
        text = (self.stderr.strip() or self.stdout.strip()).replace("\n", " | ")
        return text[-n:]


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Measured:
    """Run ``cmd`` in its own session; past ``timeout`` seconds its whole group is killed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group we started, by its id
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of that group left behind (a server it started)
        except ProcessLookupError:
            pass
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, seconds, usage.ru_maxrss * 1024, out.read(), err.read(), killed.is_set())
