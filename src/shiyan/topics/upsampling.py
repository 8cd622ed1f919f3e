"""D5 Upsampling: nearest, bilinear, PixelShuffle, transposed convolution and max-unpooling written
from their equations, checked against torch, then used on real digits; the checkerboard pattern of
transposed convolutions whose kernel is not a multiple of the stride."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from shiyan import data
from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.nn.upsampling import (
    conv_transpose2d,
    max_unpool2d,
    pixel_shuffle,
    pixel_unshuffle,
    upsample_bilinear2d,
    upsample_nearest,
)

META = TopicMeta(
    slug="upsampling",
    category="DL",
    date=dt.date(2024, 5, 5),
    title_en="Upsampling from the equations: nearest, bilinear, PixelShuffle, transposed convolution",
    title_zh="从公式写上采样：最近邻、双线性、PixelShuffle、转置卷积",
    summary_en=(
        "Source coordinates for nearest and bilinear (align_corners both ways), PixelShuffle as a reshape, "
        "transposed convolution as zero insertion plus an ordinary convolution, and max-unpooling; "
        "equal to torch forward and backward, then compared on real digits."
    ),
    summary_zh=(
        "最近邻与双线性的源坐标（align_corners 两种取法）、作为重排的 PixelShuffle、"
        "作为插零加普通卷积的转置卷积、最大反池化；前向与反向都与 torch 一致，并在真实手写数字上比较。"
    ),
    implements=("shiyan.nn.upsampling",),
)


@dataclasses.dataclass(frozen=True)
class Config(TopicConfig):
    n_cases: int = 200
    """Random shapes/arguments per operation compared with torch."""
    train_steps: int = 400
    """Adam steps for the two learned upsamplers (sub-pixel conv, transposed conv)."""
    lr: float = 0.02
    """Adam learning rate of the learned upsamplers."""
    test_fraction: float = 0.3
    """Share of the digits held out to score the upsamplers."""

    def validate(self) -> None:
        if self.n_cases < 1:
            raise ConfigError(f"n_cases must be >= 1; got {self.n_cases}")
        if self.train_steps < 1:
            raise ConfigError(f"train_steps must be >= 1; got {self.train_steps}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1); got {self.test_fraction}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_cases=15, train_steps=100, lr=0.05)


# --- agreement with torch ------------------------------------------------------------------------------


def _max_error(ours_fn, ref_fn, inputs: list[torch.Tensor], g: torch.Generator, forward_adjoint: bool = False):
    """Largest |difference| of the outputs and of the input gradients of <out, r> for a random r, and
    whether torch's own backward disagreed with the adjoint of its forward (only checked when
    ``forward_adjoint``: then the reference gradient is $J^T r$ with $J$ built from torch's *forward*
    on one-hot images, valid for maps that are linear and act on each channel alike, like nearest)."""
    xa = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    xb = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    a, b = ours_fn(*xa), ref_fn(*xb)
    if a.shape != b.shape:
        return math.inf, False
    r = torch.randn(a.shape, generator=g, dtype=a.dtype)
    (a * r).sum().backward()
    (b * r).sum().backward()
    err = float((a - b).abs().max().detach()) if a.numel() else 0.0
    torch_inconsistent = False
    if forward_adjoint:
        x = inputs[0]
        spatial = x.shape[2:]
        m = math.prod(spatial)
        with torch.no_grad():
            basis = torch.eye(m, dtype=x.dtype).view(m, 1, *spatial)  # one-hot images
            jac = ref_fn(basis).reshape(m, -1)  # (input pixels, output pixels): torch's forward only
            adjoint = (r.reshape(-1, jac.shape[1]) @ jac.T).reshape(x.shape)  # J^T r per (n, c)
        err = max(err, float((xa[0].grad - adjoint).abs().max()))
        torch_inconsistent = bool((xb[0].grad - adjoint).abs().max() > 1e-10)
        return err, torch_inconsistent
    for u, v in zip(xa, xb):
        if u.requires_grad:
            err = max(err, float((u.grad - v.grad).abs().max()))
    return err, torch_inconsistent


def _case(op: str, rng: np.random.Generator, g: torch.Generator):
    """One random (ours, reference, inputs) triple for ``op``."""

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    if op == "nearest":
        ndim = int(rng.integers(1, 4))
        sizes = tuple(int(v) for v in rng.integers(1, 10, ndim))
        scale = float(rng.uniform(max(1 / min(sizes), 0.3), 4.0))
        kw = (
            {"scale_factor": scale}
            if rng.random() < 0.6
            else {"size": tuple(int(v) for v in rng.integers(1, 18, ndim))}
        )
        return (
            (lambda t: upsample_nearest(t, **kw)),
            (lambda t: F.interpolate(t, mode="nearest", **kw)),
            [randn(2, 3, *sizes)],
        )
    if op.startswith("bilinear"):
        ac = op.endswith("True")
        sizes = tuple(int(v) for v in rng.integers(1, 10, 2))
        scale = float(rng.uniform(max(1 / min(sizes), 0.3), 4.0))
        kw = {"scale_factor": scale} if rng.random() < 0.6 else {"size": tuple(int(v) for v in rng.integers(1, 18, 2))}
        return (
            (lambda t: upsample_bilinear2d(t, align_corners=ac, **kw)),
            (lambda t: F.interpolate(t, mode="bilinear", align_corners=ac, **kw)),
            [randn(2, 3, *sizes)],
        )
    if op == "pixel_shuffle":
        r, c, h, w = (int(v) for v in rng.integers(1, 5, 4))
        if rng.random() < 0.5:
            return (lambda t: pixel_shuffle(t, r)), (lambda t: F.pixel_shuffle(t, r)), [randn(2, c * r * r, h, w)]
        return (lambda t: pixel_unshuffle(t, r)), (lambda t: F.pixel_unshuffle(t, r)), [randn(2, c, h * r, w * r)]
    if op == "conv_transpose2d":
        while True:
            groups = int(rng.integers(1, 4))
            c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
            k, s, d = (tuple(int(v) for v in rng.integers(1, hi, 2)) for hi in (5, 4, 4))
            p = tuple(int(v) for v in rng.integers(0, 4, 2))
            op_ = tuple(int(rng.integers(0, max(s[a], d[a]))) for a in range(2))
            hw = tuple(int(v) for v in rng.integers(1, 7, 2))
            if all((hw[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op_[a] + 1 >= 1 for a in range(2)):
                break
        args = (s, p, op_, groups, d)
        inputs = [randn(2, c_in, *hw), randn(c_in, c_out // groups, *k), randn(c_out)]
        return (
            (lambda x, w, b: conv_transpose2d(x, w, b, *args)),
            (lambda x, w, b: F.conv_transpose2d(x, w, b, *args)),
            inputs,
        )
    if op == "max_unpool2d":
        k, s = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        p = int(rng.integers(0, k // 2 + 1))
        hw = tuple(int(v) for v in rng.integers(max(k, 4), 13, 2))
        pooled, idx = F.max_pool2d(randn(2, 3, *hw), k, s, p, return_indices=True)
        return (
            (lambda t: max_unpool2d(t, idx, k, s, p, output_size=hw)),
            (lambda t: F.max_unpool2d(t, idx, k, s, p, output_size=hw)),
            [pooled],
        )
    raise ValueError(op)


OPS = (
    "nearest",
    "bilinear align_corners=True",
    "bilinear align_corners=False",
    "pixel_shuffle",
    "conv_transpose2d",
    "max_unpool2d",
)


# --- the checkerboard ----------------------------------------------------------------------------------


def _checkerboard(kernel: int, stride: int = 2, n: int = 12) -> torch.Tensor:
    """Transposed convolution of a constant image with a constant kernel (padding keeps the size x stride)."""
    pad = (kernel - stride + 1) // 2
    out_pad = stride - (kernel - 2 * pad)
    x, w = torch.ones(1, 1, n, n, dtype=torch.float64), torch.ones(1, 1, kernel, kernel, dtype=torch.float64)
    return conv_transpose2d(x, w, stride=stride, padding=pad, output_padding=max(out_pad, 0))[0, 0]


def _resize_conv(n: int = 12) -> torch.Tensor:
    """Nearest x2 then a constant 3x3 convolution: the usual fix for the checkerboard."""
    up = upsample_nearest(torch.ones(1, 1, n, n, dtype=torch.float64), scale_factor=2)
    return F.conv2d(up, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=1)[0, 0]


def _interior_spread(img: torch.Tensor, margin: int = 4) -> float:
    inner = img[margin:-margin, margin:-margin]
    return float(inner.std() / inner.mean())


# --- run -------------------------------------------------------------------------------------------------


def _short(name: str) -> str:
    """A panel title: 'bilinear (align_corners=False)' -> 'bilinear, ac=False'; '*' marks learned ones."""
    name = name.replace(" (align_corners=", ", ac=").replace(" (conv + PixelShuffle)", "").replace(")", "")
    return name.replace(", learned", "*")


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    rng = ctx.numpy_generator("cases")
    g = ctx.torch_generator("cases")
    rows = []
    torch_nearest_inconsistent = 0
    for op in OPS:
        outcomes = [_max_error(*_case(op, rng, g), g=g, forward_adjoint=op == "nearest") for _ in range(cfg.n_cases)]
        worst = max(e for e, _ in outcomes)
        if op == "nearest":
            torch_nearest_inconsistent = sum(bad for _, bad in outcomes)
        rows.append((op, cfg.n_cases, worst))
        grad_en = "the adjoint of torch's forward" if op == "nearest" else "torch's"
        grad_zh = "torch 前向的伴随" if op == "nearest" else "torch"
        res.claim(
            f"matches_torch_{op.split()[0]}" + ("" if " " not in op else "_ac_" + op.split("=")[1].lower()),
            f"{op}: the output equals torch's and the input gradient equals {grad_en} on {cfg.n_cases} random "
            "cases (largest |difference|, float64)",
            worst,
            "<=",
            1e-10,
            text_zh=f"{op}：在 {cfg.n_cases} 个随机用例上输出等于 torch，输入梯度等于{grad_zh}（最大绝对差，float64）",
        )
    res.table(
        "agreement",
        ["operation", "random cases", "max |ours - torch|"],
        rows,
        caption_en="Forward outputs and input gradients against torch.nn.functional (float64). For nearest the "
        "reference gradient is the transpose of the Jacobian built from torch's forward pass.",
        caption_zh="前向输出与输入梯度对照 torch.nn.functional（float64）。最近邻的参考梯度是由 torch 前向"
        "构造的雅可比矩阵的转置。",
    )
    res.metric(
        "torch_nearest_backward_inconsistent",
        torch_nearest_inconsistent,
        "cases",
        "random nearest cases where torch's CPU backward is not the adjoint of its own forward",
    )

    # checkerboard: kernel 3 stride 2 overlaps unevenly, kernel 4 stride 2 evenly
    boards = {"transposed conv k=3, s=2": _checkerboard(3), "transposed conv k=4, s=2": _checkerboard(4)}
    boards["nearest x2 + 3x3 conv"] = _resize_conv()
    spreads = {name: _interior_spread(img) for name, img in boards.items()}
    res.claim(
        "checkerboard_k3s2",
        "a constant image through a constant 3x3 stride-2 transposed convolution comes out uneven "
        "(interior coefficient of variation)",
        spreads["transposed conv k=3, s=2"],
        ">",
        0.2,
        text_zh="常数图像经常数 3x3、步长 2 的转置卷积后不再均匀（内部变异系数）",
    )
    res.claim(
        "no_checkerboard_k4s2_or_resize",
        "kernel 4 with stride 2, and nearest x2 followed by a 3x3 convolution, keep it flat "
        "(largest interior coefficient of variation)",
        max(spreads["transposed conv k=4, s=2"], spreads["nearest x2 + 3x3 conv"]),
        "<=",
        1e-12,
        text_zh="核 4、步长 2 的转置卷积，以及最近邻 x2 加 3x3 卷积，都保持平坦（内部最大变异系数）",
    )

    # real digits: 8x8 -> 4x4 by 2x2 averaging, back to 8x8 by each method
    ds = data.load("digits")
    x = torch.tensor(ds.X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0  # (N, 1, 8, 8) in [0, 1]
    tr, te = data.train_test_split(len(x), cfg.test_fraction, ctx.numpy_generator("split"))
    small = F.avg_pool2d(x, 2)  # (N, 1, 4, 4)
    tg = ctx.torch_generator("init")
    w_sp = (torch.randn(4, 1, 3, 3, generator=tg) * 0.1).requires_grad_()  # 3x3 conv to r^2 = 4 channels
    b_sp = torch.zeros(4, requires_grad=True)
    w_tc = (torch.randn(1, 1, 4, 4, generator=tg) * 0.1).requires_grad_()  # 4x4 stride-2 transposed conv
    b_tc = torch.zeros(1, requires_grad=True)
    methods = {
        "nearest": lambda t: upsample_nearest(t, scale_factor=2),
        "bilinear (align_corners=False)": lambda t: upsample_bilinear2d(t, scale_factor=2, align_corners=False),
        "bilinear (align_corners=True)": lambda t: upsample_bilinear2d(t, size=(8, 8), align_corners=True),
        "sub-pixel conv (conv + PixelShuffle), learned": lambda t: pixel_shuffle(F.conv2d(t, w_sp, b_sp, padding=1), 2),
        "transposed conv 4x4/2, learned": lambda t: conv_transpose2d(t, w_tc, b_tc, stride=2, padding=1),
    }
    for params, key in (
        ([w_sp, b_sp], "sub-pixel conv (conv + PixelShuffle), learned"),
        ([w_tc, b_tc], "transposed conv 4x4/2, learned"),
    ):
        opt = torch.optim.Adam(params, lr=cfg.lr)
        for _ in ctx.progress(range(cfg.train_steps), total=cfg.train_steps, description=key):
            loss = ((methods[key](small[tr]) - x[tr]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    mse = {}
    with torch.no_grad():
        for name, f in methods.items():
            mse[name] = float(((f(small[te]) - x[te]) ** 2).mean())
            res.metric(f"test_mse[{name}]", mse[name])
    res.table(
        "digits",
        ["upsampler (4x4 -> 8x8)", "held-out MSE"],
        [(k, v) for k, v in mse.items()],
        caption_en="Digits averaged down to 4x4 and upsampled back; mean squared error on held-out images (pixels in [0, 1]).",
        caption_zh="手写数字先 2x2 平均降到 4x4 再上采样回 8x8；留出图像上的均方误差（像素取值 [0, 1]）。",
    )
    res.claim(
        "subpixel_beats_nearest",
        "a learned sub-pixel convolution (3x3 conv + PixelShuffle) reconstructs held-out digits better than "
        "nearest (MSE ratio learned / nearest)",
        mse["sub-pixel conv (conv + PixelShuffle), learned"] / mse["nearest"],
        "<",
        1.0,
        text_zh="学习得到的亚像素卷积（3x3 卷积 + PixelShuffle）在留出数字上的重建优于最近邻（MSE 比值）",
    )
    # max-unpooling puts the maxima back
    pooled, idx = F.max_pool2d(x[te], 2, return_indices=True)
    unpooled = max_unpool2d(pooled, idx, 2)

    fig, axes = new_figure(2, len(methods) + 2, figsize=(11, 3.4))
    with torch.no_grad():
        for row, i in enumerate(te[:2]):
            panels = [("original 8x8", x[i, 0]), ("input 4x4", small[i, 0])]
            panels += [(_short(name), f(small[i : i + 1])[0, 0]) for name, f in methods.items()]
            for ax, (title, img) in zip(axes[row], panels):
                ax.imshow(img.numpy(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if row == 0:
                    ax.set_title(title, fontsize=7)
    ctx.save_figure(
        fig,
        "digits",
        caption_en="Two held-out digits averaged down to 4x4 and upsampled back by each method (* = learned).",
        caption_zh="两张留出的数字降到 4x4 后用各方法上采样回 8x8（* 表示学习得到）。",
    )
    fig, axes = new_figure(1, 4, figsize=(10, 2.8))
    for ax, (title, img) in zip(axes, [*boards.items(), ("max-unpool of a digit", unpooled[0, 0])]):
        ax.imshow(img.numpy(), cmap="viridis")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    ctx.save_figure(
        fig,
        "checkerboard",
        caption_en="A constant image through constant-weight upsamplers: kernel 3 with stride 2 leaves a checkerboard; "
        "kernel 4 or resize-then-convolve do not. Right: max-unpooling keeps only the maxima.",
        caption_zh="常数图像经常数权重的上采样：核 3、步长 2 留下棋盘格；核 4 或先缩放再卷积则没有。"
        "右：最大反池化只保留最大值。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Forward + backward time of each operation vs torch's kernel on a (8, 16, 64, 64) batch, both
    on one thread (so that other processes on a shared machine do not decide the ratio)."""
    with torch_threads(1):
        return _bench(cfg, ctx)


