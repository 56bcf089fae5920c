"""Sweeps on Dask, and the reproducibility tools for sweeps and single runs.

``run_sweep`` runs every trial of a sweep file (``load_sweep``) on a Dask cluster;
``diff`` finds where two runs part; ``verify`` replays a run between two checkpoints and
checks the digest. Loaded on first use (PEP 562): ``import purenet.sweep`` imports neither
Dask nor h5py.
"""

import importlib

_LAZY = {
    "load_sweep": "purenet.sweep.spec", "Sweep": "purenet.sweep.spec",
    "Trial": "purenet.sweep.spec", "trial_id": "purenet.sweep.spec",
    "run_sweep": "purenet.sweep.run", "SweepReport": "purenet.sweep.run",
    "TrialOutcome": "purenet.sweep.run", "read_results": "purenet.sweep.results",
    "plot_sweep": "purenet.sweep.plot", "diff": "purenet.sweep.rundiff",
    "RunDiff": "purenet.sweep.rundiff", "verify": "purenet.sweep.verification",
    "Verification": "purenet.sweep.verification",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'purenet.sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
