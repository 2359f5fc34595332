"""``python -m benchmarks``: run the cases, print the tables, write ``results/<machine>.json``.

Prefect gets a fresh ``PREFECT_HOME`` per benchmark run (no state from the
user's, no server from ``PREFECT_API_URL``), analytics off. The full run takes
about half an hour on 2 cores the first time (footage is generated and cached),
``--quick`` a few minutes, ``--length`` (1 to 20 minutes of 1080p and 2 hours
small, into ``<machine>.length.json``) a few hours. A full or ``--length`` run
into ``benchmarks/results`` then re-renders the README's performance summary
(``--readme`` does only that).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, machine, peer, prefect_cost, summary
from benchmarks.cases import ALL_CASES, CASES, CLI_CASE, select
from benchmarks.footage import build
from benchmarks.metrics import offset_error, score_frames
from benchmarks.report import length_summary, print_tables, ratio, targets, write_json
from benchmarks.runner import describe_footage, empty_result, run_case


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_PROFILE", "VIDKOMPY_CACHE_DIR")}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PYTHONPATH=str(REPO))
    return env


def _commit() -> str | None:
    """The repository's HEAD, "+dirty" when vidkompy's code differs from it: results belong to a version.

    Read-only git; compared at start and end, it shows a run that straddled a change.
    """
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "vidkompy", "tasks", "flows"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="vidkompy against exact truth, timed against an FFmpeg-only floor.")
    p.add_argument("--cases", metavar="NAME,...", help="run only these cases, in this order")
    p.add_argument("--quick", action="store_true", help="a small subset (a few minutes)")
    # `make bench LENGTH=1`: make puts command-line variables in the recipe's environment
    p.add_argument("--length", action="store_true", default=os.environ.get("LENGTH", "0") not in ("", "0"),
                   help="the length cases (1-20 min of 1080p, 2 h small; hours) into <machine>.length.json "
                        "(also LENGTH=1 in the environment)")
    p.add_argument("--readme", action="store_true",
                   help="re-render README.md's performance summary from the committed JSON, run nothing")
    p.add_argument("--peer", action="store_true", help="also run the published vidkompy 1.2.5 from PyPI")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="folder for the JSON")
    p.add_argument("--cli-runs", type=int, default=None, metavar="N",
                   help="CLI runs per Prefect mode (default 3; 1 with --quick)")
    p.add_argument("--gpu", action="store_true", help="let vidkompy use a GPU (default: --no-gpu, as on CI)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--moving", action="store_true",
                   help="the moving-placement cases instead (benchmarks.moving; --cases and --out apply)")
    return p.parse_args(argv)


def _cli_block(work: Path, env: dict[str, str], runs: int, gpu: bool) -> dict:
    case = next(c for c in CASES if c.name == CLI_CASE)
    truth = build(case.name, case.source, case.params)
    _log(f"CLI fixed cost on {case.name}: {runs} run(s) each with a temporary server, a running server, "
         "and no server configured")
    cli = prefect_cost.measure(truth, work / "cli", env, runs=runs, gpu=gpu, timeout=600)
    al = cli["align_json"]
    got = al.pop("json")
    al.update(exact=None, offset_px=None)
    if got is not None:
        al.update(exact=round(score_frames(got["frames"], truth).exact, 5),
                  offset_px=round(offset_error(got["x"], got["y"], truth), 4))
    return {"case": case.name, "runs": runs, **cli}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.moving:
        from benchmarks import moving

        return moving.main((["--cases", args.cases] if args.cases else []) + ["--out", str(args.out)])
    if args.list:
        for c in ALL_CASES:
            tags = ("quick " if c.quick else "") + ("long " if c.long else "") + ("length " if c.length else "")
            took = f" (~{c.minutes:g} min here)" if c.minutes else ""
            print(f"{c.name:20} {tags}{c.covers}{took}")
        print("length cases run only by name or with --length (~2-2.5 h); their footage is generated once and "
              "cached (1080p at 40-47 frames/s on 2 quiet cores: 20 min of it in ~12 min; the 2-hour small pair "
              "in ~7-12 min)")
        return 0
    if args.readme:
        path = summary.write_readme(summary.latest_results(args.out))
        print(f"README.md summary re-rendered from {path}")
        return 0
    chosen = select(args.cases, args.quick, args.length)
    runs = args.cli_runs or (1 if args.quick else 3)
    started = time.perf_counter()
    desc = machine.describe()
    slug = machine.slug(desc)
    suffix = ".partial" if args.cases else (".length" if args.length else (".quick" if args.quick else ""))
    work = Path(tempfile.mkdtemp(prefix="vidkompy-bench-"))
    env = _env(work / "prefect-home")
    peer_note = None
    if args.peer:
        peer_note = peer.unavailable()
        if peer_note:
            _log(peer_note)
    _log(f"{len(chosen)} case(s) on {slug}; scratch {work}")
    results: list[dict] = []
    cli, db_init, local_boot = None, None, None
    commit_start = _commit()
    try:
        _log("creating Prefect's database")
        db_init = prefect_cost.init_database(env, work)
        if any(c.name == CLI_CASE for c in chosen):
            cli = _cli_block(work, env, runs, args.gpu)
        # Every case then finds vidkompy's local server up, as a user's second run does.
        local_boot = prefect_cost.start_local_server(env, work)
        for n, case in enumerate(chosen, 1):
            _log(f"[{n}/{len(chosen)}] {case.name}: footage")
            r = empty_result(case)

            def log(msg: str, name: str = case.name) -> None:
                _log(f"{name}: {msg}")

            try:
                truth = build(case.name, case.source, case.params, log=log)
                gen = describe_footage(truth)
                if gen["generation_s"] is not None:
                    log(f"footage: {gen['minutes']:g} min, generated in {gen['generation_s']:.0f} s "
                        f"({gen['generation_fps']:.0f} bg frames/s; cached)")
                r = run_case(case, truth, work, env, timeout=3600 if case.long else 900, gpu=args.gpu, log=log)
            except Exception as exc:  # noqa: BLE001 - one broken case is a row, not the end of the run
                r["error"] = f"{type(exc).__name__}: {exc}"[:600]
                _log(f"{case.name}: FAILED {r['error']}")
            if args.peer:
                if peer_note or r["error"]:
                    r["peer"] = peer.skipped(peer_note or "vidkompy failed on this case")
                else:
                    _log(f"{case.name}: peer vidkompy {peer.PEER_VERSION}")
                    p = peer.run_peer(truth, work, env, timeout=max(300.0, 30 * (r["floor"]["seconds"] or 10)))
                    r["peer"] = {**p, "ratio": ratio(p["seconds"], r["floor"]["seconds"])}
            results.append(r)
    finally:
        prefect_cost.stop_local_server(env, work)
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine_slug": slug,
        "machine": desc,
        "run": {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit": commit_start, "commit_at_end": _commit(), "quick": args.quick,
                "cases": [c.name for c in chosen], "peer": args.peer, "gpu": args.gpu,
                "seconds": round(time.perf_counter() - started, 1), "load_1m_at_end": round(os.getloadavg()[0], 2)},
        "prefect_db_init_s": db_init,
        "local_server_boot_s": local_boot,
        "cli": cli,
        "cases": results,
        "peer_note": peer_note,
    }
    result["length"] = length_summary(results)
    result["targets"] = targets(results, cli)
    path = args.out / f"{slug}{suffix}.json"
    write_json(result, path)
    print_tables(result)
    print(f"wrote {path}")
    main_json = args.out / f"{slug}.json"
    if suffix in ("", ".length") and args.out.resolve() == summary.RESULTS.resolve() and main_json.exists():
        summary.write_readme(main_json)
        print(f"README.md summary re-rendered from {main_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
