r"""Directional derivatives and the gradient, computed three ways.

Glossary (code name: symbol)

* ``f``: a scalar field $f:\mathbb R^n \to \mathbb R$, applied row-wise to points of shape ``(..., n)``;
* ``x``: the point $\mathbf x$; ``u``: a direction $\mathbf u \ne 0$ (normalised to $\hat{\mathbf u} = \mathbf u/|\mathbf u|$);
* ``grad``: the gradient $\nabla f(\mathbf x) = (\partial_1 f, \dots, \partial_n f)$; ``h``: a finite-difference step.

**Definition.** The directional derivative is the rate of change of $f$ when moving from $\mathbf x$
at unit speed along $\hat{\mathbf u}$:

$$D_{\mathbf u} f(\mathbf x) = \lim_{t \to 0}\frac{f(\mathbf x + t\hat{\mathbf u}) - f(\mathbf x)}{t}
= \nabla f(\mathbf x)\cdot\frac{\mathbf u}{|\mathbf u|}.$$

Partial derivatives are the special cases $\mathbf u = \mathbf e_i$. For a differentiable $f$ the
second equality is the chain rule applied to $t \mapsto f(\mathbf x + t\hat{\mathbf u})$.

**Steepest ascent.** By Cauchy--Schwarz, $\nabla f\cdot\hat{\mathbf u} = |\nabla f|\cos\varphi$ where
$\varphi$ is the angle between $\hat{\mathbf u}$ and $\nabla f$. So over unit directions $D_{\mathbf u}f$
traces a cosine, its maximum is $|\nabla f(\mathbf x)|$, attained at $\hat{\mathbf u} = \nabla f/|\nabla f|$,
its minimum $-|\nabla f|$ points the opposite way, and it vanishes along the level set.

**Worked example.** $f(x, y) = x^2 + y^2$ has $\nabla f = (2x, 2y) = (2, 4)$ at $(1, 2)$. Along
$\mathbf w = (3, 4)$, $|\mathbf w| = 5$: $D_{\mathbf w} f = (2\cdot3 + 4\cdot4)/5 = 22/5 = 4.4$. Along
$(1, 0)$: $D f = 2$, the partial derivative $\partial f/\partial x$. The steepest rate is $|\nabla f| = 2\sqrt5 \approx 4.47$.

**Three routes to the same number.**

1. *Closed form*: a hand-derived gradient dotted with $\hat{\mathbf u}$ (:func:`directional_derivative`).
2. *Central difference* along the direction (:func:`central_difference_directional`):
   $\frac{f(\mathbf x + h\hat{\mathbf u}) - f(\mathbf x - h\hat{\mathbf u})}{2h} = D_{\mathbf u}f + \frac{h^2}{6}\,g'''(0) + O(h^4)$
   with $g(t) = f(\mathbf x + t\hat{\mathbf u})$: the truncation error is $O(h^2)$. Rounding adds about
   $\epsilon |f| / h$ ($\epsilon$ = machine epsilon), so the total error is smallest near
   $h \approx (3\epsilon|f|/|g'''|)^{1/3}$; :func:`default_step` uses $h = \epsilon^{1/3}\max(1, |\mathbf x|)$.
3. *Forward-mode automatic differentiation* (:func:`autograd_directional`): ``torch.func.jvp`` pushes the
   tangent $\hat{\mathbf u}$ through the computation of $f$ and returns $\nabla f\cdot\hat{\mathbf u}$ exactly
   (to rounding) in one pass, without forming the gradient.

Scalar fields in :data:`FIELDS` are written once with operations that numpy arrays and torch tensors
share, so the same formula feeds all three routes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ScalarField",
    "PARABOLOID",
    "ROSENBROCK",
    "WAVY_BOWL",
    "FIELDS",
    "unit",
    "directional_derivative",
    "default_step",
    "central_difference_directional",
    "central_difference_gradient",
    "autograd_directional",
    "autograd_gradient",
    "unit_circle",
    "sweep_directions",
    "steepest_ascent",
]

EPS = float(np.finfo(np.float64).eps)


# -- scalar fields with closed-form gradients ---------------------------------------------------
def _ns(x):
    """numpy or torch, whichever ``x`` belongs to (both provide sin, cos, exp)."""
    return torch if isinstance(x, torch.Tensor) else np


@dataclass(frozen=True)
class ScalarField:
    """A scalar field $f$ on $\\mathbb R^2$ with its hand-derived gradient."""

    name: str
    """Short name used in tables and figures."""
    value: Callable
    """$f$ applied to the last axis of a numpy array or torch tensor of shape (..., 2), returning (...)."""
    gradient: Callable
    """Closed-form $\\nabla f$ for a numpy array of shape (..., 2), returning (..., 2)."""
    formula: str
    """The formula in LaTeX."""


def _paraboloid(x):
    return x[..., 0] ** 2 + x[..., 1] ** 2


def _paraboloid_grad(x):
    return 2.0 * np.asarray(x, dtype=np.float64)


def _rosenbrock(x):
    # f = (1 - x)^2 + 100 (y - x^2)^2
    return (1.0 - x[..., 0]) ** 2 + 100.0 * (x[..., 1] - x[..., 0] ** 2) ** 2


def _rosenbrock_grad(x):
    x = np.asarray(x, dtype=np.float64)
    a, b = x[..., 0], x[..., 1]
    return np.stack([-2.0 * (1.0 - a) - 400.0 * a * (b - a**2), 200.0 * (b - a**2)], axis=-1)


def _wavy(x):
    # f = sin(x) cos(y) + (x^2 + y^2) / 4
    ns = _ns(x)
    return ns.sin(x[..., 0]) * ns.cos(x[..., 1]) + 0.25 * (x[..., 0] ** 2 + x[..., 1] ** 2)


def _wavy_grad(x):
    x = np.asarray(x, dtype=np.float64)
    a, b = x[..., 0], x[..., 1]
    return np.stack([np.cos(a) * np.cos(b) + 0.5 * a, -np.sin(a) * np.sin(b) + 0.5 * b], axis=-1)


PARABOLOID = ScalarField("paraboloid", _paraboloid, _paraboloid_grad, r"x^2 + y^2")
ROSENBROCK = ScalarField("rosenbrock", _rosenbrock, _rosenbrock_grad, r"(1 - x)^2 + 100\,(y - x^2)^2")
WAVY_BOWL = ScalarField("wavy bowl", _wavy, _wavy_grad, r"\sin x\cos y + (x^2 + y^2)/4")
FIELDS: tuple[ScalarField, ...] = (PARABOLOID, ROSENBROCK, WAVY_BOWL)


# -- argument checks ----------------------------------------------------------------------------
def _as_float_array(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have shape (..., n); got a scalar")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def unit(u) -> np.ndarray:
    r"""$\hat{\mathbf u} = \mathbf u/|\mathbf u|$ along the last axis; a zero direction is an error."""
    u = _as_float_array(u, "u")
    norm = np.linalg.norm(u, axis=-1, keepdims=True)  # (..., 1)
    if np.any(norm == 0.0):
        raise ValueError("u must be a non-zero direction (the directional derivative along 0 is undefined)")
    return u / norm


def _check_pair(x: np.ndarray, u: np.ndarray) -> None:
    if x.shape[-1] != u.shape[-1]:
        raise ValueError(f"x and u must have the same last dimension; got {x.shape} and {u.shape}")


# -- route 1: closed form -----------------------------------------------------------------------
def directional_derivative(grad, u) -> np.ndarray:
    r"""$D_{\mathbf u} f = \nabla f\cdot\mathbf u/|\mathbf u|$ for ``grad`` and ``u`` of broadcastable shapes (..., n)."""
    grad = _as_float_array(grad, "grad")
    u_hat = unit(u)
    _check_pair(grad, u_hat)
    return np.sum(grad * u_hat, axis=-1)  # (...)


# -- route 2: central differences ---------------------------------------------------------------
def default_step(x) -> np.ndarray:
    r"""$h = \epsilon^{1/3}\max(1, |\mathbf x|)$ per point: balances $O(h^2)$ truncation against $\epsilon/h$ rounding."""
    x = _as_float_array(x, "x")
    return EPS ** (1.0 / 3.0) * np.maximum(1.0, np.linalg.norm(x, axis=-1))  # (...)


def _check_step(h, x: np.ndarray) -> np.ndarray:
    if h is None:
        return default_step(x)
    h = np.asarray(h, dtype=np.float64)
    if not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"h must be positive and finite; got {h}")
    return h


def central_difference_directional(f: Callable, x, u, h=None) -> np.ndarray:
    r"""$\big(f(\mathbf x + h\hat{\mathbf u}) - f(\mathbf x - h\hat{\mathbf u})\big)/(2h)$, error $O(h^2)$.

    ``f`` maps a numpy array (..., n) to (...); ``x`` and ``u`` broadcast; ``h`` defaults to
    :func:`default_step`.
    """
    x = _as_float_array(x, "x")
    u_hat = unit(u)
    _check_pair(x, u_hat)
    h = _check_step(h, x)
    step = h[..., None] * u_hat  # (..., n)
    return (np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2.0 * h)


def central_difference_gradient(f: Callable, x, h=None) -> np.ndarray:
    r"""$\partial_i f \approx \big(f(\mathbf x + h\mathbf e_i) - f(\mathbf x - h\mathbf e_i)\big)/(2h)$ for every $i$; returns (..., n)."""
    x = _as_float_array(x, "x")
    n = x.shape[-1]
    eye = np.eye(n)
    return np.stack([central_difference_directional(f, x, eye[i], h) for i in range(n)], axis=-1)


# -- route 3: forward-mode automatic differentiation --------------------------------------------
def _as_tensor(a, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach().to(torch.float64)
    else:
        t = torch.as_tensor(_as_float_array(a, name), dtype=torch.float64)
    if t.ndim == 0:
        raise ValueError(f"{name} must have shape (..., n); got a scalar")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return t


def autograd_directional(f: Callable, x, u) -> torch.Tensor:
    r"""$\nabla f(\mathbf x)\cdot\hat{\mathbf u}$ by one forward-mode pass, ``torch.func.jvp(f, (x,), (û,))``.

    ``f`` maps a float64 tensor (..., n) to (...), row by row (each output depends only on its own
    row), so one Jacobian-vector product gives every row's directional derivative.
    """
    x_t = _as_tensor(x, "x")
    u_t = _as_tensor(u, "u")
    if x_t.shape[-1] != u_t.shape[-1]:
        raise ValueError(f"x and u must have the same last dimension; got {tuple(x_t.shape)} and {tuple(u_t.shape)}")
    norm = torch.linalg.vector_norm(u_t, dim=-1, keepdim=True)  # (..., 1)
    if (norm == 0).any():
        raise ValueError("u must be a non-zero direction")
    x_t, u_hat = (t.contiguous() for t in torch.broadcast_tensors(x_t, u_t / norm))  # (..., n) each
    _, tangent_out = torch.func.jvp(f, (x_t,), (u_hat,))  # (...)
    return tangent_out


def autograd_gradient(f: Callable, x) -> torch.Tensor:
    r"""$\nabla f(\mathbf x)$ by reverse mode: the gradient of $\sum_{\text{rows}} f$ (rows are independent); (..., n)."""
    x_t = _as_tensor(x, "x").clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x_t).sum(), x_t)
    return grad


# -- sweeping directions ------------------------------------------------------------------------
def unit_circle(n_angles: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Angles $\theta_j = 2\pi j/N$ and unit directions $(\cos\theta_j, \sin\theta_j)$, shapes (N,) and (N, 2)."""
    if isinstance(n_angles, bool) or not isinstance(n_angles, (int, np.integer)) or n_angles < 3:
        raise ValueError(f"n_angles must be an integer >= 3; got {n_angles!r}")
    theta = 2.0 * np.pi * np.arange(n_angles) / n_angles
    return theta, np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def sweep_directions(grad, directions) -> tuple[np.ndarray, int]:
    r"""$D_{\mathbf u_j} f$ for every direction (rows of ``directions``, shape (N, n)) and the index of the largest.

    ``grad`` is $\nabla f(\mathbf x)$ at one point, shape (n,).
    """
    grad = _as_float_array(grad, "grad")
    if grad.ndim != 1:
        raise ValueError(f"grad must be one gradient of shape (n,); got {grad.shape}")
    directions = _as_float_array(directions, "directions")
    if directions.ndim != 2 or directions.shape[1] != grad.shape[0]:
        raise ValueError(f"directions must have shape (N, {grad.shape[0]}); got {directions.shape}")
    values = directional_derivative(grad, directions)  # (N,)
    return values, int(np.argmax(values))


def steepest_ascent(grad) -> tuple[np.ndarray, float]:
    r"""The direction $\nabla f/|\nabla f|$ of steepest ascent and the rate $|\nabla f|$ there."""
    grad = _as_float_array(grad, "grad")
    norm = float(np.linalg.norm(grad))
    if norm == 0.0:
        raise ValueError("grad is zero: every direction is stationary, there is no steepest ascent")
    return grad / norm, norm
