"""A placement that moves: fg frames found at other places than the one the run located.

One located region holds for most material, and the fixed path (locate, embed,
DTW, the sub-pixel fit, the frame match) is kept exactly as it is. What it
leaves unplaced (frames with no counterpart at the fixed placement, or a poor
one) is searched again here, stretch by stretch: a pan & scan master reframes
at every cut and pans within shots, so its frames have counterparts, elsewhere
in the picture.

1. ``SAMPLE_STEP``-spaced fg frames of each unplaced run are searched by NCC in
   bg's pictures between the run's placed neighbours (the map is monotonic, so
   nothing outside them can be the answer), each on its own: no vote, since
   their positions differ by design.
2. Each sample is refined to the working pixel over neighbouring bg frames and
   fitted to the sub-pixel (x, y, scale: `vidkompy.alignment.fit`), its scale
   searched around its predecessor's, which follows a zoom.
3. Consecutive samples that sit on one line in (x, y, scale) and in bg time form
   a stretch: constant (a still shot, refitted jointly over its pairs) or
   linear (a pan or zoom, a line through its samples' fits). A cut between two
   stretches falls where fg's picture changes most between their samples.
4. Each frame of a stretch is then matched against bg frames within a few of the
   stretch's time line, at its own placement, and the whole map is chosen again
   by the same DTW as the fixed path (`vidkompy.alignment.frame_match`).

A stretch is taken only where its frames match clearly better than they did at
the fixed placement; samples that match only at scattered places (footage
unrelated to bg) make no stretch and stay unmatched, and `Placements.scattered`
counts them so the refusal can say why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vidkompy.alignment.fit import FitPair, fit_geometry
from vidkompy.alignment.frame_match import FrameMatch, final_match
from vidkompy.alignment.locate import COARSE_WIDTH, Pictures, template
from vidkompy.alignment.monotonic import Band
from vidkompy.alignment.ncc import ncc_map
from vidkompy.alignment.region import bg_on_grid, comparison_grid, fg_on_grid, normalised
from vidkompy.alignment.source import Video, read_frames
from vidkompy.models import SCATTERED_SHARE, Fit, Geometry, runs

SAMPLE_STEP = 10  # fg frames between the samples of an unplaced run
MIN_RUN = 3  # an unplaced run shorter than this is left as the frame match found it
MAX_PICTURES = 600  # bg pictures of one run's coarse search (a constant cost per run)
TEMPLATE_BATCH = 64  # samples searched at once
SCALE_STEPS = (-0.045, -0.03, -0.015, 0.0, 0.015, 0.03, 0.045)  # around the previous sample's scale, after a cut
ON_TRACK = 0.9  # NCC at which a sample is taken where the samples before it lead, without a search
LINE_PX = 0.75  # bg pixels: a sample this far from its stretch's line starts a new one
# ... once the samples sit on their exact frames (`_refit`): a zoom is not linear in x, y (the region's corner moves
# as 1 / scale), so a long one is split where its line strays more than this
TIGHT_PX = 0.3
LINE_FRAMES = 2.5  # bg frames: the same for the stretch's time line
STILL_PX = 0.5  # a stretch whose line moves less than this end to end is a still shot (its mean errs by 0.25 at most)
MIN_SAMPLE_NCC = 0.6  # a sample below this matched nowhere
GAIN = 0.02  # a stretch is taken where its median NCC beats the fixed placement's by this much
MOVED_PX = 1.0  # ... and its placement differs from the fixed one by more than this somewhere
TIME_JUMP = 1.5  # log(1 - NCC) units: a step off bg's clock between two samples
SKIP = -1.0  # a sample taken as matching nowhere (an NCC of 0.63)
REFIT_ROUNDS = 2  # fits of the stretches on the frame match's exact frames, at most
REMATCH_PX = 0.5  # a refit that moves a stretch's corners more than this matches its frames again
# working pixels (full pixels per working pixel) above which a still shot is polished on full-size pairs: at 2 and
# below, the working copies placed the benchmark's shots within 0.06 px, and each full-size pair costs a seek
FULL_SIZE_FROM = 2.5
DRIFTING = 3  # fit windows drifting off the fixed geometry (`Fit.drifting`) that make every frame searched
BAND = 2  # bg frames either side of a stretch's time line that its frames are matched against
OUTLIER_PX = 3.0  # bg pixels: a sample this far off its stretch's line, and the next back near it, is an outlier
SHORT_GROUP = 2  # samples: a group this short between two on one line is dropped as outliers
CLOCK_WINDOW = 5  # samples whose median offset from bg's clock puts a sample back on it
CLOCK_BREAK = 3.0  # bg frames: a larger change of that offset is a recut
CLOCK_DRIFT = 0.05  # how far (a share of the step) bg's clock may drift between samples at no cost
ROWS = 48  # rows matched at once (their bg pictures are the peak memory)


@dataclass(frozen=True)
class Sample:
    row: int  # fg frame
    bg: int  # best bg frame
    geometry: Geometry
    ncc: float


@dataclass(frozen=True)
class Stretch:
    """fg rows ``first..last`` at a placement that is constant or moves linearly, and their time line."""

    first: int
    last: int
    origin: Geometry  # the placement at row ``first``
    velocity: tuple[float, float, float]  # per fg frame: dx, dy, dscale (zeros: a still shot)
    time: tuple[float, float]  # bg frame = time[0] + time[1] * (row - first)

    @property
    def tracked(self) -> bool:
        return any(v != 0.0 for v in self.velocity)

    def at(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), 3) placements [x, y, scale]."""
        d = np.asarray(rows, np.float64) - self.first
        o, v = self.origin, self.velocity
        return np.stack([o.x + v[0] * d, o.y + v[1] * d, o.scale + v[2] * d], axis=1)

    def bg_index(self, rows: np.ndarray) -> np.ndarray:
        return self.time[0] + self.time[1] * (np.asarray(rows, np.float64) - self.first)


