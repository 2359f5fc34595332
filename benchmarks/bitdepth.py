"""What a 10-bit H.264 output (High 10) costs against an 8-bit one, on this machine (issue 20).

    .venv/bin/python -m benchmarks.bitdepth [--seconds 10] [--rounds 3] [--markdown]

One generated 1080p pair (vidkompy.samples), re-encoded to High 10 (yuv420p10le) as a camera or a
mezzanine file would be, composed by `vidkompy.overlay.composite.composite` at its true alignment three
ways: 8-bit inputs to 8-bit h264 (the fast in-place path, for reference), 10-bit inputs to 10-bit h264
(the default since 2.1) and 10-bit inputs to 8-bit h264 (``--bit-depth 8``). Rounds are interleaved and
the fastest of each kept (the machine may be shared; the load is recorded). Writes
``benchmarks/results/<machine>.bitdepth.json``; ``--markdown`` prints the table docs/tuning.md carries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks import REPO
from benchmarks.machine import describe, slug
from vidkompy.media.encoding import OutputSettings
from vidkompy.models import Alignment, Geometry
from vidkompy.overlay.composite import composite
from vidkompy.samples import make_pair

RESULTS = REPO / "benchmarks" / "results"
VARIANTS = {  # name: (10-bit inputs, requested bit depth)
    "8-bit in, 8-bit out": (False, None),
    "10-bit in, 10-bit out (High 10, the default)": (True, None),
    "10-bit in, --bit-depth 8": (True, 8),
}


def to_high10(path: Path, target: Path) -> Path:
    """A High 10 (yuv420p10le) copy of ``path``, with real low bits (a dither the 8-bit file lacks)."""
    with av.open(str(path)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vs = out.add_stream("libx264", rate=vi.average_rate, options={"crf": "16", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = vi.codec_context.width, vi.codec_context.height, "yuv420p10le"
        vs.thread_type = "AUTO"
        for k, f in enumerate(src.decode(vi)):
            a = f.to_ndarray(format="yuv420p").astype(np.uint16) * 4 + np.uint16(k % 4)
            g = av.VideoFrame.from_ndarray(a, format="yuv420p10le")
            g.pts, g.time_base = f.pts, f.time_base
            for p in vs.encode(g):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print the committed JSON as docs/tuning.md's table")
    args = parser.parse_args()
    machine = describe()
    path = RESULTS / f"{slug(machine)}.bitdepth.json"
    if args.markdown:
        print(markdown(json.loads(path.read_text())))
        return
    with tempfile.TemporaryDirectory(prefix="vidkompy-bitdepth-") as scratch:
        folder = Path(scratch)
        pair = make_pair(folder, name="bd", bg_size=(1920, 1080), region=(320, 180, 1280, 720), bg_fps=25,
                         fg_fps=25, seconds=args.seconds, trim=(0.0, 0.0), audio=False, seed=5)
        ten = {"bg": to_high10(pair.bg, folder / "bg10.mp4"), "fg": to_high10(pair.fg, folder / "fg10.mp4")}
        alignment = Alignment(Geometry(pair.x, pair.y, pair.scale), 1.0, np.asarray(pair.frames))
        walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
        formats: dict[str, tuple[str, str]] = {}
        load = [round(os.getloadavg()[0], 2)]
        for _ in range(args.rounds):
            for name, (ten_bit, depth) in VARIANTS.items():
                bg, fg = (ten["bg"], ten["fg"]) if ten_bit else (pair.bg, pair.fg)
                start = time.perf_counter()
                out = composite(bg, fg, folder / "out.mp4", alignment, settings=OutputSettings(bit_depth=depth))
                walls[name].append(round(time.perf_counter() - start, 3))
                with av.open(str(out)) as c:
                    cc = c.streams.video[0].codec_context
                    fmt, profile = cc.pix_fmt, cc.profile
                formats[name] = (fmt, profile)
        load.append(round(os.getloadavg()[0], 2))
    n = len(pair.frames)
    base = min(walls["8-bit in, 8-bit out"])
    rows = [{"variant": name, "pix_fmt": formats[name][0], "profile": formats[name][1],
             "seconds": min(walls[name]), "all_rounds": walls[name], "fps": round(n / min(walls[name]), 1),
             "ratio_to_8bit": round(min(walls[name]) / base, 3)} for name in VARIANTS]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    result = {"machine_slug": slug(machine), "machine": machine, "commit": commit, "frames": n,
              "size": [1920, 1080], "fg_size": [1280, 720], "codec": "h264 (libx264, crf 18, veryfast)",
              "load_1m": load, "rounds": args.rounds, "variants": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"wrote {path}")


def markdown(result: dict) -> str:
    lines = [f"{result['frames']} frames of 1080p bg under a 720p fg, h264 crf 18 veryfast, on "
             f"{result['machine_slug']} at {result['commit']} (best of {result['rounds']} interleaved rounds, "
             f"load {result['load_1m'][0]} -> {result['load_1m'][1]}):", "",
             "| inputs -> output | pix_fmt | profile | seconds | frames/s | x 8-bit |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['pix_fmt']} | {r['profile']} | {r['seconds']:.2f} | {r['fps']:.1f} | "
              f"{r['ratio_to_8bit']:.2f}x |" for r in result["variants"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
