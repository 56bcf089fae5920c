"""The HDF5 layout of formats 2 and 3, and its writer: a state's arrays by name, the
``meta`` record, and the HDF5 image built from a cached template (see ``format.py`` for the
layout as a table of names). Format 3 puts the same records and a table of the arrays'
places in a manifest before the image (``manifest.py``), which is all purenet reads back;
``read_v2.py`` reads format 2 files, whose HDF5 structure is all they have."""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import os
import secrets
import threading
import weakref
from typing import Any

import attrs
import h5py
import numpy as np

from purenet import __version__
from purenet.checkpoint import machine
from purenet.checkpoint import manifest, pieces
from purenet.checkpoint.sealed import FORMAT_VERSION, HDF5_SIGNATURE, USERBLOCK_SIZE
from purenet.checkpoint.state_arrays import state_arrays
from purenet.core import numerics
from purenet.train.config import RunConfig
from purenet.train.state import HISTORY_COLUMNS, TrainState

FORMAT_NAME = "purenet-checkpoint"
_IMAGES = itertools.count()
ALIGNMENT = manifest.ALIGNMENT


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


def _meta(state: TrainState, record: dict[str, Any], config: RunConfig,
          provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``meta`` record. ``provenance`` may give the scope ``crossings`` of the run (a
    list of ``Crossing.to_dict()``); and ``created``, ``environment``, ``numerics`` and
    ``upgraded_from`` when the state comes from an older file, whose facts it keeps."""
    early = state.early_stopping
    provenance = provenance or {}
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "purenet_version": __version__, "created": provenance.get("created") or _now(),
            "step": state.step, "epoch": state.epoch, "batch_index": state.batch_index,
            "seed": state.seed, "stopped": state.stopped,
            "architecture": state.params.architecture.to_dicts(),
            "totals": attrs.asdict(state.totals),
            "early_stopping": None if early is None else {
                "best": early.best, "best_epoch": early.best_epoch, "wait": early.wait,
                "best_params": early.best_params is not None},
            "optimizer_state": record,
            "environment": provenance.get("environment") or machine.environment(),
            "upgraded_from": provenance.get("upgraded_from"),
            "numerics": provenance.get("numerics") or numerics.NUMERICS_VERSION,
            "crossings": provenance.get("crossings") or [],
            "pieces": pieces.used(config)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_plain)


def _capacity(length: int) -> int:
    """The next power of two >= ``length``, at least ``MIN_JSON_CAPACITY``."""
    return max(MIN_JSON_CAPACITY, 1 << max(length - 1, 0).bit_length())


def _contents(state: TrainState, config: RunConfig, experiment: Any, data: Any,
              provenance: dict[str, Any] | None = None
              ) -> tuple[list[tuple[str, np.ndarray]], list[bytes]]:
    """Every dataset of the file (path, C-contiguous array), history included, and the
    four JSON attributes' UTF-8 texts, unpadded."""
    arrays, record = state_arrays(state)
    arrays += [(f"/history/{column}", np.asarray(getattr(state.history, column),
                                                 dtype=np.float64))
               for column in HISTORY_COLUMNS]
    arrays = [(path, np.ascontiguousarray(array)) for path, array in arrays]
    meta = _meta(state, record, config, provenance)
    texts = [_dumps(value).encode("utf-8") for value in (meta, experiment, data)]
    texts.insert(1, _config_text(config))
    return arrays, texts


# A run record is immutable: its JSON text is made once, not at every save of its run (it
# was a third of a save's time in Python, holding the GIL the training thread needs).
_CONFIG_TEXTS: "weakref.WeakKeyDictionary[RunConfig, bytes]" = weakref.WeakKeyDictionary()


_CONFIG_TEXTS_LOCK = threading.Lock()   # saves run in background threads


def _config_text(config: RunConfig) -> bytes:
    with _CONFIG_TEXTS_LOCK:
        text = _CONFIG_TEXTS.get(config)
    if text is None:
        text = _dumps(config.to_dict()).encode("utf-8")
        with _CONFIG_TEXTS_LOCK:
            _CONFIG_TEXTS[config] = text
    return text


def _layout(arrays: list[tuple[str, np.ndarray]]) -> tuple:
    return tuple((path, array.shape, array.dtype.str) for path, array in arrays)


def _build(arrays: list[tuple[str, np.ndarray]], attributes: list[str],
           userblock: int) -> tuple[bytes, h5py.File]:
    """The HDF5 file built in memory with h5py (HDF5's core driver; about twice as fast as
    h5py's Python file objects) after a user block of ``userblock`` bytes, and the file,
    still open (the caller closes it). The image returned starts at the superblock."""
    name = f"purenet-{os.getpid()}-{threading.get_ident()}-{next(_IMAGES)}.h5"
    # One block for the whole file (the default 64 KiB increments cost 2.5x in reallocs);
    # datasets on 64-byte boundaries, so a reader can use them in place, aligned.
    size = sum(array.nbytes for _, array in arrays) + sum(map(len, attributes)) + (1 << 20)
    f = h5py.File(name, "w", driver="core", backing_store=False, block_size=size,
                  userblock_size=userblock, libver="latest", alignment_threshold=1,
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
    # The image starts at the superblock (HDF5 leaves the user block out of it; the header
    # and the manifest go there), or, in some HDF5 versions, holds the empty user block.
    if image[:len(HDF5_SIGNATURE)] != HDF5_SIGNATURE:
        image = image[userblock:]
    return image, f


def _padded(texts: list[bytes], capacities: tuple[int, ...]) -> list[bytes]:
    return [text.ljust(capacity) for text, capacity in zip(texts, capacities)]


@attrs.frozen(eq=False)
class _Template:
    """The HDF5 image of a layout's file, where its arrays and JSON texts go, and the
    size of the user block it was built after (the header and the manifest fill it)."""

    image: bytes
    capacities: tuple[int, ...]
    userblock: int
    # (offset in the image, index of the array or -1 - index of the JSON text), by offset
    places: tuple[tuple[int, int], ...]

    def offsets(self, count: int) -> list[int | None]:
        """Each array's offset in the file (None for an array of no bytes)."""
        found: list[int | None] = [None] * count
        for at, index in self.places:
            if index >= 0:
                found[index] = self.userblock + at
        return found


def _template(arrays: list[tuple[str, np.ndarray]], capacities: tuple[int, ...],
              userblock: int) -> _Template | None:
    """The template of these arrays' layout, with JSON attributes of ``capacities`` bytes;
    None when some array is not stored where it can be patched (never so far)."""
    token = secrets.token_hex(8)
    sentinels = [f"<purenet-{key}-{token}>".ljust(capacity, "#")
                 for key, capacity in zip(JSON_ATTRIBUTES, capacities)]
    image, f = _build(arrays, sentinels, userblock)
    try:
        places = []
        for index, (path, array) in enumerate(arrays):
            if array.nbytes == 0:
                continue
            offset = f[path].id.get_offset()   # None unless stored contiguously
            if offset is None:
                return None
            places.append((offset - userblock, index))
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
    return _Template(image, capacities, userblock, tuple(places))


_templates: collections.OrderedDict[tuple, _Template | None] = collections.OrderedDict()
_templates_lock = threading.Lock()
_MISSING: Any = object()


def _userblock(need: int) -> int:
    """A user block for a header and manifest of ``need`` bytes: HDF5 wants a power of
    two >= 512; a quarter more, so that a growing manifest seldom needs a new template."""
    return max(2 * USERBLOCK_SIZE, 1 << (need + need // 4 - 1).bit_length())


def _template_for(arrays: list[tuple[str, np.ndarray]], texts: list[bytes],
                  need: int) -> _Template | None:
    """The cached template of this layout, rebuilt with larger capacities when a JSON text
    outgrows its own, or with a larger user block when the manifest (with the header,
    ``need`` bytes) outgrows it."""
    layout = _layout(arrays)
    with _templates_lock:   # built under the lock: one build per layout, thread or not
        template = _templates.get(layout, _MISSING)
        if template is None:   # a layout that cannot be patched
            return None
        if template is not _MISSING:
            _templates.move_to_end(layout)
            if all(len(t) <= c for t, c in zip(texts, template.capacities)) \
                    and need <= template.userblock:
                return template
        before = ((0,) * len(texts), 0) if template is _MISSING else (
            template.capacities, template.userblock)
        template = _template(arrays, tuple(max(_capacity(len(t)), c)
                                           for t, c in zip(texts, before[0])),
                             max(_userblock(need), before[1]))
        _templates[layout] = template
        while len(_templates) > _TEMPLATES_KEPT:
            _templates.popitem(last=False)
        return template


def clear_templates() -> None:
    """Forget every cached template (tests; the memory of a finished run)."""
    with _templates_lock:
        _templates.clear()


def _patched(template: _Template, arrays: list[tuple[str, np.ndarray]],
             texts: list[bytes]) -> list[bytes | memoryview]:
    """The template's image as byte strings to write in turn: its slices, and between them
    the arrays (their own memory, not copied) and the JSON texts, padded."""
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


def _estimate(arrays: list[tuple[str, np.ndarray]], texts: list[bytes]) -> int:
    """About the bytes of the header and manifest (its table's rows run to ~60 bytes)."""
    return USERBLOCK_SIZE + sum(map(len, texts)) + sum(len(p) + 48 for p, _ in arrays) + 64


def body_chunks(state: TrainState, config: RunConfig, experiment: Any, data: Any,
                provenance: dict[str, Any] | None = None
                ) -> tuple[list[bytes | memoryview], int]:
    """The body of the state's file (everything after the header) as byte strings to write
    in turn, and the length of the manifest that opens it: the manifest, NUL bytes to the
    end of the user block, then the HDF5 image (slices of its layout's template, and
    between them the state's arrays, not copied, and JSON texts).

    Raises:
        CheckpointError: the manifest would exceed ``manifest.MAX_BYTES``.
    """
    arrays, texts = _contents(state, config, experiment, data, provenance)
    need = _estimate(arrays, texts)
    while True:   # twice at most: a larger user block moves the arrays, not their order
        template = _template_for(arrays, texts, need)
        if template is None:
            raise RuntimeError("HDF5 did not store every array contiguously; purenet cannot "
                               "write this layout")
        table = manifest.table(arrays, template.offsets(len(arrays)))
        text = manifest.encode(texts, table)
        need = USERBLOCK_SIZE + len(text)
        if need <= template.userblock:
            break
    block = text + b"\0" * (template.userblock - need)
    return [block, *_patched(template, arrays, texts)], len(text)


def full_image(state: TrainState, config: RunConfig, experiment: Any, data: Any,
               capacities: tuple[int, ...], userblock: int) -> bytes:
    """The HDF5 image of the state's file built with h5py from scratch (no template): what
    ``body_chunks`` sends after the user block, byte for byte, given the same
    ``capacities`` and ``userblock``."""
    arrays, texts = _contents(state, config, experiment, data)
    image, f = _build(arrays, [t.decode("utf-8") for t in _padded(texts, capacities)],
                      userblock)
    f.close()
    return image


def image_of(state: TrainState, config: RunConfig, experiment: Any, data: Any) -> bytes:
    """The HDF5 image of the state's file (``body_chunks`` after the user block), joined."""
    chunks, _ = body_chunks(state, config, experiment, data)
    return b"".join(chunks[1:])
