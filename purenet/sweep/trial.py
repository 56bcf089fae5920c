"""One trial, run where Dask puts it: a plain top-level function of plain data.

``run_trial`` trains the trial's experiment with the same function as ``purenet train``
(``run_experiment``, resuming from the newest checkpoint in its run directory), so the
trial's bits are the bits of that experiment run alone. Whoever runs it - the first
attempt, or Dask's retry after its worker died - does the same thing:

1. waits for the trial's lock (``RUN_DIR/.trial.lock``): a holder still alive (a worker the
   scheduler gave up on, still training) is waited for, up to a timeout; a dead holder's
   lock was released by the kernel, so it is simply taken over;
2. returns the summary at once when the run is finished already;
3. otherwise resumes (or starts) the run; its per-epoch log goes to ``RUN_DIR/train.log``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import tomllib
from typing import Any

from purenet.checkpoint.lock import DirectoryLock
from purenet.experiment.config import Experiment, parse_experiment
from purenet.errors import RunDirectoryError
from purenet.experiment.limits import parse_json
from purenet.experiment.rundir import CHECKPOINTS, CONFIG, SUMMARY, read_config, read_run_file
from purenet.experiment.schema import Source, dump_toml

LOG, TRIAL_LOCK = "train.log", ".trial.lock"
# threadpoolctl's BLAS limit is process-wide, so two trials in threads of one worker would
# set each other's thread count: a worker process trains one trial at a time.
_ONE_AT_A_TIME = threading.Lock()


class TrialError(RuntimeError):
    """A trial failed on its worker; the message names the trial and the original error
    (kept as text, so it crosses process boundaries whatever its type)."""


def finished_summary(run_dir: str, experiment: Experiment) -> dict[str, Any] | None:
    """The summary of the finished run of ``experiment`` in ``run_dir``, or None when the
    directory holds no run, an unfinished one, or one of other settings.

    Raises:
        RunDirectoryError, ValueError: a run file edited, too large, not a regular file.
    """
    if not all(os.path.exists(os.path.join(run_dir, name)) for name in (CONFIG, SUMMARY)):
        return None
    config = read_config(run_dir)
    summary = parse_json(read_run_file(run_dir, SUMMARY), os.path.join(run_dir, SUMMARY),
                         "a summary file (summary.json)")
    if config != tomllib.loads(dump_toml(experiment.resolved_config())):
        return None
    if not isinstance(summary, dict):
        raise RunDirectoryError(f"{os.path.join(run_dir, SUMMARY)} is not a run summary (a "
                                "JSON object); train the trial again (delete its directory)")
    # summary.json is written at the end: one from a shorter run (epochs raised since)
    # stays behind while the longer one trains.
    done = summary.get("stopped_early") or summary.get("epoch") == experiment.run.epochs
    return summary if done else None


def newest_step(run_dir: str) -> int:
    """The step of the newest checkpoint file in ``run_dir`` (0: none), for the log."""
    from purenet.checkpoint.policy import checkpoint_files

    directory = os.path.join(run_dir, CHECKPOINTS)
    files = checkpoint_files(directory) if os.path.isdir(directory) else []
    return files[-1][0] if files else 0


def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Train one trial (a Dask task). ``task``: ``id``, ``run_dir`` (absolute), ``raw`` (the
    trial's experiment as plain data), ``path`` and ``text`` (its sweep file, for data paths
    and messages), ``lock_timeout`` (seconds), ``imports`` (the modules of user pieces to
    import first, ``purenet --import``). Returns plain data: the summary, whether it
    trained, the step it started from, where and when it ran."""
    from purenet.extend import import_pieces

    started = time.time()
    run_dir = task["run_dir"]
    with _ONE_AT_A_TIME:
        os.makedirs(run_dir, exist_ok=True)
        lock = DirectoryLock(run_dir, TRIAL_LOCK)
        try:
            lock.acquire(timeout=task["lock_timeout"])
            import_pieces(task.get("imports", ()))
            experiment = parse_experiment(task["raw"], Source(task["path"], task["text"]))
            summary = finished_summary(run_dir, experiment)
            start_step = None
            if summary is None:
                start_step = newest_step(run_dir)
                summary = _train(experiment, run_dir, task["id"], start_step)
        except Exception as error:
            raise TrialError(f"trial {task['id']}: {type(error).__name__}: {error}") from None
        finally:
            lock.release()
    return {"id": task["id"], "summary": summary, "trained": start_step is not None,
            "start_step": start_step, "host": socket.gethostname(), "pid": os.getpid(),
            "started": started, "ended": time.time()}


def _train(experiment: Experiment, run_dir: str, ident: str, start_step: int) -> dict[str, Any]:
    from purenet.experiment.runner import run_experiment

    with open(os.path.join(run_dir, LOG), "a", encoding="utf-8") as log, \
            contextlib.redirect_stderr(log):
        print(f"purenet sweep: trial {ident} on {socket.gethostname()} (pid {os.getpid()}), "
              f"from step {start_step}", file=log, flush=True)
        return run_experiment(experiment, run_dir, resume=True, progress=False)
