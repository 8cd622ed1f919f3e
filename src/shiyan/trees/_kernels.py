r"""Compiled (numba) kernels for CART: depth-first growth, best-split search and tree traversal.

A node $t$ holds the rows $S_t$ with weights $w_i$.  Its impurity $I(t)$ is

* Gini: $I(t) = 1 - \sum_k p_{tk}^2$, with $p_{tk} = \sum_{i \in S_t, y_i = k} w_i / W_t$;
* entropy: $I(t) = -\sum_k p_{tk} \log_2 p_{tk}$;
* squared error: $I(t) = \frac{1}{W_t}\sum_{i \in S_t} w_i y_i^2 - \bar y_t^2$.

A split $(j, \theta)$ sends $x_{ij} \le \theta$ left ($L$) and the rest right ($R$).  The best split maximises the
decrease $W_t I(t) - W_L I(L) - W_R I(R)$; since $W_t I(t)$ is fixed within a node we maximise the *proxy*
$-W_L I(L) - W_R I(R)$, which for squared error reduces to $S_L^2 / W_L + S_R^2 / W_R$ with $S = \sum w_i y_i$.

For every candidate feature the node's rows are sorted by $x_{\cdot j}$ and the per-class weight sums (or
$\sum w y$, $\sum w y^2$) are accumulated left to right, so every cut costs $O(K)$ after an $O(n \log n)$ sort.
Thresholds sit halfway between consecutive distinct values, as in scikit-learn.

The kernels store the tree in flat arrays (``feature``, ``threshold``, ``left``, ``right``, ``value``,
``impurity``, ``n_node_samples``, ``weighted_n_node_samples``); a leaf has ``left == right == -1`` and
``feature == -2``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GINI = 0
ENTROPY = 1
SQUARED_ERROR = 2

LEAF = -1
UNDEFINED = -2
FEATURE_THRESHOLD = 1e-7  # two values closer than this are treated as equal (as in scikit-learn)
EPSILON = np.finfo(np.float64).eps
_LOG2 = np.log(2.0)


@njit(cache=True, nogil=True)
def _rand_below(state: np.ndarray, n: int) -> int:
    """Uniform integer in [0, n) from an xorshift64* generator whose state lives in ``state[0]``."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    r = x * np.uint64(2685821657736338717)
    return int(r >> np.uint64(11)) % n


@njit(cache=True, nogil=True)
def _add_row(stat: np.ndarray, i: int, yk: np.ndarray, yv: np.ndarray, w: np.ndarray, criterion: int) -> None:
    """Add row ``i`` to the sufficient statistics ``stat`` (class weights, or [sum w y, sum w y^2])."""
    if criterion == SQUARED_ERROR:
        wy = w[i] * yv[i]
        stat[0] += wy
        stat[1] += wy * yv[i]
    else:
        stat[yk[i]] += w[i]


@njit(cache=True, nogil=True)
def _impurity(stat: np.ndarray, w_total: float, criterion: int) -> float:
    """$I(t)$ from the sufficient statistics of a node of total weight ``w_total``."""
    if criterion == SQUARED_ERROR:
        mean = stat[0] / w_total
        return stat[1] / w_total - mean * mean
    if criterion == GINI:
        sq = 0.0
        for k in range(stat.shape[0]):
            sq += stat[k] * stat[k]
        return 1.0 - sq / (w_total * w_total)
    h = 0.0
    for k in range(stat.shape[0]):
        if stat[k] > 0.0:
            p = stat[k] / w_total
            h -= p * np.log(p) / _LOG2
    return h


@njit(cache=True, nogil=True)
def _proxy(stat_l: np.ndarray, w_l: float, stat_r: np.ndarray, w_r: float, criterion: int) -> float:
    """Proxy of the impurity decrease: $-W_L I(L) - W_R I(R)$ (or $S_L^2/W_L + S_R^2/W_R$ for squared error)."""
    if criterion == SQUARED_ERROR:
        return stat_l[0] * stat_l[0] / w_l + stat_r[0] * stat_r[0] / w_r
    return -w_r * _impurity(stat_r, w_r, criterion) - w_l * _impurity(stat_l, w_l, criterion)


_SMALL_RANGE = 16  # ranges this short are finished by insertion sort


