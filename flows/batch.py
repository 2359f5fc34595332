"""A folder of pairs: each pair composed once, bad pairs failing alone.

Run as a deployment, every pair becomes its own flow run of the ``compose``
deployment (``run_deployment``), so every worker of the pool takes pairs; run
embedded, the same flow composes the pairs in this process as subflows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import flow, get_client
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from prefect.deployments import run_deployment
from prefect.runtime import deployment as current_deployment
from prefect.states import Failed

from vidkompy.batch import Pair, find_pairs, is_done, output_for, settings_comment
from vidkompy.chunks import KEYINT
from vidkompy.encoding import OutputSettings, default_suffix, validate_settings
from vidkompy.store import Store
from vidkompy_flows.compose import compose
from vidkompy_tasks.report import ALIGNMENT_TABLE, alignment_row

COMPOSE_DEPLOYMENT = "compose/compose"
BATCH_TABLE = "vidkompy batch"


def _row(pair: Pair, status: str, seconds: float = 0.0, error: str = "", alignment: dict | None = None) -> dict:
    alignment = alignment or {}
    return {"pair": pair.name, "status": status, "x": alignment.get("x"), "y": alignment.get("y"),
            "scale": alignment.get("scale"), "confidence": alignment.get("confidence"),
            "seconds": round(seconds, 2), "error": error, "output": alignment.get("output")}


def _error_text(message: str | None) -> str:
    """The exception's own words out of a state message ("Flow run encountered an exception: XError: ...")."""
    text = (message or "failed").strip().split("exception: ", 1)[-1]
    return re.sub(r"^\w+(Error|Exception): ", "", text)


def _compose_here(pair: Pair, out: Path, params: dict) -> dict:
    start = time.perf_counter()
    state = compose(bg=str(pair.bg), fg=str(pair.fg), output=str(out), return_state=True, **params)
    if state.is_completed():
        return _row(pair, "composed", time.perf_counter() - start, alignment=alignment_row(state.result()))
    exc = state.result(raise_on_failure=False)
    return _row(pair, "failed", time.perf_counter() - start, error=str(exc) if exc else _error_text(state.message))


async def _table(flow_run_id, description: str) -> list[dict]:
    """The rows of a flow run's table artifact with this description (how runs report across machines)."""
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["table"])))
    for a in artifacts:
        if a.description == description and a.data:
            data = json.loads(a.data) if isinstance(a.data, str) else a.data
            return list(data) if isinstance(data, list) else []
    return []


async def _alignment_row(flow_run_id) -> dict:
    rows = await _table(flow_run_id, ALIGNMENT_TABLE)
    return rows[0] if rows else {}


async def batch_rows(flow_run_id) -> list[dict]:
    """The per-pair table a finished batch run left behind."""
    return await _table(flow_run_id, BATCH_TABLE)


def _compose_by_deployment(pair: Pair, out: Path, params: dict, name: str) -> dict:
    start = time.perf_counter()
    run = run_deployment(name, parameters={"bg": str(pair.bg), "fg": str(pair.fg), "output": str(out), **params},
                         timeout=None, as_subflow=True, poll_interval=1)
    seconds = time.perf_counter() - start
    if run.state is not None and run.state.is_completed():
        return _row(pair, "composed", seconds, alignment=asyncio.run(_alignment_row(run.id)))
    return _row(pair, "failed", seconds, error=_error_text(run.state.message if run.state else None))


@flow(name="batch", log_prints=False)
def batch(
    folder: str,
    output_dir: str,
    border: int = 8,
    blend: bool = False,
    gpu: bool = True,
    cache_dir: str | None = None,
    weights: str | None = None,
    max_parallel: int = 4,
    compose_deployment: str = COMPOSE_DEPLOYMENT,
    codec: str = "h264",
    crf: int | None = None,
    preset: str | None = None,
    audio: str = "fg",
    keyint: int = KEYINT,
) -> dict:
    """Compose every ``NAME.bg.EXT`` + ``NAME.fg.EXT`` of ``folder`` into ``output_dir/NAME.mp4``."""
    settings = OutputSettings(codec, crf, preset, audio, keyint)
    validate_settings(settings)  # a bad codec fails the batch once, not every pair
    pairs, skipped = find_pairs(folder)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    params = {"border": border, "blend": blend, "gpu": gpu, "cache_dir": cache_dir, "weights": weights,
              "plot_in_ui": True, "codec": codec, "crf": crf, "preset": preset, "audio": audio,
              "keyint": keyint}
    comment = settings_comment(border, blend, weights, settings)
    store = Store.open(cache_dir)
    as_deployment = current_deployment.id is not None

    def process(pair: Pair) -> dict:
        try:
            out = output_for(pair, output_dir, default_suffix(codec))
        except ValueError as exc:
            return _row(pair, "failed", error=str(exc))
        # one batch at a time per output: a second batch on the folder waits, then finds it done
        with store.lock("output", hashlib.sha256(str(out).encode()).hexdigest()[:32]):
            if is_done(pair, out, comment):
                return _row(pair, "up to date", alignment={"output": str(out)})
            if as_deployment:
                return _compose_by_deployment(pair, out, params, compose_deployment)
            return _compose_here(pair, out, params)

    rows: dict[str, dict] = {}
    if as_deployment:
        # the pool's workers share the pairs; at most max_parallel in flight
        with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
            futures = {p.name: pool.submit(process, p) for p in pairs}
            rows = {name: future.result() for name, future in futures.items()}
    else:
        rows = {p.name: process(p) for p in pairs}

    table = [rows[p.name] for p in pairs]
    if table:
        create_table_artifact(table, description=BATCH_TABLE)
    failed = [r for r in table if r["status"] == "failed"]
    summary = {"pairs": table, "skipped_files": skipped, "failed": len(failed)}
    if failed:
        names = ", ".join(r["pair"] for r in failed)
        return Failed(message=f"{len(failed)} of {len(table)} pairs failed: {names}", data=summary)
    return summary
