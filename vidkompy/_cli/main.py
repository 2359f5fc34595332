"""The command line: argument parsing and printing, over the same entry as the Python API.

It builds one `vidkompy.options.Options` from the arguments and hands it to
`vidkompy.pipeline.entry`; everything else is the library's.

Every user-caused failure ends as one line on stderr and an exit code
(2 bad input, 3 output problem, 4 fg not found in bg, 130 interrupted);
``-v`` shows tracebacks and Prefect's own log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vidkompy.errors import VidkompyError
from vidkompy.models import BatchResult, ComposeResult
from vidkompy.options import KEYINT, Options
from vidkompy.pipeline.entry import run_batch, run_compose

log = logging.getLogger("vidkompy")

COMMANDS = ("compose", "align", "batch", "cache", "server")
EPILOG = """\
commands (each has its own --help):
  vidkompy [compose] BG FG [options]   align fg in bg and write the overlay (the default command)
  vidkompy align BG FG [--json]        the alignment only: offset, scale, a bg frame per fg frame
  vidkompy batch FOLDER -o OUTDIR      every NAME.bg.EXT + NAME.fg.EXT pair of a folder
  vidkompy cache info|prune            what the cache holds, and trimming it
  vidkompy server status|stop          the local Prefect server that CLI runs share
  vidkompy --version

examples:
  vidkompy bg.mp4 fg.mp4                      writes bg_overlay_fg.mp4 here
  vidkompy bg.mp4 fg.mp4 -o out.mov --codec prores --blend
  vidkompy align bg.mp4 fg.mp4 --json         prints {"x", "y", "scale", "confidence", "frames", ...}

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
    p.add_argument("--timeline", metavar="OUT", default=None,
                   help="also write the conform as a timeline for an editing application: OUT.otio "
                        "(OpenTimelineIO), OUT.xml (FCP7 XML) or OUT.edl (CMX 3600); a bare extension (.otio) "
                        "puts it beside the output")
    p.add_argument("--json", action="store_true", help="print the alignment as one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="show detail, Prefect's log and tracebacks")
    p.add_argument("-V", "--version", action="version", version=f"vidkompy {_version()}")


def _version() -> str:
    from vidkompy import __version__

    return __version__


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--codec", default="h264", metavar="CODEC",
                   help="h264 (default), hevc, prores (ProRes 422 HQ, .mov) or ffv1 (lossless, .mkv); the container "
                        "follows the output's extension (.mp4, .mov, .mkv); 10-bit inputs give 10-bit output where "
                        "the codec carries it")
    p.add_argument("--crf", type=int, default=None, metavar="N",
                   help="quality for h264/hevc (lower is better; defaults 18 / 20)")
    p.add_argument("--preset", default=None, metavar="NAME", help="x264/x265 speed preset (default: veryfast)")
    p.add_argument("--audio", default="fg", metavar="fg|bg|none",
                   help="whose audio the output carries (default fg; bg's when fg has none)")
    p.add_argument("--keyint", type=int, default=KEYINT, metavar="N",
                   help=f"the output is encoded in independent chunks of N fg frames (default {KEYINT}, x264's "
                        "own longest GOP): at most N frames between keyframes, and what --segments cuts on")
    p.add_argument("--bit-depth", type=int, choices=(8, 10), default=None, metavar="8|10",
                   help="bits per sample of the output (default: the inputs' deepest, where the codec carries it; "
                        "10-bit h264 is High 10, which some players lack)")


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
                   help="also write the frame map (fg time vs bg time, match quality) as OUT.map.png")
    _output_options(c)
    c.add_argument("--segments", default="1", metavar="N|auto",
                   help="compose in N segments, each its own task run, joined without re-encoding (default 1: one "
                        "pass; 'auto': from the length and the Dask workers)")
    c.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the segments on the Dask scheduler at ADDRESS (tcp://host:8786), whose workers share "
                        "--cache-dir")
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
    _output_options(b)
    b.add_argument("--deployment", action="store_true",
                   help="run the `batch` deployment on the server in PREFECT_API_URL (its workers compose the "
                        "pairs) instead of composing here, and wait for it")
    b.add_argument("--max-parallel", type=int, default=4, metavar="N",
                   help="pairs in flight at once when run as a deployment (default: 4)")
    b.add_argument("-v", "--verbose", action="store_true", help="show detail, Prefect's log and tracebacks")
    sub.add_parser("cache", help="what the cache holds (info), and trimming it (prune)", add_help=False)
    sv = sub.add_parser("server", help="the local Prefect server that CLI runs share (status or stop)",
                        description="Without PREFECT_API_URL, the first run starts a Prefect server on loopback that "
                                    "later runs reuse (2 s of bookkeeping a run instead of 8-13 s); it stops after "
                                    "10 idle minutes. VIDKOMPY_LOCAL_SERVER=0 turns it off.")
    sv.add_argument("action", choices=("status", "stop"))
    sv.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    if {"--bg", "--fg"} & set(argv):
        # vidkompy 1.x took --bg/--fg/--output; say what replaced them rather than "invalid choice"
        print("vidkompy: error: BG and FG are positional now: vidkompy BG FG [-o OUT] (see docs/migration.md)",
              file=sys.stderr)
        raise SystemExit(2)
    if argv and argv[0] in ("-V", "--version"):
        from vidkompy import __version__

        print(f"vidkompy {__version__}")
        raise SystemExit(0)
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

    from vidkompy.pipeline.local_server import prefect_home

    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


