r"""Compiled (numba) helpers shared by the boosting estimators (AdaBoost, gradient boosting).

* :func:`leaf_weighted_quantile` -- the weighted $q$-quantile of the values falling in every leaf, used for the
  terminal-node estimates of the absolute-error and Huber losses.  The quantile is the *inverted CDF* one: sort the
  values $v_{(1)} \le \dots \le v_{(m)}$ with weights $w_{(i)}$, and return the first $v_{(i)}$ whose cumulative
  weight $\sum_{l \le i} w_{(l)}$ reaches $q \sum_l w_l$.
* :func:`predict_ensemble` -- the additive prediction $F(x) = F_0 + \nu \sum_m h_m(x)$ of many trees stored in
  one flat set of arrays, parallel over rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LEAF = -1


@njit(cache=True, nogil=True)
def weighted_quantile_sorted(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Inverted-CDF weighted quantile of ``values`` (any order) with non-negative ``weights``."""
    m = values.shape[0]
    order = np.argsort(values)
    total = 0.0
    for i in range(m):
        total += weights[i]
    target = q * total
    if target == 0.0:
        target = np.nextafter(0.0, 1.0)
    cdf = 0.0
    for r in range(m):
        cdf += weights[order[r]]
        if cdf >= target:
            return values[order[r]]
    return values[order[m - 1]]  # rounding left the total just short of the target


@njit(cache=True, nogil=True)
def leaf_weighted_quantile(leaf: np.ndarray, values: np.ndarray, weights: np.ndarray, n_nodes: int, q: float):
    """Weighted ``q``-quantile of ``values`` per node id in ``leaf``; NaN for nodes that receive no positive weight.

    Rows are bucketed by node with a counting sort (one pass), then each bucket is sorted on its own, so the cost is
    $O(n \\log n_{\\text{leaf}})$ overall.
    """
    n = leaf.shape[0]
    counts = np.zeros(n_nodes + 1, dtype=np.int64)
    for i in range(n):
        if weights[i] > 0.0:
            counts[leaf[i] + 1] += 1
    for t in range(n_nodes):
        counts[t + 1] += counts[t]
    fill = counts[:-1].copy()
    bucket_v = np.empty(counts[n_nodes], dtype=np.float64)
    bucket_w = np.empty(counts[n_nodes], dtype=np.float64)
    for i in range(n):
        if weights[i] > 0.0:
            t = leaf[i]
            bucket_v[fill[t]] = values[i]
            bucket_w[fill[t]] = weights[i]
            fill[t] += 1
    out = np.full(n_nodes, np.nan)
    for t in range(n_nodes):
        a, b = counts[t], counts[t + 1]
        if b > a:
            out[t] = weighted_quantile_sorted(bucket_v[a:b], bucket_w[a:b], q)
    return out


@njit(cache=True, nogil=True, parallel=True)
def predict_ensemble(
    X: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    value: np.ndarray,
    roots: np.ndarray,
    columns: np.ndarray,
    scale: float,
    out: np.ndarray,
) -> None:
    """Add ``scale * value[leaf]`` of every tree to ``out[:, columns[tree]]`` (in place).

    Tree ``m`` occupies node ids ``roots[m] .. roots[m + 1] - 1`` of the flat arrays; its child pointers are local
    (relative to ``roots[m]``), as produced by the tree grower.
    """
    n = X.shape[0]
    n_trees = roots.shape[0] - 1
    for i in prange(n):
        for m in range(n_trees):
            base = roots[m]
            node = 0
            while left[base + node] != LEAF:
                if X[i, feature[base + node]] <= threshold[base + node]:
                    node = left[base + node]
                else:
                    node = right[base + node]
            out[i, columns[m]] += scale * value[base + node]
