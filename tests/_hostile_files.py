"""Crafting hostile checkpoint files: a real file's manifest, arrays or bytes edited and the
file sealed again, as a hand-edited or hostile file would be. Not a test module."""

from __future__ import annotations

import json
import shutil
from typing import Any, Callable

import numpy as np

from purenet.checkpoint import sealed
from purenet.checkpoint.sealed import HDF5_SIGNATURE, USERBLOCK_SIZE


class Crafted:
    """A format 3 file taken apart: ``manifest`` (a dict, or raw bytes once replaced),
    ``tail`` (the HDF5 image after the user block) and ``userblock``."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            data = fh.read()
        fields = sealed.parse_header(path, data[:USERBLOCK_SIZE])
        length = int(fields["manifest_length"])
        self.manifest: Any = json.loads(data[USERBLOCK_SIZE:USERBLOCK_SIZE + length])
        self.userblock = data.index(HDF5_SIGNATURE, USERBLOCK_SIZE + length)
        self.tail = bytearray(data[self.userblock:])

    @property
    def meta(self) -> dict:
        return self.manifest["meta"]

    def entry(self, name: str) -> list:
        return next(row for row in self.manifest["arrays"] if row[0] == name)

    def array(self, name: str) -> np.ndarray:
        _, dtype, shape, offset = self.entry(name)
        count = int(np.prod(shape))
        at = offset - self.userblock
        return np.frombuffer(bytes(self.tail[at:at + count * np.dtype(dtype).itemsize]),
                             dtype).reshape(shape).copy()

    def put(self, name: str, array: np.ndarray, at_end: bool = True) -> None:
        """``array`` stored as ``name``: in place when it fits the old bytes, else appended
        (64-byte aligned) at the end of the file; its table row rewritten."""
        array = np.ascontiguousarray(array)
        row = self.entry(name)
        if at_end or row[3] is None or array.nbytes > int(np.prod(row[2])) * np.dtype(row[1]).itemsize:
            self.tail += b"\0" * (-len(self.tail) % 64)
            row[3] = self.userblock + len(self.tail)
            self.tail += array.tobytes()
        else:
            at = row[3] - self.userblock
            self.tail[at:at + array.nbytes] = array.tobytes()
        row[1], row[2] = array.dtype.str, list(array.shape)
        if array.nbytes == 0:
            row[3] = None

    def _text(self) -> bytes:
        if isinstance(self.manifest, (bytes, bytearray)):
            return bytes(self.manifest)
        return json.dumps(self.manifest).encode()

    def _grow(self, need: int) -> None:
        """A larger user block: every array moves by the same amount."""
        size = self.userblock
        while size < need:
            size *= 2
        if isinstance(self.manifest, dict):
            for row in self.manifest["arrays"]:
                if isinstance(row, list) and len(row) == 4 and isinstance(row[3], int):
                    row[3] += size - self.userblock
        self.userblock = size

    def save(self, path: str, version: int = 3, manifest_length: int | None = None) -> str:
        text = self._text()
        if USERBLOCK_SIZE + len(text) > self.userblock:
            self._grow(USERBLOCK_SIZE + len(text))
            text = self._text()
        body = text + b"\0" * (self.userblock - USERBLOCK_SIZE - len(text)) + bytes(self.tail)
        length = len(text) if manifest_length is None else manifest_length
        with open(path, "wb") as fh:
            fh.write(sealed.seal(body, version, manifest_length=length) + body)
        return str(path)


def craft(original: str, path: str, edit: Callable[[Crafted], Any]) -> str:
    """A copy of ``original`` at ``path`` with ``edit`` applied, sealed again."""
    crafted = Crafted(str(original))
    edit(crafted)
    return crafted.save(str(path))


def reseal_body(original: str, path: str, edit: Callable[[bytearray], Any],
                version: int | None = None) -> str:
    """A copy of ``original`` (any format) whose bytes after the header ``edit`` changed
    in place, sealed again with a correct digest and the same manifest length."""
    with open(original, "rb") as fh:
        data = bytearray(fh.read())
    fields = sealed.parse_header(str(original), bytes(data[:USERBLOCK_SIZE]))
    body = data[USERBLOCK_SIZE:]
    edit(body)
    version = version or int(fields["format_version"])
    manifest = int(fields["manifest_length"]) if "manifest_length" in fields else None
    with open(path, "wb") as fh:
        fh.write(sealed.seal(bytes(body), version, manifest_length=manifest) + bytes(body))
    return str(path)


def copy(original: str, path: str) -> str:
    shutil.copy(original, path)
    return str(path)
