"""The one entry below the Python API and the CLI: run a flow in this process, with Prefect set up.

Both `vidkompy.compose` / `vidkompy.align` and the command line call these;
neither goes through the other.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from vidkompy.errors import SettingsError, VidkompyError
from vidkompy.models import ComposeResult

log = logging.getLogger("vidkompy")


def check_server(url: str) -> None:
    """A configured Prefect server must answer: Prefect's own client says so as a RuntimeError and a page
    of traceback, after the flow began."""
    from vidkompy import local_server

    if not local_server.answers(url):
        raise SettingsError(f"PREFECT_API_URL is {url}, and no Prefect server answers there: start it, "
                            "or unset PREFECT_API_URL to use vidkompy's local server")


@contextlib.contextmanager
def prefect_session() -> Iterator[None]:
    """Settings for a flow called in this process.

    No heartbeat: its thread is joined in 1 s steps at the end of every flow call (~1 s a run)
    for crash detection that a process worker already provides. And with no server configured,
    vidkompy's local server (see `vidkompy.local_server`) instead of a temporary one per call.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from vidkompy import local_server

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


def run_compose(**params: object) -> ComposeResult:
    """The compose flow (align only with ``write_video=False``), in this process."""
    from vidkompy_flows.compose import compose

    with prefect_session():
        return compose(**params)


def run_batch(params: dict, *, deployment: bool = False) -> dict:
    """The batch flow, embedded here or as the `batch` deployment on the configured server."""
    if deployment:
        return _run_batch_deployment(params)
    from vidkompy_flows.batch import batch

    with prefect_session():
        state = batch(**params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # the batch itself broke (a single pair's failure is a row, not this)
    return result


def _run_batch_deployment(params: dict) -> dict:
    import asyncio

    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from vidkompy_flows.batch import batch_rows

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not url:
        raise VidkompyError("--deployment needs a Prefect server: set PREFECT_API_URL")
    check_server(url)
    try:
        run = run_deployment("batch/batch", parameters=params, timeout=None, poll_interval=2)
    except ObjectNotFound:
        raise SettingsError(f"the server at {url} has no deployment batch/batch: run `prefect deploy --all` "
                            "from the repository root first") from None
    rows = asyncio.run(batch_rows(run.id))
    return {"pairs": rows, "skipped_files": [], "failed": sum(r["status"] == "failed" for r in rows),
            "state": run.state.name if run.state else "unknown"}
