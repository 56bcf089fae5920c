"""``diff``: how two runs differ - their settings, and the first step where their
parameters part.

Each run directory records its params digest every few steps (``digests.csv``); the first
recorded step where the two differ brackets the divergence, and replaying both runs to the
steps in between (``state_at``: newest checkpoint + deterministic replay) narrows it to the
exact step.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import attrs

from purenet.core.records import params_digest
from purenet.errors import RunDirectoryError
from purenet.experiment.digests import DIGESTS, read_digests
from purenet.experiment.rundir import CONFIG, read_config

# Settings that never change a run's arithmetic, left out of the comparison.
IGNORED = ("name", "checkpoint")


@attrs.frozen
class RunDiff:
    """Two runs compared. ``first_divergent_step`` is None when every step both recorded
    has equal digests; ``exact`` says whether it is the exact step (else the divergence
    lies after ``last_equal_step``, at or before it)."""

    run_a: str
    run_b: str
    settings: tuple[tuple[str, Any, Any], ...]    # (dotted key, value in a, value in b)
    compared_steps: int
    last_equal_step: int | None
    first_divergent_step: int | None
    exact: bool
    last_step_a: int | None
    last_step_b: int | None

    @property
    def identical(self) -> bool:
        return (not self.settings and self.first_divergent_step is None
                and self.last_step_a == self.last_step_b)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"b1": 0.9}, "layers": [{...}]}`` -> ``{"optimizer.b1": 0.9,
    "layers[0].output_dim": 8, ...}``."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(config, list) and config and all(isinstance(v, dict) for v in config):
        out = {}
        for i, value in enumerate(config):
            out.update(flatten(value, f"{prefix}[{i}]"))
        return out
    return {prefix: config}


def _config(run_dir: str) -> dict[str, Any]:
    if not os.path.isdir(run_dir):
        raise RunDirectoryError(f"no run directory at {run_dir}")
    if not os.path.lexists(os.path.join(run_dir, CONFIG)):
        raise RunDirectoryError(f"{run_dir} is not a run directory (it has no {CONFIG})")
    return read_config(run_dir)


def setting_differences(run_a: str, run_b: str) -> list[tuple[str, Any, Any]]:
    """``(key, a, b)`` for every setting that differs (None: absent), name and checkpoint
    policy left out."""
    a, b = (flatten({k: v for k, v in _config(r).items() if k not in IGNORED})
            for r in (run_a, run_b))
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]


def _replayer(run_dir: str) -> Callable[[int], str]:
    """``step -> params digest`` of ``run_dir`` at that step, by replay."""
    from purenet.checkpoint.rewind import state_at
    from purenet.experiment.readrun import read_run
    from purenet.experiment.runner import fit_arrays

    experiment = read_run(run_dir).experiment
    x, y, validation = fit_arrays(experiment)
    return lambda step: params_digest(state_at(run_dir, step, x, y, validation).params)


def _replayed_as_recorded(run_dir: str, at: Callable[[int], str], recorded: dict[int, str],
                          steps: tuple[int | None, ...]) -> None:
    """Refuse a ``digests.csv`` whose rows at ``steps`` its own run's replay contradicts:
    the trail is data, the replay the truth."""
    for step in steps:
        if step is not None and at(step) != recorded[step]:
            raise RunDirectoryError(
                f"{os.path.join(run_dir, DIGESTS)} records {recorded[step][:12]}... at step "
                f"{step}, but a replay of the run gives {at(step)[:12]}...: the file is not the "
                "run's trail (edited, or copied from another run); delete it and compare the "
                "runs again")


def _narrow(run_a: str, run_b: str, low: int | None, high: int,
            recorded: tuple[dict[int, str], dict[int, str]]) -> int:
    """The first step in (low, high] where the runs differ, given they agree at ``low``
    and differ at ``high`` (each checked by replay first): a bisection by replay."""
    at_a, at_b = _replayer(run_a), _replayer(run_b)
    for run_dir, at, digests in ((run_a, at_a, recorded[0]), (run_b, at_b, recorded[1])):
        _replayed_as_recorded(run_dir, at, digests, (low, high))
    low = -1 if low is None else low
    while high - low > 1:
        middle = (low + high) // 2
        if at_a(middle) == at_b(middle):
            low = middle
        else:
            high = middle
    return high


def diff(run_a: str | os.PathLike, run_b: str | os.PathLike, replay: bool = True) -> RunDiff:
    """Compare two run directories: their settings, and where their parameters part.

    Args:
        replay: narrow a divergence between two recorded steps to the exact step by
            replaying both runs (needs their checkpoints; a few short replays).

    Raises:
        RunDirectoryError: either is not a run directory.
    """
    run_a, run_b = os.fspath(run_a), os.fspath(run_b)
    settings = setting_differences(run_a, run_b)
    a, b = read_digests(run_a), read_digests(run_b)
    common = sorted(set(a) & set(b))
    last_equal = first_divergent = None
    for step in common:
        if a[step] != b[step]:
            first_divergent = step
            break
        last_equal = step
    exact = first_divergent is not None and (last_equal is None or
                                            first_divergent - last_equal == 1)
    if first_divergent is not None and replay:
        first_divergent = _narrow(run_a, run_b, last_equal, first_divergent, (a, b))
        exact = True
    return RunDiff(run_a, run_b, tuple(settings), len(common), last_equal, first_divergent,
                   exact, max(a, default=None), max(b, default=None))


def describe(result: RunDiff) -> list[str]:
    """The comparison in lines, for the command line."""
    lines = [f"settings that differ ({len(result.settings)}):" if result.settings
             else "settings: the same (name and checkpoint policy aside)"]
    lines += [f"  {key}: {a!r} vs {b!r}" for key, a, b in result.settings]
    if not result.compared_steps:
        lines.append(f"steps: no step recorded by both ({DIGESTS} missing or disjoint); "
                     "compare their final params_digest with `purenet inspect`")
    elif result.first_divergent_step is None:
        lines.append(f"steps: identical parameters at all {result.compared_steps} recorded "
                     f"steps both have (up to step {result.last_equal_step})")
    elif result.exact:
        lines.append(f"first divergent step: {result.first_divergent_step} (the parameters "
                     f"after it differ; "
                     + ("they differ from the start)" if result.last_equal_step is None
                        else f"equal after step {result.first_divergent_step - 1})"))
    else:
        lines.append(f"first divergent step: after {result.last_equal_step}, at or before "
                     f"{result.first_divergent_step} (replay off)")
    if result.last_step_a != result.last_step_b:
        lines.append(f"length: run A recorded up to step {result.last_step_a}, run B up to "
                     f"{result.last_step_b}")
    return lines