@dataclass(frozen=True)
class Placements:
    """What the moving search decided: per fg frame [x, y, scale], and the frame match at those places."""

    mode: str  # "per shot" (still shots at several places), "tracked" (some stretch moves), or "fixed"
    per_frame: np.ndarray | None  # (n_fg, 3) float64, NaN where unmatched; None: the fixed placement stands
    stretches: tuple[Stretch, ...]
    match: FrameMatch | None  # the frame match at those placements (None where the fixed placement stands)
    scattered: int  # samples that matched somewhere but on no stretch
    searched: int  # samples searched

    @property
    def moves(self) -> bool:
        return self.match is not None


# Reads full-size gray frames: (bg indices, fg indices) -> ({i: frame}, {j: frame}); see `spatial.FullFrameReader`
FullFrameReader = Callable[[Sequence[int], Sequence[int]], tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]


def unplaced_runs(match: FrameMatch, min_run: int = MIN_RUN) -> list[tuple[int, int]]:
    """Runs of fg frames the fixed placement leaves unmatched, or matched far below the pair's typical NCC."""
    good = match.score[match.matched]
    if not len(good):
        return [(0, len(match.frames) - 1)] if len(match.frames) >= min_run else []
    typical = float(np.quantile(good, 0.9))
    weak = max(min(0.85 * typical, typical - 0.1), MIN_SAMPLE_NCC)
    return runs(~match.matched | (match.score < weak), min_run)


def _bounds(match: FrameMatch, weak: np.ndarray, a: int, b: int, n_bg: int) -> tuple[int, int]:
    """bg frames a run may reach: between its placed neighbours (the map is monotonic)."""
    placed = match.matched & ~weak
    before = np.flatnonzero(placed[:a])
    after = np.flatnonzero(placed[b + 1 :])
    lo = int(match.frames[before[-1]]) if len(before) else 0
    hi = int(match.frames[b + 1 + after[0]]) if len(after) else n_bg - 1
    return max(0, lo - 2), min(n_bg - 1, max(hi, lo) + 2)


@dataclass
class _Coarse:
    """One sample's coarse search: its own best place, and its NCC there in every searched bg picture."""

    row: int
    x: float  # bg full pixels
    y: float
    ncc: float
    profile: np.ndarray  # (pictures,) best NCC anywhere in each picture


def _coarse(bg: Video, fg: Video, rows: np.ndarray, scale: float, lo: int, hi: int
            ) -> tuple[np.ndarray, list[_Coarse]]:
    """Each sample's own best place among bg pictures ``lo..hi`` at ``scale``, and its time profile there.

    The place alone is not enough: during a camera move a fg frame matches wrong-time
    bg pictures at a slightly shifted place about as well (0.99 against 0.995 NCC on
    Big Buck Bunny), so the frame is chosen later, for all samples at once (`_times`).
    Returns the pictures' bg frame indices and the samples that fit inside bg.
    """
    shrink = max(1.0, bg.frames.shape[2] / COARSE_WIDTH)
    # every picture up to MAX_PICTURES: every 2nd left the clock (`_on_clock`) a frame off on a third of the
    # samples of a 30 fps fg over 25 fps bg, and a wrong frame's fit strays half a pixel where the camera moves
    stride = max(1, math.ceil((hi - lo + 1) / MAX_PICTURES))
    pictures = Pictures(bg.frames, np.arange(lo, hi + 1, stride), shrink)
    ch, cw = pictures.images.shape[1:]
    coarse_factor = (bg.size[0] / cw, bg.size[1] / ch)
    out = []
    # templates a batch at a time: a long run's samples would otherwise all be held at once (each batch
    # searches the pictures once; what stays per sample is its place and its profile)
    for b0 in range(0, len(rows), TEMPLATE_BATCH):
        templates, kept = [], []
        for r in rows[b0 : b0 + TEMPLATE_BATCH]:
            t = template(np.asarray(fg.frames[int(r)]), fg.factor, fg.size, coarse_factor, scale)
            if t is not None and t.shape[0] <= ch and t.shape[1] <= cw:
                templates.append(t)
                kept.append(int(r))
        profiles: list[np.ndarray] = []
        best = pictures.best_of(templates, profiles=profiles) if templates else []
        for r, (m, _), profile in zip(kept, best, profiles, strict=True):
            py, px = np.unravel_index(int(np.argmax(m)), m.shape)
            out.append(_Coarse(r, px * coarse_factor[0], py * coarse_factor[1], float(m[py, px]), profile))
    return pictures.indices, out


