r"""Activation functions, from the perceptron's step to the gated units of modern LLMs.

Each activation is a pure function of a tensor ``x`` and an :class:`torch.nn.Module` wrapping
it, so a model can take either. Every function below is written from its defining equation
with ordinary tensor operations, so autograd derives the gradient; the tests compare values and
gradients with :mod:`torch.nn.functional`.

The family, in historical order (symbols as in the papers):

* **Step** (Rosenblatt 1957, the perceptron): $H(x) = 1$ if $x \ge \theta$ else $0$. Its
  derivative is zero almost everywhere, so it cannot be trained by back-propagation.
* **Sigmoid** $\sigma(x) = 1/(1+e^{-x})$ and **tanh** $= 2\sigma(2x)-1$: smooth, but they
  saturate, $\sigma'(x) = \sigma(x)(1-\sigma(x)) \le 1/4$, so gradients shrink with depth.
* **ReLU** $\max(0, x)$ (Nair & Hinton 2010): gradient 1 for $x>0$, no saturation on that side;
  a unit whose input stays negative never recovers ("dead ReLU").
* **Leaky ReLU** $\max(x, a x)$ and **ELU** $x$ if $x>0$ else $\alpha(e^{x}-1)$ (Clevert et al.
  2016): a non-zero response for $x<0$.
* **GELU** $x\,\Phi(x) = \tfrac{x}{2}\bigl(1+\operatorname{erf}(x/\sqrt2)\bigr)$ (Hendrycks &
  Gimpel 2016) and its tanh approximation
  $\tfrac{x}{2}\bigl(1+\tanh(\sqrt{2/\pi}\,(x+0.044715x^3))\bigr)$.
* **Swish** $x\,\sigma(\beta x)$ (Ramachandran et al. 2017); $\beta=1$ is **SiLU**.
* **GLU family** (Dauphin et al. 2017; Shazeer 2020 "GLU Variants Improve Transformer"): split
  the last axis into halves $a, b$ and return $a \odot \phi(b)$, with $\phi=\sigma$ (GLU),
  GELU (GeGLU) or Swish (SwiGLU). We keep torch's convention: the *second* half is gated.

Feed-forward blocks (the position-wise FFN of a Transformer, injected into the shared model):

* :class:`FeedForward`: $\mathrm{FFN}(x) = W_2\,\phi(W_1 x + b_1) + b_2$.
* :class:`GatedFeedForward`: $\mathrm{FFN}(x) = W_2\bigl(\phi(W_1 x) \odot W_3 x\bigr)$;
  :class:`SwiGLUFeedForward` ($\phi$ = SiLU, as in PaLM and LLaMA) and
  :class:`GeGLUFeedForward` ($\phi$ = GELU). Three matrices instead of two, so at equal
  parameter count the hidden width is $\tfrac{2}{3}$ of the plain one
  (:func:`gated_d_ff_for_equal_params`).

Numerics: sigmoid and tanh are evaluated from $e^{-|x|}$ only (split at 0 with ``torch.where``
on clamped inputs), so neither the value nor the gradient overflows for large $|x|$; ELU
clamps its exponential branch for the same reason. NaN inputs propagate like torch's (these
functions sit on the hot path, so they do not scan their input).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from shiyan.nn.init import linear

__all__ = [
    "ELU",
    "GELU",
    "GLU",
    "FeedForward",
    "GatedFeedForward",
    "GeGLU",
    "GeGLUFeedForward",
    "LeakyReLU",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Step",
    "SwiGLU",
    "SwiGLUFeedForward",
    "Swish",
    "Tanh",
    "Threshold",
    "elu",
    "gated_d_ff_for_equal_params",
    "gelu",
    "geglu",
    "glu",
    "leaky_relu",
    "relu",
    "sigmoid",
    "silu",
    "step",
    "swiglu",
    "swish",
    "tanh",
    "threshold",
]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _check_tensor(x: object, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    return x


def _check_finite_number(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return float(value)


# --------------------------------------------------------------------------------------------
# Elementwise activations
# --------------------------------------------------------------------------------------------


def step(x: Tensor, threshold: float = 0.0) -> Tensor:
    r"""Perceptron step $H(x-\theta)$: 1 where $x \ge \theta$, else 0 (same dtype as ``x``).

    The output is not connected to the autograd graph: its derivative is 0 almost everywhere,
    which is why the perceptron is trained with its own rule, not by back-propagation.
    """
    x = _check_tensor(x)
    theta = _check_finite_number(threshold, "threshold")
    return (x >= theta).to(x.dtype)


def threshold(x: Tensor, threshold: float, value: float) -> Tensor:
    r"""torch's ``Threshold``: $y = x$ where $x > \theta$, else the constant ``value``."""
    x = _check_tensor(x)
    theta = _check_finite_number(threshold, "threshold")
    fill = _check_finite_number(value, "value")
    return torch.where(x > theta, x, torch.full_like(x, fill))


