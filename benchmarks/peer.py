"""The peer column: the published vidkompy 1.2.5 from PyPI, in a venv of its own.

1.2.5 is a ``fire`` CLI (``python -m vidkompy BG FG --output OUT``, read from its
``__main__.py`` and ``vidkompy.py``: options engine, drift_interval, margin,
smooth, gpu, window, verbose) that probes with ``ffprobe`` and muxes with the
``ffmpeg`` binary through ffmpeg-python. Without them it cannot run, and the
column says so. It
reports no alignment, so its output is scored by PSNR against the true
composite. It runs from an empty folder: started in the repository, Python
would import our vidkompy instead of it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import CACHE
from benchmarks.footage import Truth
from benchmarks.metrics import score_video
from benchmarks.process import run_measured

PEER_VERSION = "1.2.5"
VENV = CACHE / "peer-venv"


def unavailable() -> str | None:
    """Why the peer cannot run here, or None."""
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            return f"peer skipped: no {tool} binary"
    return None


def ensure_venv() -> Path:
    """The peer's interpreter, installing vidkompy==1.2.5 into its venv on first use."""
    python = VENV / "bin" / "python"
    marker = VENV / f".vidkompy-{PEER_VERSION}"
    if marker.exists():
        return python
    if not python.exists():
        # The system interpreter, not ours: the peer's venv must not see our packages.
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"vidkompy=={PEER_VERSION}"], check=True)
    marker.touch()
    return python


def skipped(reason: str) -> dict:
    """The peer's record when it did not run: the same keys, nulls."""
    return {"skipped": reason, "rc": None, "seconds": None, "ratio": None, "max_rss_mb": None, "timed_out": None,
            "psnr": None, "worst_frame_psnr": None, "n_frames": None, "error": None}


def run_peer(truth: Truth, work: Path, env: dict[str, str], timeout: float) -> dict:
    """Run the peer on a pair; seconds end to end, peak RSS and its output's PSNR against the truth."""
    python = ensure_venv()
    folder = Path(tempfile.mkdtemp(prefix="peer-", dir=work))
    output = folder / "out.mp4"
    peer_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    m = run_measured([str(python), "-m", "vidkompy", str(truth.bg), str(truth.fg), "--output", str(output)],
                     env=peer_env, cwd=folder, timeout=timeout)
    result = {**skipped(""), "skipped": None, "rc": m.rc, "seconds": round(m.seconds, 3),
              "max_rss_mb": round(m.max_rss / 2**20, 1), "timed_out": m.timed_out}
    try:
        if m.rc != 0 or not output.exists():
            result["error"] = m.tail() or "no output written"
            return result
        score = score_video(output, truth)
    except Exception as exc:  # noqa: BLE001 - the peer's output is scored, never trusted
        result["error"] = f"output not readable: {exc}"
    else:
        result.update(psnr=score.psnr, worst_frame_psnr=score.worst_frame_psnr, n_frames=score.n_frames)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result