def _times(found: list[_Coarse], frames: np.ndarray, ratio: float) -> list[float | None]:
    """Each sample's bg frame: the best path through the samples' time profiles (None: the sample matched nowhere).

    A path follows bg's clock from sample to sample (a step of ``ratio`` frames per fg
    frame, give or take a picture and `CLOCK_DRIFT`) at no cost; any other step forward costs `TIME_JUMP`
    (a cut in time, rarer than a frame's doubt); a step back is not allowed (the map is
    monotonic). A sample may be skipped at `SKIP` (it matched nowhere). Costs are
    log(1 - NCC), as in the frame match.
    """
    n = len(found)
    if not n:
        return []
    cands = []
    for c in found:
        idx = np.flatnonzero(c.profile >= MIN_SAMPLE_NCC)
        cands.append((frames[idx].astype(np.float64), np.log1p(-np.clip(c.profile[idx], -0.999, 0.99995))))
    step = float(frames[1] - frames[0]) if len(frames) > 1 else 1.0
    cost = [np.append(c[1], SKIP) for c in cands]  # the last state of each sample: skipped
    back: list[np.ndarray] = []
    last_frame = [np.append(c[0], np.nan) for c in cands]
    total = cost[0].copy()
    carried = [last_frame[0].copy()]  # per state: the frame of the last sample not skipped on its best path
    rows = [c.row for c in found]
    last_row = [np.full(len(total), rows[0], np.float64)]
    for k in range(1, n):
        prev_frame, prev_row = carried[-1], last_row[-1]
        cur = last_frame[k]
        expected = prev_frame[None, :] + ratio * (rows[k] - prev_row[None, :])
        d = cur[:, None] - expected
        tol = step + CLOCK_DRIFT * ratio * (rows[k] - prev_row[None, :])
        trans = np.where(np.abs(d) <= tol, 0.0, np.where(cur[:, None] >= prev_frame[None, :] - step, TIME_JUMP,
                                                                np.inf))
        trans = np.where(np.isnan(prev_frame)[None, :], 0.0, trans)  # nothing placed yet: any frame
        trans[-1, :] = 0.0  # skipping costs SKIP whatever came before
        options = total[None, :] + trans
        arg = np.argmin(options, axis=1)
        total = options[np.arange(len(cur)), arg] + cost[k]
        back.append(arg)
        frame_now = np.where(np.isnan(cur), prev_frame[arg], cur)
        row_now = np.where(np.isnan(cur), prev_row[arg], rows[k])
        carried.append(frame_now)
        last_row.append(row_now)
    state = int(np.argmin(total))
    chosen: list[float | None] = [None] * n
    for k in range(n - 1, -1, -1):
        f = last_frame[k][state]
        chosen[k] = None if np.isnan(f) else _between(found[k].profile, frames, int(f))
        if k:
            state = int(back[k - 1][state])
    return chosen


def _between(profile: np.ndarray, frames: np.ndarray, frame: int) -> float:
    """The profile's peak near ``frame`` between the searched pictures: the vertex of a parabola through the
    picture and its neighbours (pictures are every 2nd frame or sparser, the clock needs better)."""
    k = int(np.searchsorted(frames, frame))
    if k <= 0 or k >= len(frames) - 1:
        return float(frame)
    a, b, c = (float(v) for v in profile[k - 1 : k + 2])
    d = a - 2 * b + c
    shift = 0.0 if d >= -1e-9 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))
    return float(frames[k]) + shift * float(frames[k + 1] - frames[k])


def _whole_pixel(bg: Video, fg: Video, row: int, near: np.ndarray, pictures: np.ndarray, start: Geometry,
                 scales: Sequence[float]) -> tuple[float, Geometry, int] | None:
    """The best whole working pixel and bg frame (of ``near``) around ``start``, at each of ``scales``."""
    bg_h, bg_w = bg.frames.shape[1:]
    fg_img = np.asarray(fg.frames[row])
    radius = int(math.ceil(max(1.0, bg_w / COARSE_WIDTH))) + 2
    best: tuple[float, Geometry, int] | None = None
    for scale in scales:
        t = template(fg_img, fg.factor, fg.size, bg.factor, scale)
        if t is None:
            continue
        th, tw = t.shape
        # keep the region's centre where the start put it, whatever the scale tried
        cx = start.x + 0.5 * fg.size[0] / start.scale - 0.5 * fg.size[0] / scale
        cy = start.y + 0.5 * fg.size[1] / start.scale - 0.5 * fg.size[1] / scale
        x0 = int(np.clip(round(cx / bg.factor[0]) - radius, 0, max(0, bg_w - tw)))
        y0 = int(np.clip(round(cy / bg.factor[1]) - radius, 0, max(0, bg_h - th)))
        x1, y1 = min(bg_w, x0 + tw + 2 * radius), min(bg_h, y0 + th + 2 * radius)
        if x1 - x0 < tw or y1 - y0 < th:
            continue
        m = ncc_map(pictures[:, y0:y1, x0:x1], t)
        k, py, px = np.unravel_index(int(np.argmax(m)), m.shape)
        if best is None or m[k, py, px] > best[0]:
            best = (float(m[k, py, px]), Geometry((x0 + px) * bg.factor[0], (y0 + py) * bg.factor[1], scale),
                    int(near[k]))
    return best


