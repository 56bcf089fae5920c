"""Format 2 written: a state's arrays by name, the ``meta`` record, and the HDF5 image
(see ``format.py`` for the layout as a table of names; ``read_v2.py`` reads it back)."""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import os
import secrets
import threading
from typing import Any

import attrs
import h5py
import numpy as np

from purenet import __version__
from purenet.checkpoint import machine
from purenet.checkpoint.sealed import FORMAT_VERSION, HDF5_SIGNATURE, USERBLOCK_SIZE
from purenet.core.records import Grads, Params
from purenet.train.config import RunConfig
from purenet.train.state import HISTORY_COLUMNS, TrainState

FORMAT_NAME = "purenet-checkpoint"
_IMAGES = itertools.count()
ALIGNMENT = 64
FLOATS = (np.dtype("float32"), np.dtype("float64"))   # native order, as written


# --- the arrays of a state, by name ---------------------------------------------------


def _tree_arrays(tree: Params | Grads, prefix: str) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}/{name}{i}", getattr(layer, name))
            for i, layer in enumerate(tree.layers) for name in ("W", "b")]


def _record_meta(record: Any, prefix: str, arrays: list) -> dict[str, Any]:
    """The record as JSON-able data; its trees' arrays are appended to ``arrays`` and
    stand in the data as their group's path."""
    out: dict[str, Any] = {"record": type(record).__name__}
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, (Grads, Params)):
            arrays += _tree_arrays(value, f"{prefix}/{field.name}")
            out[field.name] = f"{prefix}/{field.name}"
        elif isinstance(value, tuple):
            out[field.name] = [_record_meta(item, f"{prefix}/{field.name}/{i}", arrays)
                               for i, item in enumerate(value)]
        else:
            out[field.name] = value.item() if isinstance(value, np.generic) else value
    return out


def state_arrays(state: TrainState) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """Every array of the state with its dataset path (history excluded), and the
    optimizer state record's data."""
    arrays = _tree_arrays(state.params, "/params")
    record = _record_meta(state.opt_state, "/optimizer", arrays)
    early = state.early_stopping
    if early is not None and early.best_params is not None:
        arrays += _tree_arrays(early.best_params, "/early_stopping/best_params")
    return arrays, record


def non_finite_arrays(state: TrainState) -> list[str]:
    """The file paths (e.g. ``/params/W1``) of the state's arrays that hold NaN or inf:
    parameters, optimizer state, and early stopping's best parameters."""
    return [name for name, array in state_arrays(state)[0] if not np.isfinite(array).all()]


# --- writing --------------------------------------------------------------------------
#
# A save copies a template, never builds the file: the HDF5 image of a layout (every
# dataset's path, shape and dtype, and the capacity of each JSON attribute) is built with
# h5py once, and each save sends the template's bytes with the state's arrays and JSON
# in their places (``body_chunks``). Building with h5py took 5-8 ms of Python holding the
# GIL per save, which in a background save stalled the training thread as long; the
# template leaves a few dozen slices, a hash and the writes, which release it.
#
# Patching is sound because nothing HDF5 checksums is patched: contiguous raw data has no
# checksum, and a JSON attribute is a variable-length string, whose bytes live in a global
# heap collection (which has none either), padded with spaces to a fixed capacity so that
# its length, stored beside it, does not change. JSON parses with trailing spaces.

JSON_ATTRIBUTES = ("meta", "config", "experiment", "data")
MIN_JSON_CAPACITY = 1024
_TEMPLATES_KEPT = 4   # layouts: a run's history grows once per epoch


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _meta(state: TrainState, record: dict[str, Any]) -> dict[str, Any]:
    early = state.early_stopping
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "purenet_version": __version__, "created": _now(),
            "step": state.step, "epoch": state.epoch, "batch_index": state.batch_index,
            "seed": state.seed, "stopped": state.stopped,
            "architecture": state.params.architecture.to_dicts(),
            "totals": attrs.asdict(state.totals),
            "early_stopping": None if early is None else {
                "best": early.best, "best_epoch": early.best_epoch, "wait": early.wait,
                "best_params": early.best_params is not None},
            "optimizer_state": record, "environment": machine.environment()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_plain)


