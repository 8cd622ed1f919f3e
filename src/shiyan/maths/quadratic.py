r"""Quadratic functions $f(\mathbf x) = \mathbf x^\top A \mathbf x + \mathbf b^\top \mathbf x + c$: stationary point and its type.

Glossary (code name: symbol)

* ``A``: the $n \times n$ symmetric matrix $A$ (the Hessian is $2A$); ``b``: the vector $\mathbf b$;
  ``c``: the scalar $c$; ``x``: a point $\mathbf x$, shape ``(..., n)`` (any leading batch shape);
* ``x_star``: a stationary point $\mathbf x^*$; ``lam``, ``V``: eigenvalues $\lambda_i$ (ascending)
  and orthonormal eigenvectors $\mathbf v_i$ (the columns of $V$), $A = V \operatorname{diag}(\lambda) V^\top$;
* ``minors``: leading principal minors $D_k = \det A_{1:k,1:k}$.

**Gradient and stationary point.** For symmetric $A$, $\nabla f(\mathbf x) = 2A\mathbf x + \mathbf b$ and
$\nabla^2 f = 2A$. A stationary point solves the linear system

$$2A\mathbf x^* = -\mathbf b, \qquad \mathbf x^* = -\tfrac12 A^{-1}\mathbf b \ (A \text{ invertible}),
\qquad f(\mathbf x^*) = c - \tfrac14\,\mathbf b^\top A^{-1}\mathbf b .$$

**Why the eigenvalues decide.** Completing the square, $f(\mathbf x^* + \mathbf d) = f(\mathbf x^*) + \mathbf d^\top A\mathbf d$
exactly (no higher-order terms). Writing $\mathbf d = \sum_i t_i \mathbf v_i$ gives
$f(\mathbf x^* + \mathbf d) - f(\mathbf x^*) = \sum_i \lambda_i t_i^2$, so

* all $\lambda_i > 0$ (positive definite): $\mathbf x^*$ is the unique global **minimum**;
* all $\lambda_i < 0$ (negative definite): the unique global **maximum**;
* both signs: a **saddle** -- $f$ rises along some eigenvectors and falls along others;
* some $\lambda_i = 0$ (singular $A$): $f$ is flat along the null space. If $\mathbf b$ has a component
  in the null space, $f$ is linear and unbounded along it and has **no stationary point**;
  otherwise the stationary points form the affine set $\mathbf x^* + \ker A$ (a line of minima in 2-D
  when the other eigenvalue is positive).

**Second route: Sylvester's criterion.** $A$ is positive definite iff every leading principal minor
$D_k > 0$, and negative definite iff $(-1)^k D_k > 0$ for all $k$. If neither holds and
$\det A \ne 0$, $A$ is indefinite. For singular $A$ the leading minors do not decide semi-definiteness;
then *all* principal minors are needed ($A \succeq 0$ iff every principal minor is $\ge 0$).

**Eigenvalues by Jacobi rotations.** :func:`jacobi_eigh` diagonalises $A$ by plane rotations
$J_{pq}$ that each zero one off-diagonal pair: with $\theta = (a_{qq} - a_{pp})/(2a_{pq})$,
$t = \operatorname{sgn}\theta/(|\theta| + \sqrt{\theta^2 + 1})$, $c = 1/\sqrt{t^2+1}$, $s = tc$,
$A \leftarrow J^\top A J$ and $V \leftarrow VJ$; sweeps repeat until the off-diagonal mass vanishes.
It is slow next to LAPACK but short and readable; ``numpy.linalg.eigh`` is its oracle.

**Non-symmetric input (a decision).** $\mathbf x^\top A\mathbf x$ only sees the symmetric part
$\tfrac12(A + A^\top)$, but $2A\mathbf x + \mathbf b$ is the gradient only when $A$ is symmetric. Rather than
silently analysing a different matrix, every function here raises ``ValueError`` for a non-symmetric
``A`` (tolerance $10^{-10}$ relative); call :func:`symmetric_part` first if that is what you mean.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "Definiteness",
    "StationaryKind",
    "QuadraticAnalysis",
    "symmetric_part",
    "check_quadratic",
    "quadratic_value",
    "quadratic_gradient",
    "jacobi_eigh",
    "zero_tolerance",
    "definiteness_from_eigenvalues",
    "eigen_definiteness",
    "leading_principal_minors",
    "sylvester_definiteness",
    "stationary_point",
    "stationary_value",
    "analyse",
    "random_symmetric",
]

Definiteness = Literal[
    "positive definite",
    "negative definite",
    "indefinite",
    "positive semidefinite",
    "negative semidefinite",
    "zero",
]
StationaryKind = Literal[
    "minimum",
    "maximum",
    "saddle",
    "non-unique minimum",
    "non-unique maximum",
    "non-unique saddle",
    "constant",
    "no stationary point",
]

SYMMETRY_RTOL = 1e-10


# -- input checks -------------------------------------------------------------------------------
def symmetric_part(A) -> np.ndarray:
    r"""$\tfrac12(A + A^\top)$: the matrix that $\mathbf x^\top A\mathbf x$ actually depends on."""
    A = _as_square(A)
    return 0.5 * (A + A.T)


def _as_square(A, name: str = "A") -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix; got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return A


def _as_symmetric(A) -> np.ndarray:
    A = _as_square(A)
    scale = max(np.abs(A).max(), np.finfo(float).tiny)
    asym = np.abs(A - A.T).max()
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"A must be symmetric (max |A - A^T| = {asym:.3g}); x^T A x only depends on (A + A^T)/2, "
            "so pass shiyan.maths.quadratic.symmetric_part(A) if that is what you mean"
        )
    return 0.5 * (A + A.T)  # remove rounding-level asymmetry


def _as_vector(v, n: int, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match A; got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return v


def check_quadratic(A, b, c: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate $(A, \\mathbf b, c)$ and return them as float arrays (symmetric ``A`` required)."""
    A = _as_symmetric(A)
    b = _as_vector(b, A.shape[0], "b")
    if isinstance(c, bool) or not np.isscalar(c) or not np.isfinite(c):
        raise ValueError(f"c must be a finite real scalar; got {c!r}")
    return A, b, float(c)