def _sample(bg: Video, fg: Video, row: int, j: int, coarse: Geometry, before: list[Sample], softness: float
            ) -> Sample | None:
    """One sample to the sub-pixel: the whole pixel near the track of the two samples before it (a shot goes on)
    or, where that matches worse than they did (a cut), near its coarse place with a few scales; then the fit of
    this one pair."""
    # the clock's frame only: a neighbour matches a camera move's shifted place almost as well (`_on_clock`)
    near = np.array([j])
    pictures = read_frames(bg.frames, near).astype(np.float32)
    track = _extrapolate(before, row) if before else None
    best = None if track is None else _whole_pixel(bg, fg, row, near, pictures, track, [track.scale])
    if best is None or len(before) < 2 or best[0] < max(ON_TRACK, before[-1].ncc - 0.05):
        scale = coarse.scale if track is None else track.scale
        other = _whole_pixel(bg, fg, row, near, pictures, coarse, [scale * (1 + d) for d in SCALE_STEPS])
        if other is not None and (best is None or other[0] > best[0]):
            best = other
    if best is None:
        return None
    score, g, jj = best
    pair = FitPair(np.asarray(fg.frames[row]), fg.factor, pictures[jj - near[0]], bg.factor, softness)
    fitted = fit_geometry([pair], g, levels=1)  # from the whole working pixel: the finest level reaches it
    if max(abs(fitted.x - g.x), abs(fitted.y - g.y)) > 3 * max(bg.factor) or abs(fitted.scale / g.scale - 1) > 0.05:
        fitted = g  # the fit ran off: keep the whole-pixel answer
    return Sample(row, jj, fitted, score)


def _on_clock(rows: list[int], frames: list[float | None], ratio: float) -> list[int | None]:
    """The samples' bg frames put back on bg's clock: each stretch of samples shares one offset.

    A camera move makes a wrong-time bg frame match at a shifted place almost as well
    as the right one (`_coarse`), and a coarse time profile cannot always tell them
    apart; but fg's frames follow bg's clock, so a sample's frame is its stretch's
    offset plus ``ratio`` frames per fg frame. The offset is the running median over
    `CLOCK_WINDOW` samples; where it moves by more than `CLOCK_BREAK` frames fg was
    recut, and a new stretch of time begins.
    """
    placed = [(r, f) for r, f in zip(rows, frames, strict=True) if f is not None]
    if not placed:
        return [None] * len(frames)
    offsets = np.array([f - ratio * r for r, f in placed])
    half = CLOCK_WINDOW // 2
    smooth = np.array([np.median(offsets[max(0, k - half) : k + half + 1]) for k in range(len(offsets))])
    pieces = np.r_[0, np.cumsum(np.abs(np.diff(smooth)) > CLOCK_BREAK)]
    level = {int(p): float(np.median(smooth[pieces == p])) for p in np.unique(pieces)}
    out: list[int | None] = []
    k = 0
    for r, f in zip(rows, frames, strict=True):
        if f is None:
            out.append(None)
            continue
        out.append(max(0, int(round(level[int(pieces[k])] + ratio * r))))
        k += 1
    return out


