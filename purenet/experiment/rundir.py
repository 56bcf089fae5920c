"""The run directory: its layout, claiming it for a run, writing its files.

A run directory holds::

    .purenet-run    the marker: purenet made this directory (--force deletes only these)
    .lock           held by the trainer that is using the directory
    config.toml     the resolved experiment (every default filled in); loads as is
    scaler.json     feature names and the standardisation fitted on the training part
    checkpoints/    step-NNNNNNNN.h5, written by purenet.Checkpointer
    history.csv     one row per epoch: epoch, train_loss, train_accuracy, val_loss, val_accuracy
    summary.json    the final metrics (train/val/test), step, epoch, params_digest, seconds
    *.png           figures, from ``purenet plot``
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Mapping

import xxhash

from purenet.errors import RunDirectoryError

from purenet.checkpoint import atomic
from purenet.experiment import limits
from purenet.experiment.schema import without_none
from purenet.experiment.config import RESUMABLE_KEYS, Experiment
from purenet.train.config import differences as config_differences, listed
from purenet.train.state import HISTORY_COLUMNS, History

CONFIG, SCALER, HISTORY, SUMMARY, CHECKPOINTS = (
    "config.toml", "scaler.json", "history.csv", "summary.json", "checkpoints")
# Written first into every run directory: --force deletes only where it finds one.
MARKER = ".purenet-run"
PLOTS = ("loss.png", "accuracy.png", "decision_boundary.png")
RUN_FILES = (CONFIG, SCALER, HISTORY, SUMMARY, "digests.csv", *PLOTS)
# The run files whose digest the marker records, and what each is (limits.MAX_BYTES).
DIGESTED = {CONFIG: "a run's config.toml", SCALER: "a scaler file (scaler.json)",
            SUMMARY: "a summary file (summary.json)", HISTORY: "a history file (history.csv)"}


def default_run_dir(experiment: Experiment) -> str:
    return os.path.join("runs", experiment.name)


def resolve(run_dir: str | os.PathLike) -> str:
    """The real path of ``run_dir``: symlinks followed and ``missing/..`` taken away, so
    every check looks at the directory that will really be written."""
    path = os.path.realpath(os.fspath(run_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirectoryError(f"{run_dir} is a file, not a directory; a run needs a "
                                "directory of its own: choose another --run-dir")
    return path


def shown(path: str) -> str:
    """``path`` as messages show it: relative to the working directory when inside it."""
    relative = os.path.relpath(path)
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temp file and a rename, then
    sync the directory: never half a file, never over a FIFO or a device."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    atomic.fsync_directory(os.path.dirname(atomic.write_atomic(path, data)))


# Besides RUN_FILES: what else of a run directory is purenet's, and no output's to replace.
_OWN = (MARKER, ".lock", ".trial.lock", "train.log")


def check_output(path: str, run_dir: str) -> None:
    """Refuse an ``--output`` that is not new or a regular file (``atomic.check_target``),
    or that is one of the run's own files or inside its checkpoints: an output never
    replaces what it was made from."""
    atomic.check_target(path, user_named=True)
    target, run = os.path.realpath(path), os.path.realpath(run_dir)
    own = {os.path.join(run, name) for name in (*RUN_FILES, *_OWN)}
    if target in own or os.path.dirname(target) == os.path.join(run, CHECKPOINTS):
        raise RunDirectoryError(f"{path} is a file of the run in {shown(run_dir)} "
                                f"({os.path.relpath(target, run)}); an output never replaces "
                                "the run's own files: choose another --output")


def write_marker(run_dir: str) -> None:
    """Mark ``run_dir`` as a purenet run directory (``--force`` deletes only those)."""
    from purenet import __version__

    if not os.path.exists(os.path.join(run_dir, MARKER)):
        _write_marker(run_dir, {"purenet_version": __version__, "created": datetime.datetime
                                .now(datetime.timezone.utc).isoformat(), "files": {}})


def _write_marker(run_dir: str, marker: dict[str, Any]) -> None:
    write_atomic(os.path.join(run_dir, MARKER), json.dumps(marker, indent=2) + "\n")


def read_marker(run_dir: str) -> dict[str, Any]:
    """The marker of ``run_dir``, checked: who made the run, and the digest of each run file
    purenet wrote (``files``; none in a run of purenet 0.2)."""
    path = os.path.join(run_dir, MARKER)
    marker = limits.read_json(path, "a run marker (.purenet-run)")
    files = marker.get("files", {}) if isinstance(marker, dict) else None
    if not isinstance(marker, dict) or not isinstance(files, dict) or not all(
            name in DIGESTED and isinstance(digest, str) and len(digest) == 32
            for name, digest in files.items()):
        raise RunDirectoryError(f"{path} is not a purenet run marker (an object with "
                                f"purenet_version, created and files: {{name: digest}}); was it "
                                "edited? Train the run again to rewrite it")
    return marker


def _digest(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def write_run_file(run_dir: str, name: str, text: str) -> None:
    """Write the run file ``name`` and record its digest in the run's marker, so that an
    edit is caught by every reader (``read_run_file``)."""
    data = text.encode("utf-8")
    write_atomic(os.path.join(run_dir, name), data)
    marker = read_marker(run_dir)
    marker.setdefault("files", {})[name] = _digest(data)
    _write_marker(run_dir, marker)


def read_run_file(run_dir: str, name: str) -> str:
    """The run file ``name`` of ``run_dir`` (bounded, as ``limits.MAX_BYTES`` says), refused
    when it is not what purenet wrote: its digest checked against the marker's.

    Raises:
        FileNotFoundError: the file is missing. RunDirectoryError: it was changed.
        ValueError: not a regular file, too large, not UTF-8.
    """
    text = read_run_text(run_dir, name)
    check_written(run_dir, name, text)
    return text


def read_run_text(run_dir: str, name: str) -> str:
    """The run file ``name`` of ``run_dir``, bounded (its digest not yet checked)."""
    return limits.read_text(os.path.join(run_dir, name), DIGESTED[name])


def check_written(run_dir: str, name: str, text: str) -> None:
    """Refuse ``text``, read from the run file ``name``, unless it is what purenet wrote
    (the marker's digest; a run of purenet 0.2 recorded none)."""
    recorded = read_marker(run_dir).get("files", {}).get(name) \
        if os.path.exists(os.path.join(run_dir, MARKER)) else None
    if recorded is not None and recorded != _digest(text.encode("utf-8")):
        raise RunDirectoryError(f"{shown(os.path.join(run_dir, name))} was changed after "
                                f"purenet wrote it (its digest is not the one {MARKER} "
                                "records); restore it, or train the run again")


# What purenet itself may have put in a directory before its run's files (a sweep trial's
# lock and log, a checkpoint lock): a directory holding only these is still empty.
_OWN_EARLY = {".trial.lock", "train.log", CHECKPOINTS}


def check_run_dir(run_dir: str) -> None:
    """Refuse a directory that is not purenet's to use as a run directory: one that holds
    files but no marker (``--run-dir .`` in a project), or one inside another run. A new
    or empty directory, or one purenet made, is fine.

    Raises:
        RunDirectoryError: in one line, before anything is written.
    """
    for parent in _parents(run_dir):
        if os.path.isfile(os.path.join(parent, MARKER)):
            raise RunDirectoryError(f"{shown(run_dir)} lies inside the run directory "
                                    f"{shown(parent)}; a run needs a directory of its own "
                                    "outside any run: choose another --run-dir")
    if not os.path.isdir(run_dir) or os.path.isfile(os.path.join(run_dir, MARKER)):
        return
    names = set(os.listdir(run_dir))
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    if names <= _OWN_EARLY and (not os.path.isdir(checkpoints)
                                or set(os.listdir(checkpoints)) <= {".lock"}):
        return
    raise RunDirectoryError(
        f"{shown(run_dir)} is not empty and purenet did not make it (no {MARKER} marker); a "
        "run goes into a new or empty directory, or one of purenet's: choose another "
        "--run-dir (--force deletes only purenet's own runs)")


def _parents(path: str) -> list[str]:
    found, here = [], os.path.dirname(path)
    while here and here != os.path.dirname(here):
        found.append(here)
        here = os.path.dirname(here)
    return found


def existing_run(run_dir: str) -> list[str]:
    """What of a run ``run_dir`` already holds (empty: nothing)."""
    found = [name for name in (CONFIG, SUMMARY) if os.path.exists(os.path.join(run_dir, name))]
    count = len(checkpoint_names(run_dir))
    if count:
        found.append(f"{count} checkpoint(s)")
    return found


def checkpoint_names(run_dir: str) -> list[str]:
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(checkpoints):
        return []
    return [name for name in os.listdir(checkpoints) if name.endswith(".h5")]


def require_marker(run_dir: str) -> None:
    """Refuse to delete from ``run_dir`` unless purenet's marker is in it."""
    if not os.path.isfile(os.path.join(run_dir, MARKER)):
        raise RunDirectoryError(
            f"{shown(run_dir)} holds files of a run but no {MARKER} marker, so purenet did not "
            "make it (or an older purenet did); --force deletes only purenet's own run "
            "directories: delete its files yourself, or choose another --run-dir")


def clear_run(run_dir: str) -> None:
    """Delete a run's files (and only those) from ``run_dir``, which must hold purenet's
    marker: a directory purenet did not make is never emptied."""
    require_marker(run_dir)
    for name in RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            os.remove(path)
    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    for name in checkpoint_names(run_dir) + [
            n for n in (os.listdir(checkpoints) if os.path.isdir(checkpoints) else ())
            if atomic.temp_of(n)]:
        path = os.path.join(checkpoints, name)
        if os.path.isfile(path):
            os.remove(path)


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in without_none(config).items() if k not in RESUMABLE_KEYS}


