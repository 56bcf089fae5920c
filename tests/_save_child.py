"""Child process of the concurrent-save test: save a list of steps into one directory.

    python tests/_save_child.py DIRECTORY SEED GO_FILE STEP [STEP ...]

Prints ``ready``, waits for GO_FILE to exist (so that two children start saving at the
same moment), saves each step with ``Checkpointer(keep=None).save`` (state of a network
initialised from SEED), and prints one JSON object ``{step: params digest}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _checkpoint_common import small_spec, state_at

import purenet as pn
from purenet.core.records import params_digest


def main() -> None:
    directory, seed, go, *steps = sys.argv[1:]
    spec = small_spec(seed=int(seed))
    checkpointer = pn.Checkpointer(directory, every_steps=1, keep=None)
    # Not checkpointer.start(): that takes the directory's lock, which keeps a second
    # trainer out; this test is about the files two writers would leave if it did not.
    os.makedirs(directory, exist_ok=True)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.001)
    digests = {}
    for step in map(int, steps):
        state = state_at(spec, step)
        checkpointer.save(state, spec)
        digests[step] = params_digest(state.params)
    print(json.dumps(digests), flush=True)


if __name__ == "__main__":
    main()
