r"""The one-dimensional random walk ("drunkard's walk"), solved with generating functions.

A particle starts at $S_0 = 0$ on the integers. At every tick it moves one step up with
probability $p$ or one step down with probability $q = 1 - p$, independently of the past, so
$S_n = X_1 + \dots + X_n$ with $P(X_i = +1) = p$, $P(X_i = -1) = q$. The symmetric walk is $p = 1/2$.

Glossary (code name: symbol)

* ``n``: number of steps $n$; ``k``: a position (level) $k$; ``m``: half-time, time $2m$;
* ``r``: number of up steps $r = (n + k)/2$;
* ``u``: $u_{2m} = P(S_{2m} = 0)$, the walk is back at the origin at time $2m$ (returns only happen
  at even times, so everything about returns is indexed by $m$);
* ``f``: $f_{2m}$ = probability that the *first* return to 0 happens at time $2m$ ($f_0 = 0$);
* ``T_k``: first time the walk reaches level $k \ne 0$.

**Position after n steps.** One step has generating function $\phi(z) = p z + q z^{-1}$; steps
are independent, so $E[z^{S_n}] = \phi(z)^n$ and the probability of being at $k$ is the coefficient
of $z^k$. Expanding the binomial $(p z + q z^{-1})^n$,

$$P(S_n = k) = [z^k]\,(p z + q/z)^n = \binom{n}{r} p^{r} q^{n-r}, \qquad r = \frac{n+k}{2},$$

which is zero unless $|k| \le n$ and $n + k$ is even: a shifted binomial,
$S_n = 2\,\mathrm{Bin}(n, p) - n$, with mean $n(p-q)$ and variance $4npq$.

**Returns to the origin.** $u_{2m} = \binom{2m}{m}(pq)^m$, and its generating function sums in closed form

$$U(s) = \sum_{m \ge 0} u_{2m} s^{2m} = \frac{1}{\sqrt{1 - 4pq\,s^2}}.$$

A walk at 0 at time $2m$ has returned for a first time at some $2j \le 2m$ and then, starting afresh,
is back at 0 after $2m - 2j$ more steps (the renewal relation, $m \ge 1$):

$$u_{2m} = \sum_{j=1}^{m} f_{2j}\, u_{2m-2j}, \qquad\text{so}\qquad U(s) = 1 + F(s)\,U(s),$$

$$F(s) = 1 - \frac{1}{U(s)} = 1 - \sqrt{1 - 4pq\,s^2}, \qquad
f_{2m} = [s^{2m}]F(s) = \frac{u_{2m}}{2m - 1}.$$

Setting $s = 1$: the walk ever returns with probability $F(1) = 1 - \sqrt{(p+q)^2 - 4pq} = 1 - |p - q|$;
it is certain only for the symmetric walk. For $p = 1/2$ the tail of the first-return time is
$P(T_0 > 2m) = u_{2m} \sim 1/\sqrt{\pi m}$ (Stirling), so returns are certain but slow.

**First passage to a level.** Reaching level $k \ge 1$ means reaching $1$, then $2$, ..., each a
fresh copy of the first step, so $F_k(s) = E[s^{T_k}] = F_1(s)^k$ with

$$F_1(s) = \frac{1 - \sqrt{1 - 4pq\,s^2}}{2 q s}, \qquad [s^{2m-1}]F_1 = C_{m-1}\, p^m q^{m-1},$$

($C_j$ the Catalan numbers). Extracting coefficients of $F_1^k$ gives the hitting-time theorem
$P(T_k = n) = \frac{|k|}{n} P(S_n = k)$; the walk ever reaches $k > 0$ with probability
$F_1(1)^k = \min(1, p/q)^k$. Negative levels swap the roles of $p$ and $q$.

**Limits.** By the central limit theorem, $(S_n - n(p-q))/\sqrt{4npq}$ tends to a standard normal;
since $S_n$ lives on a lattice of spacing 2, the local form is
$P(S_n = k) \approx \frac{2}{\sqrt{2\pi \cdot 4npq}} \exp\!\big(-\frac{(k - n(p-q))^2}{8npq}\big)$.

**Numerics.** Factorials overflow for large $n$ and $\binom{n}{r}p^r q^{n-r}$ suffers cancellation
when written as ``gammaln`` differences, so :func:`log_position_pmf` uses Loader's saddle-point form
(C. Loader, *Fast and accurate computation of binomial probabilities*, 2000):

$$\log P = \delta(n) - \delta(r) - \delta(n-r) - D(r, np) - D(n-r, nq) + \tfrac12\log\frac{n}{2\pi r (n-r)},$$

with the Stirling remainder $\delta(x) = \log x! - (x + \frac12)\log x + x - \frac12 \log 2\pi$ and the
deviance $D(x, \mu) = x \log(x/\mu) + \mu - x$ evaluated by a series when $x \approx \mu$. Every term
is small, so nothing cancels. Coefficient sequences use the stable ratio recurrences above.

Everything is vectorised with numpy; randomness only enters through an explicit
``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

__all__ = [
    "check_probability",
    "positions",
    "log_position_pmf",
    "position_pmf",
    "normal_approximation",
    "return_probabilities",
    "first_return_probabilities",
    "first_return_by_renewal",
    "return_by_probabilities",
    "ever_return_probability",
    "first_passage_probabilities",
    "first_passage_series",
    "ever_reach_probability",
    "simulate_walks",
    "first_hit_times",
    "empirical_position_pmf",
    "total_variation",
    "expected_sampling_tv",
]

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_SERIES_FLOOR = 1e-150  # see first_passage_series


# -- argument checks -----------------------------------------------------------------------------
def check_probability(p: float, name: str = "p") -> float:
    """Return ``p`` as a float after checking $0 \\le p \\le 1$; raise naming ``name``."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number in [0, 1]; got {type(p).__name__}")
    p = float(p)
    if not (0.0 <= p <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1]; got {p!r}")
    return p


