"""The one entry below the Python API and the CLI: run a flow in this process, with Prefect set up.

Both `vidkompy.compose` / `vidkompy.align` and the command line call these
with one `vidkompy.options.Options`; neither goes through the other.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from vidkompy.conform.formats import check_batch_timeline, check_timeline_path, timeline_target
from vidkompy.errors import InputError, SettingsError, VidkompyError
from vidkompy.media.encoding import OutputSettings, validate_settings
from vidkompy.media.paths import check_inputs
from vidkompy.models import BatchResult, ComposeResult
from vidkompy.options import Options

log = logging.getLogger("vidkompy")


def check_server(url: str) -> None:
    """A configured Prefect server must answer: Prefect's own client says so as a RuntimeError and a page
    of traceback, after the flow began."""
    from vidkompy.pipeline import local_server

    if not local_server.answers(url):
        raise SettingsError(f"PREFECT_API_URL is {url}, and no Prefect server answers there: start it, "
                            "or unset PREFECT_API_URL to use vidkompy's local server")


@contextlib.contextmanager
def prefect_session() -> Iterator[None]:
    """Settings for a flow called in this process.

    No heartbeat: its thread is joined in 1 s steps at the end of every flow call (~1 s a run)
    for crash detection that a process worker already provides. And with no server configured,
    vidkompy's local server (see `vidkompy.pipeline.local_server`) instead of a temporary one per call.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from vidkompy.pipeline import local_server

    updates: dict = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    url = None
    configured = PREFECT_API_URL.value()
    if configured:
        check_server(configured)
    elif os.environ.get(local_server.ENV_SWITCH) != "0":
        try:
            url = local_server.ensure()
        except (OSError, TimeoutError) as exc:  # a convenience: Prefect's temporary server remains
            log.debug("local Prefect server unavailable (%s)", exc)
        if url and local_server.wait_until_healthy(url):
            updates[PREFECT_API_URL] = url
        elif url:
            log.warning("the local Prefect server did not start: using a temporary one for this run")
            url = None
    with temporary_settings(updates=updates), (local_server.keepalive() if url else contextlib.nullcontext()):
        yield


def run_compose(bg: str | os.PathLike, fg: str | os.PathLike, output: str | os.PathLike | None = None, *,
                options: Options = Options(), write_video: bool = True) -> ComposeResult:  # noqa: B008
    """The compose flow (align only with ``write_video=False``), in this process.

    Both inputs are probed and the output checked here, before Prefect starts, so that a bad path fails in a
    second; the flow takes the probes and checks nothing again.
    """
    inputs = check_inputs(bg, fg, output, write_video, OutputSettings.of(options))
    if options.timeline:  # an unknown format or an unwritable folder fails here, before any stage
        check_timeline_path(timeline_target(options.timeline, bg, fg, inputs.output))
    from vidkompy.pipeline.compose_flow import compose

    with prefect_session():
        return compose(bg=str(bg), fg=str(fg), output=inputs.output, options=options, write_video=write_video,
                       inputs=inputs)


def run_batch(folder: str | os.PathLike, output_dir: str | os.PathLike, *, options: Options = Options(),  # noqa: B008
              max_parallel: int = 4, deployment: bool = False) -> BatchResult:
    """The batch flow, embedded here or as the `batch` deployment on the configured server."""
    if not Path(folder).is_dir():
        raise InputError(folder, "not a folder")
    folder, output_dir = str(Path(folder).absolute()), str(Path(output_dir).absolute())
    validate_settings(OutputSettings.of(options))
    check_batch_timeline(options.timeline)
    if deployment:
        return _run_batch_deployment(folder, output_dir, options, max_parallel)
    from vidkompy.pipeline.batch_flow import batch

    with prefect_session():
        state = batch(folder, output_dir, options, max_parallel, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # the batch itself broke (a single pair's failure is a row, not this)
    return result


def _run_batch_deployment(folder: str, output_dir: str, options: Options, max_parallel: int) -> BatchResult:
    import asyncio

    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from vidkompy.pipeline.batch_flow import batch_rows

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not url:
        raise VidkompyError("--deployment needs a Prefect server: set PREFECT_API_URL")
    check_server(url)
    parameters = {"folder": folder, "output_dir": output_dir, "options": options.as_dict(),
                  "max_parallel": max_parallel}
    try:
        run = run_deployment("batch/batch", parameters=parameters, timeout=None, poll_interval=2)
    except ObjectNotFound:
        raise SettingsError(f"the server at {url} has no deployment batch/batch: run `prefect deploy --all` "
                            "from the repository root first") from None
    rows = asyncio.run(batch_rows(run.id))
    return BatchResult(rows, (), run.state.name if run.state else "unknown")
