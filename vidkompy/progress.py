"""Progress that the library emits and front ends may display.

The library only calls `stage(name, total)` and advances the bar it gets; the
CLI adds a terminal reporter when stderr is a terminal, and the flow adds one
that feeds Prefect's progress artifacts in deployment runs. Stages run in
worker threads of one process, so the reporters are process-wide.
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


class _Bars:
    def __init__(self, bars: list[tuple[Reporter, Bar]]):
        self.bars = bars

    def advance(self, n: int = 1) -> None:
        for _, bar in self.bars:
            bar.advance(n)


_lock = threading.Lock()
_reporters: list[Reporter] = []


def add_reporter(reporter: Reporter) -> None:
    with _lock:
        _reporters.append(reporter)


def remove_reporter(reporter: Reporter) -> None:
    with _lock:
        if reporter in _reporters:
            _reporters.remove(reporter)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    add_reporter(reporter)
    try:
        yield reporter
    finally:
        remove_reporter(reporter)


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Bar]:
    with _lock:
        reporters = list(_reporters)
    bars = _Bars([(r, r.start(name, total)) for r in reporters])
    try:
        yield bars
    finally:
        for r, bar in bars.bars:
            r.stop(bar)
