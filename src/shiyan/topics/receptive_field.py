"""D4 Receptive field: the closed-form recursion against published values and against the gradient
of real networks (AlexNet, VGG-16, a residual ResNet-50 trunk), plus where the gradient mass sits
inside the field (the effective receptive field)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import time

import numpy as np
import torch
from torch import nn

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.nn.receptive_field import (
    LayerSpec,
    alexnet_specs,
    empirical_receptive_field,
    measurement_copy,
    receptive_field,
    receptive_field_top_down,
    resnet50_specs,
    specs_to_module,
    vgg16_specs,
)

META = TopicMeta(
    slug="receptive-field",
    category="DL",
    date=dt.date(2024, 5, 4),
    title_en="Receptive field: a recursion, published numbers and the gradient",
    title_zh="感受野：递推公式、公开数值与梯度实测",
    summary_en=(
        "How many input pixels one unit of a conv/pool stack sees, from the bottom-up and top-down "
        "recursions; checked against AlexNet 195, VGG-16 212, ResNet-50 427 and against the support of "
        "the gradient of real networks."
    ),
    summary_zh=(
        "卷积/池化堆叠中一个单元能看到多少输入像素：自底向上与自顶向下两种递推；"
        "与 AlexNet 195、VGG-16 212、ResNet-50 427 的公开数值以及真实网络梯度的支撑集对照。"
    ),
    implements=("shiyan.nn.receptive_field",),
)

PUBLISHED = {"AlexNet pool5": 195, "VGG-16 pool5": 212, "ResNet-50 layer4": 427}


@dataclasses.dataclass(frozen=True)
class Config(TopicConfig):
    n_random_stacks: int = 40
    """Random conv/pool stacks on which the closed form is compared with the gradient support."""
    max_random_rf: int = 60
    """Largest receptive field a random 2-D stack may have (keeps the inputs small)."""
    resnet_input: int = 448
    """Input side for the ResNet-50 measurement (large enough for one field to fit uncut)."""
    erf_mass: float = 0.9
    """Share of the gradient mass that defines the effective receptive field."""

    def validate(self) -> None:
        if self.n_random_stacks < 1:
            raise ConfigError(f"n_random_stacks must be >= 1; got {self.n_random_stacks}")
        if self.max_random_rf < 3:
            raise ConfigError(f"max_random_rf must be >= 3; got {self.max_random_rf}")
        if self.resnet_input < 430:
            raise ConfigError(f"resnet_input must be >= 430 so that a 427-pixel field fits; got {self.resnet_input}")
        if not 0.0 < self.erf_mass < 1.0:
            raise ConfigError(f"erf_mass must be in (0, 1); got {self.erf_mass}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_random_stacks=5, max_random_rf=40)


# --- networks ---------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3 conv), without batch norm."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.conv3 = nn.Conv2d(mid, c_out, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return torch.relu(self.conv3(h) + self.shortcut(x))


def resnet50_trunk(width: int = 1) -> nn.Sequential:
    """Stem (7x7/2 conv, 3x3/2 max pool) and the 3-4-6-3 bottleneck stages, ``width`` channels thin."""
    layers: list[nn.Module] = [nn.Conv2d(1, width, 7, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = width
    for n_blocks, stride in ((3, 1), (4, 2), (6, 2), (3, 2)):
        for b in range(n_blocks):
            layers.append(Bottleneck(c, width, 2 * width, stride if b == 0 else 1))
            c = 2 * width
    return nn.Sequential(*layers)


def _random_stack(rng: random.Random, max_rf: int) -> list[LayerSpec]:
    while True:
        specs = []
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(["conv", "conv", "maxpool", "avgpool"])
            k = rng.randint(1, 5)
            d = rng.randint(1, 3) if kind != "avgpool" else 1
            p = rng.randint(0, k) if kind == "conv" else rng.randint(0, k // 2)
            specs.append(LayerSpec(kind, k, rng.randint(1, 3), p, d, ceil_mode=kind != "conv" and rng.random() < 0.5))
        if receptive_field_top_down(specs) <= max_rf:
            return specs


def _uncut(last, unit: tuple[int, ...], size: int) -> bool:
    """The unit's field lies inside the image on every axis."""
    return all(lo >= 0 and hi <= size - 1 for lo, hi in last.field_of(unit))


