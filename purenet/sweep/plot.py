"""Figures of a sweep: a metric against each swept key, seeds as error bars.

For a key, the trials are grouped by the other swept keys (seed aside); each group is one
line of the metric's mean over its seeds against the key's values, its error bars the
seeds' standard deviation. One PNG per key, ``<metric>_vs_<key>.png`` in the sweep
directory (matplotlib's Agg backend: no display needed).
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import numpy as np

from purenet.experiment.rundir import write_atomic
from purenet.sweep.results import read_results

# The metric plotted when none is asked for: the first of these the results have.
DEFAULT_METRICS = ("test_accuracy", "test_r2", "test_loss", "val_loss", "train_loss")
SEED = "seed"
MAX_LINES = 10        # more groups than this are drawn as one scatter of all trials


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def choose_metric(rows: list[dict[str, Any]], metric: str | None) -> str:
    present = [k for k in rows[0] if any(r.get(k) is not None for r in rows)] if rows else []
    if metric is not None:
        if metric not in present:
            raise ValueError(f"the sweep's results have no metric {metric!r}; choose one of "
                             f"{[k for k in present if k.startswith(('train_', 'val_', 'test_'))]}")
        return metric
    for name in DEFAULT_METRICS:
        if name in present:
            return name
    raise ValueError("the sweep's results hold no metric to plot")


def _short(key: str) -> str:
    """``layers[0].output_dim,layers[1].input_dim`` -> ``output_dim``."""
    return key.split(",")[0].split(".")[-1]


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _groups(rows: list[dict[str, Any]], key: str, others: list[str]) -> dict[tuple, dict]:
    """``{other keys' values: {key's value: [metric per seed]}}``."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        label = tuple(row.get(k) for k in others)
        groups.setdefault(label, {}).setdefault(row.get(key), []).append(row["_metric"])
    return groups


def _figure(plt: Any, rows: list[dict[str, Any]], key: str, keys: list[str],
            metric: str) -> Any:
    others = [k for k in keys if k not in (key, SEED)]
    groups = _groups(rows, key, others)
    values = sorted({row.get(key) for row in rows}, key=lambda v: (str(type(v)), v))
    numeric = _numeric(values)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, by_value in list(groups.items())[:MAX_LINES]:
        xs = sorted(by_value, key=lambda v: (str(type(v)), v))
        means = [np.mean(by_value[v]) for v in xs]
        spreads = [np.std(by_value[v]) if len(by_value[v]) > 1 else 0.0 for v in xs]
        positions = xs if numeric else [values.index(v) for v in xs]
        text = ", ".join(f"{_short(k)}={v}" for k, v in zip(others, label)) or None
        ax.errorbar(positions, means, yerr=spreads, marker="o", capsize=3, label=text)
    if len(groups) > MAX_LINES:
        ax.set_title(f"first {MAX_LINES} of {len(groups)} groups")
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    elif min(values) > 0 and max(values) / min(values) >= 10:
        ax.set_xscale("log")
    seeds = SEED in keys and key != SEED
    ax.set(xlabel=key, ylabel=metric + (" (mean ± std over seeds)" if seeds else ""))
    ax.grid(True, alpha=0.3)
    if any(label for label in groups) and len(groups) <= MAX_LINES:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_sweep(sweep_dir: str | os.PathLike, metric: str | None = None) -> list[str]:
    """Write ``<metric>_vs_<key>.png`` for each swept key into ``sweep_dir`` (the seed
    gets its own figure only when it is the one key); return the paths written.

    Raises:
        RunDirectoryError: not a sweep directory, or no finished trial.
        ValueError: ``metric`` is not in the results.
    """
    sweep_dir = os.fspath(sweep_dir)
    keys, rows = read_results(sweep_dir)
    metric = choose_metric(rows, metric)
    rows = [{**row, "_metric": row[metric]} for row in rows if row.get(metric) is not None]
    plt = _pyplot()
    axes = [k for k in keys if k != SEED] or list(keys)
    written = []
    for key in axes:
        fig = _figure(plt, rows, key, list(keys), metric)
        # keys that move together are named by the first: layers[0].output_dim -> layers0...
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key.split(",")[0].replace("[", "").replace("]", ""))
        path = os.path.join(sweep_dir, f"{metric}_vs_{name}.png")
        image = io.BytesIO()
        try:
            fig.savefig(image, dpi=120, format="png")
        finally:
            plt.close(fig)
        write_atomic(path, image.getvalue())
        written.append(path)
    return written
