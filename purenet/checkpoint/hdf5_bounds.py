"""Bounds on an HDF5 file before purenet reads anything from it (formats 1 and 2, which
are only ever read in a child process with a time and memory limit, ``legacy.py``).

One pass over the file's links, before any dataset is read: at most ``MAX_OBJECTS``
objects; hard links only (no soft or external link can pull data from elsewhere); every
dataset float32 or float64, 1- or 2-D, stored contiguously (or compactly) inside the file,
with no filter pipeline (purenet never wrote gzip, shuffle or any other filter: a
compressed dataset is someone else's, and a gzip of zeros declares gigabytes in a few
bytes), and all of them together no larger than the file.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from purenet.errors import UnsupportedCheckpointError

MAX_OBJECTS = 50_000   # a 1000-layer format 1 file with Adam state has about 13 000
_STORED = (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT)


def _links(f: h5py.File, path: str) -> list[str]:
    """Every object's name, refusing any link but a hard link and stopping at the cap."""
    found: list[str] = []

    def visit(name: bytes, info: Any) -> Any:
        # An exception raised in here would cross HDF5's C code: stop by returning instead.
        if info.type != h5py.h5l.TYPE_HARD:
            return ("link", name, info.type)
        found.append(name.decode("utf-8", "replace"))
        return ("many", name, None) if len(found) > MAX_OBJECTS else None
    stop = f.id.links.visit(visit, info=True)
    if stop is not None and stop[0] == "many":
        raise UnsupportedCheckpointError(f"{path} holds more than {MAX_OBJECTS:,} HDF5 objects "
                                         "(purenet's limit); it is not a purenet checkpoint")
    if stop is not None:
        kind = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}
        raise UnsupportedCheckpointError(
            f"{path} holds a {kind.get(stop[2], 'link')} at "
            f"/{stop[1].decode('utf-8', 'replace')}; checkpoints may not link out")
    return found


def _dataset_problem(dataset: h5py.h5d.DatasetID, file_size: int) -> str | None:
    plist = dataset.get_create_plist()
    if plist.get_nfilters():
        names = [str(plist.get_filter(i)[3], "ascii", "replace") for i in range(plist.get_nfilters())]
        return (f"uses the filter pipeline ({', '.join(names)}); purenet never writes "
                "compressed or filtered datasets")
    if plist.get_layout() not in _STORED or plist.get_external_count():
        return "is stored outside the file or in chunks (purenet writes contiguous datasets)"
    if dataset.dtype.kind != "f" or dataset.dtype.itemsize not in (4, 8):
        return f"is of dtype {dataset.dtype}, not float32 or float64"
    if not 1 <= len(dataset.shape) <= 2:
        return f"has {len(dataset.shape)} dimensions (purenet writes 1 or 2)"
    nbytes = int(np.prod(dataset.shape, dtype=object)) * dataset.dtype.itemsize
    if nbytes > file_size:
        return (f"declares shape {dataset.shape} ({nbytes:,} bytes), more than the whole "
                f"file ({file_size:,} bytes)")
    return None


def check_objects(f: h5py.File, path: str, file_size: int) -> set[str]:
    """Every object's path (``/params/W0``), after the checks above.

    Raises:
        UnsupportedCheckpointError: naming the object and the problem.
    """
    names = _links(f, path)
    total = 0
    for name in names:
        item = h5py.h5o.open(f.id, name.encode("utf-8"))
        if isinstance(item, h5py.h5d.DatasetID):
            problem = _dataset_problem(item, file_size)
            if problem:
                raise UnsupportedCheckpointError(f"{path}: the dataset /{name} {problem}")
            total += int(np.prod(item.shape, dtype=object)) * item.dtype.itemsize
        elif not isinstance(item, h5py.h5g.GroupID):
            raise UnsupportedCheckpointError(f"{path}: /{name} is neither a group nor a dataset")
    if total > file_size:
        raise UnsupportedCheckpointError(f"{path}: its datasets declare {total:,} bytes in "
                                         f"all, more than the whole file ({file_size:,})")
    return {"/" + name for name in names}
