"""The command line: JSON contract, help, and bad input as one line with an exit code."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess

import av
import numpy as np
import pytest

import vidkompy
from tests.helpers import VIDKOMPY


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([VIDKOMPY, *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(),
                          timeout=300)


def test_align_json_is_one_object_with_the_contract_keys(crop, tmp_path):
    r = run("align", str(crop.bg), str(crop.fg), "--json", "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"x", "y", "scale", "confidence", "frames", "score", "unmatched", "active", "version",
                        "settings"}
    assert all(isinstance(doc[k], float) for k in ("x", "y", "scale", "confidence"))
    assert len(doc["frames"]) == len(doc["score"]) == len(crop.frames)
    assert all(0.0 <= s <= 1.0 for s in doc["score"]) and doc["unmatched"] == [] and doc["active"] is None
    assert doc["version"] == vidkompy.__version__
    assert doc["settings"]["gpu"] is False and doc["settings"]["device"] == "cpu"
    assert doc["settings"]["embedding"] == "luma-gradient-v1"
    assert np.mean(np.array(doc["frames"]) == crop.frames) >= 0.98


def test_compose_writes_the_default_name_in_the_working_directory(crop, tmp_path):
    r = run(str(crop.bg), str(crop.fg), "--no-gpu", "--cache-dir", str(tmp_path / "c"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / f"{crop.bg.stem}_overlay_{crop.fg.stem}.mp4").is_file()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_help_explains_every_option():
    r = run("--help")
    assert r.returncode == 0
    for option in ("--output", "--border", "--blend", "--gpu", "--no-gpu", "--cache-dir", "--json", "--verbose"):
        assert option in r.stdout


def _text_as_mp4(d):
    p = d / "notes.mp4"
    p.write_text("this is not a video\n")
    return p


def _audio_only(d):
    p = d / "audio.m4a"
    with av.open(str(p), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for k in range(10):
            frame.pts = k * 1024
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    return p


def _empty(d):
    p = d / "empty.mp4"
    p.touch()
    return p


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.mp4", 2, "no such file"),
    "a directory": (lambda d: d, 2, "is a directory"),
    "empty file": (_empty, 2, "is empty"),
    "text named .mp4": (_text_as_mp4, 2, "not a video"),
    "audio only": (_audio_only, 2, "no video stream"),
}


@pytest.mark.parametrize("which", ["bg", "fg"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_an_exit_code(crop, tmp_path, case, which):
    make, code, words = BAD_INPUTS[case]
    bad = make(tmp_path)
    bg, fg = (bad, crop.fg) if which == "bg" else (crop.bg, bad)
    out = tmp_path / "out.mp4"
    r = run(str(bg), str(fg), "-o", str(out), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == code
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and words in lines[0], r.stderr
    assert not out.exists()


def test_output_equal_to_an_input_is_refused_and_the_input_kept(crop, tmp_path):
    before = crop.fg.read_bytes()
    r = run(str(crop.bg), str(crop.fg), "-o", str(crop.fg), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 3
    assert "is an input file" in r.stderr and "Traceback" not in r.stderr
    assert crop.fg.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder_is_refused(crop, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    r = run(str(crop.bg), str(crop.fg), "-o", str(folder / "out.mp4"), "--no-gpu")
    assert r.returncode == 3 and "not writable" in r.stderr


def test_missing_output_folder_is_refused(crop, tmp_path):
    r = run(str(crop.bg), str(crop.fg), "-o", str(tmp_path / "no" / "out.mp4"), "--no-gpu")
    assert r.returncode == 3 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_a_prefect_server_that_does_not_answer_is_one_line(crop, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: bound here, never listened to
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        r = subprocess.run([VIDKOMPY, "align", str(crop.bg), str(crop.fg), "--no-gpu", "--cache-dir",
                            str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"127.0.0.1:{port}" in r.stderr and "no Prefect server answers" in r.stderr
