"""The ``purenet`` commands that read a run or a checkpoint: inspect, plot, evaluate,
predict, rewind (``commands.py`` parses the command line and trains)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from purenet.errors import CheckpointError, CheckpointNotFoundError, UnregisteredPieceError


def show(rows: dict[str, Any]) -> None:
    width = max(map(len, rows), default=0)
    for key, value in rows.items():
        if isinstance(value, float):
            value = "-" if not math.isfinite(value) else (
                round(value, 6) if abs(value) >= 1e-4 else f"{value:.6g}")
        print(f"{key:<{width}}  {'-' if value is None else value}")


def as_json(value: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(value), indent=2)


# --- inspect --------------------------------------------------------------------------


def _inspect_directory(path: str) -> dict[str, Any]:
    from purenet.checkpoint.format import summarize
    from purenet.checkpoint.policy import checkpoint_files, checkpoints_directory, read_named

    directory = checkpoints_directory(path)
    files = checkpoint_files(directory)
    if not files:
        raise CheckpointNotFoundError(f"no checkpoint files (step-*.h5) in {directory}")
    newest, statuses = None, []
    for step, file in reversed(files):
        try:   # the same reading as every other reader of a directory: names checked too
            info = summarize(read_named(step, file))
            statuses.append({"path": file, "integrity": "ok"})
            newest = newest or info
        except UnregisteredPieceError:
            raise   # not damaged: every file of the run needs the piece
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


def scope_lines(crossings: Any, replay_crossing: Any) -> list[str]:
    """The crossings of a run and of its replay (``Crossing.to_dict()`` forms), one line
    each; none for a run in one scope."""
    from purenet.checkpoint.scope import describe_plain

    lines = [f"the run crossed scopes {describe_plain(c)}" for c in crossings]
    if replay_crossing is not None:
        lines.append(f"this replay runs in another scope than the run did "
                     f"{describe_plain(replay_crossing)}")
    return lines


def _scope_here(info: dict[str, Any], here: dict[str, Any]) -> str:
    """Whether this process computes in the scope of the file's newest steps."""
    from purenet.checkpoint import scope

    changed = scope.crossing(info["step"], scope.scope_of(info["numerics"], info["environment"]),
                             here)
    if changed is None:
        return "the same (a resume here is bit-identical to the uninterrupted run)"
    return ("other: " + ", ".join(f"{name} {after}" for name, _, after in changed.changes)
            + " (a resume here goes on, with a warning, outside bit identity)")


def inspect(args: argparse.Namespace) -> int:
    from purenet.checkpoint.format import summarize

    if os.path.isdir(args.path):
        info = _inspect_directory(args.path)
    else:
        info = summarize(args.path)
    views = None
    if getattr(args, "deep", False):
        from purenet.checkpoint.legacy import compare_views

        views = compare_views(info["path"])
        info["views"] = {"same": not views, "differences": views}
    status = 1 if views else 0
    if args.json:
        print(as_json(info))
        return status
    from purenet.core.records import Architecture

    env, here = info["environment"], info["scope_here"]
    show({"checkpoint": info["path"], "step": info["step"],
           "epoch": f"{info['epoch']} (+{info['batch_index']} batches)",
           "loss": info["loss"], "val_loss": info["val_loss"],
           "params_digest": info["params_digest"], "format_version": info["format_version"],
           "integrity": "ok (file digest verified, state checked against its run)",
           "purenet_version": info["purenet_version"], "created": info["created"],
           "seed": info["seed"], "dtype": info["dtype"], "optimizer": info["optimizer"],
           "architecture": Architecture.from_dicts(info["architecture"]).describe(),
           "threads": f"{info.get('threads')} (the run's BLAS threads, applied on resume)",
           "numerics": info["numerics"],
           "environment": f"numpy {env.get('numpy')} "
                          f"({env.get('numpy_simd') or 'SIMD targets not recorded'}), "
                          f"{env.get('blas')}",
           "scope here": _scope_here(info, here),
           "data": _data_line(info.get("data"))})
    for line in scope_lines(info["crossings"], None):
        print(line)
    if views is not None:
        print("HDF5 view: " + ("the same as the manifest's (what purenet reads)" if not views
                               else "DIFFERENT from the manifest's, which purenet reads:"))
        for line in views:
            print(f"  {line}")
    for checked in info.get("checkpoints", ()):
        print(f"  {os.path.basename(checked['path'])}: {checked['integrity']}")
    return status


# --- plot, evaluate, predict ----------------------------------------------------------


