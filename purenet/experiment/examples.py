"""The example experiments shipped inside the package (``purenet/examples/*.toml``), so
they are there after a plain ``pip install``: ``purenet example circles > circles.toml``."""

from __future__ import annotations

from importlib import resources

from purenet.core import checks


def example_names() -> list[str]:
    """The names of the shipped examples, sorted."""
    folder = resources.files("purenet") / "examples"
    return sorted(p.name[:-len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The text of the example experiment ``name`` (``circles``, ``moons``, ...).

    Raises:
        ValueError: no such example; the message lists them.
    """
    names = example_names()
    if name not in names:
        raise ValueError(f"no example named {name!r}; the examples are {names}"
                         f"{checks.did_you_mean(name, names)}")
    return (resources.files("purenet") / "examples" / f"{name}.toml").read_text("utf-8")
