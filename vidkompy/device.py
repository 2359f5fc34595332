"""The one decision about hardware: probed once, passed down as a value.

Algorithms never ask "is there CUDA?"; they take a `Device` and use its array
module, its torch device and its FAISS flag.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

log = logging.getLogger("vidkompy")


@dataclass(frozen=True)
class Device:
    name: str  # "cpu" or "cuda"
    torch_device: str
    faiss_gpu: bool
    xp: ModuleType  # numpy or cupy, for the FFT work

    @property
    def is_gpu(self) -> bool:
        return self.name == "cuda"

    def to_numpy(self, a: object) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)


CPU = Device("cpu", "cpu", False, np)
_cache: dict[bool, Device] = {}


def single_threaded_blas() -> None:
    """One OpenBLAS thread for numpy/scipy, for the rest of the process.

    Our matrix products are small (a window of frames against a band of bg
    frames); parallelism comes from the two decodes running at once. Next to
    FAISS's OpenMP threads, OpenBLAS's spinning threads made those products up to
    100x slower on 2 cores (measured: the sub-pixel fit's windows 12.6 s -> 0.12 s).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


M_ARENA_MAX = -8  # glibc's mallopt parameter


def few_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` glibc malloc arenas for the rest of the process (Linux; elsewhere nothing).

    Stages run in worker threads beside zarr's, PyAV's and Prefect's, and glibc
    gives threads arenas of their own, which keep what they freed: the same
    one-minute 1080p run peaked anywhere from 741 to 978 MB. With two arenas it
    peaked at 590-660 MB, as fast (measured, 3 runs each).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc
        pass


def probe_device(gpu: bool = True) -> Device:
    """Use a GPU when asked and one is there; otherwise say so once and use the CPU."""
    if not _cache:
        few_malloc_arenas()
        single_threaded_blas()
    if gpu in _cache:
        return _cache[gpu]
    device = CPU
    if gpu:
        device = _probe_gpu()
        if device is CPU:
            log.info("no CUDA GPU found: running on the CPU")
    _cache[gpu] = device
    return device


def _no_nvidia_device() -> bool:
    """True when the OS shows no NVIDIA device at all: then importing torch (~2.5 s) to ask is wasted."""
    if not sys.platform.startswith("linux"):
        return sys.platform == "darwin"
    return not (Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
                or Path("/proc/driver/nvidia/version").exists())


def _probe_gpu() -> Device:
    if _no_nvidia_device():
        return CPU
    try:
        import torch

        if not torch.cuda.is_available():
            return CPU
    except ImportError:
        return CPU
    xp: ModuleType = np
    try:
        import cupy

        if cupy.cuda.is_available():
            xp = cupy
    except ImportError:
        pass
    faiss_gpu = False
    try:
        import faiss

        # Moving an index to "all GPUs" when there are none silently gives an empty index.
        faiss_gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
    except ImportError:
        pass
    return Device("cuda", "cuda", faiss_gpu, xp)
