"""Figures of a finished (or interrupted) run, written as PNG files into its run directory.

matplotlib is imported here only, lazily, with the non-interactive Agg backend, so that
``import purenet`` stays fast and plotting works without a display.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable

import numpy as np

from purenet.train.metrics import evaluate
from purenet.core.network import predict
from purenet.experiment.readrun import Run, read_run
from purenet.experiment.rundir import write_atomic
from purenet.experiment.runner import prepare_data


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> str:
    image = io.BytesIO()
    fig.savefig(image, dpi=120, format="png")
    write_atomic(path, image.getvalue())
    return path


def _curves(plt: Any, run: Run, column: str, label: str, path: str) -> str | None:
    history = run.checkpoint.state.history
    epochs = np.asarray(history.epoch)
    series = [(name, np.asarray(getattr(history, f"{name}_{column}"), dtype=float))
              for name in ("train", "val")]
    series = [(name, values) for name, values in series if np.isfinite(values).any()]
    if not len(epochs) or not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, values in series:
        ax.plot(epochs, values, label={"train": "training", "val": "validation"}[name],
                marker="o" if len(epochs) < 30 else None)
    if column == "loss" and all((values[np.isfinite(values)] > 0).all() for _, values in series):
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel=label, title=f"{run.experiment.name}: {label}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _decision_boundary(plt: Any, run: Run, path: str) -> str | None:
    """The classifier's regions over the plane, with the test points on top (as the
    tutorial's article draws them)."""
    experiment = run.experiment
    if not experiment.classifier or experiment.architecture.input_dim != 2:
        return None
    splits = prepare_data(experiment)
    x, y = (splits.x_test, splits.y_test) if splits.x_test is not None else \
        (splits.x_train, splits.y_train)
    every = np.vstack([p for p in (splits.x_train, splits.x_val, splits.x_test) if p is not None])
    low, high = every.min(axis=0), every.max(axis=0)
    margin = (high - low) * 0.1
    g0, g1 = np.meshgrid(np.linspace(low[0] - margin[0], high[0] + margin[0], 300),
                         np.linspace(low[1] - margin[1], high[1] + margin[1], 300))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    scaler, params = run.scaler, run.params
    probabilities = np.asarray(predict(params, scaler.transform_x(grid)), dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    if probabilities.shape[1] == 1:   # sigmoid: P(class 1) and its 0.5 line
        surface = ax.contourf(g0, g1, probabilities[:, 0].reshape(g0.shape),
                              levels=np.linspace(0, 1, 21), cmap="Spectral", alpha=0.8)
        ax.contour(g0, g1, probabilities[:, 0].reshape(g0.shape), levels=[0.5], colors="k",
                   linewidths=1)
        fig.colorbar(surface, ax=ax, label="P(class 1)")
        labels = np.asarray(y).reshape(len(y), -1)[:, 0]
    else:                             # softmax: the most probable class
        n_classes = probabilities.shape[1]
        ax.contourf(g0, g1, probabilities.argmax(axis=1).reshape(g0.shape),
                    levels=np.arange(n_classes + 1) - 0.5, cmap="Spectral", alpha=0.8)
        labels = np.asarray(y)
    ax.scatter(x[:, 0], x[:, 1], c=labels, cmap="Spectral", edgecolors="black", s=28)
    # evaluate counts correct samples by the same rule as training (0.5 threshold, argmax).
    accuracy = evaluate(params, scaler.transform_x(x), y, loss=experiment.loss)["accuracy"]
    names = run.scaler.feature_names
    ax.set(xlabel=names[0], ylabel=names[1],
           title=f"{experiment.name}: test points, accuracy {accuracy:.1%}"
           if splits.x_test is not None else f"{experiment.name}: training points")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_run(run_dir: str | os.PathLike,
             progress: Callable[[str], Any] = lambda line: None) -> list[str]:
    """Write ``loss.png``, ``accuracy.png`` (classifiers) and ``decision_boundary.png``
    (classifiers of 2-D inputs) into ``run_dir``; return the paths written. ``progress``
    hears a line before each part that takes time (reading the run, each figure)."""
    run_dir = os.fspath(run_dir)
    progress(f"reading the run in {run_dir}")
    run = read_run(run_dir)
    plt = _pyplot()
    progress("drawing loss.png" + (" and accuracy.png" if run.experiment.classifier else ""))
    written = [_curves(plt, run, "loss", "loss", os.path.join(run_dir, "loss.png"))]
    if run.experiment.classifier:
        written.append(_curves(plt, run, "accuracy", "accuracy",
                               os.path.join(run_dir, "accuracy.png")))
    if run.experiment.classifier and run.experiment.architecture.input_dim == 2:
        progress("drawing decision_boundary.png (the data rebuilt, the network over a "
                 "300 x 300 grid)")
    written.append(_decision_boundary(plt, run, os.path.join(run_dir, "decision_boundary.png")))
    return [path for path in written if path is not None]

