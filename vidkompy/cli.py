"""The command line, and the one place in the library that reaches into flows/.

Every user-caused failure ends as one line on stderr and an exit code
(2 bad input, 3 output problem, 4 fg not found in bg, 130 interrupted);
``-v`` shows tracebacks and Prefect's own log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from vidkompy.errors import VidkompyError
from vidkompy.models import Alignment, ComposeResult, Geometry
from vidkompy.paths import check_inputs

log = logging.getLogger("vidkompy")

COMMANDS = ("compose", "align", "batch", "server")
EPILOG = """\
examples:
  vidkompy bg.mp4 fg.mp4                      writes bg_overlay_fg.mp4 here
  vidkompy bg.mp4 fg.mp4 -o out.mp4 --blend   feathers the edges where bg shows
  vidkompy align bg.mp4 fg.mp4 --json         prints {"x", "y", "scale", "confidence", "frames"}

commands: vidkompy [compose] BG FG ... (default), vidkompy align BG FG ...; `vidkompy align -h` for its options.

exit codes: 0 ok, 1 other error, 2 bad input, 3 output problem, 4 fg not found in bg, 130 interrupted.
Stages are cached under --cache-dir (default ~/.cache/vidkompy, or $VIDKOMPY_CACHE_DIR): a re-run
with other --border/--blend only recomposes.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("bg", help="background video: the full picture")
    p.add_argument("fg", help="foreground video: a part of bg's picture, the master for timing and audio")
    p.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=True,
                   help="use a CUDA GPU (torch, FAISS, CuPy) when one is found (default: on)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="artifact store: a folder or fsspec URL (default: ~/.cache/vidkompy)")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="MobileNetV3-Small weights file (default: $VIDKOMPY_MOBILENET_WEIGHTS or torchvision's "
                        "cache; without weights a weight-free embedding is used)")
    p.add_argument("--force", action="store_true", help="compose even when fg does not look like part of bg")
    p.add_argument("--json", action="store_true", help="print the alignment as one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="show detail, Prefect's log and tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidkompy", usage="vidkompy [compose|align] BG FG [options]",
        description="Overlay a foreground video on the background video it shows part of: vidkompy finds "
                    "where fg sits in bg (x, y, scale) and which bg frame matches each fg frame, then writes bg "
                    "with fg laid over it, at fg's frame rate and timestamps, with fg's audio.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser("compose", help="align and write the overlay (the default command)",
                       usage="vidkompy [compose] BG FG [-o OUT] [--border N] [--blend] [options]",
                       description=parser.description,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(c)
    c.add_argument("-o", "--output", metavar="OUT", default=None,
                   help="output file (default: {bg_stem}_overlay_{fg_stem}.mp4 in the working directory)")
    c.add_argument("--border", type=int, default=8, metavar="N",
                   help="width in px of fg's edge zone that --blend feathers (default: 8)")
    c.add_argument("--blend", action="store_true",
                   help="feather fg's edges over bg, only on edges where bg is visible")
    c.add_argument("--plot", action="store_true",
                   help="also write the frame map (fg time vs bg time, match cost) as OUT.map.png")
    a = sub.add_parser("align", help="find the alignment only; no video is written")
    _common(a)
    b = sub.add_parser("batch", help="compose every NAME.bg.EXT + NAME.fg.EXT pair of a folder",
                       description="Compose every pair of FOLDER named NAME.bg.EXT and NAME.fg.EXT (any video "
                                   "extension) into OUTDIR/NAME.mp4. Pairs whose output is newer than both inputs "
                                   "and was made with the same settings are skipped; a bad pair fails alone.")
    b.add_argument("folder", help="folder with NAME.bg.EXT / NAME.fg.EXT pairs")
    b.add_argument("-o", "--output-dir", metavar="OUTDIR", required=True, help="where NAME.mp4 files go")
    b.add_argument("--border", type=int, default=8, metavar="N", help="as for compose (default: 8)")
    b.add_argument("--blend", action="store_true", help="as for compose")
    b.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=True, help="as for compose")
    b.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="artifact store, a folder or fsspec URL; share it between machines")
    b.add_argument("--weights", metavar="PATH", default=None, help="as for compose")
    b.add_argument("--deployment", action="store_true",
                   help="run the `batch` deployment on the server in PREFECT_API_URL (its workers compose the "
                        "pairs) instead of composing here, and wait for it")
    b.add_argument("--max-parallel", type=int, default=4, metavar="N",
                   help="pairs in flight at once when run as a deployment (default: 4)")
    b.add_argument("-v", "--verbose", action="store_true", help="show detail, Prefect's log and tracebacks")
    sv = sub.add_parser("server", help="the local Prefect server that CLI runs share (status or stop)",
                        description="Without PREFECT_API_URL, the first run starts a Prefect server on loopback that "
                                    "later runs reuse (2 s of bookkeeping a run instead of 8-13 s); it stops after "
                                    "10 idle minutes. VIDKOMPY_LOCAL_SERVER=0 turns it off.")
    sv.add_argument("action", choices=("status", "stop"))
    sv.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        argv = ["compose", "--help"]  # the main form, `vidkompy BG FG`, is the help people need
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "compose")
    elif argv and argv[0] in ("-v", "--verbose") and len(argv) > 1 and argv[1] not in COMMANDS:
        argv.insert(0, "compose")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    return args