@njit(cache=True, nogil=True)
def _sort_values(xs: np.ndarray, perm: np.ndarray, n: int, stack: np.ndarray) -> None:
    r"""Sort ``xs[:n]`` in place, carrying ``perm[:n]`` along: three-way quicksort, insertion sort on short ranges.

    The three-way partition (< pivot, == pivot, > pivot) makes features with few distinct values (codes,
    calendar fields) cost $O(n \log d)$ for $d$ distinct values.  The larger part is pushed on ``stack`` and the
    smaller one handled first, so the stack never holds more than $\log_2 n$ ranges.
    """
    top = 0
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]
        while hi - lo > _SMALL_RANGE:
            a, b, c = xs[lo], xs[(lo + hi) // 2], xs[hi - 1]
            pivot = max(min(a, b), min(max(a, b), c))  # median of three
            lt, i, gt = lo, lo, hi - 1
            while i <= gt:
                v = xs[i]
                if v < pivot:
                    xs[i], xs[lt] = xs[lt], v
                    perm[i], perm[lt] = perm[lt], perm[i]
                    lt += 1
                    i += 1
                elif v > pivot:
                    xs[i], xs[gt] = xs[gt], v
                    perm[i], perm[gt] = perm[gt], perm[i]
                    gt -= 1
                else:
                    i += 1
            if lt - lo > hi - gt - 1:
                stack[top, 0], stack[top, 1] = lo, lt
                lo = gt + 1
            else:
                stack[top, 0], stack[top, 1] = gt + 1, hi
                hi = lt
            top += 1
        for a in range(lo + 1, hi):
            v = xs[a]
            pa = perm[a]
            b = a - 1
            while b >= lo and xs[b] > v:
                xs[b + 1] = xs[b]
                perm[b + 1] = perm[b]
                b -= 1
            xs[b + 1] = v
            perm[b + 1] = pa


@njit(cache=True, nogil=True)
def _best_split(
    X: np.ndarray,
    yk: np.ndarray,
    yv: np.ndarray,
    w: np.ndarray,
    rows: np.ndarray,
    start: int,
    end: int,
    features: np.ndarray,
    max_features: int,
    min_samples_leaf: int,
    criterion: int,
    stat_node: np.ndarray,
    w_node: float,
    rng_state: np.ndarray,
    shuffle: bool,
    xs: np.ndarray,
    perm: np.ndarray,
    stack: np.ndarray,
    stat_l: np.ndarray,
    stat_r: np.ndarray,
    const_mask: int,
) -> tuple[int, float, float, int]:
    r"""Best split of ``rows[start:end]``: returns (feature, threshold, proxy, const_mask); feature is -2 if none.

    Bit $j$ of ``const_mask`` marks feature $j$ as constant in an ancestor, hence here: it is skipped without
    counting towards ``max_features``; features found constant in this node are added to the returned mask (only
    for $p \le 63$; with more features the mask stays 0).

    ``xs`` (n_rows,) float32, ``perm`` (n_rows,) int64, ``stack`` (64, 2) int64 and ``stat_l`` / ``stat_r`` are
    scratch space reused by every node.
    """
    n = end - start
    n_features = features.shape[0]
    if shuffle:  # fresh random feature order at every node (Fisher-Yates)
        for a in range(n_features - 1, 0, -1):
            b = _rand_below(rng_state, a + 1)
            features[a], features[b] = features[b], features[a]
    regression = criterion == SQUARED_ERROR
    use_mask = n_features <= 63
    best_feature, best_threshold, best_proxy = UNDEFINED, 0.0, -np.inf
    n_visited = 0
    n_informative = 0
    for jj in range(n_features):
        if n_visited >= max_features and n_informative > 0:
            break
        j = features[jj]
        if use_mask and (const_mask >> j) & 1:
            continue
        n_visited += 1
        col = X[:, j]
        vmin = np.inf
        vmax = -np.inf
        for q in range(n):
            i = rows[start + q]
            v = col[i]
            xs[q] = v
            perm[q] = i
            vmin = min(vmin, v)
            vmax = max(vmax, v)
        if vmax <= vmin + FEATURE_THRESHOLD:
            if use_mask:
                const_mask |= np.int64(1) << j
            continue  # constant feature in this node: no split possible
        n_informative += 1
        _sort_values(xs, perm, n, stack)
        stat_l[:] = 0.0
        w_l = 0.0
        s_l = 0.0
        for p in range(1, n):
            i = perm[p - 1]
            wi = w[i]
            w_l += wi
            if regression:
                s_l += wi * yv[i]
            else:
                stat_l[yk[i]] += wi
            x_prev = xs[p - 1]
            x_next = xs[p]
            if x_next <= x_prev + FEATURE_THRESHOLD:
                continue  # cannot cut between equal values
            if p < min_samples_leaf or n - p < min_samples_leaf:
                continue
            if regression:
                s_r = stat_node[0] - s_l
                proxy = s_l * s_l / w_l + s_r * s_r / (w_node - w_l)
            elif criterion == GINI:  # -W_L I(L) - W_R I(R) = sum_k s_Lk^2 / W_L + sum_k s_Rk^2 / W_R - W_t
                sq_l = 0.0
                sq_r = 0.0
                for k in range(stat_node.shape[0]):
                    sq_l += stat_l[k] * stat_l[k]
                    r = stat_node[k] - stat_l[k]
                    sq_r += r * r
                proxy = sq_l / w_l + sq_r / (w_node - w_l)
            else:
                for k in range(stat_node.shape[0]):
                    stat_r[k] = stat_node[k] - stat_l[k]
                proxy = _proxy(stat_l, w_l, stat_r, w_node - w_l, criterion)
            if proxy > best_proxy:
                best_proxy = proxy
                best_feature = j
                theta = x_prev / 2.0 + x_next / 2.0
                if theta == x_next or theta == np.inf or theta == -np.inf:
                    theta = float(x_prev)
                best_threshold = theta
    return best_feature, best_threshold, best_proxy, const_mask


@njit(cache=True, nogil=True)
def _partition(X: np.ndarray, rows: np.ndarray, start: int, end: int, feature: int, threshold: float) -> int:
    """Reorder ``rows[start:end]`` so rows with $x_j \\le \\theta$ come first; returns the split position."""
    lo, hi = start, end - 1
    while lo <= hi:
        if X[rows[lo], feature] <= threshold:
            lo += 1
        else:
            rows[lo], rows[hi] = rows[hi], rows[lo]
            hi -= 1
    return lo


@njit(cache=True, nogil=True)
def grow_tree(
    X: np.ndarray,
    yk: np.ndarray,
    yv: np.ndarray,
    w: np.ndarray,
    rows: np.ndarray,
    n_stat: int,
    criterion: int,
    max_depth: int,
    min_samples_split: int,
    min_samples_leaf: int,
    max_features: int,
    seed: int,
    capacity: int,
):
    """Grow a CART tree depth first (pre-order node ids, left subtree first) on ``rows`` (rows with $w_i > 0$).

    ``yk`` holds class indices (classification) and ``yv`` real targets (regression); the unused one may be
    empty.  Returns (feature, threshold, left, right, value, impurity, n_node_samples, weighted_n_node_samples).
    """
    n_features = X.shape[1]
    n_value = 1 if criterion == SQUARED_ERROR else n_stat
    feature = np.full(capacity, UNDEFINED, dtype=np.int64)
    threshold = np.full(capacity, float(UNDEFINED), dtype=np.float64)
    left = np.full(capacity, LEAF, dtype=np.int64)
    right = np.full(capacity, LEAF, dtype=np.int64)
    value = np.zeros((capacity, n_value), dtype=np.float64)
    impurity = np.zeros(capacity, dtype=np.float64)
    n_node = np.zeros(capacity, dtype=np.int64)
    w_node_arr = np.zeros(capacity, dtype=np.float64)

    features = np.arange(n_features)
    rng_state = np.full(1, np.uint64(seed) | np.uint64(1), dtype=np.uint64)
    shuffle = max_features < n_features
    stat = np.empty(n_stat, dtype=np.float64)
    stat_l = np.empty(n_stat, dtype=np.float64)
    stat_r = np.empty(n_stat, dtype=np.float64)
    n_rows = rows.shape[0]
    xs = np.empty(n_rows, dtype=np.float32)
    perm = np.empty(n_rows, dtype=np.int64)
    sort_stack = np.empty((64, 2), dtype=np.int64)

    # stack of (start, end, depth, parent, is_left, mask of features constant in an ancestor)
    stack = np.zeros((capacity + 1, 6), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3], stack[0, 4] = 0, rows.shape[0], 0, -1, 0
    top = 1
    n_nodes = 0
    while top > 0:
        top -= 1
        start, end, depth, parent, is_left = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4]
        const_mask = stack[top, 5]
        node = n_nodes
        n_nodes += 1
        if parent >= 0:
            if is_left == 1:
                left[parent] = node
            else:
                right[parent] = node

        stat[:] = 0.0
        w_t = 0.0
        for q in range(start, end):
            _add_row(stat, rows[q], yk, yv, w, criterion)
            w_t += w[rows[q]]
        imp = _impurity(stat, w_t, criterion)
        n_t = end - start
        impurity[node] = imp
        n_node[node] = n_t
        w_node_arr[node] = w_t
        if criterion == SQUARED_ERROR:
            value[node, 0] = stat[0] / w_t
        else:
            for k in range(n_stat):
                value[node, k] = stat[k] / w_t

        is_leaf = depth >= max_depth or n_t < min_samples_split or n_t < 2 * min_samples_leaf or imp <= EPSILON
        if is_leaf:
            continue
        j, theta, _, const_mask = _best_split(
            X, yk, yv, w, rows, start, end, features, max_features, min_samples_leaf, criterion, stat, w_t,
            rng_state, shuffle, xs, perm, sort_stack, stat_l, stat_r, const_mask,
        )  # fmt: skip
        if j == UNDEFINED:
            continue
        mid = _partition(X, rows, start, end, j, theta)
        feature[node] = j
        threshold[node] = theta
        # push right first so that the left child is built (and numbered) first
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4] = mid, end, depth + 1, node, 0
        stack[top, 5] = const_mask
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4] = start, mid, depth + 1, node, 1
        stack[top, 5] = const_mask
        top += 1

    return (
        feature[:n_nodes].copy(),
        threshold[:n_nodes].copy(),
        left[:n_nodes].copy(),
        right[:n_nodes].copy(),
        value[:n_nodes].copy(),
        impurity[:n_nodes].copy(),
        n_node[:n_nodes].copy(),
        w_node_arr[:n_nodes].copy(),
    )


