"""The package's public face: what `import purenet` loads, and that every exported name resolves."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import purenet as pn

HEAVY = ("sklearn", "h5py", "matplotlib", "tqdm", "scipy", "torch")


@pytest.mark.parametrize("touch", ["", "pn.fit; pn.optim.adam; pn.schedules.constant; "],
                         ids=["import", "import-then-fit-and-optim"])
def test_no_heavy_module_is_loaded(touch):
    code = (f"import json, sys, purenet as pn; {touch}"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    assert loaded == []


@pytest.mark.parametrize("name", pn.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(pn, name) is not None
    assert name in dir(pn)


def test_all_lists_every_lazy_name():
    assert set(pn._LAZY) <= set(pn.__all__)


def test_from_import_of_a_lazy_name_works():
    from purenet import Checkpointer, fit
    from purenet import optim

    assert callable(fit) and callable(Checkpointer) and callable(optim.adam)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        pn.fitt  # noqa: B018
