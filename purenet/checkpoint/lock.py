"""One trainer per checkpoint directory: an OS file lock, with its holder written inside.

``flock`` is released by the kernel when its process dies, so a lock left by a killed
trainer is simply free again; the pid, host and start time in the file only say who holds
it. A trainer that must not give up at once (a sweep's rescheduled trial, whose earlier
attempt may still be running) waits for the holder with ``acquire(timeout=...)``.

On network filesystems the lock is only as good as the filesystem's. NFSv4 (and NFSv3 with
lockd) turn ``flock`` into a server-side byte-range lock: it excludes other hosts, but the
lock of a host that died is freed only when its lease lapses (about 90 s), and a host cut
off from the server loses its lock while its trainer runs on. Some FUSE mounts (sshfs) and
Lustre with ``-o localflock`` lock per host only; Lustre without ``-o flock`` refuses
``flock`` (a clear OSError here). Where the lock does not reach, trainers on other hosts
must be kept apart by the scheduler.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import stat
import time

from purenet.checkpoint.atomic import file_kind
from purenet.errors import CheckpointLockedError

LOCK_NAME = ".lock"
# errno values of a filesystem that has no working flock (some FUSE and network mounts).
NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)


class DirectoryLock:
    """An exclusive lock on ``directory`` for as long as it is held (the file ``name`` in
    it: two locks of other names on one directory are independent)."""

    def __init__(self, directory: str, name: str = LOCK_NAME) -> None:
        self.path = os.path.join(directory, name)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float | None = 0.0, poll: float = 0.1) -> None:
        """Take the lock (a no-op when held already).

        Args:
            timeout: seconds to wait for a live holder to let go (0: refuse at once, as a
                trainer started by hand does; None: wait for as long as it takes).
            poll: seconds between tries while waiting.

        Raises:
            CheckpointLockedError: another trainer holds it (after ``timeout``); the
                message names it.
            OSError: the filesystem has no working file locks.
        """
        if self._fd is not None:
            return
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fd = self._try_lock()
            if fd is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                holder = self.holder()
                waited = f" after waiting {timeout:g} s" if timeout else ""
                raise CheckpointLockedError(
                    f"{os.path.dirname(self.path)} is in use by another trainer ({holder})"
                    f"{waited}; wait for it to finish, or use another directory")
            left = poll if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(poll, left)))
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        self._fd = fd
        try:   # who holds it is for messages only: a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError:
            pass

    def _try_lock(self) -> int | None:
        """A descriptor holding the lock, or None when another holds it. The lock file is
        purenet's own: never followed through a symlink (its holder line would truncate
        the file linked to), never a FIFO or a device."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                         0o644)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            raise CheckpointLockedError(
                f"{self.path} is a symlink; the lock of a directory is a file purenet makes "
                "itself, and it never writes through a link: remove the link (the file it "
                "points to is untouched)") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise CheckpointLockedError(
                f"{self.path} is {file_kind(mode)}, not the lock file purenet makes; remove it "
                "and try again")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _still_named(fd, self.path):   # unlinked by its last holder meanwhile
                os.close(fd)
                return self._try_lock()
            return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as error:
            os.close(fd)
            if error.errno in NO_LOCKS:
                raise OSError(error.errno, f"the filesystem of {self.path} has no working "
                              f"file locks ({error.strerror}); train on a local disk, or on a "
                              "mount with locking enabled (e.g. Lustre's -o flock)") from None
            raise

    def holder(self) -> str:
        """Who holds the lock, as its file says (pid, host, since): for messages."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return "holder unknown"
        try:
            return _holder(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> "DirectoryLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self, remove: bool = False) -> None:
        """Let go of the lock; with ``remove``, delete its file first (a run that never
        started leaves nothing behind). A trainer that opened the file meanwhile finds it
        no longer named, and opens the path again (``_try_lock``)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if remove:
                os.unlink(self.path)
            else:
                os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)   # closing the descriptor releases the flock


def _still_named(fd: int, path: str) -> bool:
    """Whether the locked file ``fd`` is still the file at ``path``."""
    try:
        here, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {int(info['pid'])} on {str(info['host'])[:100]}, "
                f"since {str(info['since'])[:40]}")
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
