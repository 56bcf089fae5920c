"""Deferring SIGINT and SIGTERM during training, so that a step is never cut in half."""

from __future__ import annotations

import signal
import threading
from typing import Any



class DeferredInterrupts:
    """Defers SIGINT and SIGTERM while installed, so a step is never cut in half."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "DeferredInterrupts":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                # A signal the process was told to ignore (nohup, `cmd &`) stays ignored.
                if signal.getsignal(number) is not signal.SIG_IGN:
                    self._previous[number] = signal.signal(number, self._record)
        return self

    def _record(self, number: int, frame: Any) -> None:
        if self.received is not None:
            # A second signal means "now": give up on finishing the step.
            self.__exit__()
            raise KeyboardInterrupt(f"second {signal.Signals(number).name}: stopped mid-step")
        self.received = number

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            # None: the handler was installed outside Python; the default is the best guess.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
