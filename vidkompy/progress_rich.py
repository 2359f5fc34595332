"""Per-stage progress bars with frames/s on a terminal (stderr), via rich."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class _RichBar:
    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)


class RichReporter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[progress.data.speed]{task.fields[fps]}"),
            TimeElapsedColumn(),
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
