"""Child process of the corruption tests: load every path read from stdin (one a line)
with ``purenet.load_checkpoint`` and print one JSON line per path.

Runs in its own process so that a crash inside HDF5's C code fails the test instead of
killing pytest. Every way of unpickling is booby-trapped first: a file that made purenet
unpickle anything is reported as ``"unpickled": true``.
"""

from __future__ import annotations

import json
import pickle
import sys

UNPICKLED = []


def _trap(*args, **kwargs):
    UNPICKLED.append(True)
    raise RuntimeError("purenet tried to unpickle")


class _TrapUnpickler:
    def __init__(self, *args, **kwargs):
        _trap()


pickle.load = pickle.loads = _trap
pickle.Unpickler = _TrapUnpickler

import purenet
from purenet.errors import CheckpointError


def main() -> None:
    for path in sys.stdin.read().splitlines():
        UNPICKLED.clear()
        report = {"path": path, "error": None, "checkpoint_error": False, "message": "",
                  "step": None}
        try:
            report["step"] = purenet.load_checkpoint(path).state.step
        except Exception as error:   # report everything; the parent decides what is right
            report.update(error=type(error).__name__, message=str(error),
                          checkpoint_error=isinstance(error, CheckpointError))
        report["unpickled"] = bool(UNPICKLED)
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