def _check_count(n: int, name: str, minimum: int = 0) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {n}")
    return int(n)


def _as_int_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integers; got dtype {arr.dtype}")
    return arr.astype(np.int64)


# -- exact distribution of S_n -------------------------------------------------------------------
def positions(n: int) -> np.ndarray:
    """The positions $-n, \\dots, n$ (step 1; odd offsets from $n$ have probability 0)."""
    n = _check_count(n, "n")
    return np.arange(-n, n + 1)


def _stirling_remainder(x: np.ndarray) -> np.ndarray:
    r"""$\delta(x) = \log x! - (x + \frac12)\log x + x - \frac12\log 2\pi$ for integers $x \ge 1$.

    Small $x$ use ``gammaln`` (values are small, so the subtraction is harmless); larger $x$ the
    asymptotic series $\frac{1}{12x} - \frac{1}{360x^3} + \frac{1}{1260x^5} - \frac{1}{1680x^7} + \frac{1}{1188x^9}$.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x <= 15
    xs = np.where(small, np.maximum(x, 1.0), 16.0)
    exact = gammaln(xs + 1.0) - (xs + 0.5) * np.log(xs) + xs - _HALF_LOG_2PI
    xl = np.where(small, 16.0, x)
    inv2 = 1.0 / (xl * xl)
    series = (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - inv2 / 1188) * inv2) * inv2) * inv2) / xl
    out[...] = np.where(small, exact, series)
    return out


def _deviance(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    r"""$D(x, \mu) = x\log(x/\mu) + \mu - x \ge 0$, computed without cancellation when $x \approx \mu$.

    With $v = (x - \mu)/(x + \mu)$: $D = (x-\mu)v + 2x\sum_{j\ge1} v^{2j+1}/(2j+1)$, fast when $|v| < 0.1$.
    """
    x = np.asarray(x, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.where(x > 0, x * np.log(x / mu), 0.0) + mu - x
        v = (x - mu) / (x + mu)
    near = np.abs(x - mu) < 0.1 * (x + mu)
    v = np.where(near, v, 0.0)
    total = (x - mu) * v
    term = 2.0 * x * v
    v2 = v * v
    for j in range(1, 14):  # |v| < 0.1: each term is 100x smaller than the previous one
        term = term * v2
        total = total + term / (2 * j + 1)
    return np.where(near, total, direct)


def log_position_pmf(n, k, p: float = 0.5) -> np.ndarray:
    r"""$\log P(S_n = k)$ for broadcastable integer arrays ``n`` (>= 0) and ``k``.

    $P(S_n = k) = \binom{n}{r}p^r q^{n-r}$ with $r = (n+k)/2$; ``-inf`` where $|k| > n$ or
    $n + k$ is odd. Uses the saddle-point form in the module docstring, accurate to a few ulps of
    the log for any $n$.
    """
    p = check_probability(p)
    q = 1.0 - p
    n = _as_int_array(n, "n")
    k = _as_int_array(k, "k")
    if np.any(n < 0):
        raise ValueError("n must be >= 0")
    n, k = np.broadcast_arrays(n, k)
    valid = (np.abs(k) <= n) & ((n + k) % 2 == 0)
    r = np.where(valid, (n + k) // 2, 0)  # number of up steps
    nf = n.astype(np.float64)
    rf = r.astype(np.float64)
    sf = nf - rf  # number of down steps
    interior = valid & (r > 0) & (r < n)
    safe_n = np.where(interior, nf, 2.0)
    safe_r = np.where(interior, rf, 1.0)
    safe_s = np.where(interior, sf, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bulk = (
            _stirling_remainder(safe_n)
            - _stirling_remainder(safe_r)
            - _stirling_remainder(safe_s)
            - _deviance(safe_r, safe_n * p)
            - _deviance(safe_s, safe_n * q)
            + 0.5 * (np.log(safe_n) - np.log(2.0 * np.pi * safe_r * safe_s))
        )
        # the ends of the support: all steps down (p^0 q^n) or all steps up (p^n q^0)
        edge = np.where(r == 0, xlogy(nf, q), xlogy(nf, p))
    out = np.where(interior, bulk, edge)
    out = np.where(valid, out, -np.inf)
    return out


def position_pmf(n: int, p: float = 0.5, k=None) -> np.ndarray:
    """$P(S_n = k)$ for ``k`` (default: every position $-n..n$, see :func:`positions`)."""
    n = _check_count(n, "n")
    if k is None:
        k = positions(n)
    return np.exp(log_position_pmf(n, k, p))


def normal_approximation(n: int, p: float = 0.5, k=None) -> np.ndarray:
    r"""Local CLT: $P(S_n = k) \approx \frac{2}{\sqrt{2\pi\sigma^2}} e^{-(k-\mu)^2/(2\sigma^2)}$ on the parity lattice.

    $\mu = n(p - q)$, $\sigma^2 = 4npq$; zero where $n + k$ is odd or $|k| > n$.
    """
    n = _check_count(n, "n", minimum=1)
    p = check_probability(p)
    q = 1.0 - p
    if p in (0.0, 1.0):
        raise ValueError("p must lie strictly inside (0, 1) for the normal approximation")
    k = positions(n) if k is None else _as_int_array(k, "k")
    mu, var = n * (p - q), 4.0 * n * p * q
    dens = 2.0 * np.exp(-((k - mu) ** 2) / (2.0 * var)) / np.sqrt(2.0 * np.pi * var)
    valid = (np.abs(k) <= n) & ((n + k) % 2 == 0)
    return np.where(valid, dens, 0.0)


# -- returns to the origin -----------------------------------------------------------------------
def return_probabilities(m_max: int, p: float = 0.5) -> np.ndarray:
    r"""$u_{2m} = P(S_{2m} = 0) = \binom{2m}{m}(pq)^m$ for $m = 0, \dots, m_{\max}$ (coefficients of $U(s)$)."""
    m_max = _check_count(m_max, "m_max")
    m = np.arange(m_max + 1)
    return np.exp(log_position_pmf(2 * m, 0, p))


def first_return_probabilities(m_max: int, p: float = 0.5) -> np.ndarray:
    r"""$f_{2m} = [s^{2m}]\,(1 - \sqrt{1 - 4pq s^2}) = u_{2m}/(2m - 1)$ for $m = 0..m_{\max}$, with $f_0 = 0$.

    Expanding $\sqrt{1-x} = 1 - \sum_{m\ge1} \binom{2m}{m}\frac{x^m}{4^m(2m-1)}$ at $x = 4pq s^2$.
    """
    u = return_probabilities(m_max, p)
    m = np.arange(m_max + 1)
    f = u / np.where(m > 0, 2 * m - 1, 1)
    f[0] = 0.0
    return f


def first_return_by_renewal(u) -> np.ndarray:
    r"""Solve the renewal relation $u_{2m} = \sum_{j=1}^m f_{2j} u_{2m-2j}$ for $f$ (slow, $O(m^2)$).

    ``u`` holds $u_0 = 1, u_2, u_4, \dots$; the result holds $f_0 = 0, f_2, f_4, \dots$. This is the
    naive route, kept as an oracle for :func:`first_return_probabilities`.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 1 or u.size == 0:
        raise ValueError(f"u must be a non-empty 1-D array; got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("u must be finite")
    if u[0] != 1.0:
        raise ValueError(f"u[0] must be 1 (the walk starts at the origin); got {u[0]!r}")
    f = np.zeros_like(u)
    for m in range(1, u.size):
        # f_{2m} = u_{2m} - sum_{j=1}^{m-1} f_{2j} u_{2m-2j}   (u_0 = 1)
        f[m] = u[m] - np.dot(f[1:m], u[m - 1 : 0 : -1])
    return f


def return_by_probabilities(m_max: int, p: float = 0.5) -> np.ndarray:
    r"""$P(T_0 \le 2m) = \sum_{j \le m} f_{2j}$ for $m = 0..m_{\max}$; tends to $1 - |p - q|$."""
    return np.cumsum(first_return_probabilities(m_max, p))


def ever_return_probability(p: float = 0.5) -> float:
    r"""$F(1) = 1 - \sqrt{1 - 4pq} = 1 - |p - q|$."""
    p = check_probability(p)
    return 1.0 - abs(p - (1.0 - p))


# -- first passage to a level -------------------------------------------------------------------
def first_passage_probabilities(n, k: int, p: float = 0.5) -> np.ndarray:
    r"""$P(T_k = n) = \frac{|k|}{n} P(S_n = k)$ for an integer array ``n`` (hitting-time theorem), $k \ne 0$."""
    k = _check_level(k)
    n = _as_int_array(n, "n")
    if np.any(n < 0):
        raise ValueError("n must be >= 0")
    safe = np.maximum(n, 1)
    out = abs(k) / safe * np.exp(log_position_pmf(safe, k, p))
    return np.where(n > 0, out, 0.0)


def _check_level(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer level; got {type(k).__name__}")
    if k == 0:
        raise ValueError("k must be a non-zero level (use the first-return functions for k = 0)")
    return int(k)


def first_passage_series(n_max: int, k: int, p: float = 0.5) -> np.ndarray:
    r"""Coefficients $[s^n]\,F_1(s)^k$ for $n = 0..n_{\max}$: the law of $T_k$ from its generating function.

    $F_1$'s coefficients come from the Catalan recurrence $c_{m+1} = c_m \cdot pq \cdot \frac{2(2m-1)}{m+1}$,
    $c_1 = p$ (at $s^{2m-1}$); the $k$-th power is taken by repeated squaring of truncated series.
    For $k < 0$ the walk is mirrored ($p \leftrightarrow q$). Coefficients below $10^{-150}$ are
    flushed to zero before multiplying (so no product is a slow subnormal number): the result is exact
    to an absolute $10^{-150}$, far below anything a probability is compared with.
    """
    n_max = _check_count(n_max, "n_max")
    k = _check_level(k)
    p = check_probability(p)
    if k < 0:
        p, k = 1.0 - p, -k
    q = 1.0 - p
    base = np.zeros(n_max + 1)
    n_odd = (n_max + 1) // 2  # number of odd powers 1, 3, ... <= n_max
    if n_odd:
        m = np.arange(1, n_odd)
        ratios = p * q * 2.0 * (2 * m - 1) / (m + 1)
        base[1::2] = p * np.concatenate(([1.0], np.cumprod(ratios)))
    base[base < _SERIES_FLOOR] = 0.0
    result: np.ndarray | None = None
    power = base
    while k:
        if k & 1:
            result = power if result is None else _truncated_product(result, power, n_max)
        k >>= 1
        if k:
            power = _truncated_product(power, power, n_max)
    return result


def _truncated_product(a: np.ndarray, b: np.ndarray, n_max: int) -> np.ndarray:
    """Coefficients 0..n_max of the product of two power series (direct convolution, exact order)."""
    out = np.convolve(a, b)[: n_max + 1]
    out[out < _SERIES_FLOOR] = 0.0
    return out


def ever_reach_probability(k: int, p: float = 0.5) -> float:
    r"""$P(T_k < \infty) = F_1(1)^k = \min(1, p/q)^k$ for $k > 0$ (mirrored for $k < 0$)."""
    k = _check_level(k)
    p = check_probability(p)
    up, down = (p, 1.0 - p) if k > 0 else (1.0 - p, p)
    if up >= down:
        return 1.0
    return float((up / down) ** abs(k))


# -- Monte Carlo ---------------------------------------------------------------------------------
def simulate_walks(n_steps: int, n_walks: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Paths $S_0 = 0, S_1, \\dots, S_n$ of ``n_walks`` independent walks, shape (n_walks, n_steps + 1), int32."""
    n_steps = _check_count(n_steps, "n_steps")
    n_walks = _check_count(n_walks, "n_walks", minimum=1)
    p = check_probability(p)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    up = rng.random((n_walks, n_steps), dtype=np.float32) < p  # (walks, steps) bool
    steps = 2 * up.astype(np.int8) - 1  # (walks, steps) in {-1, +1}
    paths = np.zeros((n_walks, n_steps + 1), dtype=np.int32)  # (walks, steps + 1)
    np.cumsum(steps, axis=1, dtype=np.int32, out=paths[:, 1:])
    return paths


def first_hit_times(paths, level: int) -> np.ndarray:
    """First time $t \\ge 1$ with $S_t = $ ``level`` for each path (row); ``-1`` if it never happens."""
    paths = np.asarray(paths)
    if paths.ndim != 2 or paths.shape[1] < 1:
        raise ValueError(f"paths must have shape (n_walks, n_steps + 1); got {paths.shape}")
    hits = paths[:, 1:] == level  # (walks, steps)
    hit_any = hits.any(axis=1)
    return np.where(hit_any, hits.argmax(axis=1) + 1, -1)


def empirical_position_pmf(final_positions, n: int) -> np.ndarray:
    """Relative frequencies of $S_n$ over positions $-n..n$ (same layout as :func:`position_pmf`)."""
    n = _check_count(n, "n")
    x = _as_int_array(final_positions, "final_positions").ravel()
    if x.size == 0:
        raise ValueError("final_positions is empty")
    if np.any(np.abs(x) > n):
        raise ValueError(f"final_positions must lie in [-{n}, {n}]")
    return np.bincount(x + n, minlength=2 * n + 1) / x.size


def total_variation(a, b) -> float:
    r"""$\mathrm{TV}(a, b) = \frac12\sum_i |a_i - b_i|$ for two pmfs on the same support."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}")
    return float(0.5 * np.abs(a - b).sum())


def expected_sampling_tv(pmf, n_samples: int) -> float:
    r"""Approximate $E[\mathrm{TV}(\hat P_N, P)]$ for $N$ i.i.d. samples from ``pmf``.

    Each frequency is nearly normal with s.d. $\sqrt{P_i(1-P_i)/N}$ and $E|Z| = \sqrt{2/\pi}$, so
    $E[\mathrm{TV}] \approx \frac12 \sum_i \sqrt{2 P_i (1 - P_i) / (\pi N)}$: the yardstick a correct sampler meets.
    """
    n_samples = _check_count(n_samples, "n_samples", minimum=1)
    pmf = np.asarray(pmf, dtype=np.float64)
    return float(0.5 * np.sum(np.sqrt(2.0 * pmf * (1.0 - pmf) / (np.pi * n_samples))))
