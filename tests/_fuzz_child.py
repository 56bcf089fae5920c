"""Child process of the fuzz test: read every path read from stdin (one a line) with
``purenet.load_checkpoint`` (format 3) or ``upgrade_checkpoint(..., dry_run=True)`` (formats
1 and 2, which only upgrade reads) and print one JSON line per path: its outcome.

Each load has a watchdog (``faulthandler.dump_traceback_later``: a load that takes longer
than the limit kills this process, with the stack on stderr) and the process a memory
limit (RLIMIT_AS), so a hang or a memory bomb shows as this child dying at that path.
Format 1 and 2 files go through purenet's own reader process, given a shorter time here.

    python tests/_fuzz_child.py SECONDS_PER_LOAD MEMORY_BYTES < paths
"""

from __future__ import annotations

import faulthandler
import json
import resource
import sys

import purenet
from purenet.checkpoint import legacy
from purenet.checkpoint.sealed import header_version
from purenet.checkpoint.upgrade import upgrade_checkpoint
from purenet.errors import CheckpointError


def read(path: str) -> int:
    """The step the file holds, as its format's reader reads it."""
    if header_version(path) < 3:
        return upgrade_checkpoint(path, dry_run=True).step
    return purenet.load_checkpoint(path).state.step


def main() -> None:
    seconds, memory = float(sys.argv[1]), int(sys.argv[2])
    with open("/proc/self/statm") as fh:
        held = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (held + memory, held + memory))
    legacy.SECONDS = seconds / 2   # purenet's reader process is stopped before the watchdog
    for path in sys.stdin.read().splitlines():
        faulthandler.dump_traceback_later(seconds, exit=True)
        report = {"path": path, "outcome": "ok", "message": ""}
        try:
            report["step"] = read(path)
        except CheckpointError as error:
            report.update(outcome=type(error).__name__, message=str(error)[:300])
        except BaseException as error:   # any other: the parent fails the test with it
            report.update(outcome="UNEXPECTED " + type(error).__name__, message=repr(error)[:500])
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
