"""The facts about this machine that decide bit identity besides the run itself."""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

import numpy as np

_lock = threading.Lock()
_found: tuple[dict[str, Any], Any] | None = None   # (the fixed facts, numpy's BLAS controller)


def _numpy_blas() -> tuple[dict[str, Any], Any]:
    """The facts that do not change in a process, and threadpoolctl's controller of numpy's
    BLAS (None without threadpoolctl or a BLAS it knows): found once, as
    ``threadpool_info`` takes ~1 ms (it walks every loaded library)."""
    blas, controller = "unknown", None
    try:
        from threadpoolctl import ThreadpoolController

        libraries = [c for c in ThreadpoolController().lib_controllers
                     if c.user_api == "blas"]
        # numpy's own BLAS decides purenet's results; other libraries (scipy's, torch's)
        # may be loaded too, in an order that depends on the imports.
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        libraries.sort(key=lambda c: not str(c.filepath or "").startswith(
            os.path.join(numpy_dir, "numpy")))
        if libraries:
            controller = libraries[0]
            info = controller.info()
            blas = f"{info.get('internal_api')} {info.get('version')} " \
                   f"({info.get('architecture') or 'unknown core'})"
    except ImportError:   # threadpoolctl comes with scikit-learn; without it, say so
        pass
    return ({"numpy": np.__version__, "numpy_simd": _numpy_simd(), "blas": blas,
             "python": platform.python_version(), "platform": platform.platform()}, controller)


def _numpy_simd() -> str:
    """The SIMD targets numpy dispatches its loops to on this CPU (``X86_V3 X86_V4
    AVX512_ICL``): numpy's exp, log and tanh give other last bits under AVX-512 than under
    AVX2, so this decides bits as much as the BLAS kernel does."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:   # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    features = getattr(umath, "__cpu_features__", {})
    found = [name for name in getattr(umath, "__cpu_dispatch__", ()) if features.get(name)]
    return " ".join(found) or "none"


def environment() -> dict[str, Any]:
    """What decides bit identity besides the run itself: numpy and the SIMD targets it
    dispatches to, the BLAS (library, version, core type), its threads.

    The library is looked up once per process; the thread count is asked of it on every
    call (a few microseconds), so it is the one in effect now.
    """
    global _found
    if _found is None:
        with _lock:
            if _found is None:
                _found = _numpy_blas()
    fixed, controller = _found
    threads = 0 if controller is None else int(controller.num_threads or 0)
    return {"numpy": fixed["numpy"], "numpy_simd": fixed["numpy_simd"], "blas": fixed["blas"],
            "blas_threads": threads, "python": fixed["python"], "platform": fixed["platform"]}