def sigmoid(x: Tensor) -> Tensor:
    r"""$\sigma(x) = 1/(1+e^{-x})$, written so that only $e^{-|x|} \le 1$ is ever computed:

    $\sigma(x) = 1/(1+e^{-x})$ for $x \ge 0$ and $e^{x}/(1+e^{x})$ for $x<0$.
    """
    x = _check_tensor(x)
    pos = x.clamp(min=0)  # both branches see only non-positive exponents
    neg = x.clamp(max=0)
    e_pos = torch.exp(-pos)
    e_neg = torch.exp(neg)
    return torch.where(x >= 0, 1.0 / (1.0 + e_pos), e_neg / (1.0 + e_neg))


def tanh(x: Tensor) -> Tensor:
    r"""$\tanh x = (e^{2x}-1)/(e^{2x}+1)$, evaluated with $\operatorname{expm1}$ of a non-positive
    argument: $\tanh x = -u/(2+u)$ with $u = e^{-2x}-1$ for $x \ge 0$, and the odd mirror for
    $x<0$. ``expm1`` keeps the relative accuracy for small $|x|$.
    """
    x = _check_tensor(x)
    u_pos = torch.expm1(-2.0 * x.clamp(min=0))
    u_neg = torch.expm1(2.0 * x.clamp(max=0))
    return torch.where(x >= 0, -u_pos / (2.0 + u_pos), u_neg / (2.0 + u_neg))


def relu(x: Tensor) -> Tensor:
    r"""$\mathrm{ReLU}(x) = \max(0, x)$; the gradient at exactly 0 is taken as 0 (as torch does)."""
    x = _check_tensor(x)
    return torch.where(x > 0, x, torch.zeros_like(x))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""$x$ for $x>0$, else $a x$ with $a$ = ``negative_slope``."""
    x = _check_tensor(x)
    a = _check_finite_number(negative_slope, "negative_slope")
    return torch.where(x > 0, x, a * x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    r"""$x$ for $x>0$, else $\alpha(e^{x}-1)$. The exponential branch sees $\min(x, 0)$ only, so
    a large positive $x$ cannot produce $\infty \cdot 0 = \mathrm{NaN}$ in the backward pass."""
    x = _check_tensor(x)
    a = _check_finite_number(alpha, "alpha")
    return torch.where(x > 0, x, a * torch.expm1(x.clamp(max=0)))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    r"""GELU $x\,\Phi(x)$.

    ``approximate="none"``: $\tfrac{x}{2}\bigl(1+\operatorname{erf}(x/\sqrt{2})\bigr)$ (exact);
    ``approximate="tanh"``: $\tfrac{x}{2}\bigl(1+\tanh(\sqrt{2/\pi}(x+0.044715x^3))\bigr)$.
    """
    x = _check_tensor(x)
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / _SQRT_2))
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x)
        return 0.5 * x * (1.0 + tanh(inner))
    raise ValueError(f"approximate must be 'none' or 'tanh'; got {approximate!r}")


def swish(x: Tensor, beta: float = 1.0) -> Tensor:
    r"""Swish $x\,\sigma(\beta x)$; $\beta=1$ gives SiLU, $\beta\to\infty$ approaches ReLU."""
    x = _check_tensor(x)
    b = _check_finite_number(beta, "beta")
    return x * sigmoid(b * x)


def silu(x: Tensor) -> Tensor:
    r"""SiLU $x\,\sigma(x)$ (Swish with $\beta = 1$)."""
    return swish(x, 1.0)


# --------------------------------------------------------------------------------------------
# Gated linear units on a split axis
# --------------------------------------------------------------------------------------------


def _halves(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    x = _check_tensor(x)
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension to split")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim={dim} is out of range for x with {x.dim()} dimensions")
    size = x.shape[dim]
    if size % 2 != 0:
        raise ValueError(f"x.shape[{dim}] = {size} must be even to split into the two GLU halves")
    a, b = x.split(size // 2, dim=dim)  # each (..., size/2, ...)
    return a, b


def glu(x: Tensor, dim: int = -1) -> Tensor:
    r"""GLU: with $x = [a; b]$ split along ``dim``, $a \odot \sigma(b)$."""
    a, b = _halves(x, dim)
    return a * sigmoid(b)


def geglu(x: Tensor, dim: int = -1, approximate: str = "none") -> Tensor:
    r"""GeGLU: $a \odot \mathrm{GELU}(b)$ for $x = [a; b]$."""
    a, b = _halves(x, dim)
    return a * gelu(b, approximate=approximate)


def swiglu(x: Tensor, dim: int = -1, beta: float = 1.0) -> Tensor:
    r"""SwiGLU: $a \odot \mathrm{Swish}_\beta(b)$ for $x = [a; b]$."""
    a, b = _halves(x, dim)
    return a * swish(b, beta)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


class Step(nn.Module):
    """Perceptron step $H(x - \\theta)$ (no gradient); see :func:`step`."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = _check_finite_number(threshold, "threshold")

    def forward(self, x: Tensor) -> Tensor:
        return step(x, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


class Threshold(nn.Module):
    """$x$ where $x > \\theta$ else ``value``; see :func:`threshold`."""

    def __init__(self, threshold: float, value: float):
        super().__init__()
        self.threshold = _check_finite_number(threshold, "threshold")
        self.value = _check_finite_number(value, "value")

    def forward(self, x: Tensor) -> Tensor:
        return threshold(x, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}"


class Sigmoid(nn.Module):
    """$\\sigma(x)$; see :func:`sigmoid`."""

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class Tanh(nn.Module):
    """$\\tanh(x)$; see :func:`tanh`."""

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class ReLU(nn.Module):
    """$\\max(0, x)$; see :func:`relu`."""

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)


