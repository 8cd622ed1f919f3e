"""scikit-learn's estimator checks for the XGBoost-style booster."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from shiyan.trees import XGBClassifier, XGBRegressor

_WEIGHT_REASON = (
    "hist cut points are row quantiles and thresholds sit between neighbouring values, so a row of weight 2 and "
    "two copies of it can give different bins/thresholds (xgboost behaves the same way)"
)


def _expected_failures(estimator) -> dict[str, str]:
    return {"check_sample_weight_equivalence_on_dense_data": _WEIGHT_REASON}


@parametrize_with_checks(
    [XGBRegressor(n_estimators=20), XGBClassifier(n_estimators=20)], expected_failed_checks=_expected_failures
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
