"""The ``purenet`` command: train, inspect, plot, evaluate, predict.

Every failure the user can cause (a missing file, a bad config, a corrupt checkpoint) ends
with one ``purenet: error: ...`` line on stderr and a non-zero exit, never a traceback.
SIGINT and SIGTERM during ``train`` save a checkpoint and exit with 130 and 143, after a
line giving the exact command that resumes the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import warnings
from typing import Any, Sequence

from purenet import __version__
from purenet.errors import CheckpointError, CheckpointNotFoundError, ExperimentError

EXIT_ERROR = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python's default would kill the process without a word."""

    signal_number = signal.SIGTERM


def _on_sigterm(number: int, frame: Any) -> None:
    raise Terminated("SIGTERM")


def _show(rows: dict[str, Any]) -> None:
    width = max(map(len, rows), default=0)
    for key, value in rows.items():
        if isinstance(value, float):
            value = "-" if not math.isfinite(value) else (
                round(value, 6) if abs(value) >= 1e-4 else f"{value:.6g}")
        print(f"{key:<{width}}  {'-' if value is None else value}")


def _json(value: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(value), indent=2)


# --- train ----------------------------------------------------------------------------


def resume_command(prog: str, argv: Sequence[str]) -> str:
    """The command line that resumes the run ``argv`` started: --force off, --resume on."""
    args = [a for a in argv if a != "--force"]
    if "--resume" not in args:
        args.append("--resume")
    return f"{prog} {shlex.join(args)}"


def _integer(low: int) -> Any:
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value
    return parse


def _train(args: argparse.Namespace, prog: str, argv: Sequence[str]) -> int:
    from purenet.experiment.config import load_experiment
    from purenet.experiment.rundir import default_run_dir
    from purenet.experiment.runner import run_experiment

    overrides = list(args.set or ())
    experiment = load_experiment(args.config, overrides)
    run_dir = args.run_dir or default_run_dir(experiment)
    print(f"{'resuming' if args.resume else 'training'} {experiment.name!r} in {run_dir}",
          flush=True)
    try:
        summary = run_experiment(experiment, run_dir, resume=args.resume, force=args.force,
                                 epochs=args.epochs, seed=args.seed,
                                 checkpoint_every=args.checkpoint_every,
                                 progress=False if args.no_progress else None)
    except KeyboardInterrupt as interrupt:
        number = int(getattr(interrupt, "signal_number", signal.SIGINT))
        state = getattr(interrupt, "state", None)
        where = (f"stopped after step {state.step}; its checkpoint is in "
                 f"{os.path.join(run_dir, 'checkpoints')}" if state is not None
                 else "stopped; the newest checkpoint (if any) is kept")
        print(f"\npurenet: {signal.Signals(number).name} received: {where}", file=sys.stderr)
        print(f"purenet: to resume, run: {resume_command(prog, argv)}", file=sys.stderr,
              flush=True)
        return 128 + number
    _show(summary)
    return 0


# --- inspect --------------------------------------------------------------------------


def _inspect_directory(path: str) -> dict[str, Any]:
    from purenet.checkpoint.format import summarize
    from purenet.checkpoint.policy import checkpoint_files

    directory = os.path.join(path, "checkpoints")
    directory = directory if os.path.isdir(directory) else path
    files = checkpoint_files(directory)
    if not files:
        raise CheckpointNotFoundError(f"no checkpoint files (step-*.h5) in {directory}")
    newest, statuses = None, []
    for _, file in reversed(files):
        try:
            info = summarize(file)
            statuses.append({"path": file, "integrity": "ok"})
            newest = newest or info
        except CheckpointError as error:
            statuses.append({"path": file, "integrity": f"bad: {error}"})
    if newest is None:
        raise CheckpointError(f"no valid checkpoint in {directory}: "
                              + "; ".join(s["integrity"] for s in statuses))
    return {**newest, "checkpoints": statuses[::-1]}


def _data_line(data: dict[str, Any] | None) -> str:
    """The data fingerprint in one line: each array's shape and the start of its digest."""
    if not data:
        return "not recorded (a format 1 file)"
    return "; ".join(f"{name} {'x'.join(map(str, v['shape']))} {v['xxh3_128'][:12]}"
                     for name, v in data.items() if v is not None)


