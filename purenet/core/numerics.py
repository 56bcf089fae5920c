"""The numerics version: which arithmetic purenet's kernels do, to the last bit.

Bit identity holds within one numerics version, one numpy/BLAS build and one BLAS core
type (``docs/determinism.md``). Every checkpoint records the version its state was
computed with, and a run resumed under another one continues with a ``CheckpointWarning``
and records the step where it crossed.

Bump ``NUMERICS_VERSION`` in the same commit as any change that alters a kernel's bits
(another order of operations, a fused update, the bias folded into the product), and add
a line to ``VERSIONS``. Never reuse a number: files in the wild carry it.
"""

from __future__ import annotations

NUMERICS_VERSION = 1

# What each version computes; a file written before versions were recorded (purenet 0.1
# and 0.2) was computed by version 1.
VERSIONS = {
    1: "the kernels of purenet 0.1 to 0.3: bias added after the product, elementwise "
       "optimizer updates leaf by leaf or over flat arrays (the same bits)",
}
FIRST_RECORDED = 1
