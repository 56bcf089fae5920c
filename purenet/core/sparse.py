"""Sparse inputs: a CSR matrix's rows as the first layer's input, never densified.

``check_x`` wraps a scipy.sparse matrix or array (CSR or CSC, which becomes CSR) in
``SparseRows``; the first layer's product runs on the sparse rows (``product``,
``transposed_product``), batches take rows of it, and nothing else sees the difference.
scipy is never imported here: it comes with the caller's sparse matrix.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

Array = np.ndarray


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array (without importing scipy)."""
    return hasattr(x, "tocsr") and hasattr(x, "nnz") and hasattr(x, "format")


@attrs.frozen(eq=False)
class SparseRows:
    """The rows of a canonical CSR matrix of the run's dtype, as the network's input."""

    matrix: Any

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def dtype(self) -> np.dtype:
        return self.matrix.dtype

    ndim = 2

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def take(self, indices: Array) -> "SparseRows":
        """Rows ``indices`` (a batch): a new CSR matrix of those rows only."""
        return SparseRows(self.matrix[indices])

    def parts(self) -> tuple[Array, Array, Array]:
        """The CSR arrays (data, indices, indptr): what a digest of the data reads."""
        return self.matrix.data, self.matrix.indices, self.matrix.indptr


def sparse_rows(x: Any, dtype: np.dtype) -> SparseRows:
    """``x`` as canonical CSR rows of ``dtype``: a copy of its stored entries only."""
    csr = x.tocsr().astype(dtype, copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    return SparseRows(csr)


def product(A: Any, W: Array, out: Array) -> Array:
    """``A @ W`` into ``out``: numpy's matmul for an array, the sparse product for rows."""
    if isinstance(A, SparseRows):
        out[...] = A.matrix @ W
        return out
    return np.matmul(A, W, out=out)


def transposed_product(A: Any, dZ: Array, out: Array) -> Array:
    """``A.T @ dZ`` into ``out`` (the first layer's weight gradient)."""
    if isinstance(A, SparseRows):
        out[...] = A.matrix.T @ dZ
        return out
    return np.matmul(A.T, dZ, out=out)
