"""Files sealed by a header in their first 512 bytes (the HDF5 user block).

The header holds ``PURENET-CHECKPOINT``, the format version, the length and digest of the
rest of the file (the body), and a CRC-32 of those lines; the remaining bytes of the block
are NUL. From format 3 on it also gives the length of the manifest, which opens the body
(``manifest.py``). ``read_sealed`` checks all of it before anything uses the body, so a
flipped bit or a truncated file is an error, never a crash or a wrong number; a reader's
plan may look at the manifest first, only to bound what is read, and what it concludes
stands only once the digest matches. This module knows nothing of HDF5 or of the
manifest's contents.

The digest guards integrity (torn writes, flipped bits), not authenticity: format 2 uses
xxh3-128 (``body_xxh3_128``, formats 2 and 3), which hashes at memory speed (~15 GB/s against BLAKE2b's
~0.7 GB/s on the development VM, where BLAKE2b alone took as long as writing and fsyncing
the file); format 1 files carry BLAKE2b (``body_blake2b``) and are still checked with it.
Bodies are hashed in chunks as they are read, and a file's size is checked against its
header before its body is read at all.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from typing import Any, Callable, NamedTuple, Sequence, Union

import xxhash

from purenet import __version__
from purenet.checkpoint import atomic
from purenet.errors import (CheckpointError, CheckpointNotFoundError, CorruptCheckpointError,
                            NewerCheckpointError, NotACheckpointError)

FORMAT_VERSION = 3
USERBLOCK_SIZE = 512
MAGIC = b"PURENET-CHECKPOINT\n"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PICKLE_OPCODE = b"\x80"
CHUNK = 1 << 20
# A body: its bytes, or the byte strings that make it up, in order.
Body = Union[bytes, bytearray, memoryview, Sequence[Union[bytes, memoryview]]]
# The digest each format version seals its body with: header field -> hash constructor.
DIGESTS: dict[int, tuple[str, Callable[[], Any]]] = {
    1: ("body_blake2b", hashlib.blake2b),
    2: ("body_xxh3_128", xxhash.xxh3_128),
    3: ("body_xxh3_128", xxhash.xxh3_128),
}
# The header field that gives the length of the manifest opening the body (format 3 on).
MANIFEST_FIELD = "manifest_length"


# The largest manifest a header may announce (a 1000-layer chain of Adam states needs
# about 1 MB); checked before a byte of the body is read.
MAX_MANIFEST_BYTES = 16 << 20


class Sealed(NamedTuple):
    """A verified file: its format version, its bytes (header included), the length of
    the manifest that opens its body (0 before format 3), and what the reader's ``plan``
    made of the manifest (None without one)."""

    version: int
    data: bytearray
    manifest_length: int
    plan: Any = None


def _digest_of(version: int) -> tuple[str, Callable[[], Any]]:
    return DIGESTS.get(version, DIGESTS[FORMAT_VERSION])


# --- writing --------------------------------------------------------------------------


def _chunks(body: Body) -> list[bytes | memoryview]:
    return [body] if isinstance(body, (bytes, bytearray, memoryview)) else list(body)


def header(format_version: int, manifest_length: int | None, body_length: int,
           digest: str) -> bytes:
    """The 512-byte header of a body of ``body_length`` bytes whose digest (hex) is
    ``digest``: magic, format version, (from format 3 on) the manifest's length, the body's
    length and digest, and a CRC-32 of those lines, padded with NUL bytes.

    The header's own CRC and its all-NUL padding make a flipped bit anywhere in the user
    block an error too (the body digest does not cover it).
    """
    field, _ = _digest_of(format_version)
    manifest = "" if manifest_length is None else f"{MANIFEST_FIELD}={manifest_length}\n"
    text = MAGIC + (f"format_version={format_version}\n{manifest}body_length={body_length}\n"
                    f"{field}={digest}\n").encode()
    text += f"header_crc32={zlib.crc32(text):08x}\n".encode()
    return text.ljust(USERBLOCK_SIZE, b"\0")


def seal(body: Body, format_version: int = FORMAT_VERSION,
         manifest_length: int | None = None) -> bytes:
    """The header of ``body``: its bytes, or a sequence of byte strings that make it up in
    turn (hashed here)."""
    _, new_hash = _digest_of(format_version)
    digest, length = new_hash(), 0
    for chunk in _chunks(body):   # xxhash lets go of the GIL on large chunks
        digest.update(chunk)
        length += memoryview(chunk).nbytes
    return header(format_version, manifest_length, length, digest.hexdigest())


def write_sealed(path: str, body: Body, manifest_length: int | None = None) -> str:
    """Write ``seal(body) + body`` to ``path`` atomically: a temp file beside it, fsync,
    rename over, fsync the directory. ``body``: bytes, or a sequence of byte strings
    written in turn (no copy joins them). A crash at any instant leaves either the old file or
    the complete new one.

    Raises:
        CheckpointError: an OS error such as a full disk (the temp file is removed;
            whatever ``path`` held before is untouched).
    """
    try:
        chunks = _chunks(body)
        path = atomic.write_atomic(path, seal(chunks, manifest_length=manifest_length),
                                   *chunks)
    except OSError as error:
        raise CheckpointError(
            f"could not write checkpoint {path}: {error}. The temp file was removed and "
            "earlier checkpoints are intact; free disk space or choose another directory"
        ) from error
    sync_directory_of(path)
    return path


def sync_directory_of(path: str) -> None:
    """Make the rename that put ``path`` in place durable.

    Raises:
        CheckpointError: the fsync failed (``path`` is in place, but a power loss may undo it).
    """
    try:
        atomic.fsync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} was written, but syncing its directory "
                              f"failed ({error}); it may not survive a power loss") from error


# --- reading --------------------------------------------------------------------------


def parse_header(path: str, head: bytes) -> dict[str, str]:
    """The header's fields, after checking its magic, its CRC and its NUL padding."""
    if not head.startswith(MAGIC):
        if MAGIC.startswith(head):
            raise CorruptCheckpointError(
                f"{path} is truncated: it holds only {len(head)} bytes of the purenet header; "
                "use an earlier checkpoint")
        if head[len(MAGIC):].startswith(b"format_version="):
            raise CorruptCheckpointError(
                f"{path} is a purenet checkpoint whose first line is damaged; use an earlier "
                "checkpoint")
        if head.startswith(HDF5_SIGNATURE):
            raise NotACheckpointError(
                f"{path} is an HDF5 file but not a purenet checkpoint (no purenet header in "
                "its user block); it was written by another program")
        if head.startswith(PICKLE_OPCODE):
            raise NotACheckpointError(
                f"{path} looks like a Python pickle; purenet checkpoints are HDF5 and purenet "
                "never unpickles files")
        raise NotACheckpointError(
            f"{path} is not a purenet checkpoint (it does not start with the purenet header)")
    if len(head) < USERBLOCK_SIZE:
        raise CorruptCheckpointError(
            f"{path} is truncated: it holds {len(head)} bytes, less than the "
            f"{USERBLOCK_SIZE}-byte purenet header; use an earlier checkpoint")
    text, _, padding = head.partition(b"\0")
    damaged = CorruptCheckpointError(f"{path} has a damaged purenet header (its CRC or layout "
                                     "does not check out); use an earlier checkpoint")
    crc_at = text.rfind(b"header_crc32=")
    if padding.strip(b"\0") or crc_at < 0 or not text.endswith(b"\n"):
        raise damaged
    # Compared as text, exactly as written: int(..., 16) would take "A" for "a" (one flipped
    # bit) and "+", "_" or spaces, leaving bits of the CRC line itself unchecked.
    if text[crc_at:] != f"header_crc32={zlib.crc32(text[:crc_at]):08x}\n".encode():
        raise damaged
    fields = {}
    for line in text[len(MAGIC):crc_at].decode("ascii", "replace").splitlines():
        key, _, value = line.partition("=")
        if key in fields:   # read one way by one reader, the other way by another
            raise CorruptCheckpointError(f"{path} has a damaged purenet header (its field "
                                         f"{key[:40]!r} is given twice); use an earlier "
                                         "checkpoint")
        fields[key] = value
    return fields


