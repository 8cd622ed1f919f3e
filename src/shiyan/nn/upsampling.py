r"""Upsampling written from the equations: nearest, bilinear, PixelShuffle/Unshuffle, transposed
convolution (zero insertion + ordinary convolution) and max-unpooling.

**Source coordinates.** Resizing an axis of length $n_{in}$ to $n_{out}$ maps each output index
$i$ to a real source coordinate $x(i)$ and reads the input there. With the scale
$\sigma = 1/\text{scale\_factor}$ when a scale factor is given (the output length is
$\lfloor n_{in} \cdot \text{scale\_factor} \rfloor$) and $\sigma = n_{in}/n_{out}$ otherwise:

* nearest: $x(i) = \lfloor i\,\sigma \rfloor$ (torch's legacy rule; "nearest-exact" uses
  $\lfloor (i + \tfrac12)\sigma \rfloor$), clamped to $n_{in} - 1$;
* bilinear, ``align_corners=False`` (pixels are unit squares, their centres at $i + \tfrac12$):
  $x(i) = \max\!\big(0, (i + \tfrac12)\sigma - \tfrac12\big)$;
* bilinear, ``align_corners=True`` (the corner pixel centres are aligned):
  $x(i) = i\,\frac{n_{in} - 1}{n_{out} - 1}$ (and $0$ when $n_{out} = 1$).

Bilinear interpolation then takes $i_0 = \lfloor x \rfloor$, $i_1 = \min(i_0 + 1, n_{in}-1)$,
$\lambda = x - i_0$ on each axis and
$y = (1-\lambda_h)(1-\lambda_w) X_{00} + (1-\lambda_h)\lambda_w X_{01} + \lambda_h(1-\lambda_w) X_{10}
+ \lambda_h \lambda_w X_{11}$.

**PixelShuffle** (Shi et al., 2016) moves an $r \times r$ block of channels into space:
$Y[n, c, h r + i, w r + j] = X[n, c r^2 + i r + j, h, w]$; PixelUnshuffle is its inverse.

**Transposed convolution** is the gradient of a convolution with respect to its input. Written
forward it is an ordinary convolution: insert $s - 1$ zeros between input pixels, pad each side
with $d(k-1) - p$ zeros (plus ``output_padding`` at the end), and convolve (stride 1, dilation
$d$) with the kernel flipped in space and with its input/output channels swapped. The output length
is $(n - 1)s - 2p + d(k-1) + \text{output\_padding} + 1$.

**Max-unpooling** puts each pooled value back at the flat position its max came from
(``indices`` from ``max_pool2d(..., return_indices=True)``) and zeros elsewhere.

Three details follow torch's CPU kernels so that the results agree exactly (checked on thousands of
random shapes and scales): nearest indices are computed in single precision (a tie such as
$i\sigma = 3$ under a non-integer scale picks the same pixel); bilinear copies an axis whose length
does not change even when a scale factor other than one was passed (length 2 with
``scale_factor=1.25`` stays as it is); and torch's 2-D nearest kernel (not its 1-D and 3-D ones) does
the same for unchanged axes and uses $\lfloor i/2 \rfloor$ for an axis whose length exactly doubles.
(torch 2.13's CPU *backward* for 1-D and 3-D nearest does take those two shortcuts, so for such
shapes with a non-trivial scale factor torch's gradient is not the gradient of its own forward and
fails ``gradcheck``; the gradient here is autograd's through the same index map, so it is.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PixelShuffle",
    "PixelUnshuffle",
    "Upsample",
    "UpsamplingBilinear2d",
    "UpsamplingNearest2d",
    "bilinear_source_index",
    "conv_transpose2d",
    "interpolate",
    "max_unpool2d",
    "nearest_source_index",
    "pixel_shuffle",
    "pixel_unshuffle",
    "upsample_bilinear2d",
    "upsample_nearest",
]


def _check_tensor(x, name: str, min_dim: int, max_dim: int | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dim() < min_dim or (max_dim is not None and x.dim() > max_dim):
        want = f"{min_dim}" if max_dim == min_dim else f"{min_dim}..{max_dim or 'any'}"
        raise ValueError(f"{name} must have {want} dimensions; got shape {tuple(x.shape)}")


def _pair(value, name: str, low: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in pair):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them; got {value!r}")
    return pair  # type: ignore[return-value]


def _output_sizes(in_sizes: tuple[int, ...], size, scale_factor) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """Output lengths and the per-axis scale factors (None when ``size`` was given)."""
    n = len(in_sizes)
    if (size is None) == (scale_factor is None):
        raise ValueError("exactly one of size and scale_factor must be given")
    if size is not None:
        sizes = tuple(size) if isinstance(size, Sequence) else (size,) * n
        if len(sizes) != n or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(f"size must be a positive int or {n} of them; got {size!r}")
        return sizes, (None,) * n
    scales = tuple(scale_factor) if isinstance(scale_factor, Sequence) else (scale_factor,) * n
    if len(scales) != n or not all(isinstance(s, int | float) and math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scale_factor must be a positive number or {n} of them; got {scale_factor!r}")
    sizes = tuple(math.floor(m * float(s)) for m, s in zip(in_sizes, scales))
    if any(s < 1 for s in sizes):
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output for input size {in_sizes}")
    return sizes, tuple(float(s) for s in scales)


def nearest_source_index(
    n_in: int, n_out: int, scale_factor: float | None = None, exact: bool = False, shortcuts: bool = False
) -> torch.Tensor:
    r"""Source index $\min(\lfloor i\sigma \rfloor, n_{in}-1)$ (or $\lfloor (i+\frac12)\sigma \rfloor$ when
    ``exact``) of every output index $i$, with $\sigma$ from the module docstring, in float32.
    ``shortcuts`` copies an axis whose length is unchanged and uses $\lfloor i/2 \rfloor$ for an exact
    doubling (what torch's 2-D nearest kernel does)."""
    if shortcuts and not exact and n_out == n_in:
        return torch.arange(n_out)
    if shortcuts and not exact and n_out == 2 * n_in:
        return torch.arange(n_out) // 2
    sigma = torch.tensor(1.0 / scale_factor if scale_factor else n_in / n_out, dtype=torch.float32)
    i = torch.arange(n_out, dtype=torch.float32)
    x = (i + 0.5) * sigma if exact else i * sigma
    return torch.floor(x).long().clamp(max=n_in - 1)


def upsample_nearest(x: torch.Tensor, size=None, scale_factor=None, exact: bool = False) -> torch.Tensor:
    """Nearest-neighbour resize of the trailing spatial axes of ``x`` (N, C, *spatial), 1 to 3 axes,
    equal to ``F.interpolate(x, size, scale_factor, mode="nearest")`` (``"nearest-exact"`` when
    ``exact``)."""
    _check_tensor(x, "x", 3, 5)
    in_sizes = tuple(x.shape[2:])
    out_sizes, scales = _output_sizes(in_sizes, size, scale_factor)
    y = x
    for axis, (n_in, n_out, sf) in enumerate(zip(in_sizes, out_sizes, scales)):
        idx = nearest_source_index(n_in, n_out, sf, exact, shortcuts=len(in_sizes) == 2).to(x.device)
        y = y.index_select(2 + axis, idx)  # copies rows: backward sums gradients into the sources
    return y


def bilinear_source_index(
    n_in: int, n_out: int, align_corners: bool, scale_factor: float | None = None, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""$(i_0, i_1, \lambda)$ for every output index: the two neighbours and the weight of $i_1$."""
    i = torch.arange(n_out, dtype=dtype)
    if n_out == n_in:  # torch copies an axis that keeps its length, whatever the scale factor
        return torch.arange(n_out), torch.arange(n_out), torch.zeros(n_out, dtype=dtype)
    if align_corners:
        sigma = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        x = i * sigma
    else:
        sigma = 1.0 / scale_factor if scale_factor else n_in / n_out
        x = ((i + 0.5) * sigma - 0.5).clamp(min=0.0)
    i0 = torch.floor(x).long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    lam = x - i0.to(dtype)
    return i0, i1, lam


def upsample_bilinear2d(x: torch.Tensor, size=None, scale_factor=None, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of ``x`` (N, C, H, W), equal to
    ``F.interpolate(x, size, scale_factor, mode="bilinear", align_corners=align_corners)``."""
    _check_tensor(x, "x", 4, 4)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be a bool; got {align_corners!r}")
    (h_in, w_in) = tuple(x.shape[2:])
    (h_out, w_out), (sh, sw) = _output_sizes((h_in, w_in), size, scale_factor)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    h0, h1, lh = (t.to(x.device) for t in bilinear_source_index(h_in, h_out, align_corners, sh, dtype))
    w0, w1, lw = (t.to(x.device) for t in bilinear_source_index(w_in, w_out, align_corners, sw, dtype))
    lh = lh.view(-1, 1)  # (H_out, 1)
    rows = x.index_select(2, h0) * (1 - lh) + x.index_select(2, h1) * lh  # (N, C, H_out, W)
    return rows.index_select(3, w0) * (1 - lw) + rows.index_select(3, w1) * lw  # (N, C, H_out, W_out)


def interpolate(x: torch.Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    """``F.interpolate`` for the modes written here: 'nearest', 'nearest-exact' and 'bilinear'."""
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners only applies to mode='bilinear'")
        return upsample_nearest(x, size, scale_factor, exact=mode == "nearest-exact")
    if mode == "bilinear":
        return upsample_bilinear2d(x, size, scale_factor, bool(align_corners))
    raise ValueError(f"mode must be 'nearest', 'nearest-exact' or 'bilinear'; got {mode!r}")


def pixel_shuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """$Y[n, c, hr+i, wr+j] = X[n, cr^2 + ir + j, h, w]$: (N, C r², H, W) -> (N, C, H r, W r)."""
    _check_tensor(x, "x", 3)
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"upscale factor r must be a positive int; got {r!r}")
    *lead, c_in, h, w = x.shape
    if c_in % (r * r):
        raise ValueError(f"x has {c_in} channels, not divisible by r^2 = {r * r}")
    c = c_in // (r * r)
    y = x.reshape(-1, c, r, r, h, w)  # (B, C, i, j, H, W)
    y = y.permute(0, 1, 4, 2, 5, 3)  # (B, C, H, i, W, j)
    return y.reshape(*lead, c, h * r, w * r)  # row h r + i, column w r + j


def pixel_unshuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """The inverse of :func:`pixel_shuffle`: (N, C, H r, W r) -> (N, C r², H, W)."""
    _check_tensor(x, "x", 3)
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"downscale factor r must be a positive int; got {r!r}")
    *lead, c, hr, wr = x.shape
    if hr % r or wr % r:
        raise ValueError(f"spatial size {(hr, wr)} of x is not divisible by r = {r}")
    h, w = hr // r, wr // r
    y = x.reshape(-1, c, h, r, w, r)  # (B, C, H, i, W, j)
    y = y.permute(0, 1, 3, 5, 2, 4)  # (B, C, i, j, H, W)
    return y.reshape(*lead, c * r * r, h, w)  # channel c r^2 + i r + j


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> torch.Tensor:
    r"""Transposed convolution as zero insertion + padding + ordinary convolution.

    ``x`` (N, C_in, H, W), ``weight`` (C_in, C_out/groups, kH, kW) as in ``F.conv_transpose2d``.
    Steps: (1) put $x$ on a grid $s$ times finer: $(H-1)s + 1$ rows, zeros in between; (2) pad
    $d(k-1) - p$ on each side (crop when negative) and ``output_padding`` more at the end; (3) convolve
    with $\tilde W[o, i] = W[i, o]$ flipped in both spatial axes (per group), stride 1, dilation $d$
    (written as $d - 1$ zeros inserted between the kernel taps).
    """
    _check_tensor(x, "x", 4, 4)
    _check_tensor(weight, "weight", 4, 4)
    s, p, op, d = (
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
        _pair(output_padding, "output_padding", 0),
        _pair(dilation, "dilation", 1),
    )
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int; got {groups!r}")
    n, c_in, h, w = x.shape
    if weight.shape[0] != c_in:
        raise ValueError(f"weight.shape[0] = {weight.shape[0]} must equal the input channels {c_in}")
    if c_in % groups:
        raise ValueError(f"input channels {c_in} are not divisible by groups = {groups}")
    for a in range(2):
        if op[a] >= max(s[a], d[a]):
            raise ValueError(f"output_padding {op} must be smaller than stride or dilation ({s}, {d})")
    c_out_g, kh, kw = weight.shape[1:]
    k = (kh, kw)
    # (1) zero insertion: (N, C_in, (H-1)s+1, (W-1)s+1)
    z = x.new_zeros(n, c_in, (h - 1) * s[0] + 1, (w - 1) * s[1] + 1)
    z[:, :, :: s[0], :: s[1]] = x
    # (2) pad d(k-1) - p on both sides (negative = crop), plus output_padding at the bottom/right
    q = [d[a] * (k[a] - 1) - p[a] for a in range(2)]
    z = F.pad(z, (q[1], q[1] + op[1], q[0], q[0] + op[0]))
    # (3) flipped kernel with in/out channels swapped inside each group: (C_out, C_in/groups, kH, kW)
    wt = weight.reshape(groups, c_in // groups, c_out_g, kh, kw).transpose(1, 2)
    wt = wt.reshape(groups * c_out_g, c_in // groups, kh, kw).flip(-2, -1)
    if d != (1, 1):  # dilation = d - 1 zeros between the taps (torch's dilated CPU path is slow in float64)
        wd = wt.new_zeros(*wt.shape[:2], d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
        wd[:, :, :: d[0], :: d[1]] = wt
        wt = wd
    return F.conv2d(z, wt, bias, stride=1, padding=0, groups=groups)  # (N, C_out, H_out, W_out)


def max_unpool2d(
    x: torch.Tensor,
    indices: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    output_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Scatter each value of ``x`` (N, C, H, W) to the flat position ``indices`` gives in its
    (H_out·W_out) plane, zeros elsewhere; H_out = (H-1)s - 2p + k unless ``output_size`` is given."""
    _check_tensor(x, "x", 4, 4)
    if not isinstance(indices, torch.Tensor) or indices.shape != x.shape or indices.dtype != torch.int64:
        raise ValueError("indices must be an int64 tensor with the shape of x")
    k = _pair(kernel_size, "kernel_size", 1)
    s = _pair(stride if stride is not None else kernel_size, "stride", 1)
    p = _pair(padding, "padding", 0)
    n, c, h, w = x.shape
    if output_size is None:
        out = ((h - 1) * s[0] - 2 * p[0] + k[0], (w - 1) * s[1] - 2 * p[1] + k[1])
    else:
        out = tuple(int(v) for v in tuple(output_size)[-2:])
        if len(out) != 2 or min(out) < 1:
            raise ValueError(f"output_size must end with two positive lengths; got {output_size!r}")
    flat = indices.reshape(n, c, h * w)  # (N, C, H*W)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= out[0] * out[1]):
        raise ValueError(f"indices must lie in [0, {out[0] * out[1]}) for output size {out}")
    y = x.new_zeros(n, c, out[0] * out[1])  # (N, C, H_out*W_out)
    y.scatter_(2, flat, x.reshape(n, c, h * w))  # y[n, c, idx[n, c, k]] = x[n, c, k]; backward: a gather
    return y.reshape(n, c, *out)


# --- the torch.nn vision layers -------------------------------------------------------------------


class PixelShuffle(nn.Module):
    """:func:`pixel_shuffle` as a layer (``torch.nn.PixelShuffle``)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle(x, self.upscale_factor)


class PixelUnshuffle(nn.Module):
    """:func:`pixel_unshuffle` as a layer (``torch.nn.PixelUnshuffle``)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_unshuffle(x, self.downscale_factor)


class Upsample(nn.Module):
    """:func:`interpolate` as a layer (``torch.nn.Upsample``)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``: nearest, 2-D."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d``: bilinear with ``align_corners=True``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
