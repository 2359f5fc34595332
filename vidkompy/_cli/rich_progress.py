"""Per-stage progress bars on a terminal (stderr), via rich: frames done, frames/s and time left."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _RichBar:
    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)
        t = self.progress.tasks[self.task] if self.task < len(self.progress.tasks) else None
        if t is not None and t.elapsed:
            self.progress.update(self.task, fps=f"{t.completed / t.elapsed:,.0f} frames/s")


class RichReporter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[progress.data.speed]{task.fields[fps]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.progress.start()

    def start(self, name: str, total: int | None) -> _RichBar:
        with self._lock:
            task = self.progress.add_task(name, total=total, fps="")
        return _RichBar(self.progress, task)

    def stop(self, bar: _RichBar) -> None:
        task = self.progress.tasks[[t.id for t in self.progress.tasks].index(bar.task)]
        speed = task.completed / task.elapsed if task.elapsed else 0.0
        self.progress.update(bar.task, total=task.completed, fps=f"{speed:,.0f} frames/s")

    def close(self) -> None:
        self.progress.stop()
