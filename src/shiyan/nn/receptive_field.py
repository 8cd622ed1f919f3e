r"""Receptive field of a stack of convolution and pooling layers, in closed form and from gradients.

A unit of layer $n$ sees a window of the input: its *receptive field*. For a chain of layers
$l = 1, \dots, L$ with kernel size $k_l$, stride $s_l$, padding $p_l$ and dilation $d_l$, three
numbers describe layer $l$'s output grid in input coordinates (pixel $i$ of the input has its
centre at coordinate $i$):

* $r_l$ -- the receptive field: how many consecutive input pixels one output unit depends on;
* $j_l$ -- the *jump*: the distance, in input pixels, between two neighbouring output units;
* $c_l$ -- the *start*: the input coordinate of the centre of the first output unit's field.

Starting from the input itself ($r_0 = 1$, $j_0 = 1$, $c_0 = 0$), with the effective kernel
$\hat k_l = d_l (k_l - 1) + 1$, the bottom-up recursion is

$$r_l = r_{l-1} + (k_l - 1)\, d_l\, j_{l-1}, \qquad j_l = j_{l-1}\, s_l,\qquad
c_l = c_{l-1} + \Big(\frac{d_l (k_l - 1)}{2} - p_l\Big) j_{l-1}.$$

So $j_l = \prod_{m \le l} s_m$ and unit $u$ of layer $l$ is centred on input coordinate
$c_l + u\, j_l$ and covers $[c_l + u j_l - (r_l-1)/2,\; c_l + u j_l + (r_l-1)/2]$. The same number
comes out of the *top-down* recursion: a single unit of the top layer ($RF_L = 1$) seen from
layer $n-1$ spans

$$RF_{n-1} = (RF_n - 1)\, s_n + \hat k_n,$$

and $RF_0 = r_L$. Padding moves the field (through $c_l$) but never changes its size; the output
length follows $n_l = \lfloor (n_{l-1} + 2 p_l - \hat k_l) / s_l \rfloor + 1$ (torch's
``ceil_mode`` rounds up instead and drops a last window that would start inside the right padding).

**Empirical field.** Back-propagate from one output unit to the input: the input pixels with a
non-zero gradient are the pixels the unit depends on. With all weights positive, an all-ones input,
average pooling and monotone activations every path carries a positive product, so the support of
the gradient is exactly the theoretical field (clipped to the image; strides larger than the kernel
or dilations leave holes inside it, so we compare bounding boxes). With *max* pooling only the
arg-max of each window passes a gradient, so the measured field can be smaller than the formula:
measure with average pooling (:func:`measurement_copy` swaps the pools and sets constant weights).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "EmpiricalField",
    "LayerRF",
    "LayerSpec",
    "empirical_receptive_field",
    "layer_specs",
    "alexnet_specs",
    "measurement_copy",
    "receptive_field",
    "receptive_field_top_down",
    "resnet50_specs",
    "specs_to_module",
    "vgg16_specs",
]

_KINDS = ("conv", "maxpool", "avgpool")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer's geometry. ``kernel``/``stride``/``padding``/``dilation`` are an int (same on every
    spatial axis) or a tuple with one value per axis."""

    kind: str
    """'conv', 'maxpool' or 'avgpool' (the geometry is the same for all three)."""
    kernel: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    ceil_mode: bool = False
    """Round the output length up (torch's pooling ``ceil_mode``); the field itself does not change."""
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"LayerSpec.kind must be one of {', '.join(_KINDS)}; got {self.kind!r}")
        for field, low in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
            value = getattr(self, field)
            values = value if isinstance(value, tuple) else (value,)
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values):
                raise ValueError(f"LayerSpec.{field} must be an int >= {low} or a tuple of them; got {value!r}")

    def ndim(self) -> int | None:
        """Number of spatial axes fixed by a tuple field, or None when every field is an int."""
        lengths = {len(v) for v in (self.kernel, self.stride, self.padding, self.dilation) if isinstance(v, tuple)}
        if len(lengths) > 1:
            raise ValueError(f"LayerSpec {self.name or self.kind!r} mixes tuples of lengths {sorted(lengths)}")
        return lengths.pop() if lengths else None

    def axis(self, i: int) -> tuple[int, int, int, int]:
        """(kernel, stride, padding, dilation) on spatial axis ``i``."""
        return tuple(
            v[i] if isinstance(v, tuple) else v for v in (self.kernel, self.stride, self.padding, self.dilation)
        )


