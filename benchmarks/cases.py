"""The benchmark cases: each a recipe for a pair with exact truth and what it is there to cover.

Between them they cover crops at several offsets (corner, odd, centre),
full-width and full-height bands, fg scaled 0.5-2x against its region, frame
rates 24/25/30/50/60 on both sides, trims at both ends, grades, noise, heavy
compression, static shots (generated) and duplicated frames (Big Buck Bunny),
real-world edits cut from the real clips (a recut that leaves bg out, an
inserted shot with no counterpart in bg, a 24 -> 25 speed-up, pillarbox bars),
and the long 1080p cases the performance targets are stated for. The length
cases (opt-in: ``--length`` or by name) run 1, 2, 10 and 20 minutes of one
1080p sequence of scenes and two hours of it at a small size.
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
    length: bool = False  # a length case: opt-in (--length), minutes to hours of `longfootage`
    rerun: bool = True  # also the cached re-run with --border 3 --blend
    compose: bool = True  # False: `vidkompy.align` only (no video written, no output PSNR)
    minutes: float = 0.0  # the case's run time on the 2-core build machine, when known, for --list


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
    # Real-world material (vidkompy 0.2): what a release does to the footage it was cut from.
    # bikes' shots: source frames 0-29, 30-75, 76-136, 137-190, 191-242, 243-249.
    Case("bikes-recut", "bikes.mp4", "real, fg leaves out 1 s of bg mid-shot (91-115): one jump, 25->30 fps",
         params={"region": (176, 28, 384, 216), "fg_fps": 30, "play": [["bg", 12, 90], ["bg", 116, 232]]}),
    Case("bbb-inserted", "bigbuckbunny.mp4", "real 720p, 1 s of bikes inserted after bg frame 55 (unmatched), "
         "25->30 fps",
         params={"region": (320, 180, 640, 360), "fg_fps": 30, "fg_crf": 23,
                 "play": [["bg", 8, 55], ["bikes.mp4", 140, 164, [78, 0, 484, 272]], ["bg", 56, 124]]}),
    Case("bikes-speedup", "bikes.mp4", "real, PAL speed-up: bg re-timed to 24 fps, fg plays its frames 1:1 at 25",
         params={"region": (96, 40, 448, 192), "bg_fps": 24, "fg_fps": 25, "one_to_one": True,
                 "play": [["bg", 12, 235]]}),
    Case("bbb-letterbox", "bigbuckbunny.mp4", "real 720p, a 4:3 crop at 0.75x pillarboxed to 16:9 (60 px bars), "
         "25->30 fps",
         params={"region": (400, 180, 480, 360), "fg_size": (360, 270), "bars": (60, 0, 60, 0), "fg_fps": 30,
                 "trim": (0.3, 0.3)}),
    Case("long-30s", "samples", "30 s 1080p25 bg, 900 frames of a 720p30 crop", long=True,
         params={"bg_size": (1920, 1080), "bg_fps": 25, "seconds": 30.0, "region": (320, 180, 1280, 720),
                 "fg_fps": 30, "trim": (0.0, 0.0), "bg_crf": 20, "fg_crf": 22}),
    Case("long-60s", "samples", "the same at 60 s: peak RSS should stay flat", long=True,
         params={"bg_size": (1920, 1080), "bg_fps": 25, "seconds": 60.0, "region": (320, 180, 1280, 720),
                 "fg_fps": 30, "trim": (0.0, 0.0), "bg_crf": 20, "fg_crf": 22}),
)

# The length cases: the first N minutes of one seeded sequence of scenes (`longfootage`), at the
# long cases' recipe (1080p25 bg, a 720p crop at (320, 180) re-timed to 30 fps, bg crf 20, fg crf 22,
# fg with an AAC tone), and two hours of it at a fifth of the size so that decoding stays cheap.
LONG_1080 = {"bg_size": (1920, 1080), "bg_fps": 25, "region": (320, 180, 1280, 720), "fg_fps": 30, "bg_crf": 20,
             "fg_crf": 22, "audio": True, "seed": 0}
LONG_SMALL = {**LONG_1080, "bg_size": (384, 216), "region": (64, 36, 256, 144)}


def _length(minutes: int, covers: str, run_minutes: float) -> Case:
    return Case(f"length-{minutes}m", "long", covers, params={**LONG_1080, "seconds": 60.0 * minutes}, long=True,
                length=True, rerun=False, minutes=run_minutes)


LENGTH_CASES: tuple[Case, ...] = (
    _length(1, "1 min of 1080p25 scenes, 1800 fg frames of a 720p30 crop: the per-frame base", 3),
    _length(2, "the same footage, first 2 min: the RSS base", 5),
    _length(10, "the same footage, first 10 min", 25),
    _length(20, "the same footage, 20 min: per-frame seconds and RSS against 1 and 2 min", 50),
    Case("length-2h", "long", "2 h of the same kind of scenes at 384x216 (fg 256x144 at (64, 36)), 216000 fg frames",
         params={**LONG_SMALL, "seconds": 7200.0}, long=True, length=True, rerun=False, minutes=45),
)

ALL_CASES = CASES + LENGTH_CASES

# The small pair on which the CLI's fixed cost is measured, with and without a Prefect server.
CLI_CASE = "crop-center"
# The pair whose length doubles, to check that peak memory does not grow with it.
LENGTH_PAIR = ("long-30s", "long-60s")
# Peak RSS from 2 to 20 minutes of the same footage; per-frame seconds of each stage from 1 to 20.
RSS_PAIR = ("length-2m", "length-20m")
RATE_PAIR = ("length-1m", "length-20m")
# The pair the 2-hour 1080p projection is made from when it was run (else the longest 1080p case run).
PROJECTION_CASE = "length-20m"
# Two hours of fg at 30 fps over two hours of bg at 25 fps, as the length cases are cut.
PROJECTION_FG_FRAMES = 2 * 3600 * 30
PROJECTION_BG_FRAMES = 2 * 3600 * 25


def select(names: str | None, quick: bool, length: bool = False) -> list[Case]:
    """Cases by comma-separated name (in the order given), the --quick subset, the --length cases, or all
    the default ones (the length cases only by name or with --length)."""
    if names:
        by_name = {c.name: c for c in ALL_CASES}
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        return [by_name[n] for n in wanted]
    if length:
        return list(LENGTH_CASES)
    return [c for c in CASES if c.quick] if quick else list(CASES)