def _open_regular(path: str):
    """``path`` opened for reading, refusing anything but a regular file before a byte is
    read. O_NONBLOCK: opening a FIFO must not wait for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint file at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory; use load_checkpoint for directories") from None
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {error}") from error
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise CheckpointError(f"{path} is a directory; use load_checkpoint for directories")
        raise CheckpointError(f"{path} is {atomic.file_kind(mode)}, not a regular file; a "
                              "checkpoint is a regular file (step-NNNNNNNN.h5)")
    return os.fdopen(fd, "rb", buffering=0)


class _Header(NamedTuple):
    head: bytes
    version: int
    body_length: int
    manifest_length: int
    digest: str
    new_hash: Callable[[], Any]


def _int_field(header: dict[str, str], name: str, damaged: CheckpointError) -> int:
    text = header[name]
    if not text.isdigit() or len(text) > 20:   # no sign, no spaces, no 10**4300
        raise damaged
    return int(text)


def _checked_header(path: str, fh) -> _Header:
    """The header's fields, after checking the header and that the file's size is the one
    the header promises."""
    head = fh.read(USERBLOCK_SIZE)
    if not head:
        raise CorruptCheckpointError(f"{path} is empty (0 bytes): a write was cut off before "
                                     "it began; use an earlier checkpoint")
    header = parse_header(path, head)
    damaged = CorruptCheckpointError(f"{path} has a damaged purenet header")
    if "format_version" not in header:
        raise damaged
    version = _int_field(header, "format_version", damaged)
    if version > FORMAT_VERSION:   # checked first: a later format may have other fields
        raise NewerCheckpointError(
            f"{path} was written by a newer purenet (checkpoint format version {version}; "
            f"purenet {__version__} reads up to {FORMAT_VERSION}); upgrade purenet to read it")
    if version < 1:
        raise damaged
    field, new_hash = DIGESTS[version]
    fields = {"format_version", "body_length", field} | ({MANIFEST_FIELD} if version >= 3 else set())
    if set(header) != fields:
        raise damaged
    length = _int_field(header, "body_length", damaged)
    manifest = _int_field(header, MANIFEST_FIELD, damaged) if version >= 3 else 0
    size = os.fstat(fh.fileno()).st_size - USERBLOCK_SIZE
    if size != length:
        raise CorruptCheckpointError(
            f"{path} is truncated or padded: its header promises {length} bytes of "
            f"body, the file holds {size}; use an earlier checkpoint")
    if manifest > min(length, MAX_MANIFEST_BYTES):
        raise CorruptCheckpointError(
            f"{path}: its header gives a manifest of {manifest:,} bytes in a body of "
            f"{length:,} (at most {MAX_MANIFEST_BYTES:,}); use an earlier checkpoint")
    return _Header(head, version, length, manifest, header[field], new_hash)


def _read_into(path: str, fh, view: memoryview, digest: Any) -> None:
    """Fill ``view`` from the file in chunks, hashing each."""
    done, length = 0, len(view)
    while done < length:
        got = fh.readinto(view[done:done + min(CHUNK, length - done)])
        if not got:
            raise CorruptCheckpointError(f"{path} became shorter while it was read; use an "
                                         "earlier checkpoint")
        digest.update(view[done:done + got])
        done += got


def _hash_rest(path: str, fh, length: int, digest: Any) -> None:
    """Hash ``length`` more bytes of the file through one chunk of scratch memory."""
    scratch = memoryview(bytearray(min(CHUNK, max(length, 1))))
    while length > 0:
        size = min(CHUNK, length)
        _read_into(path, fh, scratch[:size], digest)
        length -= size


def _check_digest(path: str, fh, header: _Header, digest: Any) -> None:
    if fh.read(1):
        raise CorruptCheckpointError(f"{path} grew while it was read; use an earlier checkpoint")
    if digest.hexdigest() != header.digest:
        raise CorruptCheckpointError(
            f"{path} is corrupt: the digest of its contents does not match the one it was "
            "sealed with; use an earlier checkpoint")


def _reading(path: str, read: Callable[[Any], Any]) -> Any:
    """``read(the open file)``, OS errors turned into CheckpointError."""
    try:
        with _open_regular(path) as fh:
            return read(fh)
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {error}") from error


def header_version(path: str) -> int:
    """``path``'s format version, after checking its header and its size (the body is not
    read: the reader of its version will check it)."""
    return _reading(path, lambda fh: _checked_header(path, fh).version)


def verify_sealed(path: str) -> int:
    """Check ``path``'s header and body digest, reading it in chunks (the file is never
    held in memory whole). Returns its format version."""
    def verify(fh) -> int:
        header = _checked_header(path, fh)
        digest = header.new_hash()
        _hash_rest(path, fh, header.body_length, digest)
        _check_digest(path, fh, header, digest)
        return header.version
    return _reading(path, verify)


# What a reader makes of a manifest before the body is verified: ``plan(manifest bytes,
# file size)`` returns its conclusions and the largest file they account for, or raises.
Planner = Callable[[bytes, int], tuple[Any, int]]


def read_sealed(path: str, plan: Planner | None = None) -> Sealed:
    """The file's format version, bytes (header included) and manifest length, after
    checking its header, its size and the digest of its body.

    Nothing is allocated before it is bounded: the header's sizes are checked against the
    file first, and with a ``plan`` (format 3), the manifest is read and planned before the
    rest of the body. A file larger than the plan accounts for is refused unread; one whose
    plan fails, after its digest is streamed through one chunk of memory (a damaged file
    is reported as damaged, not by what the damage made of its manifest). A valid file is
    read once, hashed as it is read, into memory of its own size.
    """
    def read(fh) -> Sealed:
        header = _checked_header(path, fh)
        digest, total = header.new_hash(), USERBLOCK_SIZE + header.body_length
        manifest, planned = b"", None
        if plan is not None:
            manifest = bytearray(header.manifest_length)
            _read_into(path, fh, memoryview(manifest), digest)
            try:
                planned, allowed = plan(bytes(manifest), total)
            except CheckpointError as refusal:   # damage, or a manifest no writer made?
                _hash_rest(path, fh, header.body_length - len(manifest), digest)
                _check_digest(path, fh, header, digest)
                raise refusal
            if total > allowed:   # refused unread: no file purenet writes is ever larger
                raise CorruptCheckpointError(
                    f"{path} holds {total:,} bytes, more than the {allowed:,} its manifest "
                    "accounts for (padded or appended to); use an earlier checkpoint")
        data = bytearray(total)
        data[:USERBLOCK_SIZE] = header.head
        start = USERBLOCK_SIZE + len(manifest)
        data[USERBLOCK_SIZE:start] = manifest
        _read_into(path, fh, memoryview(data)[start:], digest)
        _check_digest(path, fh, header, digest)
        return Sealed(header.version, data, header.manifest_length, planned)
    return _reading(path, read)
