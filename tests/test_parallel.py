"""ordered_map: windows on threads, results in order, never far ahead of the consumer."""

from __future__ import annotations

import threading
import time

import pytest

from vidkompy.parallel import ordered_map


def _slow_square(k: int) -> int:
    time.sleep(0.002 * (k % 3))  # later items often finish first
    return k * k


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_results_come_in_the_items_order(workers):
    assert list(ordered_map(_slow_square, range(40), workers)) == [k * k for k in range(40)]


def test_it_reads_at_most_workers_items_ahead():
    pulled = []

    def items():
        for k in range(100):
            pulled.append(k)
            yield k

    out = ordered_map(lambda k: k, items(), 2)
    for got in range(10):
        assert next(out) == got
        assert len(pulled) <= got + 1 + 2  # the one yielded, and two in flight
    out.close()
    assert len(pulled) < 100


def test_an_error_is_raised_at_its_place_and_nothing_after_it_starts():
    started = []
    lock = threading.Lock()

    def fn(k):
        with lock:
            started.append(k)
        if k == 5:
            raise ValueError("window 5")
        return k

    out = ordered_map(fn, range(1000), 2)
    assert [next(out) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="window 5"):
        next(out)
    assert max(started) < 5 + 2 + 1