def plot(args: argparse.Namespace) -> int:
    from purenet.cli.plot import plot_run
    from purenet.sweep.plot import plot_sweep
    from purenet.sweep.results import is_sweep_dir

    if is_sweep_dir(args.run_dir):
        print(f"purenet: plotting the sweep in {args.run_dir}", file=sys.stderr, flush=True)
        written = plot_sweep(args.run_dir)
    else:
        written = plot_run(args.run_dir, lambda line: print(f"purenet: plot: {line}",
                                                            file=sys.stderr, flush=True))
    for path in written:
        print(path)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from purenet.experiment.csvfile import feature_columns
    from purenet.experiment.datasets import read_file
    from purenet.experiment.readrun import check_training_data, read_run
    from purenet.experiment.runner import measure, prepare_data

    run = read_run(args.run_dir)
    if args.data:
        if not args.target:
            raise ValueError("--data needs --target COLUMN, the column (or NPZ array) of "
                             "the targets")
        names, x, y, _ = read_file(args.data, args.target)
        x = x[:, feature_columns(args.data, names, run.scaler.feature_names)]
        what = args.data
    else:
        splits = prepare_data(run.experiment)
        check_training_data(run, splits.x_train)
        if splits.x_test is None:
            raise ValueError(f"the run in {args.run_dir} has no test split (data.test_size "
                             "= 0); pass --data FILE --target COLUMN")
        x, y, what = splits.x_test, splits.y_test, "the run's test split"
    metrics = {"data": what, "samples": len(x), "step": run.checkpoint.state.step,
               **measure(run.model(), x, y)}
    print(as_json(metrics)) if args.json else show(metrics)
    return 0


def prediction_table(model: Any, x: Any, target: str) -> tuple[list[str], list[list[Any]]]:
    """The CSV columns and rows of ``model``'s predictions for ``x``: probabilities and
    class for a classifier, the target's values for a regression."""
    import numpy as np

    if model.task == "regression":
        values = np.asarray(model.predict(x), np.float64).reshape(len(x), -1)
        k = values.shape[1]
        return [target] if k == 1 else [f"{target}_{j}" for j in range(k)], values.tolist()
    proba = np.asarray(model.predict_proba(x), np.float64)
    classes = np.asarray(model.predict(x))
    if model.task == "binary":
        return ["p_1", "class"], [[p, int(c)] for p, c in zip(proba[:, 1], classes)]
    k = proba.shape[1]
    if model.task == "multiclass":
        return [f"p_{j}" for j in range(k)] + ["class"], [
            [*row, int(c)] for row, c in zip(proba.tolist(), classes)]
    return [f"p_{j}" for j in range(k)] + [f"class_{j}" for j in range(k)], [
        [*row, *map(int, labels)] for row, labels in zip(proba.tolist(), classes)]


# Bigger inputs are for a script with pn.load_run, which can predict in pieces.
MAX_PREDICT_BYTES = 2 ** 30


def predict(args: argparse.Namespace) -> int:
    from purenet.experiment.csvfile import read_features
    from purenet.experiment.readrun import read_run
    from purenet.experiment.rundir import check_output, write_atomic

    if args.output:
        check_output(args.output, args.run_dir)
    run = read_run(args.run_dir)
    x = read_features(args.input, run.scaler.feature_names, run.scaler.target,
                      header=not args.no_header, max_bytes=MAX_PREDICT_BYTES)
    columns, rows = prediction_table(run.model(), x, run.scaler.target)
    text = ",".join(columns) + "\n" + "".join(
        ",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in row) + "\n"
        for row in rows)
    if args.output:
        write_atomic(args.output, text)
        print(f"{len(rows)} predictions written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def rewind(args: argparse.Namespace) -> int:
    from purenet.checkpoint.format import write_checkpoint
    from purenet.checkpoint.rewind import replay_to
    from purenet.experiment.readrun import read_run
    from purenet.experiment.rundir import check_output
    from purenet.experiment.runner import fit_arrays

    output = args.output or os.path.join(args.run_dir, "rewound", f"step-{args.step:08d}.h5")
    if args.output:
        check_output(output, args.run_dir)
    run = read_run(args.run_dir)
    x, y, validation = fit_arrays(run.experiment)
    replayed = replay_to(os.path.join(args.run_dir, "checkpoints"), args.step, x, y, validation)
    state = replayed.state
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    checkpoint = run.checkpoint
    write_checkpoint(output, state, checkpoint.config, checkpoint.experiment, checkpoint.data,
                     replayed.crossings)
    print(f"the state after step {state.step} (epoch {state.epoch}, +{state.batch_index} "
          f"batches) is in {output}")
    return 0
