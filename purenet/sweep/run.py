"""Running a sweep on Dask distributed: ``run_sweep``.

Without a scheduler it starts a ``LocalCluster`` of worker processes (one thread each,
``cores // the trials' BLAS threads`` of them by default); with one it submits to that
cluster, whose workers must see the sweep directory at the same path. Each trial is one
task, ``purenet.sweep.trial.run_trial`` of plain data, so any worker can run it and a task
rescheduled after its worker died simply resumes from the trial's checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import os
import time
from typing import Any, Callable, Iterator

import attrs

from purenet.errors import RunDirectoryError
from purenet.experiment.rundir import existing_run
from purenet.sweep.results import result_rows, write_record, write_results
from purenet.sweep.spec import Sweep, Trial, load_sweep
from purenet.sweep.trial import finished_summary, run_trial

INSTALL_HINT = "purenet sweep needs Dask: pip install 'purenet[dask]'"
# A retry after an exception in the task (not a dead worker: the scheduler's
# distributed.scheduler.allowed-failures decides those) covers a lock still held past the
# timeout, a filesystem hiccup; a wrong setting fails again, cheaply.
RETRIES = 1


def require_dask() -> Any:
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return distributed


@attrs.frozen
class TrialOutcome:
    """A trial as the client saw it end: its summary (None when it failed), whether it
    trained now or was found finished, and where and how long it ran."""

    trial: Trial
    summary: dict[str, Any] | None
    error: str | None = None
    trained: bool = False
    start_step: int | None = None
    host: str | None = None
    seconds: float = 0.0          # on the worker, lock wait included


@attrs.frozen
class SweepReport:
    """What ``run_sweep`` did: every trial's outcome, and the sweep's times."""

    sweep: Sweep
    sweep_dir: str
    outcomes: tuple[TrialOutcome, ...]
    skipped: tuple[str, ...]      # ids of trials found finished before submitting
    workers: int
    seconds: float                # submit to last result
    startup_seconds: float        # starting (or connecting to) the cluster

    @property
    def failures(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def results_path(self) -> str:
        return os.path.join(self.sweep_dir, "results.csv")


# More local worker processes than any machine runs usefully (each is a Python process).
MAX_WORKERS = 1024


def _cores() -> int:
    """The cores this process may use (sched_getaffinity: Linux only)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _checked_workers(workers: Any) -> int:
    if type(workers) is not int or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be an integer from 1 to {MAX_WORKERS}, got "
                         f"{workers!r:.40}")
    return workers


def planned_workers(requested: int | None, pending: list[Trial]) -> int:
    """The local workers to start: ``requested`` (checked), but no more than the pending
    trials or the cores; ``default_workers`` when None."""
    if requested is None:
        return default_workers(pending)
    return max(1, min(_checked_workers(requested), len(pending), _cores()))