def _inspect(args: argparse.Namespace) -> int:
    from purenet.checkpoint.format import summarize

    if os.path.isdir(args.path):
        info = _inspect_directory(args.path)
    else:
        info = summarize(args.path)
    if args.json:
        print(_json(info))
        return 0
    arch = info["architecture"]
    sizes = "-".join(str(n) for n in [arch[0]["input_dim"], *(l["output_dim"] for l in arch)])
    env = info["environment"]
    _show({"checkpoint": info["path"], "step": info["step"],
           "epoch": f"{info['epoch']} (+{info['batch_index']} batches)",
           "loss": info["loss"], "val_loss": info["val_loss"],
           "params_digest": info["params_digest"], "format_version": info["format_version"],
           "integrity": "ok (file digest verified, state checked against its run)",
           "purenet_version": info["purenet_version"], "created": info["created"],
           "seed": info["seed"], "dtype": info["dtype"], "optimizer": info["optimizer"],
           "architecture": f"{sizes} ({', '.join(l['activation'] for l in arch)})",
           "threads": f"{info.get('threads')} (the run's BLAS threads, applied on resume)",
           "environment": f"numpy {env.get('numpy')}, {env.get('blas')}",
           "data": _data_line(info.get("data"))})
    for status in info.get("checkpoints", ()):
        print(f"  {os.path.basename(status['path'])}: {status['integrity']}")
    return 0


# --- plot, evaluate, predict ----------------------------------------------------------


def _plot(args: argparse.Namespace) -> int:
    from purenet.cli.plot import plot_run

    for path in plot_run(args.run_dir):
        print(path)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from purenet.experiment.datasets import read_file, select_features
    from purenet.experiment.rundir import load_run
    from purenet.experiment.runner import measure, prepare_data

    run = load_run(args.run_dir)
    if args.data:
        if not args.target:
            raise ValueError("--data needs --target COLUMN, the column (or NPZ array) of "
                             "the targets")
        names, x, y, _ = read_file(args.data, args.target)
        x = select_features(names, x, run.scaler, args.data)
        what = args.data
    else:
        splits = prepare_data(run.experiment)
        if splits.x_test is None:
            raise ValueError(f"the run in {args.run_dir} has no test split (data.test_size "
                             "= 0); pass --data FILE --target COLUMN")
        x, y, what = splits.x_test, splits.y_test, "the run's test split"
    metrics = {"data": what, "samples": len(x), "step": run.checkpoint.state.step,
               **measure(run.experiment, run.params, run.scaler, x, y)}
    print(_json(metrics)) if args.json else _show(metrics)
    return 0


def _prediction_table(run: Any, x: Any) -> tuple[list[str], list[list[Any]]]:
    import numpy as np

    from purenet.core.network import predict

    out = np.asarray(predict(run.params, run.scaler.transform_x(x)), dtype=np.float64)
    k = out.shape[1]
    if not run.experiment.classifier:
        values = run.scaler.inverse_y(out)
        return ([run.scaler.target] if k == 1 else [f"{run.scaler.target}_{j}" for j in range(k)],
                values.tolist())
    if run.experiment.loss == "categorical_crossentropy":
        columns = [f"p_{j}" for j in range(k)] + ["class"]
        return columns, [[*row, int(row.argmax())] for row in out]
    if k == 1:
        return ["p_1", "class"], [[row[0], int(row[0] > 0.5)] for row in out]
    columns = [f"p_{j}" for j in range(k)] + [f"class_{j}" for j in range(k)]
    return columns, [[*row, *(int(p > 0.5) for p in row)] for row in out]


