"""DeferredInterrupts (purenet/interrupts.py): SIGINT/SIGTERM are recorded, not acted on,
until the step is done; a second one means now; handlers are put back afterwards.
(The end-to-end behaviour, a real child process stopped by a signal, is in test_kill.py.)"""

from __future__ import annotations

import os
import signal

import pytest

from purenet.train import interrupts
from purenet.train.interrupts import DeferredInterrupts


@pytest.fixture
def restore_handlers():
    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    # Start from Python's defaults: pytest run from a background job inherits SIGINT
    # ignored, and DeferredInterrupts rightly leaves an ignored signal alone.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_is_recorded_and_handlers_are_restored(restore_handlers, number):
    before = signal.getsignal(number)
    with DeferredInterrupts() as deferred:
        os.kill(os.getpid(), number)   # delivered to the main thread at once
        assert deferred.received == number
    assert signal.getsignal(number) is before


def test_a_second_signal_stops_at_once(restore_handlers):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="second SIGTERM"):
        with DeferredInterrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_signal_stays_ignored(restore_handlers):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with DeferredInterrupts() as deferred:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        assert deferred.received is None
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_handler_installed_outside_python_is_restored_as_the_default(restore_handlers,
                                                                         monkeypatch):
    real = signal.signal
    calls = []

    def fake(number, handler):
        calls.append((number, handler))
        real(number, handler)
        return None   # what signal.signal returns for a handler set from C
    monkeypatch.setattr(interrupts.signal, "signal", fake)
    with DeferredInterrupts():
        pass
    assert calls[-2:] == [(signal.SIGINT, signal.SIG_DFL), (signal.SIGTERM, signal.SIG_DFL)]