@njit(cache=True, nogil=True)
def apply_tree(X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray):
    """Leaf id reached by every row of ``X`` (go left when $x_j \\le \\theta$)."""
    n = X.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        node = 0
        while left[node] != LEAF:
            if X[i, feature[node]] <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        out[i] = node
    return out


def float32_round_down(t: np.ndarray) -> np.ndarray:
    r"""The largest float32 $\le t$ for every element of a float64 array.

    For a float32 input ``x``, ``x <= t`` holds exactly when ``x <= float32_round_down(t)``, so a packed forest can keep
    float32 thresholds (half the bytes per node) without changing a single prediction."""
    t32 = t.astype(np.float32)
    return np.where(t32.astype(np.float64) > t, np.nextafter(t32, np.float32(-np.inf)), t32)


ROWS_IN_STEP = 4  # rows walked down a tree in lockstep by forest_mean_value


@njit(cache=True, nogil=True)
def forest_mean_value(
    X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, right: np.ndarray, value: np.ndarray, roots: np.ndarray
) -> np.ndarray:
    r"""Mean leaf value over a packed forest, $\frac{1}{B}\sum_b v_b(\ell_b(x_i))$, for every row of ``X`` (float32).

    The $B$ trees are concatenated in pre-order (a node's left child is the next node): tree $b$ starts at node
    ``roots[b]``, ``feature`` is -1 at leaves, ``right`` holds global node ids and ``threshold`` is float32 (see
    :func:`float32_round_down`).  A few rows go down a tree together, one level each per step, so that their
    independent memory loads overlap instead of waiting on one another.  Returns an (n, n_outputs) array.
    """
    n, p = X.shape
    n_trees, n_out = roots.shape[0], value.shape[1]
    x = X.reshape(n * p)
    out = np.zeros((n, n_out), dtype=np.float64)
    node = np.empty(ROWS_IN_STEP, dtype=np.int64)
    for b in range(n_trees):  # tree by tree, so one tree's top nodes stay in cache while all rows pass through it
        for i0 in range(0, n, ROWS_IN_STEP):
            m = min(ROWS_IN_STEP, n - i0)
            for j in range(m):
                node[j] = roots[b]
            moving = m
            while moving > 0:
                moving = 0
                for j in range(m):
                    t = node[j]
                    f = feature[t]
                    if f >= 0:
                        go_right = x[(i0 + j) * p + f] > threshold[t]
                        node[j] = t + 1 + go_right * (right[t] - t - 1)  # branch-free: left child is t + 1
                        moving += 1
            for j in range(m):
                for k in range(n_out):
                    out[i0 + j, k] += value[node[j], k]
    return out / n_trees