def _corner_gap(a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The largest distance between the regions' corners, bg pixels (folds a scale difference in)."""
    w, h = size
    dx0, dy0 = np.abs(a[..., 0] - b[..., 0]), np.abs(a[..., 1] - b[..., 1])
    dx1 = np.abs(a[..., 0] + w / a[..., 2] - b[..., 0] - w / b[..., 2])
    dy1 = np.abs(a[..., 1] + h / a[..., 2] - b[..., 1] - h / b[..., 2])
    return np.maximum(np.hypot(dx0, dy0), np.hypot(dx1, dy1))


def _line(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares lines through the samples: placement (3,) at row 0 and per row, bg frame likewise."""
    r = np.array([s.row for s in samples], np.float64)
    p = np.array([[s.geometry.x, s.geometry.y, s.geometry.scale] for s in samples])
    j = np.array([s.bg for s in samples], np.float64)
    if len(samples) == 1:
        return p[0] - 0.0, np.zeros(3), np.array([j[0] - r[0] * 1.0]), np.array([1.0])
    a = np.stack([np.ones_like(r), r], axis=1)
    cp, *_ = np.linalg.lstsq(a, p, rcond=None)
    cj, *_ = np.linalg.lstsq(a, j, rcond=None)
    return cp[0], cp[1], cj[:1], cj[1:]


def _fits_line(samples: list[Sample], fg_size: tuple[int, int], ratio: float, tol: float = LINE_PX) -> bool:
    if len(samples) < 2:
        return True
    p0, dp, j0, dj = _line(samples)
    r = np.array([s.row for s in samples], np.float64)
    p = np.array([[s.geometry.x, s.geometry.y, s.geometry.scale] for s in samples])
    j = np.array([s.bg for s in samples], np.float64)
    on = _corner_gap(p, p0[None] + r[:, None] * dp[None], fg_size) <= tol
    in_time = np.abs(j - (j0 + dj * r)) <= LINE_FRAMES
    return bool(on.all() and in_time.all() and 0.5 * ratio <= float(dj[0]) <= 2.0 * ratio + 0.5)


def _extrapolate(last: list[Sample], row: int) -> Geometry:
    """Where the track of the last one or two samples puts ``row``."""
    if len(last) < 2 or last[-1].row == last[0].row:
        return last[-1].geometry
    a, b = np.array(_xy(last[0].geometry)), np.array(_xy(last[-1].geometry))
    p = b + (b - a) * (row - last[-1].row) / (last[-1].row - last[0].row)
    return Geometry(float(p[0]), float(p[1]), float(p[2]))


def _off_line(members: list[Sample], s: Sample, fg_size: tuple[int, int]) -> float:
    """How far (corner gap, bg pixels) sample ``s`` lies from the line through ``members``."""
    p0, dp, _, _ = _line(members)
    return float(_corner_gap(np.array(_xy(s.geometry)), p0 + dp * s.row, fg_size))


def group(samples: list[Sample], fg_size: tuple[int, int], ratio: float, tol: float = LINE_PX
          ) -> tuple[list[list[Sample]], int]:
    """Consecutive samples on one line in placement and time, greedily in row order; and the outliers dropped.

    A sample off its stretch's line while the next one is back on it is an outlier
    (a doubtful frame, a fit that ran off), not the start of a new stretch.
    """
    out: list[list[Sample]] = []
    dropped = 0
    k = 0
    while k < len(samples):
        s = samples[k]
        if out and _fits_line([*out[-1], s], fg_size, ratio, tol):
            out[-1].append(s)
        elif out and k + 1 < len(samples) and len(out[-1]) >= 2 and \
                _off_line(out[-1], s, fg_size) > OUTLIER_PX and \
                _off_line(out[-1], samples[k + 1], fg_size) < _off_line(out[-1], s, fg_size) / 4:
            dropped += 1
        else:
            out.append([s])
        k += 1
    # a short group between two that lie on one line is a run of outliers inside one stretch
    k = 1
    while k < len(out) - 1:
        if len(out[k]) <= SHORT_GROUP and _fits_line(out[k - 1] + out[k + 1], fg_size, ratio, tol):
            dropped += len(out[k])
            out[k - 1 : k + 2] = [out[k - 1] + out[k + 1]]
        else:
            k += 1
    return out, dropped


def _cut(fg: Video, a: int, b: int) -> int:
    """The first row of the later shot: where fg's picture changes most between rows ``a`` and ``b``."""
    if b - a <= 1:
        return b
    pics = read_frames(fg.frames, np.arange(a, b + 1)).astype(np.float32)
    change = np.abs(np.diff(pics, axis=0)).mean(axis=(1, 2))
    return a + 1 + int(np.argmax(change))


def _stretch(members: list[Sample], first: int, last: int, fg_size: tuple[int, int]) -> Stretch:
    p0, dp, j0, dj = _line(members)
    start = p0 + dp * first
    moves = float(_corner_gap(start[None], (p0 + dp * last)[None], fg_size)[0])
    if len(members) < 2 or moves < STILL_PX:
        mean = np.array([[s.geometry.x, s.geometry.y, s.geometry.scale] for s in members]).mean(axis=0)
        start, dp = mean, np.zeros(3)
    return Stretch(first, last, Geometry(*map(float, start)), tuple(map(float, dp)),  # type: ignore[arg-type]
                   (float(j0[0] + dj[0] * first), float(dj[0])))


def _polish(stretch: Stretch, members: list[Sample], bg: Video, fg: Video, softness: float,
            read_full: FullFrameReader | None) -> Stretch:
    """A still shot's one placement fitted jointly over its pairs (full size when the working copies are smaller)."""
    if stretch.tracked:
        return stretch
    chosen = [members[int(round(k))] for k in np.linspace(0, len(members) - 1, min(4, len(members)))]
    if read_full is not None and max(*bg.factor, *fg.factor) > FULL_SIZE_FROM:
        chosen = chosen[:: max(1, len(chosen) // 2)][:2]  # each pair read costs a seek and a GOP of decoding
        bg_full, fg_full = read_full([s.bg for s in chosen], [s.row for s in chosen])
        pairs = [FitPair(fg_full[s.row], (1.0, 1.0), bg_full[s.bg], (1.0, 1.0), softness * max(bg.factor))
                 for s in chosen if s.row in fg_full and s.bg in bg_full]
        levels, finest = 2, 1
    else:
        pairs = [FitPair(np.asarray(fg.frames[s.row]), fg.factor, np.asarray(bg.frames[s.bg]), bg.factor, softness)
                 for s in chosen]
        levels, finest = 1, 0
    if not pairs:
        return stretch
    g = fit_geometry(pairs, stretch.origin, levels=levels, finest=finest)
    if _corner_gap(np.array([g.x, g.y, g.scale]), np.array([*_xy(stretch.origin)]), fg.size) > 2 * max(bg.factor):
        return stretch
    return Stretch(stretch.first, stretch.last, g, stretch.velocity, stretch.time)


def _xy(g: Geometry) -> tuple[float, float, float]:
    return g.x, g.y, g.scale


def _match_rows(bg: Video, fg: Video, softness: float, rows: np.ndarray, place: np.ndarray, band: Band
                ) -> np.ndarray:
    """NCC of each band cell of ``rows`` (band row k is fg row rows[k]) at that row's own placement.

    Pictures are read a window of `ROWS` rows at a time (a store read decompresses a chunk of several), then
    rows of one placement (a still shot) are compared together, a moving stretch's row by row.
    """
    out = np.empty(int(band.offsets[-1]), np.float32)
    keys = [tuple(np.round(p, 6)) for p in place]
    for w0 in range(0, len(rows), ROWS):
        w1 = min(len(rows), w0 + ROWS)
        window_cells = band.cells[band.offsets[w0] : band.offsets[w1]]
        frames = np.unique(window_cells)
        bg_pics = read_frames(bg.frames, frames)
        fg_pics = read_frames(fg.frames, rows[w0:w1])
        k = w0
        while k < w1:
            stop = k + 1
            while stop < w1 and keys[stop] == keys[k]:
                stop += 1
            g = Geometry(*place[k])
            grid = comparison_grid(fg.size, fg.factor, bg.factor, g.scale)
            lo, hi = int(band.offsets[k]), int(band.offsets[stop])
            cells = band.cells[lo:hi]
            need = np.unique(cells)
            bg_grid, mask = bg_on_grid(bg_pics[np.searchsorted(frames, need)], bg.size, g, grid, blur=softness)
            fg_grid = fg_on_grid(fg_pics[k - w0 : stop - w0], fg.size, grid)
            prod = normalised(fg_grid, mask) @ normalised(bg_grid, mask).T
            local = np.repeat(np.arange(stop - k), np.diff(band.offsets[k : stop + 1]))
            out[lo:hi] = prod[local, np.searchsorted(need, cells)]
            k = stop
    return out


def _merge(band: Band, ncc: np.ndarray, rows: np.ndarray, new: Band, new_ncc: np.ndarray) -> tuple[Band, np.ndarray]:
    """``band`` with ``rows`` replaced by the rows of ``new`` (in order), and the values likewise."""
    n = len(band)
    changed = np.zeros(n, bool)
    changed[rows] = True
    old_rows = band.row_index
    keep = ~changed[old_rows]
    new_rows = rows[new.row_index]
    all_rows = np.concatenate([old_rows[keep], new_rows])
    order = np.argsort(all_rows, kind="stable")
    cells = np.concatenate([band.cells[keep], new.cells.astype(band.cells.dtype)])[order]
    values = np.concatenate([ncc[keep], new_ncc])[order]
    # within a row the cells must be ascending: both sources are, and a row comes from one of them
    offsets = np.searchsorted(all_rows[order], np.arange(n + 1)).astype(np.int64)
    return Band(offsets, cells), values.astype(np.float32)


@dataclass(frozen=True)
class FixedMatch:
    """The fixed path's frame match: its band, the NCC of every cell, and the path chosen on them."""

    band: Band
    ncc: np.ndarray
    match: FrameMatch


def follow(bg: Video, fg: Video, fit: Fit, ratio: float, fg_pts: np.ndarray | None = None,
           bg_pts: np.ndarray | None = None, *, fixed: FixedMatch | None = None, everywhere: bool = False,
           read_full: FullFrameReader | None = None) -> Placements | None:
    """The moving placement; None where no frame needed a search, and `Placements.moves` False where the search
    found no placement that beats ``fit.geometry``.

    With ``fixed`` (the fixed path's frame match) only the frames it leaves unplaced are searched (every frame,
    ``everywhere``: the fit found its pairs drifting), and a stretch is taken only where it beats the fixed
    placement; without it (locate found samples placed elsewhere) every frame is searched, and the fixed path
    runs only if that finds no placement other than the located one.
    """
    n_fg, n_bg = len(fg), len(bg)
    if everywhere:
        # the fit's softness was chosen at a compromise placement, where a blur hides the misregistration (a
        # zoom's fixed fit chose 2 grid pixels): it would blunt every comparison here
        fit = Fit(fit.geometry, 0.0, fit.drifting)
    if fixed is not None:
        match = fixed.match
        unplaced = [(0, n_fg - 1)] if everywhere else unplaced_runs(match)
        good = match.score[match.matched]
        typical = float(np.quantile(good, 0.9)) if len(good) else 0.0
        weak = ~match.matched | (match.score < max(min(0.85 * typical, typical - 0.1), MIN_SAMPLE_NCC))
        before = match.score
    else:
        unplaced = [(0, n_fg - 1)]
        before = np.zeros(n_fg, np.float32)
    if not unplaced:
        return None
    located = np.array(_xy(fit.geometry))
    found: list[tuple[Stretch, list[Sample]]] = []
    scattered = searched = 0
    for a, b in unplaced:
        lo, hi = (0, n_bg - 1) if fixed is None or everywhere else _bounds(fixed.match, weak, a, b, n_bg)
        some, lone, tried = _stretches(bg, fg, fit, ratio, a, b, lo, hi, read_full)
        found += some
        scattered += lone
        searched += tried
    stands = Placements("fixed", None, (), None, scattered, searched)
    if scattered >= max(3, SCATTERED_SHARE * searched):
        return stands  # most samples matched only at scattered places: what lines up among them is chance
    found = _on_one_clock(found, fixed, located, ratio, fg.size)
    if not found:
        return stands
    stretches = [st for st, _ in found]
    rows, band_new, ncc_new, per_frame = _rows_at(bg, fg, fit, stretches, located)
    # a stretch is taken only where it clearly beats the fixed placement and really sits elsewhere
    best_new = band_new.row_max(ncc_new)
    kept: list[tuple[Stretch, list[Sample]]] = []
    at = 0
    for st, members in found:
        k = st.last - st.first + 1
        gain = float(np.median(best_new[at : at + k])) - float(np.median(before[st.first : st.last + 1]))
        moved = float(_corner_gap(per_frame[st.first : st.last + 1], located[None], fg.size).max())
        # drifting pairs: the fixed placement is a compromise that all frames match tolerably; any gain counts
        if gain >= (0.0 if everywhere else GAIN) and (moved > MOVED_PX or fixed is None):
            kept.append((st, members))
        at += k
    if not any(float(_corner_gap(st.at(np.array([st.first, st.last])), located[None], fg.size).max()) > MOVED_PX
               for st, _ in kept):
        return stands
    base = (fixed.band, fixed.ncc) if fixed is not None else \
        (Band.contiguous(np.zeros(n_fg, np.int64), 1, n_bg), np.zeros(n_fg, np.float32))  # rows on no stretch
    if len(kept) < len(found):
        rows, band_new, ncc_new, per_frame = _rows_at(bg, fg, fit, [st for st, _ in kept], located)
    band, ncc = _merge(*base, rows, band_new, ncc_new)
    match = final_match(band, ncc, ratio, fg_pts, bg_pts)
    for _ in range(REFIT_ROUNDS):
        # the samples' bg frames came from coarse pictures; the frame match's are exact: fit the stretches again
        refitted = [_refit(st, members, match, bg, fg, fit.softness) for st, members in kept]
        change = max(float(_corner_gap(st.at(np.array([st.first, st.last])), new.at(np.array([st.first, st.last])),
                                       fg.size).max()) for (st, _), (new, _) in zip(kept, refitted, strict=True))
        kept = [part for st, members in refitted for part in _split(st, members, fg, ratio)]
        if change < REMATCH_PX:  # the frames stand: only the placements move, by a fraction of a pixel
            per_frame = _placed(kept, located, len(fg))
            break
        rows, band_new, ncc_new, per_frame = _rows_at(bg, fg, fit, [st for st, _ in kept], located)
        band, ncc = _merge(*base, rows, band_new, ncc_new)
        match = final_match(band, ncc, ratio, fg_pts, bg_pts)
    per_frame[~match.matched] = np.nan
    mode = "tracked" if any(st.tracked for st, _ in kept) else "per shot"
    return Placements(mode, per_frame, tuple(st for st, _ in kept), match, scattered, searched)


def _split(st: Stretch, members: list[Sample], fg: Video, ratio: float) -> list[tuple[Stretch, list[Sample]]]:
    """A stretch whose samples (on their exact frames) stray from one line by more than `TIGHT_PX`, as several."""
    if not st.tracked or len(members) < 4:
        return [(st, members)]
    parts, _ = group(members, fg.size, ratio, TIGHT_PX)
    parts = [p for p in parts if p]
    if len(parts) < 2:
        return [(st, members)]
    edges = [st.first] + [_meet(a, b, fg.size) for a, b in zip(parts, parts[1:], strict=False)] + [st.last + 1]
    out = []
    for p, first, stop in zip(parts, edges, edges[1:], strict=False):
        new = _stretch(p, first, stop - 1, fg.size)
        out.append((Stretch(new.first, new.last, new.origin, new.velocity, st.time), p))
    return out


def _meet(a: list[Sample], b: list[Sample], fg_size: tuple[int, int]) -> int:
    """The first row of ``b``'s line where one track bends into the next (no picture cut between them): where
    the two lines come closest, between their samples."""
    rows = np.arange(a[-1].row + 1, b[0].row + 1)
    (pa, da, _, _), (pb, db, _, _) = _line(a), _line(b)
    gap = _corner_gap(pa[None] + rows[:, None] * da[None], pb[None] + rows[:, None] * db[None], fg_size)
    return int(rows[int(np.argmin(gap))])


def _placed(kept: list[tuple[Stretch, list[Sample]]], located: np.ndarray, n_fg: int) -> np.ndarray:
    """Every fg frame's placement: its stretch's, ``located`` outside the stretches."""
    per_frame = np.tile(located, (n_fg, 1))
    for st, _ in kept:
        rows = np.arange(st.first, st.last + 1)
        per_frame[rows] = st.at(rows)
    return per_frame


def _on_one_clock(found: list[tuple[Stretch, list[Sample]]], fixed: FixedMatch | None, located: np.ndarray,
                  ratio: float, fg_size: tuple[int, int]) -> list[tuple[Stretch, list[Sample]]]:
    """The stretches that keep bg's clock where the rest of fg keeps it.

    Over a camera pan a time shift looks like a place shift: fg frames from before bg's
    start match bg's first frames a few pixels over, as a still shot "at another place"
    (a synthetic pan of 1 px a frame, fg ten times longer than bg: 28 % of the frames
    inside bg's time went wrong). A reframed fg keeps the clock across its cuts, so a
    stretch whose clock offset (bg frame - ratio x fg frame) differs from the reference by
    more than `CLOCK_BREAK` frames is such a shift, and dropped. The reference: the fixed
    frame match's offset, or the offset of the stretches at the located place, or of
    the most frames. A fg both reframed and recut at once is not followed across the recut.
    """
    if not found:
        return found

    def offset(st: Stretch) -> float:
        return st.time[0] - ratio * st.first

    if fixed is not None:
        ok = fixed.match.matched
        rows = np.flatnonzero(ok)
        if not len(rows):
            return found
        ref = float(np.median(fixed.match.frames[rows] - ratio * rows))
    else:
        at_located = [st for st, _ in found
                      if float(_corner_gap(st.at(np.array([st.first, st.last])), located[None], fg_size).max())
                      <= MOVED_PX]
        pool = at_located or [st for st, _ in found]
        weights = np.array([st.last - st.first + 1 for st in pool], np.float64)
        offs = np.array([offset(st) for st in pool])
        order = np.argsort(offs)
        ref = float(offs[order][np.searchsorted(np.cumsum(weights[order]), 0.5 * weights.sum())])
    return [(st, m) for st, m in found if abs(offset(st) - ref) <= CLOCK_BREAK]


def _rows_at(bg: Video, fg: Video, fit: Fit, stretches: list[Stretch], located: np.ndarray
             ) -> tuple[np.ndarray, Band, np.ndarray, np.ndarray]:
    """The stretches' rows, their band (each stretch's time line +- `BAND`), its NCC at each row's
    placement, and every fg frame's placement (``located`` outside the stretches)."""
    per_frame = np.tile(located, (len(fg), 1))
    rows_all, pred = [], []
    for st in stretches:
        rows = np.arange(st.first, st.last + 1)
        per_frame[rows] = st.at(rows)
        rows_all.append(rows)
        pred.append(np.round(st.bg_index(rows)).astype(np.int64))
    rows = np.concatenate(rows_all)
    band = Band.contiguous(np.concatenate(pred) - BAND, 2 * BAND + 1, len(bg))
    return rows, band, _match_rows(bg, fg, fit.softness, rows, per_frame[rows], band), per_frame


def _refit(st: Stretch, members: list[Sample], match: FrameMatch, bg: Video, fg: Video, softness: float
           ) -> tuple[Stretch, list[Sample]]:
    """The stretch fitted again on its sample rows, each paired with the bg frame the frame match chose."""
    again = []
    for s in members:
        if not match.matched[s.row]:
            continue
        j = int(match.frames[s.row])
        if j == s.bg:  # the same pair: the same fit
            again.append(s)
            continue
        start = Geometry(*map(float, st.at(np.array([s.row]))[0]))
        pair = FitPair(np.asarray(fg.frames[s.row]), fg.factor, np.asarray(bg.frames[j]), bg.factor, softness)
        g = fit_geometry([pair], start, levels=1, fit_scale=st.tracked or abs(start.scale - 1.0) > 1e-3)
        if max(abs(g.x - start.x), abs(g.y - start.y)) > max(bg.factor) or abs(g.scale / start.scale - 1) > 0.02:
            g = start
        again.append(Sample(s.row, j, g, s.ncc))
    if len(again) < max(1, len(members) // 2):
        return st, members
    new = _stretch(again, st.first, st.last, fg.size)
    return Stretch(new.first, new.last, new.origin, new.velocity, st.time), again


def _stretches(bg: Video, fg: Video, fit: Fit, ratio: float, a: int, b: int, lo: int, hi: int,
               read_full: FullFrameReader | None) -> tuple[list[tuple[Stretch, list[Sample]]], int, int]:
    """The stretches of fg rows ``a..b`` (searched in bg frames ``lo..hi``), how many samples fit none, and how
    many were searched."""
    n = max(2, int(math.ceil((b - a) / SAMPLE_STEP)) + 1)
    rows = np.unique(np.linspace(a, b, n).round().astype(int))
    samples: list[Sample] = []
    frames, found = _coarse(bg, fg, rows, fit.geometry.scale, lo, hi)
    chosen = _times(found, frames, ratio)
    clock = _on_clock([c.row for c in found], chosen, ratio)
    for c, j in zip(found, clock, strict=True):
        if j is None:
            continue
        j = min(j, len(bg) - 1)
        got = _sample(bg, fg, c.row, j, Geometry(c.x, c.y, fit.geometry.scale), samples[-2:], fit.softness)
        if got is not None and got.ncc >= MIN_SAMPLE_NCC:
            samples.append(got)
    groups, dropped = group(samples, fg.size, ratio)
    alone = [g for g in groups if len(g) == 1 and len(rows) > 2]
    groups = [g for g in groups if not (len(g) == 1 and len(rows) > 2)]
    # each group's rows: from the cut after the previous group to the cut before the next
    edges = [a] + [_cut(fg, g0[-1].row, g1[0].row) for g0, g1 in zip(groups, groups[1:], strict=False)] + [b + 1]
    out = [(_polish(_stretch(g, first, stop - 1, fg.size), g, bg, fg, fit.softness, read_full), g)
           for g, first, stop in zip(groups, edges, edges[1:], strict=False)]
    return out, len(alone) + dropped, len(rows)


__all__ = ["DRIFTING", "FixedMatch", "Placements", "Sample", "Stretch", "follow", "group", "unplaced_runs"]
