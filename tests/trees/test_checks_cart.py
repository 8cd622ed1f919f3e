"""scikit-learn's estimator contract checks for the CART estimators."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from shiyan.trees import DecisionTreeClassifier, DecisionTreeRegressor


@parametrize_with_checks([DecisionTreeClassifier(random_state=0), DecisionTreeRegressor(random_state=0)])
def test_sklearn_contract(estimator, check):
    check(estimator)