def _as_points(x, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != n:
        raise ValueError(f"x must have shape (..., {n}); got {x.shape}")
    return x


# -- value and gradient -------------------------------------------------------------------------
def quadratic_value(x, A, b, c: float = 0.0) -> np.ndarray:
    r"""$f(\mathbf x) = \mathbf x^\top A\mathbf x + \mathbf b^\top\mathbf x + c$ for ``x`` of shape (..., n)."""
    A, b, c = check_quadratic(A, b, c)
    x = _as_points(x, A.shape[0])
    return np.einsum("...i,ij,...j->...", x, A, x) + x @ b + c  # (...)


def quadratic_gradient(x, A, b) -> np.ndarray:
    r"""$\nabla f(\mathbf x) = 2A\mathbf x + \mathbf b$ for ``x`` of shape (..., n); returns (..., n)."""
    A, b, _ = check_quadratic(A, b)
    x = _as_points(x, A.shape[0])
    return 2.0 * x @ A + b  # A symmetric, so x A = (A x)^T


# -- eigenvalues by Jacobi rotations ------------------------------------------------------------
def jacobi_eigh(A, tol: float = 1e-15, max_sweeps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    r"""Eigen-decomposition $A = V\operatorname{diag}(\lambda)V^\top$ of a symmetric matrix by cyclic Jacobi sweeps.

    Returns ``(lam, V)`` with ``lam`` ascending, shape (n,), and orthonormal eigenvector columns ``V``,
    shape (n, n). Stops when $\|\mathrm{offdiag}(A)\|_F \le$ ``tol`` $\cdot \|A\|_F$.
    """
    a = _as_symmetric(A).copy()  # (n, n), rotated in place towards diagonal form
    n = a.shape[0]
    V = np.eye(n)  # (n, n), accumulated rotations
    total = np.linalg.norm(a)
    if max_sweeps < 1:
        raise ValueError(f"max_sweeps must be >= 1; got {max_sweeps}")
    for sweep in range(max_sweeps + 1):
        off = np.linalg.norm(a - np.diag(np.diag(a)))  # ||offdiag(A)||_F
        if off <= tol * total:
            break
        if sweep == max_sweeps:
            raise RuntimeError(f"jacobi_eigh did not converge in {max_sweeps} sweeps (off-diagonal {off:.3g})")
        for p, q in itertools.combinations(range(n), 2):
            apq = a[p, q]
            if abs(apq) <= 1e-3 * tol * total:  # negligible: rotating would only amplify rounding
                continue
            theta = (a[q, q] - a[p, p]) / (2.0 * apq)
            t = 1.0 / (theta + np.copysign(np.sqrt(theta * theta + 1.0), theta))  # smaller root: |angle| <= pi/4
            cos = 1.0 / np.sqrt(t * t + 1.0)
            sin = t * cos
            # A <- J^T A J: mix columns p, q, then rows p, q
            col_p, col_q = a[:, p].copy(), a[:, q].copy()
            a[:, p] = cos * col_p - sin * col_q
            a[:, q] = sin * col_p + cos * col_q
            row_p, row_q = a[p, :].copy(), a[q, :].copy()
            a[p, :] = cos * row_p - sin * row_q
            a[q, :] = sin * row_p + cos * row_q
            a[p, q] = a[q, p] = 0.0  # exactly zero in exact arithmetic
            v_p, v_q = V[:, p].copy(), V[:, q].copy()
            V[:, p] = cos * v_p - sin * v_q
            V[:, q] = sin * v_p + cos * v_q
    lam = np.diag(a).copy()
    order = np.argsort(lam)
    return lam[order], V[:, order]


def zero_tolerance(A, rtol: float = 1e-9) -> float:
    r"""Eigenvalues with magnitude below ``rtol`` times $n\max|a_{ij}| \ge \|A\|_2$ count as zero."""
    A = _as_square(A)
    return rtol * max(A.shape[0] * np.abs(A).max(), np.finfo(float).tiny)


def eigen_definiteness(A, rtol: float = 1e-9) -> Definiteness:
    r"""Definiteness of symmetric ``A`` from the signs of its eigenvalues (:func:`jacobi_eigh`).

    An eigenvalue with $|\lambda| \le$ ``rtol`` $\cdot\, n \max|a_{ij}|$ counts as zero.
    """
    A = _as_symmetric(A)
    lam, _ = jacobi_eigh(A)
    return definiteness_from_eigenvalues(lam, zero_tolerance(A, rtol))


def definiteness_from_eigenvalues(lam, zero: float = 0.0) -> Definiteness:
    r"""Definiteness from eigenvalues ``lam``; those with $|\lambda| \le$ ``zero`` count as zero."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)):
        raise ValueError(f"lam must be a non-empty finite 1-D array; got shape {lam.shape}")
    pos, neg = np.sum(lam > zero), np.sum(lam < -zero)
    n = lam.size
    if pos == n:
        return "positive definite"
    if neg == n:
        return "negative definite"
    if pos and neg:
        return "indefinite"
    if pos:
        return "positive semidefinite"
    if neg:
        return "negative semidefinite"
    return "zero"


def leading_principal_minors(A) -> np.ndarray:
    r"""$D_k = \det A_{1:k,\,1:k}$ for $k = 1..n$, shape (n,)."""
    A = _as_square(A)
    return np.array([np.linalg.det(A[:k, :k]) for k in range(1, A.shape[0] + 1)])


def sylvester_definiteness(A, rtol: float = 1e-9) -> Definiteness:
    r"""Definiteness of symmetric ``A`` from determinants only (Sylvester's criterion).

    $D_k > 0\ \forall k \Rightarrow$ positive definite; $(-1)^k D_k > 0\ \forall k \Rightarrow$ negative definite;
    otherwise, if $\det A \ne 0$, indefinite. For (numerically) singular $A$ every principal minor
    $M_S = \det A_{S,S}$ is examined: all $M_S \ge 0$ means positive semidefinite, all
    $(-1)^{|S|} M_S \ge 0$ negative semidefinite, both the zero matrix, neither indefinite.
    A $k \times k$ minor counts as zero when $|M| \le$ ``rtol`` $\cdot s^k$, $s = n \max|a_{ij}|$.
    Examining all $2^n - 1$ principal minors is exponential: fine for the small $n$ this is meant for.
    """
    A = _as_symmetric(A)
    n = A.shape[0]
    s = max(n * np.abs(A).max(), np.finfo(float).tiny)
    zero = rtol * s ** np.arange(1, n + 1)  # (n,) tolerance for minors of order 1..n
    D = leading_principal_minors(A)  # (n,)
    signs = (-1.0) ** np.arange(1, n + 1)
    if np.all(D > zero):
        return "positive definite"
    if np.all(signs * D > zero):
        return "negative definite"
    if abs(D[-1]) > zero[-1]:
        return "indefinite"
    psd = nsd = True
    for size in range(1, n + 1):
        for idx in itertools.combinations(range(n), size):
            m = np.linalg.det(A[np.ix_(idx, idx)])
            psd &= m >= -zero[size - 1]
            nsd &= (-1) ** size * m >= -zero[size - 1]
    if psd and nsd:
        return "zero"
    if psd:
        return "positive semidefinite"
    if nsd:
        return "negative semidefinite"
    return "indefinite"


# -- stationary point and classification --------------------------------------------------------
def stationary_point(A, b) -> np.ndarray:
    r"""$\mathbf x^* = -\tfrac12 A^{-1}\mathbf b$, the solution of $2A\mathbf x = -\mathbf b$ (``A`` must be invertible).

    For singular ``A`` use :func:`analyse`, which returns the least-norm stationary point or reports
    that none exists.
    """
    A, b, _ = check_quadratic(A, b)
    try:
        return np.linalg.solve(2.0 * A, -b)
    except np.linalg.LinAlgError:
        raise ValueError("A is singular: there is no unique stationary point; use analyse(A, b, c)") from None


def stationary_value(A, b, c: float = 0.0) -> float:
    r"""$f(\mathbf x^*) = c - \tfrac14\mathbf b^\top A^{-1}\mathbf b$ (``A`` invertible)."""
    A, b, c = check_quadratic(A, b, c)
    try:
        return float(c - 0.25 * b @ np.linalg.solve(A, b))
    except np.linalg.LinAlgError:
        raise ValueError("A is singular: f has no unique stationary value") from None


@dataclass(frozen=True)
class QuadraticAnalysis:
    """Everything :func:`analyse` finds about $f(\\mathbf x) = \\mathbf x^\\top A\\mathbf x + \\mathbf b^\\top\\mathbf x + c$."""

    kind: StationaryKind
    """minimum / maximum / saddle (unique), their non-unique versions, constant, or no stationary point."""
    definiteness: Definiteness
    """Definiteness of A from its eigenvalues."""
    eigenvalues: np.ndarray
    """Ascending eigenvalues of A, shape (n,)."""
    eigenvectors: np.ndarray
    """Orthonormal eigenvectors of A as columns, shape (n, n)."""
    x_star: np.ndarray | None
    """The (least-norm) stationary point, shape (n,); None when there is none."""
    value: float | None
    """f(x_star); None when there is no stationary point."""
    null_space: np.ndarray
    """Orthonormal basis of ker A as columns, shape (n, n - rank); stationary points are x_star + span of it."""


def analyse(A, b, c: float = 0.0, rtol: float = 1e-9) -> QuadraticAnalysis:
    r"""Stationary point(s) of $f$ and their type, from the eigen-decomposition of ``A``.

    In the eigenbasis $2\lambda_i y_i = -\beta_i$ with $\boldsymbol\beta = V^\top\mathbf b$: each
    non-zero $\lambda_i$ fixes $y_i = -\beta_i/(2\lambda_i)$; a zero $\lambda_i$ needs $\beta_i = 0$
    (else there is no stationary point) and leaves $y_i$ free (set to 0: the least-norm point).
    """
    A, b, c = check_quadratic(A, b, c)
    lam, V = jacobi_eigh(A)
    zero = zero_tolerance(A, rtol)
    definiteness = definiteness_from_eigenvalues(lam, zero)
    flat = np.abs(lam) <= zero  # (n,) directions of ker A
    beta = V.T @ b  # (n,) b in the eigenbasis
    null_space = V[:, flat]
    if np.any(np.abs(beta[flat]) > rtol * max(np.linalg.norm(b), 1.0)):
        kind: StationaryKind = "no stationary point"
        return QuadraticAnalysis(kind, definiteness, lam, V, None, None, null_space)
    y = np.where(flat, 0.0, -beta / (2.0 * np.where(flat, 1.0, lam)))  # (n,)
    x_star = V @ y
    unique = not flat.any()
    kind = {
        "positive definite": "minimum",
        "negative definite": "maximum",
        "indefinite": "saddle" if unique else "non-unique saddle",
        "positive semidefinite": "non-unique minimum",
        "negative semidefinite": "non-unique maximum",
        "zero": "constant",
    }[definiteness]
    value = float(quadratic_value(x_star, A, b, c))
    return QuadraticAnalysis(kind, definiteness, lam, V, x_star, value, null_space)


def random_symmetric(n: int, rng: np.random.Generator, eigenvalues=None) -> np.ndarray:
    r"""A random symmetric matrix $Q\operatorname{diag}(\lambda)Q^\top$ with $Q$ Haar-orthogonal.

    ``eigenvalues`` (shape (n,)) defaults to magnitudes uniform in [0.5, 2] with random signs, so
    every definiteness class appears; pass zeros to get singular matrices.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    if eigenvalues is None:
        eigenvalues = rng.uniform(0.5, 2.0, n) * rng.choice([-1.0, 1.0], n)
    lam = _as_vector(eigenvalues, n, "eigenvalues")
    Z = rng.standard_normal((n, n))
    Q, R = np.linalg.qr(Z)
    Q = Q * np.sign(np.diag(R))  # sign fix makes Q Haar-distributed
    return symmetric_part((Q * lam) @ Q.T)
