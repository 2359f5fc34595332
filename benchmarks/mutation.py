"""Mutation testing of the modules where a wrong number does most harm: do their tests catch a planted fault?

    .venv/bin/python -m benchmarks.mutation [--max-children N] [--keep DIR] [--out DIR] [--only MODULE ...]

(``make mutation``.) mutmut rewrites one operator, number, comparison or argument at a time (a *mutant*) and runs
the tests: a mutant is *killed* when a test fails. Each module's mutants run against its own fast unit tests
only (`TARGETS`), and of those only the tests that call the mutated function (mutmut's map, made by one traced
run of the selection), stopping at the first failure (``-x``). A mutant whose tests time out counts as killed
(the fault was noticed); one that no selected test reaches counts as surviving.

Writes ``benchmarks/results/<machine>.mutation.json``: ``{"modules": {path: {"mutants": N, "killed": K}},
"tool": "mutmut <version>", "commit": ...}``, and prints every survivor's name; ``--keep DIR`` keeps mutmut's
folder, where ``mutmut show NAME`` (run inside it) prints a survivor's diff. ``--only`` runs some of the
modules (paths as in `TARGETS`) and writes no JSON.

mutmut works on a copy (``vidkompy/``, ``tests/``, ``pyproject.toml`` with its settings appended) in a temporary
folder, so the repository is never touched. It runs at the lowest CPU priority: on a shared 2-core machine a
benchmark running beside it keeps its timings. 11 to 21 minutes there with one child, as loaded as the machine is.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import REPO, machine


@dataclass(frozen=True)
class Target:
    """A module to mutate, the fast tests that hold it, and which of its functions (all when empty)."""

    module: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut's names of this target's mutants, as globs (``x_<function>__mutmut_<n>``; methods ``xǁClassǁ...``)."""
        if not self.functions:
            return [f"{self.dotted}.x*__mutmut_*"]
        return [f"{self.dotted}.x_{name}__mutmut_*" for name in self.functions]


TARGETS = (
    Target("vidkompy/alignment/monotonic.py", ("tests/alignment/test_dtw.py", "tests/alignment/test_properties.py")),
    Target("vidkompy/alignment/resample.py", ("tests/alignment/test_resample.py", "tests/alignment/test_fit.py")),
    Target("vidkompy/alignment/fit.py", ("tests/alignment/test_fit.py", "tests/alignment/test_properties.py")),
    Target("vidkompy/overlay/masks.py", ("tests/overlay/test_masks.py",)),
    Target("vidkompy/media/chunks.py", ("tests/overlay/test_planning.py",)),
    # the planning functions only: composing and checking a segment are the slow pipeline tests' business
    Target("vidkompy/overlay/segments.py", ("tests/overlay/test_planning.py",), ("plan_segments", "auto_segments")),
)

# mutmut's exit codes of a mutant run (mutmut.stats.status_by_exit_code; importing mutmut outside its folder
# fails, it reads its settings on import): a test failed, or the run timed out or was killed by the limits.
KILLED = {1, 3}
DETECTED = KILLED | {36, 24, -24, 152, 255, -9, -11}


def _settings(targets: tuple[Target, ...]) -> str:
    tests = sorted({t for target in targets for t in target.tests})
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["vidkompy/"]',
        f"only_mutate = {json.dumps([t.module for t in targets])}",
        'pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        "use_git_change_detection = false",  # the copy is not a git checkout
        "",
    ])


def prepare(folder: Path, targets: tuple[Target, ...]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
    for name in ("vidkompy", "tests"):
        shutil.copytree(REPO / name, folder / name, ignore=ignore)
    (folder / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text() + _settings(targets))


def run_mutmut(folder: Path, targets: tuple[Target, ...], max_children: int) -> None:
    patterns = [p for t in targets for p in t.patterns()]
    log = folder / "mutmut.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *patterns],
                              cwd=folder, stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(19))
    if done.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        raise SystemExit(f"mutmut failed (exit {done.returncode}); its log: {log}")


def results(folder: Path, target: Target) -> dict[str, int]:
    """The target's mutants and their exit codes, from mutmut's record of the module."""
    meta = json.loads((folder / "mutants" / (target.module + ".meta")).read_text())
    return {name: code for name, code in meta["exit_code_by_key"].items()
            if any(fnmatch.fnmatchcase(name, p) for p in target.patterns())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it, for `mutmut show`")
    parser.add_argument("--only", action="append", choices=[t.module for t in TARGETS],
                        help="only this module (repeatable); no JSON is written")
    args = parser.parse_args(argv)
    targets = tuple(t for t in TARGETS if not args.only or t.module in args.only)

    started = time.monotonic()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="vidkompy-mutation-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        prepare(folder, targets)
        run_mutmut(folder, targets, args.max_children)
        modules, survivors = {}, []
        for target in targets:
            codes = results(folder, target)
            modules[target.module] = {"mutants": len(codes), "killed": sum(c in DETECTED for c in codes.values())}
            survivors += sorted(name for name, code in codes.items() if code not in DETECTED)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print("survivors:", *survivors, sep="\n  ")
    for module, counts in modules.items():
        share = counts["killed"] / counts["mutants"] if counts["mutants"] else float("nan")
        print(f"{module:40s} {counts['killed']:4d} / {counts['mutants']:4d} killed  {share:6.1%}")
    if args.only:
        print(f"done in {time.monotonic() - started:.0f} s (--only: no JSON written)")
        return
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    doc = {"modules": modules, "tool": f"mutmut {importlib.metadata.version('mutmut')}", "commit": commit}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{machine.slug(machine.describe())}.mutation.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
