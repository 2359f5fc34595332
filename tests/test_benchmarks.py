"""`make bench` is not run in CI (it takes many minutes): at least every module of it must import."""

from __future__ import annotations

import importlib
import pkgutil

import benchmarks


def test_every_benchmark_module_imports():
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    assert {"floor", "metrics", "runner"} <= set(names)
    for name in names:
        importlib.import_module(f"benchmarks.{name}")
