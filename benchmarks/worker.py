"""The child process of a measured vidkompy run: the public Python API, as a user calls it.

It prints one JSON object: the alignment (with the per-frame match score, the
unmatched fg ranges and fg's active box), the per-stage seconds vidkompy
reports (``ComposeResult.timings``, computed stages only), which stages ran, and
how long the heavy imports and the ``compose`` call (``vidkompy.align`` with
``--align-only``: no video written) took inside the process.
The parent measures the process from start to exit and its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description="Run vidkompy.compose once and print what it returned.")
    parser.add_argument("bg", type=Path)
    parser.add_argument("fg", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--border", type=int, default=8)
    parser.add_argument("--blend", action="store_true")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--align-only", action="store_true", help="vidkompy.align: no video written")
    args = parser.parse_args()

    start = time.perf_counter()
    # What compose imports lazily on its first call (Prefect, the flow, torch through the stages).
    import vidkompy
    import vidkompy._cli.main  # noqa: F401
    import vidkompy.pipeline.compose_flow  # noqa: F401
    from vidkompy.alignment.embed import find_weights

    imported = time.perf_counter()
    if args.align_only:
        r = vidkompy.align(args.bg, args.fg, gpu=args.gpu, cache_dir=args.cache_dir)
    else:
        r = vidkompy.compose(args.bg, args.fg, args.output, border=args.border, blend=args.blend, gpu=args.gpu,
                             cache_dir=args.cache_dir)
    done = time.perf_counter()
    print(json.dumps({
        "x": float(r.x), "y": float(r.y), "scale": float(r.scale), "confidence": float(r.confidence),
        "frames": [int(f) for f in r.frames], "output": r.output,
        "score": None if r.score is None else [round(float(v), 4) for v in r.score],
        "unmatched": [[int(a), int(b)] for a, b in r.unmatched],
        "active": None if r.alignment.active is None else [int(v) for v in r.alignment.active],
        "timings": {k: float(v) for k, v in r.timings.items()}, "computed": list(r.computed),
        "import_s": imported - start, "call_s": done - imported,
        "embedding": "mobilenet" if find_weights() else "fallback (no weights)",
    }))


if __name__ == "__main__":
    main()
