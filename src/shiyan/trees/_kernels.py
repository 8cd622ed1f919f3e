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
The sort works on the dense ranks of the values (computed once per matrix): a node's rows become uint64 keys
$r_{ij} 2^{32} + i$, sorted by radix sort on the few bits in which the node's ranks differ (quicksort for small
nodes).
Thresholds sit halfway between consecutive distinct values, as in scikit-learn.

The kernels store the tree in flat arrays (``feature``, ``threshold``, ``left``, ``right``, ``value``,
``impurity``, ``n_node_samples``, ``weighted_n_node_samples``); a leaf has ``left == right == -1`` and
``feature == -2``.
"""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np
from numba import njit, types, uint64
from numba.extending import intrinsic

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


_SIGN = np.uint32(0x80000000)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SMALL_RANGE = 16  # ranges this short are finished by insertion sort
_RADIX_MIN = 256  # nodes at least this large are sorted by radix sort, smaller ones by quicksort


def feature_ranks(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Dense ranks of every column of a float32 (n, p) matrix and the sorted distinct values they index.

    Returns ``ranks`` (p, n) uint32 with ``ranks[j, i]`` $= r_{ij}$, the number of distinct values of feature $j$
    below $x_{ij}$, and ``values`` (p, n) float32 with ``values[j, r]`` the $r$-th smallest distinct value (padded
    with the largest), so $x_{ij} = $ ``values[j, ranks[j, i]]`` and $x_{ij} < x_{i'j} \iff r_{ij} < r_{i'j}$.
    Sorting a node on ranks is sorting it on values, and a feature with $d$ distinct values has keys of only
    $\lceil \log_2 d \rceil$ bits, which the radix sort exploits.  Row $j$ is feature $j$, contiguous.
    """
    n, p = X.shape
    ranks = np.empty((p, n), dtype=np.uint32)
    values = np.empty((p, n), dtype=np.float32)
    for j in range(p):
        distinct, inverse = np.unique(X[:, j], return_inverse=True)  # -0.0 and 0.0 share one rank
        ranks[j] = inverse
        values[j, : distinct.shape[0]] = distinct
        values[j, distinct.shape[0] :] = distinct[-1]
    return ranks, values


@intrinsic
def _f32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an unsigned integer as a float32 (no conversion)."""
    if not isinstance(bits, types.Integer) or bits.signed:
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _bits_from_f32(typingctx, x):
    """Reinterpret the 32 bits of a float32 as a uint32 (no conversion)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@njit(cache=True, nogil=True)
def order_keys(X: np.ndarray) -> np.ndarray:
    r"""(p, n) uint32 keys $\kappa(x_{ij})$ of a float32 (n, p) matrix with $x < x' \Rightarrow \kappa(x) < \kappa(x')$.

    The cheap alternative to :func:`feature_ranks` (one pass, no sort) for a matrix that grows a single tree.
    $\kappa$ flips every bit of a negative float and only the sign bit of a non-negative one, so comparing keys as
    unsigned integers orders the values (with $-0 < +0$, which the split scan treats as equal).  Row $j$ of the
    result is feature $j$, contiguous.
    """
    n, p = X.shape
    out = np.empty((p, n), dtype=np.uint32)
    for j in range(p):
        for i in range(n):
            b = _bits_from_f32(X[i, j])
            out[j, i] = ~b if b & _SIGN else b | _SIGN
    return out


@njit(cache=True, nogil=True)
def _key_value(u: np.uint32) -> np.float32:
    """The float32 $x$ with $\\kappa(x) = u$ (inverse of :func:`order_keys`)."""
    return _f32_from_bits(u ^ _SIGN if u & _SIGN else ~u)


@njit(cache=True, nogil=True)
def _value_of(u: np.uint32, values: np.ndarray) -> np.float32:
    """The float32 value behind key ``u``: ``values[u]`` for rank keys, :func:`_key_value` when ``values`` is empty."""
    return values[u] if values.shape[0] > 0 else _key_value(u)


