"""The facts about this machine that decide bit identity besides the run itself."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np


def environment() -> dict[str, Any]:
    """What decides bit identity besides the run itself: numpy, the BLAS, its threads."""
    blas, threads = "unknown", 0
    try:
        from threadpoolctl import threadpool_info

        libraries = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        # numpy's own BLAS decides purenet's results; other libraries (scipy's, torch's)
        # may be loaded too, in an order that depends on the imports.
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        libraries.sort(key=lambda i: not str(i.get("filepath", "")).startswith(
            os.path.join(numpy_dir, "numpy")))
        if libraries:
            lib = libraries[0]
            blas = f"{lib.get('internal_api')} {lib.get('version')} " \
                   f"({lib.get('architecture') or 'unknown core'})"
            threads = int(lib.get("num_threads") or 0)
    except ImportError:   # threadpoolctl comes with scikit-learn; without it, say so
        pass
    return {"numpy": np.__version__, "blas": blas, "blas_threads": threads,
            "python": platform.python_version(), "platform": platform.platform()}
