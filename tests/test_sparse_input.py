"""Sparse X (CSR and CSC, matrices and arrays): the estimators and ``pn.fit`` train on it
as on the dense array (float64, to rounding), and never densify the whole set."""

import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")
pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402

import purenet as pn  # noqa: E402
from purenet.core.sparse import SparseRows  # noqa: E402
from purenet.core.validate import check_x  # noqa: E402
from purenet.sklearn import PureNetClassifier, PureNetRegressor  # noqa: E402

X, Y = load_digits(return_X_y=True)
X = X[:300] / 16
Y = Y[:300]
SETTINGS = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, dtype="float64",
                n_iter_no_change=None, batch_size=64)
FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


@pytest.mark.parametrize("container", FORMATS, ids=lambda c: c.__name__)
def test_a_sparse_fit_is_the_dense_fit(container):
    dense = PureNetClassifier(**SETTINGS).fit(X, Y)
    sparse = PureNetClassifier(**SETTINGS).fit(container(X), Y)
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sparse.predict_proba(container(X)), dense.predict_proba(X),
                               rtol=1e-10, atol=1e-13)


def test_sparse_partial_fit_and_regression():
    model = PureNetRegressor(**SETTINGS)
    for _ in range(2):
        model.partial_fit(sp.csr_matrix(X), X[:, 20])
    dense = PureNetRegressor(**SETTINGS)
    for _ in range(2):
        dense.partial_fit(X, X[:, 20])
    np.testing.assert_allclose(model.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-10,
                               atol=1e-12)


def test_a_set_too_large_to_densify_trains():
    # 20000 x 500000 would be 80 GB dense; stored, it is 40000 entries.
    n, d = 20000, 500_000
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n), 2)
    x = sp.csr_matrix((rng.random(2 * n), (rows, rng.integers(0, d, 2 * n))), shape=(n, d))
    y = rng.integers(0, 2, n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = PureNetClassifier(hidden_layer_sizes=(2,), max_iter=1, random_state=0,
                                  n_iter_no_change=None, batch_size=2000).fit(x, y)
    assert model.predict(x[:5]).shape == (5,)


def test_check_x_keeps_sparse_rows_and_refuses_bad_ones():
    arch = pn.Architecture.from_dicts([{"input_dim": 64, "output_dim": 2,
                                        "activation": "softmax"}])
    rows = check_x(sp.csc_matrix(X), arch, np.dtype(np.float32))
    assert isinstance(rows, SparseRows) and rows.matrix.format == "csr"
    assert rows.dtype == np.float32 and len(rows) == 300
    with pytest.raises(ValueError, match=r"x has shape \(300, 63\) but the network's first "
                                         r"layer expects \(n_samples >= 1, 64\)"):
        check_x(sp.csr_matrix(X[:, 1:]), arch, np.dtype(np.float64))
    bad = sp.csr_matrix(X)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="the stored entries of sparse x holds 1 NaN"):
        check_x(bad, arch, np.dtype(np.float64))


def test_pn_fit_trains_on_sparse_rows_as_on_dense():
    arch = [{"input_dim": 64, "output_dim": 6, "activation": "tanh"},
            {"input_dim": 6, "output_dim": 10, "activation": "softmax"}]
    run = dict(optimizer=pn.optim.sgd(0.1), epochs=2, batch_size=50, seed=1, dtype="float64",
               progress=False)
    dense = pn.fit(arch, X, Y, **run).state.params
    sparse = pn.fit(arch, sp.csr_matrix(X), Y, **run).state.params
    for a, b in zip(dense.layers, sparse.layers):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-10, atol=1e-13)