@dataclasses.dataclass(frozen=True)
class LayerRF:
    """The output grid of one layer, one value per spatial axis."""

    name: str
    kind: str
    size: tuple[int, ...]
    """Output length $n_l$."""
    rf: tuple[int, ...]
    """Receptive field $r_l$ in input pixels."""
    jump: tuple[int, ...]
    """Jump $j_l$: product of the strides so far."""
    start: tuple[float, ...]
    """Start $c_l$: input coordinate of the centre of the first unit's field (pixel $i$ is at $i$)."""

    def field_of(self, unit: Sequence[int]) -> tuple[tuple[float, float], ...]:
        """``(low, high)`` input coordinates of the field of output unit ``unit`` (one index per axis)."""
        if len(unit) != len(self.rf):
            raise ValueError(f"unit must have {len(self.rf)} indices; got {tuple(unit)!r}")
        return tuple(
            (c + u * j - (r - 1) / 2, c + u * j + (r - 1) / 2)
            for u, r, j, c in zip(unit, self.rf, self.jump, self.start)
        )


# --- walking a torch module -----------------------------------------------------------------------

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POINTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LocalResponseNorm,
)
"""Layers that act on each spatial position alone (BatchNorm as in eval mode; LRN mixes channels only)."""


def _ntuple(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,) * n


def _module_spec(module: nn.Module, name: str) -> LayerSpec:
    if isinstance(module, _CONV):
        n = len(module.kernel_size)
        k, s, d = module.kernel_size, module.stride, module.dilation
        if isinstance(module.padding, str):
            if module.padding == "valid":
                p = (0,) * n
            else:  # 'same': torch pads d(k-1) in total, the smaller half on the left
                p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))
                if any(di * (ki - 1) % 2 for ki, di in zip(k, d)):
                    raise ValueError(f"layer {name!r}: padding='same' with an even effective kernel is asymmetric")
        else:
            p = _ntuple(module.padding, n)
        return LayerSpec("conv", tuple(k), tuple(s), tuple(p), tuple(d), name=name)
    if isinstance(module, _MAXPOOL + _AVGPOOL):
        n = int(type(module).__name__[-2])
        kind = "maxpool" if isinstance(module, _MAXPOOL) else "avgpool"
        dilation = _ntuple(getattr(module, "dilation", 1), n)
        stride = module.stride if module.stride is not None else module.kernel_size
        return LayerSpec(
            kind,
            _ntuple(module.kernel_size, n),
            _ntuple(stride, n),
            _ntuple(module.padding, n),
            dilation,
            ceil_mode=bool(module.ceil_mode),
            name=name,
        )
    raise TypeError(
        f"receptive_field: layer {name!r} of type {type(module).__name__} is not supported "
        "(supported: Conv1d/2d/3d, MaxPool, AvgPool, nn.Sequential of them and pointwise layers "
        "such as activations, dropout and batch norm); describe it with LayerSpec instead"
    )


