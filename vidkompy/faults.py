"""Fault injection for the crash-safety tests: die, or stop for a signal, at a named point.

Inert unless ``VIDKOMPY_FAULT_AT`` names the point; the tests set it to prove that
a process killed there leaves nothing a later run would trust. With
``VIDKOMPY_FAULT_PAUSE`` naming a file, the process instead writes its id there
at the point and waits: the test then sends the signal it means to test (SIGINT,
as Ctrl-C in a terminal would) at a moment it knows, instead of racing the work.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "VIDKOMPY_FAULT_AT"
PAUSE_ENV = "VIDKOMPY_FAULT_PAUSE"
# a paused process nobody signals must not hang a test run: it dies as an unpaused one would
PAUSE_SECONDS = 120.0


def crash_point(name: str) -> None:
    if os.environ.get(ENV) != name:
        return
    ready = os.environ.get(PAUSE_ENV)
    if ready:
        tmp = Path(f"{ready}.tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, ready)  # whole or absent: the test reads the id as soon as the name exists
        deadline = time.monotonic() + PAUSE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)  # a signal's Python handler runs here (KeyboardInterrupt for SIGINT)
    os.kill(os.getpid(), signal.SIGKILL)
