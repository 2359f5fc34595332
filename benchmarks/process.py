"""Running one measured command in a fresh process: wall seconds from start to exit, and peak RSS.

``os.wait4`` gives the resource use of exactly that child (with the children it
reaped, such as Prefect's temporary server), where ``RUSAGE_CHILDREN`` would mix
in every earlier case. Linux reports ``ru_maxrss`` as the largest single
process's peak, not a sum; the sum over the process group is sampled from
``/proc`` every half second beside it, and a run whose group grows past a limit
is killed (a long case must not take the machine down with it).
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
    group_rss: int = 0  # bytes: the largest sampled sum of RSS over the command's process group
    over_memory: bool = False  # killed for passing ``rss_limit``

    def tail(self, n: int = 400) -> str:
        """The end of stderr (or stdout), for a one-line failure note."""
        text = (self.stderr.strip() or self.stdout.strip()).replace("\n", " | ")
        return text[-n:]


PAGE = os.sysconf("SC_PAGE_SIZE")


def group_rss(pgid: int) -> int:
    """Bytes resident in the processes of group ``pgid`` now (shared pages counted in each)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ... rss is the 22nd
            total += int(fields[21]) * PAGE
    return total


def total_memory() -> int:
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PHYS_PAGES") * PAGE


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float,
                 rss_limit: int | None = None) -> Measured:
    """Run ``cmd`` in its own session; past ``timeout`` seconds, or ``rss_limit`` bytes resident in its
    group, the whole group is killed."""
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
        done = threading.Event()
        peak = [0]
        over = threading.Event()

        def watch() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], group_rss(proc.pid))
                if rss_limit is not None and peak[0] > rss_limit and not over.is_set():
                    over.set()
                    kill()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
            watcher.join()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of that group left behind (a server it started)
        except ProcessLookupError:
            pass
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, seconds, usage.ru_maxrss * 1024, out.read(), err.read(),
                        killed.is_set() and not over.is_set(), peak[0], over.is_set())