def _capacity(length: int) -> int:
    """The next power of two >= ``length``, at least ``MIN_JSON_CAPACITY``."""
    return max(MIN_JSON_CAPACITY, 1 << max(length - 1, 0).bit_length())


def _contents(state: TrainState, config: RunConfig, experiment: Any, data: Any
              ) -> tuple[list[tuple[str, np.ndarray]], list[bytes]]:
    """Every dataset of the file (path, C-contiguous array), history included, and the
    four JSON attributes' UTF-8 texts, unpadded."""
    arrays, record = state_arrays(state)
    arrays += [(f"/history/{column}", np.asarray(getattr(state.history, column),
                                                 dtype=np.float64))
               for column in HISTORY_COLUMNS]
    arrays = [(path, np.ascontiguousarray(array)) for path, array in arrays]
    texts = [_dumps(value).encode("utf-8") for value in
             (_meta(state, record), config.to_dict(), experiment, data)]
    return arrays, texts


def _layout(arrays: list[tuple[str, np.ndarray]]) -> tuple:
    return tuple((path, array.shape, array.dtype.str) for path, array in arrays)


def _build(arrays: list[tuple[str, np.ndarray]], attributes: list[str]) -> tuple[bytes, h5py.File]:
    """The HDF5 file built in memory with h5py (HDF5's core driver; about twice as fast as
    h5py's Python file objects), and the file, still open (the caller closes it)."""
    name = f"purenet-{os.getpid()}-{threading.get_ident()}-{next(_IMAGES)}.h5"
    # One block for the whole file (the default 64 KiB increments cost 2.5x in reallocs);
    # datasets on 64-byte boundaries, so a reader can use them in place, aligned.
    size = sum(array.nbytes for _, array in arrays) + sum(map(len, attributes)) + (1 << 20)
    f = h5py.File(name, "w", driver="core", backing_store=False, block_size=size,
                  userblock_size=USERBLOCK_SIZE, libver="latest", alignment_threshold=1,
                  alignment_interval=ALIGNMENT)
    try:
        for key, text in zip(JSON_ATTRIBUTES, attributes):
            f.attrs[key] = text   # a variable-length UTF-8 string
        groups = {"": f}
        for path, array in arrays:
            parent, _, leaf = path.rpartition("/")
            if parent not in groups:   # each group made once (a path makes them per call)
                groups[parent] = f.create_group(parent)
            groups[parent].create_dataset(leaf, data=array)
        f.flush()
        image = f.id.get_file_image()
    except BaseException:
        f.close()
        raise
    # The image starts at the superblock (HDF5 leaves the user block out of it; ``sealed``
    # puts the header there), or, in some HDF5 versions, holds the empty user block.
    if image[:len(HDF5_SIGNATURE)] != HDF5_SIGNATURE:
        image = image[USERBLOCK_SIZE:]
    return image, f


def _padded(texts: list[bytes], capacities: tuple[int, ...]) -> list[bytes]:
    return [text.ljust(capacity) for text, capacity in zip(texts, capacities)]


def full_image(state: TrainState, config: RunConfig, experiment: Any, data: Any,
               capacities: tuple[int, ...] | None = None) -> bytes:
    """The body of the file, built with h5py from scratch (no template): what
    ``body_chunks`` sends, byte for byte, given the same ``capacities``."""
    arrays, texts = _contents(state, config, experiment, data)
    capacities = capacities or tuple(_capacity(len(text)) for text in texts)
    image, f = _build(arrays, [t.decode("utf-8") for t in _padded(texts, capacities)])
    f.close()
    return image