def _quiet_prefect(verbose: bool) -> None:
    """Prefect configures logging on import: set its levels first. It never writes to stdout."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Our errors are reported as one line; Prefect would print each one again with a traceback.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "CRITICAL")


def _configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile, read without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    from vidkompy.local_server import prefect_home

    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


def _boot_local_server(args: argparse.Namespace) -> None:
    """Start booting vidkompy's local server now, while this process imports and checks its inputs."""
    from vidkompy import local_server

    if getattr(args, "deployment", False) or _configured_api_url() or os.environ.get(local_server.ENV_SWITCH) == "0":
        return
    try:
        local_server.ensure()
    except Exception as exc:  # a convenience must never stop a run: Prefect's temporary server remains
        log.debug("local Prefect server unavailable (%s)", exc)


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
    if not PREFECT_API_URL.value() and os.environ.get(local_server.ENV_SWITCH) != "0":
        try:
            url = local_server.ensure()
        except Exception as exc:
            log.debug("local Prefect server unavailable (%s)", exc)
        if url and local_server.wait_until_healthy(url):
            updates[PREFECT_API_URL] = url
        elif url:
            log.warning("the local Prefect server did not start: using a temporary one for this run")
            url = None
    with temporary_settings(updates=updates), (local_server.keepalive() if url else contextlib.nullcontext()):
        yield


def _server_command(action: str) -> int:
    from vidkompy import local_server

    state = local_server.read_state()
    if action == "stop":
        print("stopped" if local_server.stop_server() else "no local server running")
        return 0
    if state and local_server.healthy(state["url"]):
        print(f"running at {state['url']} (pid {state['pid']})")
    else:
        print("no local server running")
    return 0


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vidkompy: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def run_flow(**params: object) -> dict:
    """Run the compose flow in this process, against the configured server or vidkompy's local one."""
    from flows.compose import compose as compose_flow

    with prefect_session():
        return compose_flow(**params)


def to_result(summary: dict) -> ComposeResult:
    import numpy as np

    alignment = Alignment(Geometry(summary["x"], summary["y"], summary["scale"]), summary["confidence"],
                          np.asarray(summary["frames"], dtype=np.int64))
    return ComposeResult(alignment, summary["output"], summary["seconds"], tuple(summary["computed"]))


def _install_progress() -> object | None:
    if not sys.stderr.isatty():
        return None
    from vidkompy.progress_rich import RichReporter

    reporter = RichReporter()
    from vidkompy import progress

    progress.set_reporter(reporter)
    return reporter