def default_workers(trials: list[Trial], cores: int | None = None) -> int:
    """As many one-thread workers as the cores hold trials at their own BLAS threads."""
    cores = _cores() if cores is None else cores
    threads = max((t.experiment.run.threads for t in trials), default=1)
    return max(1, min(len(trials) or 1, cores // threads))


def run_sweep(sweep: Sweep | str | os.PathLike, *, sweep_dir: str | os.PathLike | None = None,
              workers: int | None = None, scheduler: str | None = None, client: Any = None,
              resume: bool = False, lock_timeout: float = 600.0,
              on_start: Callable[[list[Trial], int], None] | None = None,
              on_result: Callable[[TrialOutcome], None] | None = None) -> SweepReport:
    """Run every trial of ``sweep`` on Dask; write ``results.csv`` as trials finish.

    Args:
        sweep: a ``Sweep`` or the path of a sweep file.
        sweep_dir: where the trials' run directories go (default ``runs/<name>``).
        workers: worker processes of the local cluster (default: ``default_workers``);
            at most one per pending trial and per core, whatever is asked.
        scheduler: the address of a running Dask scheduler (``tcp://host:8786``) to submit
            to instead; its workers must see ``sweep_dir`` at the same path.
        client: a ``distributed.Client`` to submit through instead (it is left open).
        resume: finish a sweep begun before: trials found finished are skipped, the others
            resume from their newest checkpoints. Without it, a sweep directory that holds
            trial runs already is refused.
        lock_timeout: seconds a trial waits for a live holder of its run directory.
        on_start: called with the trials to run and the worker count, before submitting.
        on_result: called with each ``TrialOutcome`` as it arrives.

    Raises:
        ImportError: Dask is not installed (the message says how to install it).
        ExperimentError: a bad sweep file. RunDirectoryError: see ``resume``.
    """
    distributed = require_dask()
    sweep = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    sweep_dir = os.path.abspath(os.fspath(sweep_dir or sweep.default_dir()))
    finished, pending = _plan(sweep, sweep_dir, resume)
    os.makedirs(sweep_dir, exist_ok=True)
    write_record(sweep_dir, sweep)
    outcomes = {ident: TrialOutcome(_by_id(sweep, ident), summary)
                for ident, summary in finished.items()}
    _write(sweep, sweep_dir, outcomes)
    if not pending:      # nothing to run: no cluster to start
        return SweepReport(sweep, sweep_dir, _ordered(sweep, outcomes), tuple(finished), 0,
                           0.0, 0.0)
    started = time.perf_counter()
    workers = planned_workers(workers, pending)
    with _connect(distributed, client, scheduler, workers) as ours:
        startup = time.perf_counter() - started
        count = _worker_count(ours)
        if on_start is not None:
            on_start(pending, count)
        began = time.perf_counter()
        futures = {ours.submit(run_trial, _task(trial, sweep, sweep_dir, lock_timeout),
                               key=f"purenet-{sweep.name}-{trial.id}", pure=False,
                               retries=RETRIES): trial for trial in pending}
        for future in distributed.as_completed(futures):
            outcome = _outcome(futures[future], future)
            outcomes[outcome.trial.id] = outcome
            if outcome.summary is not None:
                _write(sweep, sweep_dir, outcomes)
            if on_result is not None:
                on_result(outcome)
        seconds = time.perf_counter() - began
    return SweepReport(sweep, sweep_dir, _ordered(sweep, outcomes), tuple(finished), count,
                       seconds, startup)


def _ordered(sweep: Sweep, outcomes: dict[str, TrialOutcome]) -> tuple[TrialOutcome, ...]:
    return tuple(outcomes[t.id] for t in sweep.trials if t.id in outcomes)


def _by_id(sweep: Sweep, ident: str) -> Trial:
    return next(t for t in sweep.trials if t.id == ident)


def _plan(sweep: Sweep, sweep_dir: str, resume: bool) -> tuple[dict[str, dict], list[Trial]]:
    """``({id: summary} of finished trials, trials to run)``; refuses to start over old runs."""
    finished, pending, begun = {}, [], []
    for trial in sweep.trials:
        run_dir = os.path.join(sweep_dir, trial.id)
        summary = finished_summary(run_dir, trial.experiment)
        if summary is not None:
            finished[trial.id] = summary
        else:
            pending.append(trial)
        if existing_run(run_dir):
            begun.append(trial.id)
    if begun and not resume:
        raise RunDirectoryError(
            f"{sweep_dir} already holds {len(begun)} of this sweep's {len(sweep.trials)} "
            f"trial runs ({len(finished)} finished); finish the sweep with --resume, or "
            "choose another directory (--sweep-dir)")
    return finished, pending


def _task(trial: Trial, sweep: Sweep, sweep_dir: str, lock_timeout: float) -> dict[str, Any]:
    from purenet.extend import IMPORTED   # a worker registers the pieces this process has

    return {"id": trial.id, "run_dir": os.path.join(sweep_dir, trial.id), "raw": trial.raw,
            "path": os.path.abspath(sweep.path), "text": sweep.text,
            "lock_timeout": lock_timeout,
            "imports": [os.path.abspath(m) if m.endswith(".py") else m for m in IMPORTED]}


def _outcome(trial: Trial, future: Any) -> TrialOutcome:
    try:
        result = future.result()
    except Exception as error:   # the trial's own error, or KilledWorker after many deaths
        return TrialOutcome(trial, None, error=f"{type(error).__name__}: {error}")
    return TrialOutcome(trial, result["summary"], trained=result["trained"],
                        start_step=result["start_step"], host=result["host"],
                        seconds=result["ended"] - result["started"])


def _write(sweep: Sweep, sweep_dir: str, outcomes: dict[str, TrialOutcome]) -> None:
    done = [(t.id, t.settings, outcomes[t.id].summary) for t in sweep.trials
            if t.id in outcomes and outcomes[t.id].summary is not None]
    if done:
        write_results(sweep_dir, *result_rows(sweep.keys, done))


@contextlib.contextmanager
def _connect(distributed: Any, client: Any, scheduler: str | None,
             workers: int) -> Iterator[Any]:
    """A client to submit through: the caller's (left open), one connected to
    ``scheduler``, or one of a new LocalCluster of one-thread worker processes."""
    if client is not None:
        yield client
    elif scheduler is not None:
        try:
            ours = distributed.Client(scheduler, timeout="30s")
        except (OSError, ValueError, TimeoutError) as error:   # a dead or odd address
            raise ConnectionError(
                f"could not connect to the Dask scheduler at {scheduler!r} "
                f"({type(error).__name__}: {str(error)[:120]}); give the address of a running "
                "scheduler, e.g. --scheduler tcp://host:8786, or leave it out to start a "
                "local cluster") from None
        with ours:
            yield ours
    else:
        with _local_cluster(distributed, workers) as ours:
            yield ours


@contextlib.contextmanager
def _quiet_interrupts() -> Iterator[None]:
    """SIGINT blocked in this thread for the block: the threads made meanwhile (the
    cluster's event loop) keep it blocked, and so do the worker processes they start, which
    therefore never print a KeyboardInterrupt traceback of their own. A Ctrl-C that comes
    meanwhile waits, and arrives here (as KeyboardInterrupt) when the block ends."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_fork_server_deaf_to_interrupts() -> None:
    """Start multiprocessing's fork server (once a process) with SIGINT ignored, which the
    processes it forks keep; a Ctrl-C in these few milliseconds is lost."""
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _local_cluster(distributed: Any, workers: int) -> Iterator[Any]:
    """A client of a new LocalCluster of one-thread worker processes, started and closed
    whole, whenever Ctrl-C comes: the user sees purenet's lines, never Dask's."""
    import dask

    cluster = client = None
    try:
        # Workers forked from a fork server that ignores SIGINT ignore it too, whenever they
        # start (a worker the nanny restarts included); spawned ones would reset it.
        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
            _start_fork_server_deaf_to_interrupts()
            with _quiet_interrupts():
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                   processes=True, dashboard_address=None,
                                                   silence_logs=logging.ERROR)
                client = distributed.Client(cluster)
        yield client
    finally:
        with _quiet_interrupts():
            for part in (client, cluster):
                if part is not None:
                    part.close()


def _worker_count(client: Any) -> int:
    return len(client.nthreads())