class LeakyReLU(nn.Module):
    """$\\max(x, a x)$; see :func:`leaky_relu`."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = _check_finite_number(negative_slope, "negative_slope")

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(nn.Module):
    """$x$ or $\\alpha(e^x - 1)$; see :func:`elu`."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _check_finite_number(alpha, "alpha")

    def forward(self, x: Tensor) -> Tensor:
        return elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(nn.Module):
    """$x\\,\\Phi(x)$, exact (``"none"``) or tanh-approximated; see :func:`gelu`."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh'; got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Swish(nn.Module):
    """$x\\,\\sigma(\\beta x)$ with a fixed $\\beta$; see :func:`swish`."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = _check_finite_number(beta, "beta")

    def forward(self, x: Tensor) -> Tensor:
        return swish(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class SiLU(Swish):
    """$x\\,\\sigma(x)$; see :func:`silu`."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def extra_repr(self) -> str:
        return ""


class GLU(nn.Module):
    """$a \\odot \\sigma(b)$ on the halves of ``dim``; see :func:`glu`."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GeGLU(GLU):
    """$a \\odot \\mathrm{GELU}(b)$ on the halves of ``dim``; see :func:`geglu`."""

    def forward(self, x: Tensor) -> Tensor:
        return geglu(x, self.dim)


class SwiGLU(GLU):
    """$a \\odot \\mathrm{SiLU}(b)$ on the halves of ``dim``; see :func:`swiglu`."""

    def forward(self, x: Tensor) -> Tensor:
        return swiglu(x, self.dim)


# --------------------------------------------------------------------------------------------
# Position-wise feed-forward blocks
# --------------------------------------------------------------------------------------------

Activation = Callable[[Tensor], Tensor]


def _check_dim(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return value


def _check_last_dim(x: Tensor, d_model: int) -> None:
    _check_tensor(x)
    if x.dim() == 0 or x.shape[-1] != d_model:
        raise ValueError(f"x must have last dimension d_model={d_model}; got shape {tuple(x.shape)}")


def gated_d_ff_for_equal_params(d_ff: int, multiple_of: int = 1) -> int:
    r"""Hidden width $h$ of a gated FFN with the parameter count of a plain FFN of width ``d_ff``.

    A plain FFN has $2\,d\,d_{ff}$ weights, a gated one $3\,d\,h$, so $h = \tfrac{2}{3} d_{ff}$
    (LLaMA's $\tfrac{2}{3}\cdot 4d$), rounded to the nearest multiple of ``multiple_of``.
    """
    _check_dim(d_ff, "d_ff")
    _check_dim(multiple_of, "multiple_of")
    h = 2.0 * d_ff / 3.0
    return max(multiple_of, multiple_of * round(h / multiple_of))


class FeedForward(nn.Module):
    r"""Plain position-wise FFN: $W_2\,\phi(W_1 x + b_1) + b_2$.

    Args:
        d_model: width $d$ of the input and output.
        d_ff: hidden width $d_{ff}$.
        activation: $\phi$, any ``Tensor -> Tensor`` callable or module (default GELU).
        bias: whether $W_1, W_2$ carry biases.
        dropout: dropout probability on the hidden activations (0 disables it).
        generator: draws the initial weights (torch's ``nn.Linear`` scheme,
            $\mathcal U(\pm 1/\sqrt{\text{fan\_in}})$); without one, torch's global generator is used.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: Activation | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.d_model = _check_dim(d_model, "d_model")
        self.d_ff = _check_dim(d_ff, "d_ff")
        if activation is not None and not callable(activation):
            raise TypeError(f"activation must be callable; got {type(activation).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.activation = activation if activation is not None else GELU()
        self.w1 = linear(d_model, d_ff, bias=bias, generator=generator)
        self.w2 = linear(d_ff, d_model, bias=bias, generator=generator)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        _check_last_dim(x, self.d_model)
        h = self.activation(self.w1(x))  # (..., d_ff)
        return self.w2(self.dropout(h))  # (..., d_model)


class GatedFeedForward(nn.Module):
    r"""Gated FFN (Shazeer 2020): $W_2\bigl(\phi(W_1 x) \odot W_3 x\bigr)$.

    $W_1, W_3: d \to h$ and $W_2: h \to d$; $\phi(W_1 x)$ is the gate and $W_3 x$ the value.
    With ``bias=False`` (the LLaMA choice) the block has $3\,d\,h$ parameters.

    Args:
        d_model: width $d$ of the input and output.
        d_ff: hidden width $h$ (use :func:`gated_d_ff_for_equal_params` to match a plain FFN).
        activation: $\phi$ (default SiLU, which makes this SwiGLU).
        bias: whether the three projections carry biases.
        dropout: dropout probability on the gated hidden vector.
        generator: draws the initial weights (as in :class:`FeedForward`).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: Activation | None = None,
        bias: bool = False,
        dropout: float = 0.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.d_model = _check_dim(d_model, "d_model")
        self.d_ff = _check_dim(d_ff, "d_ff")
        if activation is not None and not callable(activation):
            raise TypeError(f"activation must be callable; got {type(activation).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.activation = activation if activation is not None else SiLU()
        self.w1 = linear(d_model, d_ff, bias=bias, generator=generator)  # gate projection
        self.w3 = linear(d_model, d_ff, bias=bias, generator=generator)  # value projection
        self.w2 = linear(d_ff, d_model, bias=bias, generator=generator)  # output projection
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        _check_last_dim(x, self.d_model)
        gate = self.activation(self.w1(x))  # (..., d_ff)
        value = self.w3(x)  # (..., d_ff)
        return self.w2(self.dropout(gate * value))  # (..., d_model)


class SwiGLUFeedForward(GatedFeedForward):
    r"""LLaMA-style SwiGLU FFN: $W_2\bigl(\mathrm{SiLU}(W_1 x) \odot W_3 x\bigr)$."""

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        bias: bool = False,
        dropout: float = 0.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__(d_model, d_ff, activation=SiLU(), bias=bias, dropout=dropout, generator=generator)


class GeGLUFeedForward(GatedFeedForward):
    r"""GeGLU FFN: $W_2\bigl(\mathrm{GELU}(W_1 x) \odot W_3 x\bigr)$."""

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        bias: bool = False,
        dropout: float = 0.0,
        approximate: str = "none",
        *,
        generator: torch.Generator | None = None,
    ):
        act = GELU(approximate)
        super().__init__(d_model, d_ff, activation=act, bias=bias, dropout=dropout, generator=generator)