def _report(summary: dict, as_json: bool) -> None:
    if as_json:
        keys = ("x", "y", "scale", "confidence", "frames")
        print(json.dumps({k: summary[k] for k in keys}))
        return
    n = len(summary["frames"])
    where = f"x={summary['x']:.2f} y={summary['y']:.2f} scale={summary['scale']:.4f}"
    line = f"fg at {where}, confidence {summary['confidence']:.3f}, {n} frames"
    if summary.get("output"):
        line = f"wrote {summary['output']}: {line}"
    ran = ", ".join(f"{k} {v:.2f}s" for k, v in summary["seconds"].items()) or "nothing (all cached)"
    print(line)
    print(f"computed: {ran}")


def run_batch(args: argparse.Namespace) -> dict:
    """The batch flow, embedded here or as the `batch` deployment on the configured server."""
    params = dict(folder=str(Path(args.folder).absolute()), output_dir=str(Path(args.output_dir).absolute()),
                  border=args.border, blend=args.blend, gpu=args.gpu, cache_dir=args.cache_dir,
                  weights=args.weights, max_parallel=args.max_parallel)
    if args.deployment:
        return _run_batch_deployment(params)
    from flows.batch import batch

    with prefect_session():
        state = batch(**params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # the batch itself broke (a single pair's failure is a row, not this)
    return result


def _run_batch_deployment(params: dict) -> dict:
    import asyncio

    from prefect.deployments import run_deployment

    from flows.batch import batch_rows

    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise VidkompyError("--deployment needs a Prefect server: set PREFECT_API_URL")
    run = run_deployment("batch/batch", parameters=params, timeout=None, poll_interval=2)
    rows = asyncio.run(batch_rows(run.id))
    return {"pairs": rows, "skipped_files": [], "failed": sum(r["status"] == "failed" for r in rows),
            "state": run.state.name if run.state else "unknown"}


def _report_batch(summary: dict) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vidkompy batch")
    for col in ("pair", "status", "x", "y", "scale", "confidence", "seconds", "error"):
        table.add_column(col)
    for r in summary["pairs"]:
        def fmt(v: object) -> str:
            return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

        table.add_row(*(fmt(r.get(c)) for c in ("pair", "status", "x", "y", "scale", "confidence", "seconds",
                                                 "error")))
    Console(width=160).print(table)
    if summary.get("skipped_files"):
        print(f"skipped (no pair): {', '.join(summary['skipped_files'])}")
    failed = [r["pair"] for r in summary["pairs"] if r["status"] == "failed"]
    if failed:
        print(f"vidkompy: error: {len(failed)} pair(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    _quiet_prefect(args.verbose)
    _setup_logging(args.verbose)
    if args.command == "server":
        return _server_command(args.action)
    _boot_local_server(args)
    if args.command == "batch":
        folder = Path(args.folder)
        if not folder.is_dir():
            print(f"vidkompy: error: {folder}: not a folder", file=sys.stderr)
            return 2
        try:
            return _report_batch(run_batch(args))
        except VidkompyError as exc:
            print(f"vidkompy: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("vidkompy: interrupted", file=sys.stderr)
            sys.stderr.flush()
            os._exit(130)
    reporter = _install_progress()
    params: dict[str, object] = dict(bg=str(Path(args.bg)), fg=str(Path(args.fg)), gpu=args.gpu,
                                     cache_dir=args.cache_dir, weights=args.weights, force=args.force)
    if args.command == "compose":
        params.update(output=args.output, border=args.border, blend=args.blend, write_video=True, plot=args.plot)
    else:
        params.update(write_video=False)
    try:
        # Fail in a second, before Prefect starts, on what can be checked up front.
        check_inputs(args.bg, args.fg, getattr(args, "output", None), args.command == "compose")
        summary = run_flow(**params)
    except VidkompyError as exc:
        if args.verbose:
            raise
        print(f"vidkompy: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if reporter is not None:
            reporter.close()
        print("vidkompy: interrupted", file=sys.stderr)
        sys.stderr.flush()
        # The writer's temporary file is gone (it runs in this thread); stage threads may still be
        # computing, and their store writes are atomic: do not wait for them.
        os._exit(130)
    finally:
        if reporter is not None:
            reporter.close()
    _report(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
