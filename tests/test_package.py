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


def test_the_wheel_ships_every_subpackage_and_the_type_marker(tmp_path):
    """pyproject once listed packages = ["purenet"], which silently dropped subpackages;
    build the wheel and look inside."""
    import pathlib
    import zipfile

    root = pathlib.Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "-w", str(tmp_path), str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not build the wheel here: {done.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("purenet-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(root)) for p in (root / "purenet").rglob("*.py")}
    assert sources <= shipped, sorted(sources - shipped)
    assert "purenet/py.typed" in shipped
