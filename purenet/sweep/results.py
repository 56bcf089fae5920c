"""A sweep's record: ``sweep.json`` (what it sweeps) and ``results.csv`` (one row a
finished trial: its settings, final metrics, step, params digest, seconds)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any, Iterable, Mapping

from purenet.errors import RunDirectoryError
from purenet.experiment import limits
from purenet.experiment.rundir import write_atomic

RESULTS, SWEEP_RECORD = "results.csv", "sweep.json"
# The metrics of a summary, in this order where present.
PARTS = ("train_", "val_", "test_")
MEASURES = ("loss", "accuracy", "mse", "mae", "r2", "variance")


def metric_columns(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    present = {key for summary in summaries for key in summary}
    return [p + m for p in PARTS for m in MEASURES if p + m in present]


def result_rows(keys: Iterable[str], trials: Iterable[tuple[str, Mapping[str, Any],
                Mapping[str, Any]]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``(header, rows)`` for ``(trial id, settings, summary)`` triples."""
    trials = list(trials)
    metrics = metric_columns(summary for _, _, summary in trials)
    header = ["trial", *keys, "step", "epoch", *metrics, "params_digest", "seconds"]
    rows = []
    for ident, settings, summary in trials:
        row = {"trial": ident, **settings}
        row.update({k: summary.get(k) for k in ("step", "epoch", *metrics, "params_digest",
                                                   "seconds")})
        rows.append(row)
    return header, rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def write_results(sweep_dir: str, header: list[str], rows: list[dict[str, Any]]) -> str:
    """Write ``results.csv`` atomically; returns its path."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(_cell(row.get(column)) for column in header)
    path = os.path.join(sweep_dir, RESULTS)
    write_atomic(path, out.getvalue())
    return path


def write_record(sweep_dir: str, sweep: Any) -> None:
    """``sweep.json``: the sweep's name, file, keys and trials (id and settings)."""
    record = {"name": sweep.name, "file": os.path.abspath(sweep.path), "keys": list(sweep.keys),
              "trials": [{"id": t.id, "settings": t.settings} for t in sweep.trials]}
    write_atomic(os.path.join(sweep_dir, SWEEP_RECORD), json.dumps(record, indent=2) + "\n")


def is_sweep_dir(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(os.fspath(path), SWEEP_RECORD))


def read_results(sweep_dir: str | os.PathLike) -> tuple[list[str], list[dict[str, Any]]]:
    """``(swept keys, rows)`` of a sweep directory; numbers parsed, empty cells None.

    Raises:
        RunDirectoryError: not a sweep directory, or no trial finished yet.
    """
    sweep_dir = os.fspath(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise RunDirectoryError(f"{sweep_dir} is not a sweep directory (it has no "
                                f"{SWEEP_RECORD}); make one with `purenet sweep SWEEP.toml`")
    record_path = os.path.join(sweep_dir, SWEEP_RECORD)
    record = limits.read_json(record_path, "a sweep record (sweep.json)")
    keys = record.get("keys") if isinstance(record, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RunDirectoryError(f"{record_path} is not a sweep record (an object whose keys is "
                                "a list of names); run the sweep again to rewrite it")
    path = os.path.join(sweep_dir, RESULTS)
    if not os.path.lexists(path):
        raise RunDirectoryError(f"{sweep_dir} has no {RESULTS} yet: no trial has finished")
    text = limits.read_text(path, "a results file (results.csv)")
    try:
        rows = [{k: _parse(k, v) for k, v in row.items()}
                for row in csv.DictReader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise RunDirectoryError(f"{path} is not a results table ({error}); run the sweep "
                                "again (--resume) to rewrite it") from None
    return keys, rows


def _parse(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in ("trial", "params_digest"):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)
