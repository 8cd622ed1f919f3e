"""shiyan.core.timing: the repeat/median bookkeeping, checked with a fake clock-free workload."""

import time

import pytest

from shiyan.core.timing import best_time, interleaved_times, median_time


def test_interleaved_times_calls_round_robin_and_reports_medians():
    calls: list[str] = []

    def make(name, seconds):
        def fn():
            calls.append(name)
            time.sleep(seconds)

        return fn

    out = interleaved_times({"a": make("a", 0.02), "b": make("b", 0.0)}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds, each calling a then b
    wall_a, cpu_a = out["a"]
    wall_b, _ = out["b"]
    assert wall_a >= 0.02 > wall_b
    assert cpu_a < 0.015  # sleeping costs wall time, not CPU time


def test_interleaved_times_median_of_even_count():
    seq = iter([0.0, 0.03, 0.0, 0.01])
    out = interleaved_times({"x": lambda: time.sleep(next(seq))}, repeats=4, warmup=0)
    assert 0.0 <= out["x"][0] < 0.02  # median of (0, 0.03, 0, 0.01) = 0.005 plus overhead


@pytest.mark.parametrize("fn", [best_time, median_time])
def test_repeats_must_be_positive(fn):
    with pytest.raises(ValueError, match="repeats"):
        fn(lambda: None, repeats=0)


def test_interleaved_times_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        interleaved_times({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="fns"):
        interleaved_times({})
