"""``python -m purenet``: the ``purenet`` command."""

import sys

from purenet.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m purenet"))