def config_mismatches(config: Mapping[str, Any], recorded: Mapping[str, Any],
                      line: str = "{key}: this run has {expected!r}, the run's config.toml "
                                  "{found!r}") -> list[str]:
    """The settings (but those a resume may change) where ``config`` differs from the
    ``recorded`` one, one ``line`` each."""
    return config_differences(_comparable(config), _comparable(recorded), line)


def whose(where: str, theirs: Any, ours: Any) -> str:
    """The one sentence a refused resume leads with: which run ``where`` holds."""
    if theirs == ours:
        return f"{where} holds a run of {theirs!r} with other settings than this one's"
    return f"{where} holds the run of {theirs!r}, not of {ours!r}"


def claim(run_dir: str, config: Mapping[str, Any], resume: bool, force: bool) -> bool:
    """Check that ``run_dir`` may hold this run; returns whether the old run in it must be
    cleared (``force``) before training starts. Deletes nothing itself."""
    if resume and force:
        raise RunDirectoryError("resume and force exclude each other: resume continues the "
                                "run in the directory, force deletes it")
    existing = existing_run(run_dir)
    if not existing:
        return False
    if resume:
        if os.path.exists(os.path.join(run_dir, CONFIG)):
            recorded = read_config(run_dir)
            differences = config_mismatches(config, recorded)
            if differences:
                raise RunDirectoryError(
                    f"cannot resume: {whose(shown(run_dir), recorded.get('name'), config.get('name'))}"
                    f" (only epochs and the checkpoint policy may change when resuming):"
                    + listed(differences))
        return False
    if not force:
        raise RunDirectoryError(
            f"{shown(run_dir)} already holds a run ({', '.join(existing)}); resume it (--resume), "
            "delete it and start again (--force), or choose another directory (--run-dir)")
    require_marker(run_dir)
    return True


def read_config(run_dir: str) -> dict[str, Any]:
    """A run's ``config.toml`` as plain data: bounded, and as purenet wrote it."""
    from purenet.experiment.schema import loads_toml

    path = os.path.join(run_dir, CONFIG)
    try:
        return loads_toml(read_run_file(run_dir, CONFIG))
    except ValueError as error:
        raise RunDirectoryError(f"{shown(path)}: {error}") from None


def history_csv(history: History) -> str:
    """``history`` as CSV text, one row per epoch (NaN where a metric does not apply)."""
    rows = [",".join(HISTORY_COLUMNS)]
    for i in range(len(history)):
        rows.append(",".join(repr(getattr(history, c)[i]) for c in HISTORY_COLUMNS))
    return "\n".join(rows) + "\n"
