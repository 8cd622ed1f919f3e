"""Timing for benchmarks: the best of several repeats after a warm-up, in one process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def best_time(
    fn: Callable[[], object], repeats: int = 5, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds of the fastest of ``repeats`` calls to ``fn`` after ``warmup`` untimed calls.

    The minimum is the least noisy estimate on a shared machine (the noise only adds time). ``clock``
    defaults to wall time; :func:`time.thread_time` (CPU time of this thread) is what a *claim* about how
    cost scales should use, with torch on one thread: other processes on the machine do not change it.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def median_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds over ``repeats`` calls after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]
