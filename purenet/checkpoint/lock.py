"""One trainer per checkpoint directory: an OS file lock, with its holder written inside.

``flock`` is released by the kernel when its process dies, so a lock left by a killed
trainer is simply free again; the pid, host and start time in the file only say who holds
it. On network filesystems ``flock`` may be emulated or ignored (NFS before Linux 2.6.12,
some FUSE mounts): there the lock does not exclude trainers on other hosts, and two
trainers must be kept apart by the scheduler instead.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket

from purenet.errors import CheckpointLockedError

LOCK_NAME = ".lock"


class DirectoryLock:
    """An exclusive lock on ``directory`` for as long as it is held."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK_NAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (a no-op when held already).

        Raises:
            CheckpointLockedError: another trainer holds it; the message names it.
        """
        if self._fd is not None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise CheckpointLockedError(
                f"{os.path.dirname(self.path)} is in use by another trainer ({holder}); "
                "wait for it to finish, or use another directory") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        self._fd = fd
        try:   # who holds it is for messages only: a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError:
            pass

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)   # closing the descriptor releases the flock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])} on {str(info['host'])[:100]}, since {str(info['since'])[:40]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