def _boot_local_server(args: argparse.Namespace) -> None:
    """Start booting vidkompy's local server now, while this process imports and checks its inputs."""
    from vidkompy.pipeline import local_server

    if getattr(args, "deployment", False) or _configured_api_url() or os.environ.get(local_server.ENV_SWITCH) == "0":
        return
    try:
        local_server.ensure()
    except Exception as exc:  # a convenience must never stop a run: Prefect's temporary server remains
        log.debug("local Prefect server unavailable (%s)", exc)


def _server_command(action: str) -> int:
    from vidkompy.pipeline import local_server

    state = local_server.read_state()
    if action == "stop":
        print("stopped" if local_server.stop_server() else "no local server running")
        return 0
    if state and local_server.healthy(state["url"]):
        print(f"running at {state['url']} (pid {state['pid']})")
    else:
        print("no local server running")
    return 0


def options_from(args: argparse.Namespace) -> Options:
    """The run's options: every `Options` field the command's arguments carry, under the same name."""
    return Options(**{name: getattr(args, name) for name in Options.names() if hasattr(args, name)})


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vidkompy: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _install_progress() -> object | None:
    if not sys.stderr.isatty():
        return None
    from vidkompy import progress
    from vidkompy._cli.rich_progress import RichReporter

    reporter = RichReporter()
    progress.add_reporter(reporter)
    return reporter


def _report(result: ComposeResult, as_json: bool) -> None:
    if as_json:
        from vidkompy import __version__

        settings = result.settings.as_json() if result.settings else {}
        extra = {"timeline": result.timeline} if result.timeline else {}
        print(json.dumps({**result.alignment.as_json(), "version": __version__, "settings": settings, **extra}))
        return
    n = len(result.frames)
    where = f"x={result.x:.2f} y={result.y:.2f} scale={result.scale:.4f}"
    a = result.alignment
    if a.placement is not None:  # it moves: say so, and where most frames sit
        where = (f"placed {a.placement_mode} in {len(a.placement_stretches())} stretches (most frames at {where}; "
                 "align --json lists every frame's)")
    line = f"fg {'' if a.placement is not None else 'at '}{where}, confidence {result.confidence:.3f}, {n} frames"
    if result.unmatched:
        line += f", {result.alignment.n_unmatched} without a counterpart in bg"
    if result.output:
        line = f"wrote {result.output}: {line}"
    ran = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()) or "nothing (all cached)"
    print(line)
    if result.timeline:
        print(f"wrote {result.timeline}: the conform as a timeline")
    print(f"computed: {ran}")


def _report_batch(summary: BatchResult) -> int:
    from rich.console import Console
    from rich.table import Table

    columns = ("pair", "status", "x", "y", "scale", "confidence", "seconds", "error")
    table = Table(title="vidkompy batch")
    for col in columns:
        table.add_column(col)

    def fmt(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

    for r in summary.pairs:
        table.add_row(*(fmt(getattr(r, c)) for c in columns))
    Console(width=160).print(table)
    if summary.skipped_files:
        print(f"skipped (no pair): {', '.join(summary.skipped_files)}")
    if summary.failed:
        names = [r.pair for r in summary.failed]
        print(f"vidkompy: error: {len(names)} pair(s) failed: {', '.join(names)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from vidkompy.device import few_malloc_arenas

    few_malloc_arenas()  # before the threads that would each take an arena start
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "cache":
        from vidkompy._cli.cache import main as cache_main

        return cache_main(argv[1:])
    args = parse(argv)
    _quiet_prefect(args.verbose)
    _setup_logging(args.verbose)
    if args.command == "server":
        return _server_command(args.action)
    _boot_local_server(args)
    if args.command == "batch":
        try:
            summary = run_batch(args.folder, args.output_dir, options=options_from(args),
                                max_parallel=args.max_parallel, deployment=args.deployment)
            return _report_batch(summary)
        except VidkompyError as exc:
            print(f"vidkompy: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("vidkompy: interrupted", file=sys.stderr)
            sys.stderr.flush()
            os._exit(130)
    reporter = _install_progress()
    try:
        result = run_compose(args.bg, args.fg, getattr(args, "output", None), options=options_from(args),
                             write_video=args.command == "compose")
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
    _report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
