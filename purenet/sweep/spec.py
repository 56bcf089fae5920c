"""Sweep files: an experiment file plus a ``[sweep]`` table -> its trials.

::

    [sweep]
    "optimizer.learning_rate" = [0.003, 0.01, 0.03]   # a grid: every combination of
    seed = [0, 1, 2]                                  # these lists (dotted keys)
    n_random = 4          # and/or: this many draws from [sweep.ranges], crossed with the grid
    random_seed = 0       # the draws' seed (default 0): the same draws on every run

    [sweep.ranges]
    # keys joined by commas take one value together: a hidden width and the next input
    "layers[0].output_dim,layers[1].input_dim" = { low = 8, high = 64, integer = true }
    "optimizer.b1" = { low = 0.8, high = 0.99 }
    "l2" = { low = 1e-5, high = 1e-2, log = true }
    "layers[0].activation" = { choices = ["relu", "tanh"] }

Each trial is the experiment with its settings applied, checked like any experiment file
(an error names the sweep key and the trial). Its id is derived from its settings alone, so
a sweep run again (or resumed) finds the same run directories: ``runs/<sweep>/<trial-id>/``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
from typing import Any, Mapping

import attrs
import numpy as np

from purenet.experiment.config import Experiment, parse_experiment
from purenet.experiment.schema import Source, key_parts, read_toml, set_dotted

# Keys of [sweep] that are not grid keys.
RESERVED = ("n_random", "random_seed", "ranges")
# The keys a range may have; a table with none of them is a table of ranges (dotted keys).
RANGE_KEYS = ("low", "high", "log", "integer", "choices")
# Sampled floats keep this many significant digits, so ids and tables stay readable.
SAMPLE_DIGITS = 4
# The most trials a sweep file may describe: each is an experiment checked, a directory and
# a line of results; more is a mistake in the file, not a sweep to start.
MAX_TRIALS = 10_000


@attrs.frozen(eq=False)
class Trial:
    """One point of a sweep: its id, its settings and the experiment they make."""

    id: str
    settings: dict[str, Any]       # dotted key -> value, in the sweep's key order
    experiment: Experiment
    raw: dict[str, Any]            # the experiment file with the settings applied (plain data)


@attrs.frozen(eq=False)
class Sweep:
    """A checked sweep file: its name, swept keys and trials."""

    name: str
    path: str
    text: str
    keys: tuple[str, ...]
    trials: tuple[Trial, ...]

    def default_dir(self) -> str:
        return os.path.join("runs", self.name)


def trial_id(settings: Mapping[str, Any]) -> str:
    """A readable, stable id: ``learning_rate=0.01_seed=1-3fa2c1d9`` (the last part of each
    key, then a hash of all the settings, which keeps ids of different settings apart)."""
    canonical = json.dumps(dict(settings), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    slug = "_".join(f"{key_parts(k.split(',')[0])[-1]}={json.dumps(v).strip(chr(34))}"
                    for k, v in settings.items())
    slug = re.sub(r"[^A-Za-z0-9._=+-]", "_", slug).replace("..", "_")[:60]
    return f"{slug}-{digest}" if slug else digest


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check the sweep file ``path``: its experiment, its [sweep] table, and every
    trial's experiment.

    Raises:
        ExperimentError: naming the key, the file and its line (or the trial).
    """
    path = os.fspath(path)
    text, raw = read_toml(path)
    source = Source(path, text)
    if not isinstance(raw.get("sweep"), dict):
        raise source.error(None, "has no [sweep] table; a sweep file is an experiment file "
                           "plus e.g. [sweep] seed = [0, 1, 2] (see purenet.sweep.spec)")
    table = raw.pop("sweep")
    base = parse_experiment(raw, source)      # the experiment itself must be sound first
    grid, ranges, n_random, random_seed = _read_table(table, source)
    count = math.prod(len(values) for values in grid.values()) * max(n_random, 1)
    if count > MAX_TRIALS:   # counted before a single trial is made
        raise source.error("sweep", f"describes {count:,} trials, more than the {MAX_TRIALS:,} "
                           "a sweep may have; sweep fewer values (or split it into sweeps)")
    draws = _draw(ranges, n_random, random_seed)
    keys = (*grid, *ranges)
    trials, seen = [], {}
    for point in itertools.product(*grid.values()):
        for draw in draws:
            settings = {**dict(zip(grid, point)), **draw}
            trial = _trial(base.name, raw, settings, path, text)
            if trial.id in seen:
                raise source.error("sweep", f"gives the settings {settings} twice; list each "
                                   "value of a key once")
            seen[trial.id] = trial
            trials.append(trial)
    return Sweep(base.name, path, text, keys, tuple(trials))


