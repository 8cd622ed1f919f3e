import math

import pytest

from shiyan.core.result import BenchRow, Claim, Result


@pytest.mark.parametrize(
    "value, op, threshold, passed",
    [
        (1, "<=", 1, True),
        (1.01, "<=", 1, False),
        (2, ">", 1, True),
        (1, ">", 1, False),
        (0.5, "<", 1, True),
        (3, ">=", 3, True),
        (math.nan, "<=", 1, False),
        (math.inf, ">=", 0, False),
    ],
)
def test_claim_pass_is_computed_from_value(value, op, threshold, passed):
    assert Claim("c", "text", value, op, threshold).passed is passed


def test_claim_equality_uses_tolerance_and_roundtrips():
    c = Claim("c", "x equals 4.4", 4.4000001, "==", 4.4, tol=1e-6)
    assert c.passed
    assert not Claim("c", "x", 4.5, "==", 4.4, tol=1e-6).passed
    assert Claim.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="op must be"):
        Claim("c", "x", 1, "~", 1)  # type: ignore[arg-type]


def test_result_passed_and_bench_ratio():
    r = Result()
    r.claim("a", "a", 1, "<", 2)
    assert r.passed
    r.claim("b", "b", 3, "<", 2)
    assert not r.passed
    assert BenchRow("x", 2.0, 4.0, "ref").ratio == 0.5
    assert BenchRow("x", 2.0, 4.0, "ref").to_dict()["ratio"] == 0.5
