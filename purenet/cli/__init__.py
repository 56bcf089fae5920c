"""The ``purenet`` command and its figures."""

from purenet.cli.commands import main

__all__ = ["main"]
