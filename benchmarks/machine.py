"""What the numbers were measured on: CPU, cores, memory, GPU and library versions.

Results are only comparable on the same machine and versions, so both go into
the JSON, and the file is named after the machine. Library versions come from
package metadata (no heavy imports in the parent); the GPU is asked of torch in
a child process so that CUDA is never initialised in the benchmark itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys

import av

LIBRARIES = ("vidkompy", "av", "torch", "torchvision", "faiss-cpu", "faiss-gpu-cu12", "prefect", "zarr", "numpy")
_GPU_PROBE = """
import json, torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(json.dumps({"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                      "count": torch.cuda.device_count(), "cuda": torch.version.cuda}))
else:
    print("null")
"""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _gpu() -> dict | None:
    try:
        out = subprocess.run([sys.executable, "-c", _GPU_PROBE], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError):
        return None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["ffmpeg"] = str(getattr(av, "ffmpeg_version_info", "")) or None
    return found


def describe() -> dict:
    """The machine and library versions, in a fixed key order."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": usable,
        "ram_gb": _ram_gb(),
        "gpu": _gpu(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": _versions(),
    }


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def slug(machine: dict) -> str:
    """A file name for the machine: CPU model, cores, memory, and the GPU when there is one."""
    parts = [_slug(machine["cpu"]) or "cpu", f"{machine['cores']}c", f"{round(machine['ram_gb'])}g"]
    if machine.get("gpu"):
        parts.append(_slug(machine["gpu"]["name"]))
    return "-".join(parts)