@attrs.frozen(eq=False)
class _Template:
    """The body of a layout's file, and where its arrays and JSON texts go."""

    image: bytes
    capacities: tuple[int, ...]
    # (offset in the body, index of the array or -1 - index of the JSON text), by offset
    places: tuple[tuple[int, int], ...]


def _template(arrays: list[tuple[str, np.ndarray]], capacities: tuple[int, ...]) -> _Template | None:
    """The template of these arrays' layout, with JSON attributes of ``capacities`` bytes;
    None when some array is not stored where it can be patched (never so far)."""
    token = secrets.token_hex(8)
    sentinels = [f"<purenet-{key}-{token}>".ljust(capacity, "#")
                 for key, capacity in zip(JSON_ATTRIBUTES, capacities)]
    image, f = _build(arrays, sentinels)
    try:
        places = []
        for index, (path, array) in enumerate(arrays):
            if array.nbytes == 0:
                continue
            offset = f[path].id.get_offset()   # None unless stored contiguously
            if offset is None:
                return None
            places.append((offset - USERBLOCK_SIZE, index))
    finally:
        f.close()
    for index, sentinel in enumerate(sentinels):
        raw = sentinel.encode("utf-8")
        at = image.find(raw)
        if at < 0 or image.find(raw, at + 1) >= 0:
            return None
        places.append((at, -1 - index))
    places.sort()
    for (at, i), (next_at, _) in zip(places, places[1:] + [(len(image), 0)]):
        size = arrays[i][1].nbytes if i >= 0 else capacities[-1 - i]
        if at < 0 or at + size > next_at:
            return None
    return _Template(image, capacities, tuple(places))


_templates: collections.OrderedDict[tuple, _Template | None] = collections.OrderedDict()
_templates_lock = threading.Lock()
_MISSING: Any = object()


def _template_for(arrays: list[tuple[str, np.ndarray]], texts: list[bytes]) -> _Template | None:
    """The cached template of this layout, rebuilt with larger capacities when a JSON text
    outgrows its own."""
    layout = _layout(arrays)
    with _templates_lock:   # built under the lock: one build per layout, thread or not
        template = _templates.get(layout, _MISSING)
        if template is None:   # a layout that cannot be patched: h5py builds each file
            return None
        if template is not _MISSING:
            _templates.move_to_end(layout)
            if all(len(t) <= c for t, c in zip(texts, template.capacities)):
                return template
        before = (0,) * len(texts) if template is _MISSING else template.capacities
        template = _template(arrays, tuple(max(_capacity(len(t)), c)
                                           for t, c in zip(texts, before)))
        _templates[layout] = template
        while len(_templates) > _TEMPLATES_KEPT:
            _templates.popitem(last=False)
        return template


def clear_templates() -> None:
    """Forget every cached template (tests; the memory of a finished run)."""
    with _templates_lock:
        _templates.clear()


def body_chunks(state: TrainState, config: RunConfig, experiment: Any,
                data: Any) -> list[bytes | memoryview]:
    """The body of the state's file (from the superblock on) as a list of byte strings to
    write in turn: slices of its layout's template, and between them the state's arrays
    (their own memory, not copied) and JSON texts."""
    arrays, texts = _contents(state, config, experiment, data)
    template = _template_for(arrays, texts)
    if template is None:   # no template for this layout: h5py builds the file
        return [full_image(state, config, experiment, data)]
    image, texts = memoryview(template.image), _padded(texts, template.capacities)
    chunks: list[bytes | memoryview] = []
    done = 0
    for at, index in template.places:
        chunks.append(image[done:at])
        piece = memoryview(arrays[index][1]).cast("B") if index >= 0 else texts[-1 - index]
        chunks.append(piece)
        done = at + len(piece)
    chunks.append(image[done:])
    return chunks


def image_of(state: TrainState, config: RunConfig, experiment: Any, data: Any) -> bytes:
    """The body of the state's file as one byte string (``body_chunks`` joined)."""
    return b"".join(body_chunks(state, config, experiment, data))
