"""No shell anywhere: parameters are used as paths, never as command text."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|commands\.getoutput")


def test_no_code_runs_a_shell():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for folder in ("vidkompy", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if SHELL.search(line)]
    assert offenders == []


def test_readme_binds_servers_to_loopback():
    text = (ROOT / "README.md").read_text()
    starts = [ln for ln in text.splitlines() if "server start" in ln]
    assert starts and all("--host 127.0.0.1" in ln for ln in starts)
