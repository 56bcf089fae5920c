"""The child process of ``legacy.compare_views``: a format 3 file read twice, through its
manifest (purenet's view) and through libhdf5 (every other tool's), under a memory and
CPU-time limit, and the differences listed.

    python -m purenet.checkpoint.views_child FILE [MODULE ...] MEMORY_BYTES CPU_SECONDS

(each MODULE one the parent imported with ``purenet --import``, for the pieces it registers).

Prints one JSON line: ``{"differences": [...]}``, or ``{"error": <CheckpointError class
name>, "message"}``. A sealed file can show the two readers different states (its HDF5
attributes or datasets edited, its manifest kept); purenet trusts the manifest, and this is
how a user sees whether anything else would read another state.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import h5py
import numpy as np

from purenet.checkpoint import hdf5_bounds, manifest
from purenet.checkpoint.format import read_checkpoint
from purenet.checkpoint.layout import JSON_ATTRIBUTES
from purenet.checkpoint.legacy_child import _limit
from purenet.checkpoint.sealed import read_sealed
from purenet.errors import CheckpointError
from purenet.extend import import_pieces

MAX_LISTED = 20


def differences(path: str) -> list[str]:
    read_checkpoint(path)   # purenet's view first: a file it refuses has no second view
    found = read_sealed(path)
    found_manifest = manifest.parse(
        bytes(found.data[512:512 + found.manifest_length]), path)
    entries = manifest.checked_table(found_manifest["arrays"], len(found.data),
                                     512 + found.manifest_length, path)
    problems: list[str] = []
    with h5py.File(io.BytesIO(bytes(found.data)), "r") as f:
        objects = hdf5_bounds.check_objects(f, path, len(found.data))
        for key in JSON_ATTRIBUTES:
            text = f.attrs.get(key)
            try:
                value = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                value = text
            if value != found_manifest[key]:
                problems.append(f"the HDF5 attribute {key!r} is not the manifest's {key}")
        for name, entry in entries.items():
            if name not in f:
                problems.append(f"{name}: in the manifest, not in the HDF5 file")
                continue
            dataset = f[name]
            array = dataset[()]
            if dataset.dtype != entry.dtype or dataset.shape != entry.shape:
                problems.append(f"{name}: HDF5 has {dataset.dtype} {dataset.shape}, the "
                                f"manifest {entry.dtype.name} {entry.shape}")
            elif array.tobytes() != manifest.view(found.data, entry).tobytes():
                problems.append(f"{name}: HDF5's values are not the manifest's")
            elif entry.offset is not None and dataset.id.get_offset() != entry.offset:
                problems.append(f"{name}: HDF5 stores it at {dataset.id.get_offset()}, the "
                                f"manifest at {entry.offset}")
        groups = {"/".join(name.split("/")[:i]) for name in entries
                  for i in range(2, name.count("/") + 1)}
        extra = sorted(set(objects) - set(entries) - groups)
        problems += [f"{name}: in the HDF5 file, not in the manifest" for name in extra]
    return problems[:MAX_LISTED]


def main(argv: list[str]) -> int:
    path, *modules, memory, seconds = argv
    _limit(int(memory), int(seconds))
    try:
        import_pieces(modules)
        answer: dict[str, Any] = {"differences": differences(path)}
    except (CheckpointError, ImportError) as error:
        answer = {"error": type(error).__name__, "message": str(error)}
    except Exception as error:   # what libhdf5 cannot make sense of is a difference too
        answer = {"differences": [f"libhdf5 cannot read it as purenet's manifest describes "
                                  f"it: {type(error).__name__}: {str(error)[:200]}"]}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