def _first_inside_unit(last, size: int) -> int:
    return next(u for u in range(last.size[0]) if _uncut(last, (u,) * len(last.size), size))


def _erf_side(grad: torch.Tensor, centre: float, mass: float) -> int:
    """Side of the smallest square centred on ``centre`` that holds ``mass`` of the gradient."""
    g = grad / grad.sum()
    n = g.shape[0]
    for half in range(n):
        a, b = max(0, math.floor(centre - half)), min(n - 1, math.ceil(centre + half))
        if float(g[a : b + 1, a : b + 1].sum()) >= mass:
            return b - a + 1
    return n


# --- run --------------------------------------------------------------------------------------------


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    nets = {
        "AlexNet pool5": (alexnet_specs(), specs_to_module(alexnet_specs()), 240),
        "VGG-16 pool5": (vgg16_specs(), specs_to_module(vgg16_specs()), 240),
        "ResNet-50 layer4": (resnet50_specs(), resnet50_trunk(), cfg.resnet_input),
    }
    rows, closed_err, emp_err, erf_ratios, profiles = [], 0, 0, {}, {}
    for name, (specs, model, size) in nets.items():
        last = receptive_field(specs, (size, size))[-1]
        top_down = receptive_field_top_down(specs)
        u = _first_inside_unit(last, size)
        emp = empirical_receptive_field(measurement_copy(model), (size, size), unit=(u, u))
        (lo, hi), _ = last.field_of((u, u))
        side = _erf_side(emp.grad, (lo + hi) / 2, cfg.erf_mass)
        erf_ratios[name] = side / last.rf[0]
        closed_err = max(closed_err, abs(last.rf[0] - PUBLISHED[name]), abs(top_down - PUBLISHED[name]))
        emp_err = max(emp_err, abs(emp.size[0] - last.rf[0]), abs(emp.low[0] - int(lo)))
        row = emp.grad[int((lo + hi) / 2)]
        profiles[name] = (np.arange(row.numel()) - (lo + hi) / 2, (row / row.max()).numpy(), last.rf[0])
        rows.append((name, PUBLISHED[name], last.rf[0], top_down, emp.size[0], last.jump[0], side))
    res.table(
        "published",
        ["network", "published", "bottom-up", "top-down", "gradient", "jump", f"ERF side ({cfg.erf_mass:.0%})"],
        rows,
        caption_en="Receptive field of the last layer: published value, the two recursions, the gradient support "
        "of a real network (constant weights, average pooling), the jump and the side of the centred square "
        "holding most of the gradient.",
        caption_zh="最后一层的感受野：公开数值、两种递推、真实网络的梯度支撑（常数权重、平均池化）、"
        "跳距，以及容纳大部分梯度质量的居中正方形边长。",
    )
    res.claim(
        "published_values",
        "AlexNet 195, VGG-16 212 and ResNet-50 427 from both recursions (largest absolute difference)",
        closed_err,
        "==",
        0,
        text_zh="两种递推都给出 AlexNet 195、VGG-16 212、ResNet-50 427（最大绝对差）",
    )
    res.claim(
        "gradient_equals_formula_real_networks",
        "the gradient support of the three real networks (ResNet-50 with its shortcuts) equals the formula "
        "(largest pixel difference in size or position)",
        emp_err,
        "==",
        0,
        text_zh="三个真实网络（含 ResNet-50 的捷径分支）的梯度支撑与公式一致（尺寸或位置的最大像素差）",
    )

    # random stacks: closed form = gradient support for uncut units (first, middle, last)
    rng = random.Random(cfg.seed)
    checked, mismatches = 0, 0
    for _ in ctx.progress(range(cfg.n_random_stacks), total=cfg.n_random_stacks, description="random stacks"):
        ndim = rng.choice([1, 2])
        specs = _random_stack(rng, cfg.max_random_rf if ndim == 2 else 5 * cfg.max_random_rf)
        rf = receptive_field_top_down(specs)
        size = rf + rng.randint(10, 40)
        while True:  # grow the input until some unit's field lies inside it (padding shifts the fields)
            last = receptive_field(specs, (size,) * ndim)[-1]
            inside = [u for u in range(last.size[0]) if _uncut(last, (u,) * ndim, size)]
            if inside:
                break
            size += last.jump[0] + 10
        model = measurement_copy(specs_to_module(specs, ndim=ndim, channels=2))
        for u in sorted({inside[0], inside[len(inside) // 2], inside[-1]}):  # first, middle, last uncut unit
            (lo, hi), *_ = last.field_of((u,) * ndim)
            emp = empirical_receptive_field(model, (size,) * ndim, in_channels=2, unit=(u,) * ndim)
            checked += 1
            mismatches += int(emp.size != last.rf or emp.low[0] != int(lo))
    res.metric("random_units_checked", checked, "units")
    res.claim(
        "gradient_equals_formula_random",
        f"on {cfg.n_random_stacks} random conv/pool stacks (kernel, stride, padding, dilation, ceil mode) the "
        "gradient support of the first, middle and last uncut unit equals the closed form (share that differ)",
        mismatches / max(checked, 1),
        "==",
        0,
        text_zh=f"在 {cfg.n_random_stacks} 个随机卷积/池化堆叠上（核、步长、填充、空洞、ceil 模式），"
        "首、中、末三个未被裁剪的单元的梯度支撑都与闭式解一致（不一致的比例）",
    )
    res.claim(
        "effective_field_is_central",
        f"{cfg.erf_mass:.0%} of the gradient mass lies in a centred square whose side is at most 0.7 of the "
        "theoretical field (largest ratio over the three networks)",
        max(erf_ratios.values()),
        "<=",
        0.7,
        text_zh=f"{cfg.erf_mass:.0%} 的梯度质量落在边长不超过理论感受野 0.7 倍的居中正方形内（三个网络中的最大比值）",
    )

    # max pooling with random weights: the measured field can shrink
    g = torch.Generator().manual_seed(cfg.seed)
    alex = specs_to_module(alexnet_specs(), channels=8, in_channels=1)
    with torch.no_grad():  # He-normal weights from the run's generator, zero biases
        for m in alex.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / m.weight[0].numel()))
                m.bias.zero_()
    last = receptive_field(alexnet_specs(), (240, 240))[-1]
    u = _first_inside_unit(last, 240)
    x = torch.rand(1, 1, 240, 240, generator=g)
    emp_max = empirical_receptive_field(alex, (240, 240), unit=(u, u), x=x)
    res.metric("alexnet_maxpool_random_support", int((emp_max.grad > 0).sum()), "pixels")
    res.metric("alexnet_theoretical_area", last.rf[0] ** 2, "pixels")

    fig, ax = new_figure()
    for name, (offset, profile, rf) in profiles.items():
        line = ax.plot(offset, profile, label=name)[0]
        ax.axvline(-(rf - 1) / 2, color=line.get_color(), ls=":", lw=1)
        ax.axvline((rf - 1) / 2, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("input pixel offset from the field centre")
    ax.set_ylabel("gradient (normalised)")
    ax.set_xlim(-230, 230)
    ax.legend()
    ctx.save_figure(
        fig,
        "profiles",
        caption_en="Gradient of one output unit along the row through its centre; dotted lines: the theoretical "
        "field. The gradient fills the field exactly but piles up in the middle.",
        caption_zh="一个输出单元的梯度沿其中心所在行的分布；虚线为理论感受野边界。梯度恰好铺满感受野，但集中在中间。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Closed form vs measuring the field by back-propagation, per network."""
    out = []
    for name, specs, model, size in (
        ("VGG-16", vgg16_specs(), specs_to_module(vgg16_specs()), 240),
        ("ResNet-50", resnet50_specs(), resnet50_trunk(), cfg.resnet_input),
    ):
        meas = measurement_copy(model)
        t0 = time.perf_counter()
        for _ in range(20):
            receptive_field(specs, (size, size))
        ours = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        empirical_receptive_field(meas, (size, size))
        ref = time.perf_counter() - t0
        out.append(BenchRow(f"receptive field of {name}", ours, ref, "gradient support by torch.autograd", "s"))
    return out