def layer_specs(model: nn.Module) -> list[LayerSpec]:
    """The conv/pool layers of ``model`` in execution order, as :class:`LayerSpec`.

    ``nn.Sequential`` (nested too) is walked in order; pointwise layers are skipped; anything else
    -- including a custom module whose ``forward`` order cannot be known -- raises ``TypeError``
    naming the layer."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    out: list[LayerSpec] = []

    def walk(module: nn.Module, name: str) -> None:
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                walk(child, f"{name}.{child_name}" if name else child_name)
        elif isinstance(module, _POINTWISE):
            return
        else:
            out.append(_module_spec(module, name or type(module).__name__))

    walk(model, "")
    return out


# --- closed form ----------------------------------------------------------------------------------


def _as_specs(model_or_layers) -> list[LayerSpec]:
    if isinstance(model_or_layers, nn.Module):
        return layer_specs(model_or_layers)
    if isinstance(model_or_layers, Sequence) and not isinstance(model_or_layers, str):
        specs = list(model_or_layers)
        for i, s in enumerate(specs):
            if not isinstance(s, LayerSpec):
                raise TypeError(f"model_or_layers[{i}] must be a LayerSpec; got {type(s).__name__}")
        return specs
    raise TypeError(f"model_or_layers must be a torch.nn.Module or a list of LayerSpec; got {type(model_or_layers)}")


def _spatial_ndim(specs: list[LayerSpec], input_size) -> int:
    if isinstance(input_size, Sequence):
        return len(input_size)
    fixed = {n for n in (s.ndim() for s in specs) if n is not None}
    if len(fixed) > 1:
        raise ValueError(f"layers disagree on the number of spatial axes: {sorted(fixed)}")
    return fixed.pop() if fixed else 1


def _output_length(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:  # the last window would start inside the right padding
        out -= 1
    return out


def receptive_field(model_or_layers, input_size: int | Sequence[int]) -> list[LayerRF]:
    r"""Per-layer receptive field $r_l$, jump $j_l$, start $c_l$ and output size $n_l$.

    ``model_or_layers`` is an ``nn.Module`` (see :func:`layer_specs`) or a list of
    :class:`LayerSpec`; ``input_size`` is the input length per spatial axis (an int means the same
    length on every axis). Returns one :class:`LayerRF` per conv/pool layer, bottom to top, using
    $r_l = r_{l-1} + (k_l-1) d_l j_{l-1}$, $j_l = j_{l-1} s_l$ and
    $c_l = c_{l-1} + (d_l(k_l-1)/2 - p_l) j_{l-1}$.
    """
    specs = _as_specs(model_or_layers)
    ndim = _spatial_ndim(specs, input_size)
    sizes = _ntuple(input_size, ndim) if isinstance(input_size, Sequence) else (input_size,) * ndim
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ValueError(f"input_size must be positive ints; got {input_size!r}")
    for s in specs:
        if s.ndim() not in (None, ndim):
            raise ValueError(f"layer {s.name or s.kind!r} has {s.ndim()} spatial axes but input_size has {ndim}")
    n, r, j, c = list(sizes), [1] * ndim, [1] * ndim, [0.0] * ndim
    rows: list[LayerRF] = []
    for idx, spec in enumerate(specs):
        for a in range(ndim):
            k, s, p, d = spec.axis(a)
            n[a] = _output_length(n[a], k, s, p, d, spec.ceil_mode)
            if n[a] < 1:
                raise ValueError(f"layer {spec.name or idx!r}: input_size {tuple(sizes)} is too small (empty output)")
            r[a] = r[a] + (k - 1) * d * j[a]  # r_l = r_{l-1} + (k-1) d j_{l-1}
            c[a] = c[a] + (d * (k - 1) / 2 - p) * j[a]  # c_l = c_{l-1} + (d(k-1)/2 - p) j_{l-1}
            j[a] = j[a] * s  # j_l = j_{l-1} s_l
        rows.append(LayerRF(spec.name or f"{spec.kind}{idx}", spec.kind, tuple(n), tuple(r), tuple(j), tuple(c)))
    return rows


def receptive_field_top_down(model_or_layers, axis: int = 0) -> int:
    r"""The top layer's receptive field by the top-down recursion $RF_{n-1} = (RF_n - 1) s_n + \hat k_n$,
    with $RF_L = 1$ and the effective kernel $\hat k = d(k-1)+1$, on spatial ``axis``."""
    specs = _as_specs(model_or_layers)
    rf = 1
    for spec in reversed(specs):
        if axis < 0 or (spec.ndim() is not None and axis >= spec.ndim()):
            raise ValueError(f"axis {axis} is out of range for layer {spec.name or spec.kind!r}")
        k, s, _, d = spec.axis(axis)
        rf = (rf - 1) * s + d * (k - 1) + 1
    return rf


# --- empirical field ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EmpiricalField:
    """Input pixels with a non-zero gradient of one output unit."""

    unit: tuple[int, ...]
    """Index of the output unit (per spatial axis)."""
    low: tuple[int, ...]
    """First input index with a non-zero gradient, per axis."""
    high: tuple[int, ...]
    """Last input index with a non-zero gradient, per axis."""
    grad: torch.Tensor
    """$|\\partial y_u / \\partial x|$ summed over channels, shape ``input_size``."""

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(h - lo + 1 for lo, h in zip(self.low, self.high))


def empirical_receptive_field(
    model: nn.Module,
    input_size: Sequence[int],
    in_channels: int = 1,
    unit: Sequence[int] | None = None,
    x: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> EmpiricalField:
    r"""Back-propagate $\sum_c y_{c,u}$ of output unit ``u`` (the centre unit by default) to the input
    and return the bounding box of the non-zero gradient.

    ``x`` defaults to an all-ones input of shape ``(1, in_channels, *input_size)`` in ``dtype`` (the
    model's parameter dtype when None). For a measurement
    that matches the closed form use :func:`measurement_copy` (constant positive weights, average
    pooling); with max pooling and random weights the field can be smaller.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    size = tuple(int(n) for n in input_size)
    if not size or any(n < 1 for n in size):
        raise ValueError(f"input_size must be positive ints; got {tuple(input_size)!r}")
    if x is None:
        if dtype is None:  # the model's own dtype
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float64)
        x = torch.ones((1, in_channels, *size), dtype=dtype)
    elif tuple(x.shape[2:]) != size or x.shape[0] != 1:
        raise ValueError(f"x must have shape (1, C, *input_size) = (1, C, {size}); got {tuple(x.shape)}")
    x = x.detach().clone().requires_grad_(True)
    y = model(x)  # (1, C_out, *out_size)
    out_size = tuple(y.shape[2:])
    if len(out_size) != len(size):
        raise ValueError(f"model output has {len(out_size)} spatial axes; input_size has {len(size)}")
    u = tuple((n - 1) // 2 for n in out_size) if unit is None else tuple(int(i) for i in unit)
    if len(u) != len(out_size) or not all(0 <= i < n for i, n in zip(u, out_size)):
        raise ValueError(f"unit {u} is outside the output grid {out_size}")
    (g,) = torch.autograd.grad(y[(0, slice(None), *u)].sum(), x)
    g = g[0].abs().sum(0)  # (*input_size)
    nz = torch.nonzero(g)
    if nz.numel() == 0:
        raise ValueError("the output unit has a zero gradient everywhere (dead units?); use measurement_copy")
    low = tuple(int(v) for v in nz.min(0).values)
    high = tuple(int(v) for v in nz.max(0).values)
    return EmpiricalField(u, low, high, g.detach())


class _DilatedMeanPool(nn.Module):
    """Mean over a dilated window (what a dilated max pool becomes for measuring): zero padding and a
    depthwise convolution with the constant kernel $1/k^n$, sized like the max pool's output."""

    def __init__(self, spec: LayerSpec, ndim: int):
        super().__init__()
        self.spec, self.ndim = spec, ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.ndim
        geometry = [self.spec.axis(a) for a in range(n)]
        pads: list[int] = []
        for a, (k, s, p, d) in enumerate(geometry):
            length = x.shape[2 + a]
            out = _output_length(length, k, s, p, d, self.spec.ceil_mode)
            right = (out - 1) * s + d * (k - 1) + 1 - (length + p)
            pads = [p, right, *pads]  # F.pad lists the last axis first
        x = nn.functional.pad(x, pads)
        kernel = [g[0] for g in geometry]
        c = x.shape[1]
        weight = x.new_full((c, 1, *kernel), 1.0 / math.prod(kernel))
        conv = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[n]
        return conv(x, weight, None, [g[1] for g in geometry], 0, [g[3] for g in geometry], c)


def measurement_copy(model: nn.Module, weight: float = 1.0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A deep copy of ``model`` in ``dtype`` with every conv weight set to the positive constant
    ``weight``, biases zeroed and each max pool replaced by an average pool of the same geometry
    (a mean over the dilated window when the pool is dilated), so that the gradient support equals
    the theoretical receptive field."""
    if not (isinstance(weight, int | float) and math.isfinite(weight) and weight > 0):
        raise ValueError(f"weight must be a positive finite number; got {weight!r}")
    out = copy.deepcopy(model).to(dtype)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, _MAXPOOL):
                spec = _module_spec(child, name)
                n = int(type(child).__name__[-2])
                if any(spec.axis(a)[3] != 1 for a in range(n)):
                    setattr(parent, name, _DilatedMeanPool(spec, n))
                else:
                    avg = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[n]
                    setattr(parent, name, avg(child.kernel_size, child.stride, child.padding, child.ceil_mode))
            else:
                swap(child)

    swap(out)
    with torch.no_grad():
        for m in out.modules():
            if isinstance(m, _CONV):
                m.weight.fill_(weight)
                if m.bias is not None:
                    m.bias.zero_()
    return out.eval()


# --- published architectures ----------------------------------------------------------------------


def alexnet_specs() -> list[LayerSpec]:
    """AlexNet's conv/pool trunk up to pool5 (torchvision's layout: 11x11/4 pad 2, 3x3/2 pools)."""
    return [
        LayerSpec("conv", 11, 4, 2, name="conv1"),
        LayerSpec("maxpool", 3, 2, name="pool1"),
        LayerSpec("conv", 5, 1, 2, name="conv2"),
        LayerSpec("maxpool", 3, 2, name="pool2"),
        LayerSpec("conv", 3, 1, 1, name="conv3"),
        LayerSpec("conv", 3, 1, 1, name="conv4"),
        LayerSpec("conv", 3, 1, 1, name="conv5"),
        LayerSpec("maxpool", 3, 2, name="pool5"),
    ]


def vgg16_specs() -> list[LayerSpec]:
    """VGG-16 (configuration D): 13 3x3 convs with padding 1 in five blocks, each closed by a 2x2/2 pool."""
    specs: list[LayerSpec] = []
    for block, n_convs in enumerate((2, 2, 3, 3, 3), start=1):
        specs += [LayerSpec("conv", 3, 1, 1, name=f"conv{block}_{i}") for i in range(1, n_convs + 1)]
        specs.append(LayerSpec("maxpool", 2, 2, name=f"pool{block}"))
    return specs


def resnet50_specs() -> list[LayerSpec]:
    """The longest path through ResNet-50 as torchvision builds it: a 7x7/2 stem conv, a 3x3/2 max
    pool, then bottlenecks (1x1, 3x3, 1x1) in stages of 3, 4, 6, 3 blocks, the stride-2 of stages
    2-4 on the first block's 3x3 conv. The shortcut branches see less, so they do not change the field."""
    specs = [LayerSpec("conv", 7, 2, 3, name="conv1"), LayerSpec("maxpool", 3, 2, 1, name="maxpool")]
    for stage, (n_blocks, stride) in enumerate(((3, 1), (4, 2), (6, 2), (3, 2)), start=1):
        for b in range(n_blocks):
            s = stride if b == 0 else 1
            specs += [
                LayerSpec("conv", 1, 1, 0, name=f"layer{stage}.{b}.conv1"),
                LayerSpec("conv", 3, s, 1, name=f"layer{stage}.{b}.conv2"),
                LayerSpec("conv", 1, 1, 0, name=f"layer{stage}.{b}.conv3"),
            ]
    return specs


def specs_to_module(
    specs: Sequence[LayerSpec], ndim: int = 2, channels: int = 1, in_channels: int | None = None
) -> nn.Sequential:
    """An ``nn.Sequential`` with one conv/pool layer per spec (``channels`` wide, ReLU after each
    conv; the first conv reads ``in_channels``, default ``channels``), for measuring the empirical
    field of a layer list. Weights get torch's default initialisation: use :func:`measurement_copy`
    or set them yourself."""
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3; got {ndim}")
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim]
    maxpool = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[ndim]
    avgpool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[ndim]
    layers: list[nn.Module] = []
    c_in = channels if in_channels is None else in_channels
    for i, spec in enumerate(_as_specs(list(specs))):
        if spec.ndim() not in (None, ndim):
            raise ValueError(f"specs[{i}] has {spec.ndim()} spatial axes, not {ndim}")
        k, s, p, d = (tuple(spec.axis(a)[f] for a in range(ndim)) for f in range(4))
        if spec.kind == "conv":
            layers += [conv(c_in, channels, k, s, p, d), nn.ReLU()]
            c_in = channels
        elif spec.kind == "maxpool":
            layers.append(maxpool(k, s, p, d, ceil_mode=spec.ceil_mode))
        else:
            if any(v != 1 for v in d):
                raise ValueError(f"specs[{i}]: average pooling has no dilation")
            layers.append(avgpool(k, s, p, ceil_mode=spec.ceil_mode))
    return nn.Sequential(*layers)
