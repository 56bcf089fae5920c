"""scikit-learn estimators on purenet: ``PureNetClassifier`` and ``PureNetRegressor``.

scikit-learn is imported here (and only when this module is imported), so ``import
purenet`` stays free of it::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from purenet.sklearn import PureNetClassifier

    model = make_pipeline(StandardScaler(), PureNetClassifier(random_state=0)).fit(X, y)

Layout: ``_settings`` (parameters -> the run record), ``_targets`` (labels and values ->
the network's targets), ``_base`` (the shared fit), ``_estimators`` (the two classes).
"""

from purenet.sklearn._estimators import PureNetClassifier, PureNetRegressor

__all__ = ["PureNetClassifier", "PureNetRegressor"]
