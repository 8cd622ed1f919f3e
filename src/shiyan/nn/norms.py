r"""Normalisation layers and where they sit in a residual block.

Symbols: $x \in \mathbb R^{d}$ is one position's feature vector (normalisation acts over the last
``len(normalized_shape)`` axes), $\gamma$ the gain (``weight``), $\beta$ the bias, $\epsilon$ a
small constant.

* **LayerNorm** (Ba et al. 2016):
  $\mathrm{LN}(x) = \gamma \odot \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}} + \beta$ with
  $\mu = \frac1d\sum_i x_i$ and the *biased* variance $\sigma^2 = \frac1d\sum_i (x_i-\mu)^2$.
* **RMSNorm** (Zhang & Sennrich 2019): drop the centring and the bias,
  $\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\frac1d\sum_i x_i^2 + \epsilon}}$. Cheaper, and
  in practice as good; LLaMA, T5 and Gopher use it. Like torch, ``eps=None`` means the machine
  epsilon of the input's dtype.

Residual placement (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"):

* **Post-norm** (the original Transformer): $x_{l+1} = \mathrm{Norm}(x_l + F(x_l))$. Every
  layer's output is normalised, so the identity path is rescaled at each layer; deep stacks need
  learning-rate warm-up to train.
* **Pre-norm** (GPT-2 onward): $x_{l+1} = x_l + F(\mathrm{Norm}(x_l))$. The identity path is
  untouched, gradients reach early layers directly; the stack needs a final norm at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["LayerNorm", "PostNormBlock", "PreNormBlock", "RMSNorm", "layer_norm", "rms_norm"]

Shape = int | Sequence[int]


def _as_shape(normalized_shape: Shape) -> tuple[int, ...]:
    if isinstance(normalized_shape, int) and not isinstance(normalized_shape, bool):
        shape: tuple[int, ...] = (normalized_shape,)
    elif isinstance(normalized_shape, Sequence) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in normalized_shape
    ):
        shape = tuple(normalized_shape)
    else:
        raise TypeError(f"normalized_shape must be an int or a sequence of ints; got {normalized_shape!r}")
    if len(shape) == 0 or any(s < 1 for s in shape):
        raise ValueError(f"normalized_shape must be non-empty with positive sizes; got {shape}")
    return shape


def _check_input(x: object, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape) :]) != shape:
        raise ValueError(f"x of shape {tuple(x.shape)} must end with normalized_shape {shape}")
    return x


def _check_affine(t: Tensor | None, shape: tuple[int, ...], name: str) -> None:
    if t is not None and tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(t.shape)}")


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0 or eps == float("inf"):
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    return float(eps)


def layer_norm(
    x: Tensor,
    normalized_shape: Shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""$\gamma \odot (x-\mu)/\sqrt{\sigma^2+\epsilon} + \beta$ over the trailing ``normalized_shape``."""
    shape = _as_shape(normalized_shape)
    _check_input(x, shape)
    _check_affine(weight, shape, "weight")
    _check_affine(bias, shape, "bias")
    eps = _check_eps(eps)
    dims = tuple(range(-len(shape), 0))
    mu = x.mean(dim=dims, keepdim=True)  # (..., 1, ..., 1)
    centred = x - mu  # (..., *shape)
    var = (centred * centred).mean(dim=dims, keepdim=True)  # biased variance
    y = centred * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(
    x: Tensor,
    normalized_shape: Shape,
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    r"""$\gamma \odot x/\sqrt{\mathrm{mean}(x^2)+\epsilon}$; ``eps=None`` uses ``torch.finfo(x.dtype).eps``."""
    shape = _as_shape(normalized_shape)
    _check_input(x, shape)
    _check_affine(weight, shape, "weight")
    eps = torch.finfo(x.dtype).eps if eps is None else _check_eps(eps)
    dims = tuple(range(-len(shape), 0))
    mean_sq = (x * x).mean(dim=dims, keepdim=True)  # (..., 1, ..., 1)
    y = x * torch.rsqrt(mean_sq + eps)
    if weight is not None:
        y = y * weight
    return y


class LayerNorm(nn.Module):
    """LayerNorm with learnable $\\gamma$ (``weight``, ones) and $\\beta$ (``bias``, zeros).

    Parameter names and shapes match ``torch.nn.LayerNorm``, so state dicts load either way.
    """

    def __init__(
        self,
        normalized_shape: Shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = _check_eps(eps)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape, dtype=dtype)) if bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(nn.Module):
    """RMSNorm with a learnable gain $\\gamma$ (``weight``, ones); names match ``torch.nn.RMSNorm``."""

    def __init__(
        self,
        normalized_shape: Shape,
        eps: float | None = None,
        elementwise_affine: bool = True,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = None if eps is None else _check_eps(eps)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class _ResidualBlock(nn.Module):
    def __init__(self, sublayer: nn.Module, norm: nn.Module, dropout: float = 0.0):
        super().__init__()
        if not isinstance(sublayer, nn.Module):
            raise TypeError(f"sublayer must be a torch.nn.Module; got {type(sublayer).__name__}")
        if not isinstance(norm, nn.Module):
            raise TypeError(f"norm must be a torch.nn.Module; got {type(norm).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.sublayer = sublayer
        self.norm = norm
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _residual(x: Tensor, fx: Tensor) -> Tensor:
        if fx.shape != x.shape:
            raise ValueError(f"sublayer output shape {tuple(fx.shape)} must equal its input shape {tuple(x.shape)}")
        return x + fx


class PreNormBlock(_ResidualBlock):
    r"""$x + \mathrm{Dropout}(F(\mathrm{Norm}(x)))$ -- the identity path is never normalised."""

    def forward(self, x: Tensor) -> Tensor:
        return self._residual(x, self.dropout(self.sublayer(self.norm(x))))


class PostNormBlock(_ResidualBlock):
    r"""$\mathrm{Norm}(x + \mathrm{Dropout}(F(x)))$ -- the original Transformer's placement."""

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self._residual(x, self.dropout(self.sublayer(x))))