def _bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    g = ctx.torch_generator("bench")
    x = torch.randn(8, 16, 64, 64, generator=g)
    w = torch.randn(16, 8, 4, 4, generator=g)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    cases = [
        (
            "nearest x2",
            lambda t: upsample_nearest(t, scale_factor=2),
            lambda t: F.interpolate(t, scale_factor=2),
            x,
            "F.interpolate",
        ),
        (
            "bilinear x2",
            lambda t: upsample_bilinear2d(t, scale_factor=2),
            lambda t: F.interpolate(t, scale_factor=2, mode="bilinear"),
            x,
            "F.interpolate",
        ),
        ("PixelShuffle r=2", lambda t: pixel_shuffle(t, 2), lambda t: F.pixel_shuffle(t, 2), x, "F.pixel_shuffle"),
        (
            "transposed conv 4x4/2",
            lambda t: conv_transpose2d(t, w, stride=2, padding=1),
            lambda t: F.conv_transpose2d(t, w, stride=2, padding=1),
            x,
            "F.conv_transpose2d",
        ),
        (
            "max-unpool 2x2",
            lambda t: max_unpool2d(t, idx, 2),
            lambda t: F.max_unpool2d(t, idx, 2),
            pooled,
            "F.max_unpool2d",
        ),
    ]
    rows = []
    for name, ours, ref, inp, ref_name in cases:
        times = []
        for fn in (ours, ref):
            best = math.inf
            for _ in range(5):
                t = inp.detach().requires_grad_()
                t0 = time.perf_counter()
                fn(t).sum().backward()
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        rows.append(
            BenchRow(name, times[0], times[1], f"torch.nn.functional ({ref_name})", "s", "forward + backward, 1 thread")
        )
    return rows
