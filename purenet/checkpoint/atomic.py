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


class NotWritableError(OSError):
    """A path purenet will not write: a FIFO, a device, a directory; or, named by a user
    for an output, a symlink."""


def check_target(path: str, user_named: bool = False) -> None:
    """Refuse to write ``path`` unless it is new or a regular file in an existing directory.
    ``user_named`` (an ``--output``): a symlink is refused too, since replacing it would
    change a user's link, and writing through it a file purenet did not make.

    Raises:
        NotWritableError: naming the path, what it is and what to do.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise NotWritableError(f"cannot write {path}: the directory {directory} does not "
                               "exist; create it, or choose another path")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        if user_named:
            raise NotWritableError(f"{path} is a symlink; purenet writes an output only to a "
                                   "new path or over a regular file, never through or over a "
                                   "link: name the file itself, or a new one")
        return   # in a directory of purenet's own: the link itself is replaced, never followed
    if not stat.S_ISREG(mode):
        raise NotWritableError(f"{path} is {file_kind(mode)}; purenet writes only regular files "
                               "(it never replaces a FIFO, a device or a directory): choose "
                               "another path")


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW, 0o644)


def write_atomic(path: str, *chunks: bytes | memoryview) -> str:
    """Write ``chunks`` to a temp file beside ``path``, fsync it and rename it over ``path``.

    ``path`` must be new or a regular file (``check_target``). On any failure (a full disk,
    a signal) the temp file is removed and the error re-raised; whatever ``path`` held
    before is untouched. The caller fsyncs the directory
    (``fsync_directory``) to make the rename itself durable. Returns the absolute path.
    """
    path = os.path.abspath(path)
    check_target(path)
    temp = temp_path_for(path)
    try:
        # "x" (O_EXCL) and O_NOFOLLOW: never a file that exists, nor through a symlink
        # planted under the temp's name.
        with open(temp, "xb", opener=_no_follow) as fh:
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
