"""Fault injection for the crash-safety tests: die at a named point, as a killed worker would.

Inert unless ``VIDKOMPY_FAULT_AT`` names the point; the tests set it to prove that
a process killed there leaves nothing a later run would trust.
"""

from __future__ import annotations

import os
import signal

ENV = "VIDKOMPY_FAULT_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