def _trial(name: str, raw: dict[str, Any], settings: dict[str, Any], path: str,
           text: str) -> Trial:
    ident = trial_id(settings)
    trial_raw = copy.deepcopy(raw)
    options = {}
    for key, value in settings.items():
        option = f"[sweep] {key} = {json.dumps(value)} (trial {ident})"
        for part in key.split(","):      # keys that move together: a width and the next
            set_dotted(trial_raw, part, value, option)      # layer's input_dim
            options[part] = option
    trial_raw["name"] = f"{name}-{ident}"      # a plain name: the run dir is the sweep's
    experiment = parse_experiment(trial_raw, Source(path, text, options))
    return Trial(ident, settings, experiment, trial_raw)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"b1": [..]}}`` -> ``{"optimizer.b1": [..]}`` (unquoted dotted keys)."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict) and not set(value) & set(RANGE_KEYS):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_table(table: dict[str, Any], source: Source) -> tuple[dict, dict, int, int]:
    n_random = table.get("n_random", 0 if "ranges" not in table else None)
    random_seed = table.get("random_seed", 0)
    for key, value in (("n_random", n_random), ("random_seed", random_seed)):
        if type(value) is not int or value < 0:
            raise source.error(f"sweep.{key}", f"must be an integer >= 0, got {value!r}"
                               + ("; [sweep.ranges] needs n_random = N draws"
                                  if value is None else ""))
    grid = _flatten({k: v for k, v in table.items() if k not in RESERVED})
    for key in (*grid, *_flatten(table.get("ranges", {}))):
        if not all(key_parts(part) and re.fullmatch(r"[A-Za-z0-9_\-.\[\] ]+", part)
                   for part in key.split(",")):
            raise source.error(f"sweep.{key}", f"{key!r} is not a setting's key; a sweep key "
                               "names a setting as --set does (e.g. \"optimizer.learning_rate\" "
                               "or \"layers[0].output_dim\"), several joined by commas")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise source.error(f"sweep.{key}", f"must be a non-empty list of values (a grid "
                               f"axis), e.g. [0.001, 0.01], got {values!r}")
    ranges = _flatten(table.get("ranges", {}))
    for key, spec in ranges.items():
        _check_range(f"sweep.ranges.{key}", spec, source)
    both = sorted(set(grid) & set(ranges))
    if both:
        raise source.error("sweep", f"{both} are both a grid axis and a range; give each "
                           "key one of the two")
    if ranges and not n_random:
        raise source.error("sweep.n_random", "must be >= 1 when [sweep.ranges] is given")
    if n_random and not ranges:
        raise source.error("sweep.n_random", "needs [sweep.ranges] to draw from")
    if "name" in grid or "name" in ranges:
        raise source.error("sweep.name", "cannot be swept: each trial is named by its id")
    if not grid and not ranges:
        raise source.error("sweep", "sweeps nothing; give a grid (e.g. seed = [0, 1, 2]) "
                           "and/or [sweep.ranges] with n_random")
    return grid, ranges, n_random, random_seed


def _check_range(key: str, spec: Any, source: Source) -> None:
    if not isinstance(spec, dict):
        raise source.error(key, "must be a table: { low = A, high = B } (log = true, "
                           "integer = true optional) or { choices = [...] }")
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise source.error(key, f"has unknown key(s) {unknown}; expected some of "
                           f"{list(RANGE_KEYS)}")
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"] or len(spec) > 1:
            raise source.error(key, "choices must be a non-empty list, alone in its table")
        return
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  and abs(v) < 1e300 for v in (low, high))
    if not numbers or not low < high:
        raise source.error(key, f"needs finite numbers low < high, got low={low!r}, "
                           f"high={high!r}")
    if spec.get("log") and low <= 0:
        raise source.error(key, f"a log range needs low > 0, got {low!r}")


def _draw(ranges: dict[str, dict], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` draws of every range (one dict per draw); one empty draw without ranges."""
    if not ranges:
        return [{}]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    draws = []
    for _ in range(n):
        draw = {}
        for key, spec in ranges.items():
            draw[key] = _sample(rng, spec)
        draws.append(draw)
    return draws


def _sample(rng: np.random.Generator, spec: dict[str, Any]) -> Any:
    if "choices" in spec:
        return spec["choices"][int(rng.integers(len(spec["choices"])))]
    low, high = float(spec["low"]), float(spec["high"])
    if spec.get("log"):
        value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    else:
        value = float(rng.uniform(low, high))
    if spec.get("integer"):
        return int(min(max(round(value), int(np.ceil(low))), int(np.floor(high))))
    return float(f"{value:.{SAMPLE_DIGITS}g}")