def _predict(args: argparse.Namespace) -> int:
    from purenet.experiment.datasets import read_csv, select_features
    from purenet.experiment.rundir import load_run, write_atomic

    run = load_run(args.run_dir)
    names, values = read_csv(args.input)
    columns, rows = _prediction_table(run, select_features(names, values, run.scaler,
                                                           args.input))
    text = ",".join(columns) + "\n" + "".join(
        ",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row) + "\n"
        for row in rows)
    if args.output:
        write_atomic(args.output, text)
        print(f"{len(rows)} predictions written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _rewind(args: argparse.Namespace) -> int:
    from purenet.checkpoint.format import write_checkpoint
    from purenet.checkpoint.rewind import state_at
    from purenet.experiment.rundir import load_run
    from purenet.experiment.runner import fit_arrays, prepare_data

    run = load_run(args.run_dir)
    x, y, validation = fit_arrays(run.experiment, prepare_data(run.experiment))
    state = state_at(os.path.join(args.run_dir, "checkpoints"), args.step, x, y, validation)
    output = args.output or os.path.join(args.run_dir, "rewound", f"step-{args.step:08d}.h5")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    checkpoint = run.checkpoint
    write_checkpoint(output, state, checkpoint.config, checkpoint.experiment, checkpoint.data)
    print(f"the state after step {state.step} (epoch {state.epoch}, +{state.batch_index} "
          f"batches) is in {output}")
    return 0


# --- the parser -----------------------------------------------------------------------


def build_parser(prog: str = "purenet") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False, description=(
        "purenet: train dense networks from TOML experiment files, with bit-identical "
        "resumable checkpoints."))
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_run_commands(commands)
    return parser


def _add_train(commands: Any) -> None:
    train = commands.add_parser("train", allow_abbrev=False, help="train an experiment file",
                                description="Train CONFIG.toml in a run directory.")
    train.add_argument("config", metavar="CONFIG", help="the experiment file (.toml)")
    train.add_argument("--run-dir", metavar="DIR", help="default: runs/<config name>")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in the run directory from its newest checkpoint")
    train.add_argument("--force", action="store_true",
                       help="delete the run already in the run directory and start again")
    train.add_argument("--epochs", type=_integer(1), metavar="N", help="override epochs")
    train.add_argument("--seed", type=int, metavar="N", help="override seed")
    train.add_argument("--checkpoint-every", type=_integer(1), metavar="N",
                       help="checkpoint every N steps (instead of the config's policy)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. optimizer.learning_rate=0.01 "
                            "(value read as TOML; repeatable)")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bar (by default shown when stderr is a terminal)")


def _add_run_commands(commands: Any) -> None:
    """The commands that read a run directory or a checkpoint."""
    inspect = commands.add_parser("inspect", help="show and verify a checkpoint",
                                  description="Verify a checkpoint file, or the newest valid "
                                              "one of a run or checkpoints directory.")
    inspect.add_argument("path", metavar="PATH", help="checkpoint file, run dir or checkpoints dir")
    inspect.add_argument("--json", action="store_true", help="one JSON object")

    rewind = commands.add_parser(
        "rewind", help="the exact state of a run at any step, as a checkpoint file",
        description="Replay the run in RUN_DIR from its newest checkpoint at or before STEP "
                    "and write the state after STEP as a checkpoint file (bit for bit the "
                    "state the uninterrupted run had).")
    rewind.add_argument("run_dir", metavar="RUN_DIR")
    rewind.add_argument("--step", type=_integer(0), required=True, metavar="K")
    rewind.add_argument("--output", metavar="FILE",
                        help="default: RUN_DIR/rewound/step-K.h5 (outside checkpoints/)")

    plot = commands.add_parser("plot", help="write PNG figures into a run directory")
    plot.add_argument("run_dir", metavar="RUN_DIR")

    evaluate = commands.add_parser("evaluate", help="metrics on the test split or a file")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--data", metavar="FILE", help="a .csv or .npz file instead")
    evaluate.add_argument("--target", metavar="COLUMN", help="the target column of --data")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")

    predict = commands.add_parser("predict", help="predictions for the rows of a CSV file")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("input", metavar="INPUT.csv")
    predict.add_argument("--output", metavar="FILE", help="default: stdout")


HANDLERS = {"inspect": _inspect, "plot": _plot, "evaluate": _evaluate, "predict": _predict,
            "rewind": _rewind}


def _warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
    print(f"purenet: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, prog: str = "purenet") -> int:
    """Run the ``purenet`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_warning, warnings.showwarning = warnings.showwarning, _warning
    try:
        if args.command == "train":
            return _train(args, prog, argv)
        return HANDLERS[args.command](args)
    except BrokenPipeError:   # e.g. `purenet inspect --json RUN | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (CheckpointError, ExperimentError, ValueError, TypeError, OSError,
            ArithmeticError) as error:
        print(f"purenet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        number = int(getattr(interrupt, "signal_number", signal.SIGINT))
        print(f"\npurenet: {signal.Signals(number).name} received: stopped", file=sys.stderr)
        return 128 + number
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = previous_warning
