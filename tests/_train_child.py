"""Child process of the kill and interrupt tests: train the fixed run, checkpointing into
a directory, and report on stdout.

    python tests/_train_child.py DATA.npz CHECKPOINT_DIR [--resume] [--epochs N]
        [--every-steps K] [--keep K] [--max-steps N] [--pause-at POINT --pause-step N]
        [--optimizer lbfgs] [--pieces]

``--pieces`` trains with a user's own pieces (tests/_pieces.py): the swish activation in
the middle layer and the clip_by_running_norm transform before Adam.

Prints ``started <step>`` after the first step of this process (the deferred-signal
handlers are in place by then), then one JSON line at the end: ``{"done": step,
"digest": ...}``, or ``{"interrupted": message, "step": step}`` and exit code 3 after
SIGINT/SIGTERM. Children are started with one BLAS thread (tests/_checkpoint_common.py).

``--optimizer lbfgs`` trains another fixed run instead: full-batch L-BFGS, no dropout.

``--pause-at`` stops the save of step N at one point of its protocol, prints ``paused
POINT`` and sleeps, so that the parent can SIGKILL it exactly there: ``write`` (the temp
file half written), ``replace`` (the temp complete, not yet renamed), ``fsync-dir`` (renamed,
directory not yet synced), ``read-back`` (before the new file is verified), ``delete``
(verified, before retention deletes the oldest), ``in-flight`` (the background save
of step N has not begun while the training thread trains on). All but ``in-flight`` pause
inside the background writer thread too: fit saves asynchronously.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import sys
import threading
import time

import numpy as np
from _checkpoint_common import FileProxy

import purenet as pn
from purenet import optim
from purenet.optim import schedules

ARCH = [
    {"input_dim": 2, "output_dim": 16, "activation": "relu", "dropout": 0.2},
    {"input_dim": 16, "output_dim": 16, "activation": "tanh"},
    {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"},
]


LBFGS_ARCH = [{**layer, "dropout": 0.0} for layer in ARCH]


def run_settings(optimizer: str) -> dict:
    if optimizer == "lbfgs":
        return dict(architecture=LBFGS_ARCH, optimizer=optim.lbfgs(history_size=7),
                    batch_size=None)
    return dict(architecture=ARCH, optimizer=optim.adam(schedules.warmup_cosine_decay(
                    2e-2, 30, 2000, end_value=1e-3)), batch_size=16)


class SayStarted(pn.Callback):
    def __init__(self) -> None:
        self.said = False

    def on_step_end(self, state, metrics) -> None:
        if not self.said:
            print(f"started {state.step}", flush=True)
            self.said = True


class _PausingFile(FileProxy):
    """Lets the first write through, then pauses: a half-written file."""

    def __init__(self, fh, pause) -> None:
        super().__init__(fh)
        self.pause, self.writes = pause, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 2:
            self.fh.flush()
            self.pause()
        return self.fh.write(data)


def install_pause(point: str, step: int) -> None:
    from purenet.checkpoint import atomic
    from purenet.checkpoint import policy as checkpointer

    name = f"step-{step:08d}.h5"

    def pause() -> None:
        print(f"paused {point}", flush=True)
        time.sleep(600)

    if point == "write":
        def opener(path, mode="r", *args, **kwargs):
            fh = builtins.open(path, mode, *args, **kwargs)
            is_temp = os.path.basename(path).startswith(f".{name}.tmp-")
            return _PausingFile(fh, pause) if is_temp and "x" in mode else fh
        atomic.open = opener
    elif point == "replace":
        real_replace = os.replace

        def replace(src, dst):
            if os.path.basename(dst) == name:
                pause()
            return real_replace(src, dst)
        os.replace = replace
    elif point == "fsync-dir":
        real_sync = atomic.fsync_directory

        def sync(directory):
            if os.path.exists(os.path.join(directory, name)):
                pause()
            return real_sync(directory)
        atomic.fsync_directory = sync
    elif point == "read-back":
        real_verify = checkpointer.verify_checkpoint

        def verify(path):
            if os.path.basename(path) == name:
                pause()
            return real_verify(path)
        checkpointer.verify_checkpoint = verify
    elif point == "in-flight":
        # The background save of step N stalls (before it writes a byte) while training
        # goes on: the process is killed with a save in flight and later steps trained.
        real_write = checkpointer.write_checkpoint

        def write(path, *args, **kwargs):
            if os.path.basename(path) == name:
                assert threading.current_thread() is not threading.main_thread()
                print("paused in-flight", flush=True)
                time.sleep(600)
            return real_write(path, *args, **kwargs)
        checkpointer.write_checkpoint = write
    elif point == "delete":
        real_remove = os.remove

        def remove(path, *args, **kwargs):
            # the first deletion by the save of step N (step N is on disk by then)
            if os.path.exists(os.path.join(os.path.dirname(path), name)):
                pause()
            return real_remove(path, *args, **kwargs)
        os.remove = remove
    else:
        raise SystemExit(f"unknown pause point {point!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("directory")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--every-steps", type=int, default=None)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--pause-at", default=None)
    parser.add_argument("--pause-step", type=int, default=None)
    parser.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    parser.add_argument("--pieces", action="store_true")
    args = parser.parse_args()
    if args.pause_at:
        install_pause(args.pause_at, args.pause_step)
    with np.load(args.data) as data:
        x, y = data["x"], data["y"]
    if args.every_steps:
        checkpointer = pn.Checkpointer(args.directory, every_steps=args.every_steps, keep=args.keep)
    else:   # only the final state (or the state at an interrupt)
        checkpointer = pn.Checkpointer(args.directory, every_epochs=10**9, keep=args.keep)
    settings = run_settings(args.optimizer)
    if args.pieces:
        from purenet.extend import import_pieces

        import_pieces([os.path.join(os.path.dirname(__file__), "_pieces.py")])
        settings["architecture"] = [ARCH[0], {**ARCH[1], "activation": "swish"}, ARCH[2]]
        settings["optimizer"] = optim.chain(sys.modules["_pieces"].clip(1.5),
                                            settings["optimizer"])
    try:
        result = pn.fit(settings.pop("architecture"), x, y, **settings,
                        epochs=args.epochs, seed=7, dtype="float64", l2=1e-4,
                        checkpointer=checkpointer, resume=args.resume, callbacks=[SayStarted()],
                        max_steps=args.max_steps, progress=False)
    except pn.TrainingInterrupted as stop:
        print(json.dumps({"interrupted": str(stop), "step": stop.state.step}), flush=True)
        return 3
    print(json.dumps({"done": result.state.step,
                      "digest": pn.load_checkpoint(args.directory).params_digest}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
