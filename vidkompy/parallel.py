"""A stage's windows computed on a few threads, handed on in order.

The stages after decoding are NumPy and SciPy work on windows of frames
(resampling, Gaussian blurs, products), which release the GIL: on one thread
they left the second core idle for a third of a 20-minute run's alignment.
Windows stay in order because their results are appended to the store as they
come (a killed run resumes after the last one written).

Our own small helper: ``Executor.map`` submits every item at once (results of a
whole video held in memory) until Python 3.14's ``buffersize``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Threads per stage. More than the cores gains nothing; each holds one window's float32 pictures.
WORKERS = max(1, min(4, os.cpu_count() or 1))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, results in the items' order, at most ``workers`` ahead.

    An exception from ``fn`` is raised where its result would have been yielded;
    closing the iterator early waits for the windows in flight and starts no more.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="vidkompy-window") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
