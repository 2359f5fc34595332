"""A folder of pairs: each pair composed once, bad pairs failing alone.

Run as a deployment, every pair becomes its own flow run of the ``compose``
deployment (``run_deployment``), so every worker of the pool takes pairs; run
embedded, the same flow composes the pairs in this process as subflows.
"""

from __future__ import annotations

import asyncio
import dataclasses
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

from vidkompy.conform.formats import check_batch_timeline
from vidkompy.media.encoding import OutputSettings, default_suffix, validate_settings
from vidkompy.media.pairs import Pair, find_pairs, is_done, output_for, settings_comment
from vidkompy.models import BatchResult, PairResult
from vidkompy.options import Options
from vidkompy.pipeline.compose_flow import compose
from vidkompy.pipeline.report import ALIGNMENT_TABLE, alignment_row
from vidkompy.store.artifacts import Store

COMPOSE_DEPLOYMENT = "compose/compose"
BATCH_TABLE = "vidkompy batch"


def _row(pair: Pair, status: str, seconds: float = 0.0, error: str = "", row: dict | None = None) -> PairResult:
    """A pair's result from its alignment row (`vidkompy.pipeline.report.alignment_row`), as a batch lists it."""
    row = row or {}
    return PairResult(pair.name, status, row.get("x"), row.get("y"), row.get("scale"), row.get("confidence"),
                      round(seconds, 2), error, row.get("output"))


def _error_text(message: str | None) -> str:
    """The exception's own words out of a state message ("Flow run encountered an exception: XError: ...")."""
    text = (message or "failed").strip().split("exception: ", 1)[-1]
    return re.sub(r"^\w+(Error|Exception): ", "", text)


def _compose_here(pair: Pair, out: Path, options: Options) -> PairResult:
    start = time.perf_counter()
    state = compose(bg=str(pair.bg), fg=str(pair.fg), output=str(out), options=options, plot_in_ui=True,
                    return_state=True)
    if state.is_completed():
        return _row(pair, "composed", time.perf_counter() - start, row=alignment_row(state.result()))
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


async def batch_rows(flow_run_id) -> tuple[PairResult, ...]:
    """The per-pair results a finished batch run left behind (its table artifact)."""
    return tuple(PairResult.of(row) for row in await _table(flow_run_id, BATCH_TABLE))


def _compose_by_deployment(pair: Pair, out: Path, options: Options, name: str) -> PairResult:
    start = time.perf_counter()
    parameters = {"bg": str(pair.bg), "fg": str(pair.fg), "output": str(out), "options": options.as_dict(),
                  "plot_in_ui": True}
    run = run_deployment(name, parameters=parameters, timeout=None, as_subflow=True, poll_interval=1)
    seconds = time.perf_counter() - start
    if run.state is not None and run.state.is_completed():
        return _row(pair, "composed", seconds, row=asyncio.run(_alignment_row(run.id)))
    return _row(pair, "failed", seconds, error=_error_text(run.state.message if run.state else None))


@flow(name="batch", log_prints=False)
def batch(
    folder: str,
    output_dir: str,
    options: Options = Options(),  # noqa: B008  (frozen: one shared default is safe, and the UI form shows it)
    max_parallel: int = 4,
    compose_deployment: str = COMPOSE_DEPLOYMENT,
) -> BatchResult:
    """Compose every ``NAME.bg.EXT`` + ``NAME.fg.EXT`` of ``folder`` into ``output_dir/NAME.mp4``.

    Every pair gets the same ``options``, unchanged.
    """
    settings = OutputSettings.of(options)
    validate_settings(settings)  # a bad codec fails the batch once, not every pair
    check_batch_timeline(options.timeline)
    pairs, skipped = find_pairs(folder)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    comment = settings_comment(options)
    store = Store.open(options.cache_dir)
    as_deployment = current_deployment.id is not None

    def process(pair: Pair) -> PairResult:
        try:
            out = output_for(pair, output_dir, default_suffix(options.codec))
        except ValueError as exc:
            return _row(pair, "failed", error=str(exc))
        # one batch at a time per output: a second batch on the folder waits, then finds it done
        with store.lock("output", hashlib.sha256(str(out).encode()).hexdigest()[:32]):
            if is_done(pair, out, comment):
                return _row(pair, "up to date", row={"output": str(out)})
            if as_deployment:
                return _compose_by_deployment(pair, out, options, compose_deployment)
            return _compose_here(pair, out, options)

    rows: dict[str, PairResult] = {}
    if as_deployment:
        # the pool's workers share the pairs; at most max_parallel in flight
        with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
            futures = {p.name: pool.submit(process, p) for p in pairs}
            rows = {name: future.result() for name, future in futures.items()}
    else:
        rows = {p.name: process(p) for p in pairs}

    table = tuple(rows[p.name] for p in pairs)
    if table:
        create_table_artifact([dataclasses.asdict(r) for r in table], description=BATCH_TABLE)
    summary = BatchResult(table, tuple(skipped))
    if summary.failed:
        names = ", ".join(r.pair for r in summary.failed)
        return Failed(message=f"{len(summary.failed)} of {len(table)} pairs failed: {names}", data=summary)
    return summary
