"""Fixtures shared by the tests of a user's own pieces."""

from __future__ import annotations

import os
import sys

import pytest

PIECES_FILE = os.path.join(os.path.dirname(__file__), "_pieces.py")


@pytest.fixture
def pieces():
    """tests/_pieces.py imported (its pieces registered) for one test, forgotten after it."""
    from purenet import extend

    extend.import_pieces([PIECES_FILE])
    yield sys.modules["_pieces"]
    for kind, name in sys.modules["_pieces"].PIECES:
        extend.unregister(kind, name)
    extend.IMPORTED.remove(PIECES_FILE)
    del sys.modules["_pieces"]
