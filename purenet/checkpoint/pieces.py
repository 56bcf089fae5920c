"""The user-registered pieces a run uses, as its checkpoints name them.

A file lists in ``meta.pieces`` every piece its run took from ``purenet.register_*``
rather than from purenet itself (``[{"kind": "activation", "name": "swish"}]``). A reader
refuses the file, before it reads the run, when one is not registered in this process,
naming it and where to register it; and refuses a file whose names do not match its list
(a name it does not list is purenet's own, which this version may not have, or may have
only as a user's). Nothing is imported or run because a file names it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from purenet.checkpoint import contract
from purenet.core.activations import ACTIVATIONS
from purenet.core.initializers import INITIALIZERS
from purenet.core.losses import LOSSES
from purenet.core.registry import NAME, Registry
from purenet.errors import CorruptCheckpointError, UnregisteredPieceError
from purenet.train.config import RunConfig

MAX_PIECES = 1000


def _optimizer_names(optimizer: Any) -> Iterator[str]:
    yield optimizer.name
    for inner in optimizer.hyperparams.get("transforms", ()):
        yield from _optimizer_names(inner)


def _tables() -> dict[str, tuple[Registry, Callable[[RunConfig], Iterator[str]]]]:
    # kind -> (its registry, the names of that kind a run uses)
    from purenet.optim.optimizers import TRANSFORMS   # loaded with the optimizers

    return {
        "activation": (ACTIVATIONS, lambda c: (layer.activation for layer in c.architecture.layers)),
        "loss": (LOSSES, lambda c: iter((c.loss,))),
        "initializer": (INITIALIZERS, lambda c: iter((c.init,))),
        "transform": (TRANSFORMS, lambda c: _optimizer_names(c.optimizer)),
    }


def used(config: RunConfig) -> list[dict[str, str]]:
    """The user pieces ``config`` uses, each once, in the order of ``_tables`` and names."""
    found = []
    for kind, (table, names) in _tables().items():
        for name in sorted({n for n in names(config) if table.is_user(n)}):
            found.append({"kind": kind, "name": name})
    return found


def check_registered(listed: Any, path: str) -> list[dict[str, str]]:
    """The list ``meta.pieces`` of a file, each piece registered in this process.

    Raises:
        CorruptCheckpointError: not a list of ``{"kind", "name"}`` records.
        UnregisteredPieceError: a piece this process has not registered; the message
            names it and how to register it.
    """
    if not isinstance(listed, list) or len(listed) > MAX_PIECES:
        raise CorruptCheckpointError(f"{path}: meta.pieces must be a list of at most "
                                     f"{MAX_PIECES} pieces, the file holds "
                                     f"{_described(listed)}")
    tables = _tables()
    for i, piece in enumerate(listed):
        piece = contract.fields(piece, ("kind", "name"), f"meta.pieces[{i}]", path)
        kind, name = piece["kind"], piece["name"]
        if kind not in tables:
            raise contract.newer(path, f"meta.pieces[{i}] is of the kind {kind!r:.40}")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise CorruptCheckpointError(f"{path}: meta.pieces[{i}].name must be a lowercase "
                                         f"identifier, the file holds {_described(name)}")
        table = tables[kind][0]
        if table.is_builtin(name):
            raise UnregisteredPieceError(
                f"{path} was trained with a {kind} {name!r} that a user registered, and "
                f"this purenet has a built-in {kind} of that name, which may compute "
                "otherwise; it cannot tell which one the run had, so it does not load the file")
        if not table.is_user(name):
            raise UnregisteredPieceError(unregistered(path, kind, name, table))
    return listed


def unregistered(path: str, kind: str, name: str, table: Registry) -> str:
    """The one-line refusal of a file whose run used a piece not registered here."""
    return (f"{path} was trained with the {kind} {name!r}, which a user registered and this "
            f"process has not: register it before loading (purenet.{table.register_with}"
            f"({name!r}, ...) in Python; on the command line, purenet --import MODULE with "
            "the module that registers it). purenet never imports or runs code a file names")


def check_used(listed: list[dict[str, str]], config: RunConfig, path: str) -> None:
    """The file's list of pieces is the list of what its run uses.

    Raises:
        NewerCheckpointError: the run uses, as purenet's own, a name this process has
            only as a user's (a built-in of a later purenet).
        CorruptCheckpointError: the list names a piece the run does not use.
    """
    uses = used(config)
    unlisted = [p for p in uses if p not in listed]
    if unlisted:
        raise contract.newer(path, f"its run uses the built-in {unlisted[0]['kind']} "
                             f"{unlisted[0]['name']!r}; here that is only a registered one")
    extra = [p for p in listed if p not in uses]
    if extra:
        raise CorruptCheckpointError(f"{path}: meta.pieces lists the {extra[0]['kind']} "
                                     f"{extra[0]['name']!r}, which its run does not use")


def _described(value: Any) -> str:
    return f"a {type(value).__name__}" if not isinstance(value, list) else \
        f"a list of {len(value)}"
