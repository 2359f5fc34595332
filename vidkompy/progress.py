"""Progress reporting that the library emits and a front end may display.

The library only calls `stage(name, total)`; the CLI installs a rich reporter
when stderr is a terminal. Stages run in worker threads of one process, so a
process-wide reporter is enough.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    def start(self, name: str, total: int | None) -> Bar: ...

    def stop(self, bar: Bar) -> None: ...


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass


class SilentReporter:
    def start(self, name: str, total: int | None) -> Bar:
        return _Silent()

    def stop(self, bar: Bar) -> None:
        pass


_lock = threading.Lock()
_reporter: Reporter = SilentReporter()


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    with _lock:
        _reporter = reporter or SilentReporter()


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Bar]:
    reporter = _reporter
    bar = reporter.start(name, total)
    try:
        yield bar
    finally:
        reporter.stop(bar)
