"""prefect.yaml on a real server: a `vidkompy` process pool, two workers, a batch shared between them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
)

from tests.helpers import VIDKOMPY
from tests.reference import decode_planes, pasted, worst_luma_psnr
from vidkompy.samples import make_pair

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def prefect(*args: str, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([*PREFECT, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=os.environ.copy(), **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def stop(proc: subprocess.Popen) -> None:
    """By process id: a worker finishes slowly on SIGTERM and at once on a second one."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def folder(tmp_path) -> tuple[Path, dict]:
    src = tmp_path / "in"
    truth = {}
    # a good pair and a broken one: with the batch run itself on one worker (limit 2), the two compose runs
    # submitted at once cannot both go to that worker
    for k in range(1):
        pair = make_pair(src, name=f"clip{k}", seconds=2.0, seed=10 + k, region=(40 + 8 * k, 32, 160, 120))
        truth[pair.bg.name.split(".")[0]] = pair
    (src / "broken.bg.mp4").write_text("not a video")
    (src / "broken.fg.mp4").write_bytes(truth["clip0"].fg.read_bytes())
    (src / "notes.txt").write_text("no pair")
    return src, truth


@pytest.mark.long
def test_batch_deployment_is_shared_by_two_workers(folder, tmp_path):
    """Every good pair's output is its true overlay (fg pasted with NumPy at its offset over its true bg frames)
    within h264's loss, inside fg's box and outside it: crf 18 sits at 43 dB there, fg a pixel off at 34.5
    inside. Planted fault it catches: a worker that composes fg a pixel off."""
    src, truth = folder
    out = tmp_path / "out"
    prefect("work-pool", "create", "vidkompy", "--type", "process", "--overwrite")
    env = {**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO"}
    logs = {name: (tmp_path / f"worker-{name}.log").open("w") for name in ("a", "b")}
    # the workers start while `prefect deploy` runs: they only poll the pool until a run comes
    workers = {
        name: subprocess.Popen([*PREFECT, "worker", "start", "--pool", "vidkompy", "--limit", "2", "--name",
                                f"test-worker-{name}"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
        for name, log in logs.items()
    }
    try:
        prefect("deploy", "--all", "--no-prompt")
        r = subprocess.run([VIDKOMPY, "batch", str(src), "-o", str(out), "--no-gpu", "--cache-dir",
                            str(tmp_path / "cache"), "--deployment", "--max-parallel", "2"],
                           capture_output=True, text=True, timeout=600, env=os.environ.copy())
    finally:
        for proc in workers.values():
            stop(proc)
        for log in logs.values():
            log.close()

    # the broken pair fails alone and is named; every good pair is composed once, and composed right
    assert r.returncode == 1, r.stdout + r.stderr
    assert "broken" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip0.mp4"]
    for name, pair in truth.items():
        overlay = pasted(pair.bg, pair.fg, pair.frames, int(pair.x), int(pair.y))
        box = (int(pair.x), int(pair.y), 160, 120)
        assert worst_luma_psnr(decode_planes(out / f"{name}.mp4"), overlay, box) >= 40.0, name

    async def compose_runs() -> list:
        async with get_client() as client:
            dep = await client.read_deployment_by_name("compose/compose")
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[dep.id])))

    runs = [fr for fr in asyncio.run(compose_runs()) if str(src) in str(fr.parameters.get("bg", ""))]
    by_pair = {}
    for fr in runs:
        by_pair.setdefault(Path(fr.parameters["bg"]).name.split(".")[0], []).append(fr.state_name)
    assert {k: v for k, v in by_pair.items() if k != "broken"} == {"clip0": ["Completed"]}
    assert by_pair["broken"] == ["Failed"]

    async def progress_of(flow_run_ids) -> list:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=list(flow_run_ids)),
                type=ArtifactFilterType(any_=["progress"])))

    # long stages report their progress in the UI of deployment runs: one artifact per stage that ran, at 100%
    done = [fr.id for fr in runs if fr.state_name == "Completed"]
    progress = asyncio.run(progress_of(done))
    assert {a.flow_run_id for a in progress} == set(done)
    assert all(float(a.data) == 100.0 for a in progress)
    assert any("decode" in (a.description or "") for a in progress)
    # both workers took work
    for name in ("a", "b"):
        text = (tmp_path / f"worker-{name}.log").read_text()
        assert "submitting flow run" in text, text[-2000:]
