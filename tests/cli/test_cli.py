"""The command line: JSON contract, help, and a server that does not answer as one line with an exit code.

Bad inputs and outputs, each as one line, an exit code, no output and an untouched cache, are
`tests/pipeline/test_reliability.py`'s table (both roles for what either input can be).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess

import numpy as np
import pytest

import vidkompy
from tests.helpers import VIDKOMPY


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([VIDKOMPY, *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(),
                          timeout=300)


def test_align_json_is_one_object_with_the_contract_keys(crop, crop_cache):
    """The alignment comes from a cache the library filled (`crop_cache`): the document is the point here."""
    r = run("align", str(crop.bg), str(crop.fg), "--json", "--no-gpu", "--cache-dir", str(crop_cache))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"x", "y", "scale", "confidence", "frames", "score", "unmatched", "active", "version",
                        "settings", "placement_mode", "placement", "off_canvas"}
    assert doc["placement_mode"] == "fixed" and doc["off_canvas"] == []
    assert doc["placement"] == [[round(doc[k], 4) for k in ("x", "y", "scale")]] * len(crop.frames)
    assert all(isinstance(doc[k], float) for k in ("x", "y", "scale", "confidence"))
    assert len(doc["frames"]) == len(doc["score"]) == len(crop.frames)
    assert all(0.0 <= s <= 1.0 for s in doc["score"]) and doc["unmatched"] == [] and doc["active"] is None
    assert doc["version"] == vidkompy.__version__
    assert doc["settings"]["gpu"] is False and doc["settings"]["device"] == "cpu"
    assert doc["settings"]["embedding"] == "luma-gradient-v1"
    assert np.mean(np.array(doc["frames"]) == crop.frames) >= 0.98


def test_compose_writes_the_default_name_in_the_working_directory(crop, crop_cache, tmp_path):
    r = run(str(crop.bg), str(crop.fg), "--no-gpu", "--cache-dir", str(crop_cache), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / f"{crop.bg.stem}_overlay_{crop.fg.stem}.mp4").is_file()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_help_explains_every_option():
    r = run("--help")
    assert r.returncode == 0
    for option in ("--output", "--border", "--blend", "--gpu", "--no-gpu", "--cache-dir", "--json", "--verbose"):
        assert option in r.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder_is_refused(crop, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    r = run(str(crop.bg), str(crop.fg), "-o", str(folder / "out.mp4"), "--no-gpu")
    assert r.returncode == 3 and "not writable" in r.stderr


def test_a_prefect_server_that_does_not_answer_is_one_line(crop, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: bound here, never listened to
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        r = subprocess.run([VIDKOMPY, "align", str(crop.bg), str(crop.fg), "--no-gpu", "--cache-dir",
                            str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"127.0.0.1:{port}" in r.stderr and "no Prefect server answers" in r.stderr
