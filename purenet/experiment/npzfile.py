"""NPZ data files, read only after their headers were checked.

An ``.npz`` file is a zip of ``.npy`` members, each with a small header declaring its dtype
and shape. Those headers are read first (a few hundred bytes each, never the data), so a zip
bomb, a member that is not an array, or an object array is refused before anything large is
decompressed; then ``np.load(allow_pickle=False)`` reads the arrays, each exactly as large
as its header declares.
"""

from __future__ import annotations

import zipfile
from typing import NamedTuple

import numpy as np

from purenet.errors import MissingColumnError
from purenet.experiment import limits

# More members than any data file has: each costs an open and a header parse.
MAX_MEMBERS = 10_000


class Declared(NamedTuple):
    """One member of an NPZ file as its header declares it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return limits.total_elements(self.shape) * self.dtype.itemsize


def _header(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Declared:
    name = info.filename[:-len(".npy")]
    try:
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read(fh)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path}: member {info.filename!r} is not a readable array: "
                         f"{error}") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: array {name!r} holds Python objects ({dtype}); purenet "
                         "reads only numeric arrays and never unpickles")
    return Declared(name, tuple(shape), dtype)


def declared_arrays(path: str) -> list[Declared]:
    """Name, shape and dtype of each array in ``path``, from the headers alone.

    Raises:
        ValueError: not a zip, a member that is not an ``.npy`` array, duplicate names,
            object arrays, or too many members; the message names the file and the member.
    """
    limits.check_regular_file(path, "a data file (.npz)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise ValueError(f"{path} has {len(members)} members; purenet reads at most "
                                 f"{MAX_MEMBERS}")
            names = [m.filename for m in members]
            for name in names:
                if not name.endswith(".npy"):
                    raise ValueError(f"{path}: member {name!r} is not an array (.npy); an "
                                     "NPZ data file holds arrays only (numpy.savez)")
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{path} holds the member(s) {repeated} more than once")
            return [_header(path, archive, info) for info in members]
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not an NPZ file (a zip of .npy arrays): {error}") from None


def declared_bytes(path: str) -> int:
    """The bytes the arrays of ``path`` take once loaded, from their headers."""
    return sum(a.nbytes for a in declared_arrays(path))


def read_npz(path: str, target: str, max_bytes: int | None = None
             ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(feature_names, x, y)``: the features are every array but ``target``, in the
    file's order (a 1-D array is one column named after it, a 2-D array's columns
    ``name0``, ``name1``, ... as numpy indexes them).

    Raises:
        MissingColumnError: no array named ``target``.
        ValueError: what ``declared_arrays`` refuses; arrays over ``max_bytes`` together;
            arrays that are not 1-D or 2-D, or whose rows differ in number.
    """
    declared = declared_arrays(path)
    names = [a.name for a in declared]
    if target not in names:
        raise MissingColumnError(f"{path} has no array {target!r}; its arrays are {names}")
    total = sum(a.nbytes for a in declared)
    if max_bytes is not None and total > max_bytes:
        raise ValueError(f"{path} declares arrays of {limits.human(total)} in all, more than "
                         f"the {limits.human(max_bytes)} of memory available")
    rows = {a.shape[0] if a.shape else None for a in declared}
    for a in declared:
        if len(a.shape) not in (1, 2):
            raise ValueError(f"{path}: array {a.name!r} has shape {a.shape}; each array must "
                             "be 1-D (one column) or 2-D (rows x columns)")
    if len(rows) > 1:
        raise ValueError(f"{path}: the arrays have different numbers of rows: "
                         + ", ".join(f"{a.name} {a.shape[0]}" for a in declared))
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in names}
    features, columns = [], []
    for name, array in arrays.items():
        if name == target:
            continue
        array = array.reshape(len(array), -1)
        features += [name] if array.shape[1] == 1 else [
            f"{name}{j}" for j in range(array.shape[1])]
        columns.append(array.astype(np.float64))
    if not columns:
        raise ValueError(f"{path} holds only the target array {target!r}, no features")
    return features, np.hstack(columns), arrays[target]