@njit(cache=True, nogil=True)
def _quicksort_keys(keys: np.ndarray, n: int, stack: np.ndarray) -> None:
    r"""Sort ``keys[:n]`` by their upper 32 bits: three-way quicksort, insertion sort on short ranges.

    The three-way partition (< pivot, == pivot, > pivot) makes features with few distinct values (codes,
    calendar fields) cost $O(n \log d)$ for $d$ distinct values.  The larger part is pushed on ``stack`` and the
    smaller one handled first, so the stack never holds more than $\log_2 n$ ranges.
    """
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]
        while hi - lo > _SMALL_RANGE:
            a, b, c = keys[lo] >> _SHIFT32, keys[(lo + hi) // 2] >> _SHIFT32, keys[hi - 1] >> _SHIFT32
            pivot = max(min(a, b), min(max(a, b), c))  # median of three
            lt, i, gt = lo, lo, hi - 1
            while i <= gt:
                k = keys[i]
                v = k >> _SHIFT32
                if v < pivot:
                    keys[i], keys[lt] = keys[lt], k
                    lt += 1
                    i += 1
                elif v > pivot:
                    keys[i], keys[gt] = keys[gt], k
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
            k = keys[a]
            v = k >> _SHIFT32
            b = a - 1
            while b >= lo and keys[b] >> _SHIFT32 > v:
                keys[b + 1] = keys[b]
                b -= 1
            keys[b + 1] = k


@njit(cache=True, nogil=True)
def _radix_sort_keys(keys: np.ndarray, spare: np.ndarray, n: int, count: np.ndarray, varying: int) -> np.ndarray:
    r"""Sort ``keys[:n]`` by their upper 32 bits with a least-significant-digit radix sort (8-bit digits).

    ``varying`` has a 1 at every bit of the value where some keys differ; only the span from its lowest to its
    highest set bit is sorted on (ranks of a node whose values take $d$ distinct levels span about
    $\log_2 d$ bits), in $\lceil \text{span} / 8 \rceil \le 4$ digits.  One pass counts every digit, then one stable scatter
    per digit moves the keys between ``keys`` and ``spare``.  No comparisons, hence no mispredicted branches.
    Returns whichever of the two arrays holds the result.
    """
    if varying == 0:
        return keys  # all values equal: already sorted
    lo = 0
    while (varying >> lo) & 1 == 0:
        lo += 1
    hi = lo
    while varying >> hi:
        hi += 1
    n_pass = (hi - lo + 7) // 8
    base = np.uint64(32 + lo)
    low8 = np.uint64(255)
    count[:n_pass, :] = 0
    for q in range(n):  # the tests on n_pass are the same for every q: predicted, nearly free
        u = keys[q] >> base
        count[0, u & low8] += 1
        if n_pass > 1:
            count[1, (u >> np.uint64(8)) & low8] += 1
            if n_pass > 2:
                count[2, (u >> np.uint64(16)) & low8] += 1
                if n_pass > 3:
                    count[3, (u >> np.uint64(24)) & low8] += 1
    src, dst = keys, spare
    for d in range(n_pass):
        total = 0
        for b in range(256):  # count -> first slot of every bucket
            c = count[d, b]
            count[d, b] = total
            total += c
        shift = base + np.uint64(8 * d)
        for q in range(n):
            k = src[q]
            b = (k >> shift) & low8
            dst[count[d, b]] = k
            count[d, b] += 1
        src, dst = dst, src
    return src


@njit(cache=True, nogil=True)
def _sort_keys(
    keys: np.ndarray, spare: np.ndarray, n: int, stack: np.ndarray, count: np.ndarray, varying: int
) -> np.ndarray:
    """Sort ``keys[:n]`` by value (upper 32 bits); returns the array (``keys`` or ``spare``) holding the result."""
    if n >= _RADIX_MIN:
        return _radix_sort_keys(keys, spare, n, count, varying)
    _quicksort_keys(keys, n, stack)
    return keys


@njit(cache=True, nogil=True)
def _best_split(
    ranks: np.ndarray,
    values: np.ndarray,
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
    keys: np.ndarray,
    spare: np.ndarray,
    stack: np.ndarray,
    count: np.ndarray,
    stat_l: np.ndarray,
    stat_r: np.ndarray,
    const_mask: int,
) -> tuple[int, float, float, int]:
    r"""Best split of ``rows[start:end]``: returns (feature, threshold, proxy, const_mask); feature is -2 if none.

    Bit $j$ of ``const_mask`` marks feature $j$ as constant in an ancestor, hence here: it is skipped without
    counting towards ``max_features``; features found constant in this node are added to the returned mask (only
    for $p \le 63$; with more features the mask stays 0).

    Every row of the node becomes one uint64 key, $r_{ij} \cdot 2^{32} + i$ with $r_{ij}$ the rank of $x_{ij}$ (see
    :func:`feature_ranks`; or its :func:`order_keys` key when ``values`` is empty), so one sort of one array orders
    the values and carries the row ids along.  ``keys`` / ``spare`` (n_rows,) uint64,
    ``stack`` (64, 2) int64, ``count`` (4, 256) int64 and ``stat_l`` / ``stat_r`` are scratch space reused by every
    node.  With two classes the left class weights live in two scalars instead of ``stat_l`` (same sums, same order).
    """
    n = end - start
    n_features = features.shape[0]
    if shuffle:  # fresh random feature order at every node (Fisher-Yates)
        for a in range(n_features - 1, 0, -1):
            b = _rand_below(rng_state, a + 1)
            features[a], features[b] = features[b], features[a]
    regression = criterion == SQUARED_ERROR
    two_classes = not regression and stat_node.shape[0] == 2
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
        col = ranks[j]
        vals = values[j]
        kmin = np.uint32(0xFFFFFFFF)
        kmax = np.uint32(0)
        u_first = col[rows[start]]
        varying = np.uint32(0)  # bits in which some key differs from the first one
        for q in range(uint64(start), uint64(start + n)):  # unsigned indices: no wrap-around test per gather
            i = uint64(rows[q])
            u = col[i]
            keys[q - uint64(start)] = (np.uint64(u) << _SHIFT32) | i
            kmin = min(kmin, u)
            kmax = max(kmax, u)
            varying |= u ^ u_first
        if _value_of(kmax, vals) <= _value_of(kmin, vals) + FEATURE_THRESHOLD:
            if use_mask:
                const_mask |= np.int64(1) << j
            continue  # constant feature in this node: no split possible
        n_informative += 1
        sk = _sort_keys(keys, spare, n, stack, count, int(varying))
        stat_l[:] = 0.0
        w_l = 0.0
        s_l = 0.0  # regression: sum w y; two classes: weight of class 0
        s_1 = 0.0  # two classes: weight of class 1
        k_prev = sk[0]
        for p in range(1, n):
            i = k_prev & _LOW32
            wi = w[i]
            w_l += wi
            if regression:
                s_l += wi * yv[i]
            elif two_classes:  # branch-free: adds wi to one sum and an exact 0.0 to the other
                c_1 = wi * yk[i]
                s_l += wi - c_1
                s_1 += c_1
            else:
                stat_l[yk[i]] += wi
            k_next = sk[p]
            u_prev = np.uint32(k_prev >> _SHIFT32)
            u_next = np.uint32(k_next >> _SHIFT32)
            k_prev = k_next
            if u_next == u_prev:
                continue  # cannot cut between equal values
            x_prev = _value_of(u_prev, vals)
            x_next = _value_of(u_next, vals)
            if x_next <= x_prev + FEATURE_THRESHOLD:
                continue
            if p < min_samples_leaf or n - p < min_samples_leaf:
                continue
            if regression:
                s_r = stat_node[0] - s_l
                proxy = s_l * s_l / w_l + s_r * s_r / (w_node - w_l)
            elif criterion == GINI:  # -W_L I(L) - W_R I(R) = sum_k s_Lk^2 / W_L + sum_k s_Rk^2 / W_R - W_t
                if two_classes:
                    r0 = stat_node[0] - s_l
                    r1 = stat_node[1] - s_1
                    sq_l = s_l * s_l + s_1 * s_1
                    sq_r = r0 * r0 + r1 * r1
                else:
                    sq_l = 0.0
                    sq_r = 0.0
                    for k in range(stat_node.shape[0]):
                        sq_l += stat_l[k] * stat_l[k]
                        r = stat_node[k] - stat_l[k]
                        sq_r += r * r
                proxy = sq_l / w_l + sq_r / (w_node - w_l)
            else:
                if two_classes:
                    stat_l[0], stat_l[1] = s_l, s_1
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
    ranks: np.ndarray,
    values: np.ndarray,
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

    ``X`` is the float32 (n, p) matrix (column-major is fastest), ``ranks`` / ``values`` its :func:`feature_ranks`,
    or ``ranks`` its :func:`order_keys` and ``values`` an empty (p, 0) array.

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
    keys = np.empty(n_rows, dtype=np.uint64)
    spare = np.empty(n_rows, dtype=np.uint64)
    sort_stack = np.empty((64, 2), dtype=np.int64)
    count = np.empty((4, 256), dtype=np.int64)
    two_classes = criterion != SQUARED_ERROR and n_stat == 2

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
        if two_classes:  # class weights in scalars: same sums in the same order, no store-to-load chains
            s_0 = 0.0
            s_1 = 0.0
            for q in range(start, end):
                i = rows[q]
                wi = w[i]
                c_1 = wi * yk[i]  # wi or 0.0: the sums below are exactly those of the class-0 / class-1 rows
                s_0 += wi - c_1
                s_1 += c_1
                w_t += wi
            stat[0], stat[1] = s_0, s_1
        elif criterion == SQUARED_ERROR:  # sum w y and sum w y^2 in scalars, the same products in the same order
            s_0 = 0.0
            s_1 = 0.0
            for q in range(start, end):
                i = rows[q]
                wi = w[i]
                wy = wi * yv[i]
                s_0 += wy
                s_1 += wy * yv[i]
                w_t += wi
            stat[0], stat[1] = s_0, s_1
        else:
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
            ranks, values, yk, yv, w, rows, start, end, features, max_features, min_samples_leaf, criterion, stat, w_t,
            rng_state, shuffle, keys, spare, sort_stack, count, stat_l, stat_r, const_mask,
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
    node = np.empty(ROWS_IN_STEP, dtype=np.uint64)  # unsigned indices: no wrap-around test per load
    up = uint64(p)
    for b in range(n_trees):  # tree by tree, so one tree's top nodes stay in cache while all rows pass through it
        for i0 in range(0, n, ROWS_IN_STEP):
            m = min(ROWS_IN_STEP, n - i0)
            for j in range(m):
                node[j] = uint64(roots[b])
            moving = m
            while moving > 0:
                moving = 0
                for j in range(m):
                    t = node[j]
                    f = feature[t]
                    if f >= 0:
                        go_right = uint64(x[uint64(i0 + j) * up + uint64(f)] > threshold[t])
                        # branch-free: the left child is t + 1
                        node[j] = t + uint64(1) + go_right * (uint64(right[t]) - t - uint64(1))
                        moving += 1
            for j in range(m):
                for k in range(n_out):
                    out[i0 + j, k] += value[node[j], k]
    return out / n_trees
