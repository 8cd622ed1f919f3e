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


def interleaved_times(
    fns: dict[str, Callable[[], object]], repeats: int = 3, warmup: int = 1
) -> dict[str, tuple[float, float]]:
    """Median (wall seconds, CPU seconds of this process) of every function in ``fns``, timed round-robin.

    Each round calls every function once, in order, so a burst of load from elsewhere on a shared machine
    falls on all of them alike instead of on whichever ran during it. CPU time is
    :func:`time.process_time` (all threads of this process), the figure to compare when the wall clock is
    disturbed; for multi-threaded code it is the total over threads, not the elapsed time.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    if not fns:
        raise ValueError("fns must name at least one function")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: (_median(wall[k]), _median(cpu[k])) for k in fns}


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])
