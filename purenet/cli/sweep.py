"""``purenet sweep``, ``diff`` and ``verify``: a thin face on ``purenet.sweep``.

``add_sweep_commands`` registers the three on the ``purenet`` parser; ``SWEEP_HANDLERS``
maps each to the function that runs it (``args -> exit status``).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

EXIT_ERROR = 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _workers(text: str) -> int:
    from purenet.sweep.run import MAX_WORKERS

    if not text.isdigit() or not 1 <= int(text[:8]) <= MAX_WORKERS or len(text) > 8:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_WORKERS} (one "
                                         f"worker per core is used at most), got {text[:40]!r}")
    return int(text)


def add_sweep_commands(commands: Any) -> None:
    """Add ``sweep``, ``diff`` and ``verify`` to the ``purenet`` subparsers."""
    sweep = commands.add_parser(
        "sweep", allow_abbrev=False, help="run every trial of a sweep file on Dask",
        description="Run each trial of SWEEP.toml (an experiment file plus a [sweep] table) "
                    "in its own run directory, runs/<sweep>/<trial-id>/, on a Dask cluster; "
                    "results in runs/<sweep>/results.csv. Needs: pip install 'purenet[dask]'.")
    sweep.add_argument("config", metavar="SWEEP", help="the sweep file (.toml)")
    sweep.add_argument("--workers", type=_workers, metavar="N",
                       help="worker processes of the local cluster (default: cores // the "
                            "trials' BLAS threads)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="submit to this running Dask scheduler (tcp://host:8786); its "
                            "workers must see the sweep directory at the same path")
    sweep.add_argument("--resume", action="store_true",
                       help="finish a sweep begun before: skip finished trials, resume the rest")
    sweep.add_argument("--sweep-dir", metavar="DIR", help="default: runs/<sweep name>")
    sweep.add_argument("--lock-timeout", type=_seconds, default=600.0, metavar="SECONDS",
                       help="how long a trial waits for a live trainer of its run directory "
                            "(default 600)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

    diff = commands.add_parser(
        "diff", help="settings that differ and the first step where two runs part",
        description="Compare two run directories: the settings that differ, and the first "
                    "step where their parameters differ (from their digests.csv, narrowed "
                    "to the exact step by replaying both).")
    diff.add_argument("run_a", metavar="RUN_A")
    diff.add_argument("run_b", metavar="RUN_B")
    diff.add_argument("--no-replay", action="store_true",
                      help="only bracket the step between recorded digests")
    diff.add_argument("--json", action="store_true", help="one JSON object")

    verify = commands.add_parser(
        "verify", help="replay a run between two checkpoints and check the digest",
        description="Replay RUN_DIR from an older checkpoint (default: its oldest before the "
                    "newest; the start when there is none) to its newest, and check the "
                    "replay ends with the saved parameters: a witness that resume is exact "
                    "on this machine. Exits 1 when the digests differ.")
    verify.add_argument("run_dir", metavar="RUN_DIR")
    verify.add_argument("--from-step", type=int, metavar="K",
                        help="replay from the checkpoint of step K (0: from the start)")
    verify.add_argument("--json", action="store_true", help="one JSON object")


# --- sweep ----------------------------------------------------------------------------


def _trained_seconds(summary: dict[str, Any]) -> str:
    """The seconds of the trial's last training session, as results.csv has them."""
    value = summary.get("seconds")
    return "-" if not isinstance(value, (int, float)) else f"{value:.2f}"


