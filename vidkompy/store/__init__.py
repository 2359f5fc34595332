"""The artifact store: what each stage computed, kept in Zarr under a content key, and its administration.

- :mod:`~vidkompy.store.artifacts`: the `Store`. Artifacts are complete or absent, checksummed, written
  chunk by chunk (a killed run resumes), and computed by one process at a time under a lock.
- :mod:`~vidkompy.store.layout`: every file and folder name the store uses on disk, and the patterns
  that recognise them.
- :mod:`~vidkompy.store.admin`: what a cache folder holds, and pruning it (``vidkompy cache info|prune``).

Plain Python: nothing here knows Prefect or the command line.
"""

from vidkompy.store.artifacts import (
    Artifact,
    ArtifactDamaged,
    ArtifactMissing,
    ArtifactWriter,
    CacheError,
    Store,
    stage_key,
)
from vidkompy.store.layout import default_cache_dir

__all__ = [
    "Artifact",
    "ArtifactDamaged",
    "ArtifactMissing",
    "ArtifactWriter",
    "CacheError",
    "Store",
    "default_cache_dir",
    "stage_key",
]
