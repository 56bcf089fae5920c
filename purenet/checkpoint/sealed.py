"""Files sealed by a header in their first 512 bytes (the HDF5 user block).

The header holds ``PURENET-CHECKPOINT``, the format version, the length and BLAKE2b digest
of the rest of the file (the body), and a CRC-32 of those lines; the remaining bytes of the
block are NUL. ``read_sealed`` checks all of it before anything parses the body, so a
flipped bit or a truncated file is an error, never a crash or a wrong number. This module
knows nothing of HDF5: ``checkpoint.py`` makes the body.
"""

from __future__ import annotations

import hashlib
import os
import zlib

from purenet import __version__
from purenet.checkpoint import atomic
from purenet.errors import (CheckpointError, CheckpointNotFoundError, CorruptCheckpointError,
                            NotACheckpointError, UnsupportedCheckpointError)

FORMAT_VERSION = 1
USERBLOCK_SIZE = 512
MAGIC = b"PURENET-CHECKPOINT\n"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PICKLE_OPCODE = b"\x80"


# --- writing --------------------------------------------------------------------------


def seal(body: bytes | memoryview, format_version: int = FORMAT_VERSION) -> bytes:
    """The user block: magic, format version, the length and digest of the body, and a
    CRC-32 of those lines, padded with NUL bytes to ``USERBLOCK_SIZE``.

    BLAKE2b rather than SHA-256 for the body: as strong, and about twice as fast on CPUs
    without SHA instructions (it is still a third of the time of writing a large
    checkpoint). The header's own CRC and its all-NUL padding make a flipped bit anywhere in the user block
    an error too (the body digest does not cover it).
    """
    text = MAGIC + (f"format_version={format_version}\nbody_length={len(body)}\n"
                    f"body_blake2b={hashlib.blake2b(body).hexdigest()}\n").encode()
    text += f"header_crc32={zlib.crc32(text):08x}\n".encode()
    return text.ljust(USERBLOCK_SIZE, b"\0")


def write_sealed(path: str, body: memoryview | bytes) -> str:
    """Write ``seal(body) + body`` to ``path`` atomically: a temp file beside it, fsync,
    rename over, fsync the directory. A crash at any instant leaves either the old file or
    the complete new one.

    Raises:
        CheckpointError: an OS error such as a full disk (the temp file is removed;
            whatever ``path`` held before is untouched).
    """
    try:
        path = atomic.write_atomic(path, seal(body), body)
    except OSError as error:
        raise CheckpointError(
            f"could not write checkpoint {path}: {error}. The temp file was removed and "
            "earlier checkpoints are intact; free disk space or choose another directory"
        ) from error
    try:
        atomic.fsync_directory(os.path.dirname(path))
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} was written, but syncing its directory "
                              f"failed ({error}); it may not survive a power loss") from error
    return path


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
    try:
        crc = int(text[crc_at + len(b"header_crc32="):-1].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise damaged from None
    if crc != zlib.crc32(text[:crc_at]):
        raise damaged
    fields = {}
    for line in text[len(MAGIC):crc_at].decode("ascii", "replace").splitlines():
        key, _, value = line.partition("=")
        fields[key] = value
    return fields


def read_sealed(path: str) -> bytes:
    """The file's bytes, after checking its header and the digest of its body."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint file at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory; use load_checkpoint for directories") from None
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {error}") from error
    if not data:
        raise CorruptCheckpointError(f"{path} is empty (0 bytes): a write was cut off before "
                                     "it began; use an earlier checkpoint")
    header = parse_header(path, data[:USERBLOCK_SIZE])
    damaged = CorruptCheckpointError(f"{path} has a damaged purenet header")
    try:
        version = int(header["format_version"])
    except (KeyError, ValueError):
        raise damaged from None
    if version > FORMAT_VERSION:   # checked first: a later format may have other fields
        raise UnsupportedCheckpointError(
            f"{path} has checkpoint format version {version}, newer than this purenet "
            f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade purenet to read it")
    if version < 1 or set(header) != {"format_version", "body_length", "body_blake2b"}:
        raise damaged
    try:
        length, expected = int(header["body_length"]), header["body_blake2b"]
    except ValueError:
        raise damaged from None
    body = memoryview(data)[USERBLOCK_SIZE:]
    if len(body) != length:
        raise CorruptCheckpointError(
            f"{path} is truncated or padded: its header promises {length} bytes of HDF5 "
            f"body, the file holds {len(body)}; use an earlier checkpoint")
    if hashlib.blake2b(body).hexdigest() != expected:
        raise CorruptCheckpointError(
            f"{path} is corrupt: the digest of its contents does not match the one it was "
            "sealed with; use an earlier checkpoint")
    return data