class _Display:
    """A tqdm bar over trials, with each finished trial printed above it as a table row."""

    def __init__(self, progress: bool) -> None:
        self.progress, self._bar, self._metric, self._width = progress, None, None, 44

    def start(self, trials: list[Any], workers: int) -> None:
        from tqdm.auto import tqdm

        print(f"{len(trials)} trial(s) to run on {workers} worker(s)", flush=True)
        self._width = max((len(t.id) for t in trials), default=5)
        self._bar = tqdm(total=len(trials), unit="trial", disable=not self.progress,
                         dynamic_ncols=True)

    def row(self, outcome: Any) -> None:
        from tqdm.auto import tqdm

        summary, width = outcome.summary or {}, self._width
        if self._metric is None:
            self._metric = next((m for m in ("test_accuracy", "test_loss", "train_loss")
                                 if m in summary), "test_loss")
            tqdm.write(f"{'trial':<{width}} {'step':>7} {self._metric:>13} "
                       f"{'params_digest':<14} {'seconds':>8}  worker")
        if outcome.error is not None:
            tqdm.write(f"{outcome.trial.id:<{width}} FAILED: {outcome.error}")
        else:
            value = summary.get(self._metric)
            text = "-" if value is None else f"{value:.6g}"
            resumed = f" (resumed at step {outcome.start_step})" if outcome.start_step else ""
            tqdm.write(f"{outcome.trial.id:<{width}} {summary.get('step', '-'):>7} {text:>13} "
                       f"{str(summary.get('params_digest'))[:12]:<14} "
                       f"{_trained_seconds(summary):>8}  {outcome.host}{resumed}")
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def sweep(args: argparse.Namespace) -> int:
    from purenet.sweep.run import require_dask

    try:
        require_dask()
    except ImportError as error:
        print(f"purenet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    from purenet.sweep.run import run_sweep
    from purenet.sweep.spec import load_sweep

    spec = load_sweep(args.config)
    where = args.scheduler or "a local Dask cluster"
    print(f"sweep {spec.name!r}: {len(spec.trials)} trials over {list(spec.keys)}, on {where}",
          flush=True)
    display = _Display(progress=not args.no_progress and sys.stderr.isatty())
    try:
        report = run_sweep(spec, sweep_dir=args.sweep_dir, workers=args.workers,
                           scheduler=args.scheduler, resume=args.resume,
                           lock_timeout=args.lock_timeout, on_start=display.start,
                           on_result=display.row)
    except KeyboardInterrupt:
        command = [a for a in sys.argv[1:] if a != "--resume"]
        print(f"\npurenet: the sweep stopped; finished trials are kept, the others resume "
              f"from their checkpoints with: purenet {' '.join(command)} --resume",
              file=sys.stderr)
        raise
    finally:
        display.close()
    done = sum(o.summary is not None for o in report.outcomes)
    total = report.startup_seconds + report.seconds
    print(f"{done} of {len(spec.trials)} trials finished ({len(report.skipped)} before this "
          f"run); {total:.1f} s ({report.startup_seconds:.1f} s of it starting the cluster); "
          f"results in {report.results_path}")
    for failure in report.failures:
        print(f"purenet: error: {failure.error}", file=sys.stderr)
    if report.failures:
        print(f"purenet: {len(report.failures)} trial(s) failed; fix the cause and run again "
              "with --resume to finish them", file=sys.stderr)
    return EXIT_ERROR if report.failures else 0


# --- diff, verify ---------------------------------------------------------------------


def diff(args: argparse.Namespace) -> int:
    from purenet.cli.readers import as_json
    from purenet.sweep.rundiff import describe, diff as compare

    result = compare(args.run_a, args.run_b, replay=not args.no_replay)
    if args.json:
        import attrs

        print(as_json({**attrs.asdict(result), "identical": result.identical}))
    else:
        print("\n".join(describe(result)))
    return 0


def verify(args: argparse.Namespace) -> int:
    from purenet.cli.readers import as_json, scope_lines
    from purenet.sweep.verification import verify as replay

    result = replay(args.run_dir, args.from_step)
    if args.json:
        import attrs

        print(as_json({**attrs.asdict(result), "ok": result.ok,
                       "comparable": result.comparable}))
    else:
        print(f"replayed {args.run_dir} from step {result.from_step} to step "
              f"{result.to_step} in {result.seconds:.2f} s\n"
              f"saved    params_digest {result.expected_digest}\n"
              f"replayed params_digest {result.replayed_digest}")
        for line in scope_lines(result.crossings, result.replay_crossing):
            print(line)
        print(_verdict(result))
    return 0 if result.ok else EXIT_ERROR


def _verdict(result: Any) -> str:
    if result.ok:
        return "ok: bit-identical"
    if not result.comparable:
        return ("MISMATCH, as may be: the replay crossed numerics or BLAS scopes, where bit "
                "identity is not promised (docs/determinism.md)")
    return "MISMATCH: resume is not exact here"


SWEEP_HANDLERS = {"sweep": sweep, "diff": diff, "verify": verify}
