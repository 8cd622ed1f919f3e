r"""Weight initialisation: keep the variance of signals constant through depth.

Symbols. A weight tensor $W$ of shape ``(out, in, *kernel)`` maps $n_{in}$ inputs to each output,
with $\text{fan\_in} = n_{in} = \text{in}\cdot\prod\text{kernel}$ and
$\text{fan\_out} = \text{out}\cdot\prod\text{kernel}$ (:func:`fan_in_and_fan_out`).

For $y_j = \sum_{i=1}^{n_{in}} W_{ji} x_i$ with independent zero-mean $W$ and $x$,
$\operatorname{Var}[y] = n_{in}\operatorname{Var}[W]\operatorname{E}[x^2]$. Each scheme picks
$\operatorname{Var}[W]$ so that this ratio is one for its activation:

* **LeCun** (1998): $\operatorname{Var}[W] = 1/\text{fan\_in}$ (linear or SELU-like units).
* **Xavier/Glorot** (2010): average of the forward and backward conditions,
  $\operatorname{Var}[W] = g^2 \cdot 2/(\text{fan\_in}+\text{fan\_out})$; uniform bound
  $a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}$ since $\operatorname{Var}[\mathcal U(-a,a)] = a^2/3$.
* **He/Kaiming** (2015): ReLU halves $\operatorname{E}[x^2]$, so
  $\operatorname{Var}[W] = g^2/\text{fan}$ with gain $g = \sqrt{2/(1+a^2)}$ for a leaky ReLU
  of slope $a$ (:func:`gain`); ``mode`` picks fan_in (forward) or fan_out (backward).
* **Truncated normal**: $\mathcal N(\mu, \sigma^2)$ conditioned on $[a, b]$, drawn by inverting
  the CDF: $u \sim \mathcal U(\Phi(\alpha), \Phi(\beta))$, $x = \mu + \sigma\,\Phi^{-1}(u)$ with
  $\alpha = (a-\mu)/\sigma$, $\beta = (b-\mu)/\sigma$. Its standard deviation is *smaller*
  than $\sigma$ (see ``scipy.stats.truncnorm``).
* **T5 / Mesh-TensorFlow** (Raffel et al. 2020): see :func:`t5_init_stds`.

Every sampler takes an explicit ``torch.Generator``: nothing here touches global random state.
The uniform and normal samplers draw with ``Tensor.uniform_`` / ``Tensor.normal_`` exactly as
``torch.nn.init`` does, so with the same generator state the two produce the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "T5InitStds",
    "fan_in_and_fan_out",
    "gain",
    "kaiming_normal_",
    "kaiming_std",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "linear",
    "linear_default_",
    "normal_",
    "t5_init_stds",
    "trunc_normal_",
    "truncated_normal_std",
    "uniform_",
    "xavier_normal_",
    "xavier_std",
    "xavier_uniform_",
]

Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
FanMode = Literal["fan_in", "fan_out"]


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_tensor(tensor: object, name: str = "tensor") -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {tensor.dtype}")
    return tensor


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    return generator


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number; got {value}")
    return float(value)


def _check_finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return float(value)


# --------------------------------------------------------------------------------------------
# Fans, gains and the resulting standard deviations
# --------------------------------------------------------------------------------------------


def fan_in_and_fan_out(tensor_or_shape: Tensor | Sequence[int]) -> tuple[int, int]:
    r"""$(\text{fan\_in}, \text{fan\_out}) = (\text{in}\cdot k, \text{out}\cdot k)$ with
    $k = \prod$ of the kernel dimensions, for a weight of shape ``(out, in, *kernel)``."""
    if isinstance(tensor_or_shape, Tensor):
        shape = tuple(tensor_or_shape.shape)
    elif isinstance(tensor_or_shape, Sequence) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in tensor_or_shape
    ):
        shape = tuple(tensor_or_shape)
    else:
        raise TypeError("tensor_or_shape must be a tensor or a sequence of ints")
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 dimensions (out, in, ...); got shape {shape}")
    receptive = math.prod(shape[2:])  # 1 for a Linear weight
    return shape[1] * receptive, shape[0] * receptive


def gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    r"""Gain $g$ that undoes the activation's change of the second moment.

    linear and convolutions: 1; sigmoid: 1; tanh: 5/3; ReLU: $\sqrt2$;
    leaky ReLU of slope $a$ (default 0.01): $\sqrt{2/(1+a^2)}$; SELU: 3/4.
    """
    if nonlinearity in (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    ):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _check_finite(param, "param")
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"nonlinearity {nonlinearity!r} is not supported")


def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    r"""$g\sqrt{2/(\text{fan\_in}+\text{fan\_out})}$."""
    if fan_in + fan_out <= 0:
        raise ValueError(f"fan_in + fan_out must be positive; got {fan_in} + {fan_out}")
    return _check_positive(gain, "gain") * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_std(fan: int, gain: float = math.sqrt(2.0)) -> float:
    r"""$g/\sqrt{\text{fan}}$."""
    if fan <= 0:
        raise ValueError(f"fan must be positive; got {fan}")
    return _check_positive(gain, "gain") / math.sqrt(fan)


def _std_normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _std_normal_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) if math.isfinite(z) else 0.0


def truncated_normal_std(std: float, alpha: float, beta: float) -> float:
    r"""Standard deviation of $\mathcal N(\mu, \sigma^2)$ restricted to $[\mu+\alpha\sigma, \mu+\beta\sigma]$.

    With $Z = \Phi(\beta)-\Phi(\alpha)$:
    $\operatorname{Var} = \sigma^2\bigl[1 + \frac{\alpha\varphi(\alpha)-\beta\varphi(\beta)}{Z}
    - \bigl(\frac{\varphi(\alpha)-\varphi(\beta)}{Z}\bigr)^2\bigr]$.
    """
    sigma = _check_positive(std, "std")
    if not alpha < beta:
        raise ValueError(f"alpha must be < beta; got alpha={alpha}, beta={beta}")
    z = _std_normal_cdf(beta) - _std_normal_cdf(alpha)
    pa, pb = _std_normal_pdf(alpha), _std_normal_pdf(beta)
    a_pa = alpha * pa if math.isfinite(alpha) else 0.0
    b_pb = beta * pb if math.isfinite(beta) else 0.0
    var = 1.0 + (a_pa - b_pb) / z - ((pa - pb) / z) ** 2
    return sigma * math.sqrt(var)


# --------------------------------------------------------------------------------------------
# Samplers (in place, like torch.nn.init, with an explicit generator)
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, *, generator: torch.Generator) -> Tensor:
    r"""Fill ``tensor`` with $\mathcal U(a, b)$."""
    _check_tensor(tensor)
    _check_generator(generator)
    lo, hi = _check_finite(a, "a"), _check_finite(b, "b")
    if not lo <= hi:
        raise ValueError(f"a must be <= b; got a={a}, b={b}")
    return tensor.uniform_(lo, hi, generator=generator)


@torch.no_grad()
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: torch.Generator) -> Tensor:
    r"""Fill ``tensor`` with $\mathcal N(\mu, \sigma^2)$."""
    _check_tensor(tensor)
    _check_generator(generator)
    mu = _check_finite(mean, "mean")
    sigma = _check_positive(std, "std")
    return tensor.normal_(mu, sigma, generator=generator)


@torch.no_grad()
def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    generator: torch.Generator,
) -> Tensor:
    r"""Fill ``tensor`` with $\mathcal N(\mu, \sigma^2)$ truncated to the absolute interval $[a, b]$.

    Inverse-CDF sampling in float64: $u \sim \mathcal U(\Phi(\alpha), \Phi(\beta))$ and
    $x = \mu + \sigma\sqrt2\,\operatorname{erfinv}(2u-1)$. When the interval lies in the upper
    tail we sample its mirror image in the lower tail and negate, because $\Phi$ near 1 loses
    the digits that $\Phi$ near 0 keeps. ``std`` is the parent $\sigma$, not the result's.
    """
    _check_tensor(tensor)
    _check_generator(generator)
    mu = _check_finite(mean, "mean")
    sigma = _check_positive(std, "std")
    lo, hi = float(a), float(b)
    if math.isnan(lo) or math.isnan(hi) or not lo < hi:
        raise ValueError(f"a must be < b; got a={a}, b={b}")
    alpha, beta = (lo - mu) / sigma, (hi - mu) / sigma
    flip = alpha > 0  # upper tail: work on the mirror image [-beta, -alpha]
    if flip:
        alpha, beta = -beta, -alpha
    c_lo, c_hi = _std_normal_cdf(alpha), _std_normal_cdf(beta)
    if not c_hi > c_lo:
        raise ValueError(f"[a, b] = [{a}, {b}] carries no probability under N({mean}, {std}^2) in float64")
    u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
    u.uniform_(c_lo, c_hi, generator=generator)  # u ~ U(Phi(alpha), Phi(beta))
    z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)  # z = Phi^{-1}(u)
    if flip:
        z = -z
    x = (mu + sigma * z).clamp_(lo, hi)  # clamp only guards the last ulp
    return tensor.copy_(x)


def lecun_normal_(tensor: Tensor, *, generator: torch.Generator) -> Tensor:
    r"""$\mathcal N(0, 1/\text{fan\_in})$."""
    fan_in, _ = fan_in_and_fan_out(_check_tensor(tensor))
    return normal_(tensor, 0.0, kaiming_std(fan_in, 1.0), generator=generator)


def lecun_uniform_(tensor: Tensor, *, generator: torch.Generator) -> Tensor:
    r"""$\mathcal U(-a, a)$ with $a = \sqrt{3/\text{fan\_in}}$ (variance $1/\text{fan\_in}$)."""
    fan_in, _ = fan_in_and_fan_out(_check_tensor(tensor))
    bound = math.sqrt(3.0) * kaiming_std(fan_in, 1.0)
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator) -> Tensor:
    r"""$\mathcal U(-a, a)$, $a = g\sqrt{6/(\text{fan\_in}+\text{fan\_out})}$."""
    fan_in, fan_out = fan_in_and_fan_out(_check_tensor(tensor))
    bound = math.sqrt(3.0) * xavier_std(fan_in, fan_out, gain)
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator) -> Tensor:
    r"""$\mathcal N(0, g^2\cdot 2/(\text{fan\_in}+\text{fan\_out}))$."""
    fan_in, fan_out = fan_in_and_fan_out(_check_tensor(tensor))
    return normal_(tensor, 0.0, xavier_std(fan_in, fan_out, gain), generator=generator)


def _kaiming_std_for(tensor: Tensor, a: float, mode: FanMode, nonlinearity: Nonlinearity) -> float:
    fan_in, fan_out = fan_in_and_fan_out(_check_tensor(tensor))
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return kaiming_std(fan, gain(nonlinearity, a))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    generator: torch.Generator,
) -> Tensor:
    r"""$\mathcal U(-\sqrt3\,\sigma, \sqrt3\,\sigma)$ with $\sigma = g/\sqrt{\text{fan}}$; ``a`` is the
    leaky-ReLU slope used by :func:`gain` (0 gives the ReLU gain $\sqrt2$)."""
    bound = math.sqrt(3.0) * _kaiming_std_for(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    generator: torch.Generator,
) -> Tensor:
    r"""$\mathcal N(0, g^2/\text{fan})$."""
    std = _kaiming_std_for(tensor, a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, generator=generator)


# --------------------------------------------------------------------------------------------
# Linear layers without global random state
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def linear_default_(layer: nn.Linear, *, generator: torch.Generator) -> nn.Linear:
    r"""torch's default ``nn.Linear`` initialisation, drawn from ``generator``:
    $W, b \sim \mathcal U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})$ (torch writes the
    weight part as Kaiming-uniform with $a=\sqrt5$, which gives the same bound)."""
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"layer must be a torch.nn.Linear; got {type(layer).__name__}")
    kaiming_uniform_(layer.weight, a=math.sqrt(5.0), generator=generator)
    if layer.bias is not None:
        fan_in, _ = fan_in_and_fan_out(layer.weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def linear(
    in_features: int,
    out_features: int,
    bias: bool = True,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Linear:
    """An ``nn.Linear`` whose weights come from ``generator`` (global state is not touched).

    Without a generator it is exactly ``nn.Linear(...)`` (torch's global generator).
    """
    if generator is None:
        return nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
    layer = nn.utils.skip_init(nn.Linear, in_features, out_features, bias=bias, dtype=dtype)
    return linear_default_(layer, generator=generator)


# --------------------------------------------------------------------------------------------
# T5 / Mesh-TensorFlow
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class T5InitStds:
    """Standard deviations of the normal initialisers of a T5 layer (see :func:`t5_init_stds`)."""

    q: float
    """Query projection $W_Q$ ($d \\to H d_{kv}$): $(d\\,d_{kv})^{-1/2}$."""
    k: float
    """Key projection $W_K$: $d^{-1/2}$."""
    v: float
    """Value projection $W_V$: $d^{-1/2}$."""
    o: float
    """Output projection $W_O$ ($H d_{kv} \\to d$): $(H d_{kv})^{-1/2}$."""
    wi: float
    """First FFN matrix ($d \\to d_{ff}$): $d^{-1/2}$."""
    wo: float
    """Second FFN matrix ($d_{ff} \\to d$): $d_{ff}^{-1/2}$."""
    embedding: float
    """Token embedding: 1."""
    lm_head: float
    """Untied output head ($d \\to$ vocabulary): $d^{-1/2}$."""


def t5_init_stds(d_model: int, d_kv: int, n_heads: int, d_ff: int, factor: float = 1.0) -> T5InitStds:
    r"""Normal-initialiser standard deviations of T5 (Mesh-TensorFlow), times ``factor``.

    **Why this replaces $1/\sqrt{d}$ in attention.** Standard attention computes
    $\operatorname{softmax}(q^\top k/\sqrt{d_{kv}})$. T5 computes $\operatorname{softmax}(q^\top k)$
    with no scale and instead draws $W_Q$ with standard deviation $(d\,d_{kv})^{-1/2}$ and
    $W_K$ with $d^{-1/2}$. For an input $x$ with unit-variance coordinates (it comes out of an
    RMSNorm) the projections have $\operatorname{Var}[q_i] = d\cdot\frac{1}{d\,d_{kv}} = 1/d_{kv}$
    and $\operatorname{Var}[k_i] = d\cdot\frac1d = 1$, so the logit
    $q^\top k = \sum_{i=1}^{d_{kv}} q_i k_i$ has variance $d_{kv}\cdot\frac{1}{d_{kv}}\cdot 1 = 1$ --
    the same unit variance that $1/\sqrt{d_{kv}}$ gives with a $d^{-1/2}$ initialisation. The
    factor $1/\sqrt{d_{kv}}$ is folded into $W_Q$ at step 0. Without either, the logits have
    variance $d_{kv}$, the softmax saturates to one-hot and its gradient vanishes. (After step 0
    the two are not identical: how far $W_Q$ moves depends on the optimiser; Mesh-TF trained with
    Adafactor, whose updates are relative to each parameter's scale.)

    The other matrices follow the fan-in rule $\sigma = n_{in}^{-1/2}$: $W_V$, $W_K$ and the
    first FFN matrix read $d$ inputs, $W_O$ reads $H d_{kv}$, the second FFN matrix $d_{ff}$.
    The embedding is $\mathcal N(0, 1)$ (the model re-normalises it).
    """
    for name, value in (("d_model", d_model), ("d_kv", d_kv), ("n_heads", n_heads), ("d_ff", d_ff)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    f = _check_positive(factor, "factor")
    return T5InitStds(
        q=f * (d_model * d_kv) ** -0.5,
        k=f * d_model**-0.5,
        v=f * d_model**-0.5,
        o=f * (n_heads * d_kv) ** -0.5,
        wi=f * d_model**-0.5,
        wo=f * d_ff**-0.5,
        embedding=f * 1.0,
        lm_head=f * d_model**-0.5,
    )
