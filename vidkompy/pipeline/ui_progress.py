"""Long stages' progress in Prefect's UI: one progress artifact per stage, updated as frames go by.

The library reports through `vidkompy.progress`; this reporter turns that into
Prefect's progress artifacts of the task run it happens in. Updates are sent at
most every few seconds (each one is an API call).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from vidkompy.progress import reporting

log = logging.getLogger("vidkompy")
UPDATE_SECONDS = 3.0


class _ArtifactBar:
    def __init__(self, artifact_id: UUID | None, total: int | None):
        self.artifact_id, self.total = artifact_id, total
        self.done, self.sent = 0, 0.0
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.artifact_id is None or not self.total or now - self.sent < UPDATE_SECONDS:
                return
            self.sent = now
        update_progress_artifact(self.artifact_id, progress=min(100.0, 100.0 * self.done / self.total))


class PrefectProgress:
    """A `vidkompy.progress.Reporter` writing Prefect progress artifacts inside task runs."""

    def start(self, name: str, total: int | None) -> _ArtifactBar:
        if TaskRunContext.get() is None or not total:
            return _ArtifactBar(None, total)
        artifact_id = create_progress_artifact(progress=0.0, description=f"{name}: {total} frames")
        return _ArtifactBar(artifact_id, total)

    def stop(self, bar: _ArtifactBar) -> None:
        if bar.artifact_id is not None:
            update_progress_artifact(bar.artifact_id, progress=100.0)


@contextlib.contextmanager
def progress_artifacts(enabled: bool) -> Iterator[None]:
    """Report stage progress to Prefect's UI while the block runs (deployment runs: people watch the UI)."""
    if not enabled:
        yield
        return
    with reporting(PrefectProgress()):
        yield
