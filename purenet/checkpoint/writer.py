"""One background thread that runs saves, one at a time, and never loses their errors.

``fit`` hands each save to a ``BackgroundWriter`` and trains on: the state is immutable and
its arrays read-only, so the writer reads them while training makes new ones, without a
copy. At most one save is in flight: ``submit`` first waits for the one before. A save that
fails keeps its error until the training thread collects it (``raise_failure``, ``wait`` or
the next ``submit``), so it is raised there exactly once.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable


class BackgroundWriter:
    """Runs ``fn(*args)`` calls in one daemon-free worker thread, one at a time."""

    def __init__(self, name: str = "purenet-checkpoint") -> None:
        self._name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future | None = None

    @property
    def busy(self) -> bool:
        """Whether a submitted call has not finished yet."""
        return self._future is not None and not self._future.done()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Wait for the call in flight (raising its error, if it failed), then start
        ``fn(*args)`` in the worker and return at once."""
        self.wait()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=self._name)
        self._future = self._executor.submit(fn, *args)

    def wait(self) -> Any:
        """Block until the call in flight (if any) is done. Returns its result, or None if
        nothing was in flight; raises its exception (once: it is then forgotten)."""
        future = self._future
        if future is None:
            return None
        # Waited for before it is forgotten: a KeyboardInterrupt here leaves it in flight,
        # still to be waited for.
        concurrent.futures.wait([future])
        self._future = None
        return future.result()   # re-raises the worker's exception here, in the caller

    def raise_failure(self) -> None:
        """Raise the error of a call that has already failed; never blocks."""
        if self._future is not None and self._future.done() \
                and self._future.exception() is not None:
            self.wait()

    def close(self) -> None:
        """Wait for the call in flight (raising its error), then stop the worker thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
