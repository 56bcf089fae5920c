"""Replacing a file so that a crash at any instant leaves the old one or the complete new one;
and naming what a path that is not a regular file is, for the messages that refuse it."""

from __future__ import annotations

import os
import re
import secrets
import stat

# ".<name>.tmp-<pid>-<hex>": hidden, beside its target, and naming the process that writes it.
_TEMP = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+$")


# Tried in order; the first test a mode passes names it.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a file of ``mode`` (``st_mode``) is, for a message: "a FIFO", "a device", ..."""
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def temp_path_for(path: str) -> str:
    """A hidden temp name beside ``path``, unique to this process and call."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def temp_of(name: str) -> tuple[str, int] | None:
    """``(target name, writer's pid)`` when ``name`` is one of ``temp_path_for``'s temp
    files, else None."""
    match = _TEMP.match(name)
    return None if match is None else (match.group("target"), int(match.group("pid")))


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, *chunks: bytes | memoryview) -> str:
    """Write ``chunks`` to a temp file beside ``path``, fsync it and rename it over ``path``.

    On any failure (a full disk, a signal) the temp file is removed and the error re-raised;
    whatever ``path`` held before is untouched. The caller fsyncs the directory
    (``fsync_directory``) to make the rename itself durable. Returns the absolute path.
    """
    path = os.path.abspath(path)
    temp = temp_path_for(path)
    try:
        with open(temp, "xb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise
    return path
