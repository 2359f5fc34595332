"""The benchmark cases: each a recipe for a pair with exact truth and what it is there to cover.

Between them they cover crops at several offsets (corner, odd, centre),
full-width and full-height bands, fg scaled 0.5-2x against its region, frame
rates 24/25/30/50/60 on both sides, trims at both ends, grades, noise, heavy
compression, static shots (generated) and duplicated frames (Big Buck Bunny),
and the long 1080p cases the performance targets are stated for.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One pair to run: ``source`` and ``params`` are what `footage.build` makes it from."""

    name: str
    source: str  # "samples" (vidkompy.samples.make_pair), "synthetic" (generated frames, cut here) or a clip
    covers: str  # what it is there to test, for the table
    params: dict = field(default_factory=dict)
    quick: bool = False  # part of --quick
    long: bool = False  # a long case: the performance targets apply


SMALL = {"bg_size": (640, 360), "seconds": 4.0}

CASES: tuple[Case, ...] = (
    Case("crop-center", "samples", "plain crop, 25->30 fps, trims", quick=True,
         params={**SMALL, "bg_fps": 25, "region": (200, 96, 320, 180), "fg_fps": 30, "trim": (0.4, 0.4)}),
    Case("crop-corner", "samples", "crop at (0,0), 30->24 fps",
         params={**SMALL, "bg_fps": 30, "region": (0, 0, 320, 180), "fg_fps": 24, "trim": (0.5, 0.3)}),
    Case("crop-odd", "samples", "odd offset, 50->25 fps",
         params={**SMALL, "seconds": 3.0, "bg_fps": 50, "region": (301, 157, 256, 144), "fg_fps": 25,
                 "trim": (0.3, 0.6)}),
    Case("band-width", "samples", "full-width band, 24->60 fps",
         params={**SMALL, "bg_fps": 24, "region": (0, 120, 640, 128), "fg_fps": 60, "trim": (0.2, 0.2)}),
    Case("band-height", "samples", "full-height band, 60->30 fps",
         params={**SMALL, "seconds": 3.0, "bg_fps": 60, "region": (224, 0, 192, 360), "fg_fps": 30,
                 "trim": (0.4, 0.4)}),
    Case("scale-0.5", "samples", "fg at 0.5x its region, 25->30 fps",
         params={**SMALL, "bg_fps": 25, "region": (160, 80, 320, 180), "fg_size": (160, 90), "fg_fps": 30}),
    Case("scale-2", "samples", "fg at 2x its region, 30->25 fps", quick=True,
         params={**SMALL, "bg_fps": 30, "region": (240, 136, 160, 90), "fg_size": (320, 180), "fg_fps": 25}),
    Case("scale-1.5-lanczos", "synthetic", "fg at 1.5x (Lanczos), 25->50 fps",
         params={**SMALL, "bg_fps": 25, "region": (128, 72, 256, 144), "fg_size": (384, 216), "fg_fps": 50,
                 "trim": (0.3, 0.3), "interpolation": "LANCZOS"}),
    Case("grade-bright", "samples", "gain 1.25 offset +18, 25->30 fps",
         params={**SMALL, "bg_fps": 25, "region": (180, 60, 320, 180), "fg_fps": 30, "grade": (1.25, 18.0)}),
    Case("grade-flat", "samples", "gain 0.7 offset +10 (low contrast), 30->25 fps",
         params={**SMALL, "bg_fps": 30, "region": (64, 150, 320, 180), "fg_fps": 25, "grade": (0.7, 10.0)}),
    Case("noise", "synthetic", "Gaussian noise sigma 8 on fg, 25->30 fps",
         params={**SMALL, "bg_fps": 25, "region": (240, 100, 320, 180), "fg_fps": 30, "trim": (0.4, 0.4),
                 "noise": 8.0}),
    Case("crf-40", "samples", "fg at crf 40, bg crf 23, 30->25 fps",
         params={**SMALL, "bg_fps": 30, "region": (120, 120, 320, 180), "fg_fps": 25, "fg_crf": 40, "bg_crf": 23}),
    Case("static-start", "samples", "30 static bg frames at the start, fg starts inside them",
         params={**SMALL, "seconds": 5.0, "bg_fps": 25, "region": (200, 96, 320, 180), "fg_fps": 30,
                 "trim": (0.2, 0.4), "static": 30}),
    Case("trim-deep", "samples", "1.2 s / 1.6 s cut from fg's ends, 30->60 fps",
         params={**SMALL, "seconds": 5.0, "bg_fps": 30, "region": (200, 96, 320, 180), "fg_fps": 60,
                 "trim": (1.2, 1.6)}),
    Case("bbb-crop", "bigbuckbunny.mp4", "real 720p, duplicated frames, 25->30 fps, audio", quick=True,
         params={"region": (320, 180, 640, 360), "fg_fps": 30, "trim": (0.3, 0.3), "fg_crf": 23, "audio": True}),
    Case("bbb-scaled-noise", "bigbuckbunny.mp4", "real 720p, fg 1.5x + noise 4, crf 30, 25->24 fps",
         params={"region": (400, 200, 480, 272), "fg_size": (720, 408), "fg_fps": 24, "trim": (0.2, 0.5),
                 "noise": 4.0, "fg_crf": 30}),
    Case("bikes-band", "bikes.mp4", "real, full-width band, graded, scene cuts, 25->30 fps",
         params={"region": (0, 48, 640, 176), "fg_fps": 30, "trim": (0.5, 0.5), "grade": (1.15, -8.0)}),
    Case("bikes-crf-40", "bikes.mp4", "real, fg crf 40, 25->50 fps",
         params={"region": (160, 40, 320, 192), "fg_fps": 50, "trim": (1.0, 0.5), "fg_crf": 40}),
    Case("bikes-half", "bikes.mp4", "real, fg 0.5x (area), 25->60 fps",
         params={"region": (100, 20, 400, 224), "fg_size": (200, 112), "fg_fps": 60, "trim": (0.4, 0.4),
                 "interpolation": "AREA"}),
    Case("carphone", "carphone_pristine.mp4", "real QCIF 176x144, 29.97->25 fps",
         params={"region": (32, 24, 112, 96), "fg_fps": 25, "trim": (0.2, 0.2)}),
    Case("long-30s", "samples", "30 s 1080p25 bg, 900 frames of a 720p30 crop", long=True,
         params={"bg_size": (1920, 1080), "bg_fps": 25, "seconds": 30.0, "region": (320, 180, 1280, 720),
                 "fg_fps": 30, "trim": (0.0, 0.0), "bg_crf": 20, "fg_crf": 22}),
    Case("long-60s", "samples", "the same at 60 s: peak RSS should stay flat", long=True,
         params={"bg_size": (1920, 1080), "bg_fps": 25, "seconds": 60.0, "region": (320, 180, 1280, 720),
                 "fg_fps": 30, "trim": (0.0, 0.0), "bg_crf": 20, "fg_crf": 22}),
)

# The small pair on which the CLI's fixed cost is measured, with and without a Prefect server.
CLI_CASE = "crop-center"
# The pair whose length doubles, to check that peak memory does not grow with it.
LENGTH_PAIR = ("long-30s", "long-60s")


def select(names: str | None, quick: bool) -> list[Case]:
    """Cases by comma-separated name (in the order given), the --quick subset, or all."""
    if names:
        by_name = {c.name: c for c in CASES}
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        return [by_name[n] for n in wanted]
    return [c for c in CASES if c.quick] if quick else list(CASES)
