"""D8 Gradient checkpointing: drop activations in the forward pass, recompute them in the backward
pass; peak saved-activation memory and extra time against the number of segments on a deep MLP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time

import torch
from torch import nn

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.nn.checkpointing import checkpoint_sequential, default_segments, segment_bounds, sequential_cost

META = TopicMeta(
    slug="gradient-checkpointing",
    category="DL",
    date=dt.date(2024, 5, 8),
    title_en="Gradient checkpointing: trading recomputation for memory",
    title_zh="梯度检查点：用重计算换显存",
    summary_en=(
        "A checkpoint written as a torch.autograd.Function that keeps only segment inputs and replays the "
        "random state for dropout; gradients equal the plain model, and sqrt(n) segments cut peak "
        "activation memory several-fold for one extra forward pass."
    ),
    summary_zh=(
        "用 torch.autograd.Function 自己实现的检查点：只保留分段输入，并为 dropout 重放随机状态；"
        "梯度与原模型一致，√n 分段以多一次前向为代价把激活的峰值内存降低数倍。"
    ),
    implements=("shiyan.nn.checkpointing",),
)


@dataclasses.dataclass(frozen=True)
class Config(TopicConfig):
    depth: int = 32
    """Number of residual MLP blocks n."""
    width: int = 256
    """Model width d (the hidden layer of each block is 4d)."""
    batch: int = 128
    """Rows per forward pass."""
    dropout: float = 0.0
    """Dropout inside the blocks of the memory/time sweep (CPU dropout masks are costly to redraw)."""
    check_dropout: float = 0.1
    """Dropout of the float64 model on which gradients are compared (the RNG replay is exercised)."""
    repeats: int = 5
    """Timed forward + backward passes per setting (the fastest counts)."""
    check_time: bool = True
    """Make the time-overhead claim (off in the quick profile, whose model is too small to time)."""
    max_time_overhead: float = 0.35
    """Largest accepted extra time of sqrt(n) segments over the plain model."""

    def validate(self) -> None:
        for name in ("depth", "width", "batch", "repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("dropout", "check_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1); got {getattr(self, name)}")
        if self.max_time_overhead <= 0:
            raise ConfigError(f"max_time_overhead must be > 0; got {self.max_time_overhead}")

    @classmethod
    def quick(cls) -> Config:
        return cls(width=32, batch=16, repeats=1, check_time=False)


class Block(nn.Module):
    r"""$x + W_2\,\mathrm{dropout}(\mathrm{GELU}(W_1 \mathrm{LayerNorm}(x)))$, a Transformer-style MLP block."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.down = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.drop(nn.functional.gelu(self.up(self.norm(x)))))


def make_blocks(cfg: Config, g: torch.Generator, dropout: float, dtype=torch.float32) -> list[Block]:
    blocks = [Block(cfg.width, dropout).to(dtype) for _ in range(cfg.depth)]
    with torch.no_grad():  # weights from the run's generator, not the global one
        for b in blocks:
            for lin in (b.up, b.down):
                bound = 1 / math.sqrt(lin.in_features)
                lin.weight.copy_((torch.rand(lin.weight.shape, generator=g, dtype=dtype) * 2 - 1) * bound)
                lin.bias.copy_((torch.rand(lin.bias.shape, generator=g, dtype=dtype) * 2 - 1) * bound)
    return blocks


def _grad_difference(cfg: Config, ctx: RunContext) -> tuple[float, float]:
    """Largest |gradient difference| between the plain model and sqrt(n) checkpointed segments,
    in float64 with dropout (masks replayed) and in float32 without."""
    out = []
    for dtype, p in ((torch.float64, cfg.check_dropout), (torch.float32, 0.0)):
        blocks = make_blocks(cfg, ctx.torch_generator("grad-check", str(dtype)), p, dtype)
        x = torch.randn(min(cfg.batch, 16), cfg.width, generator=ctx.torch_generator("x"), dtype=dtype)
        params = [q for b in blocks for q in b.parameters()]
        grads = []
        for checkpointed in ((), None):
            torch.manual_seed(cfg.seed)  # dropout draws from the global generator: same masks for both
            loss = (checkpoint_sequential(blocks, x, checkpointed=checkpointed) ** 2).mean()
            grads.append(torch.autograd.grad(loss, params))
        out.append(max(float((a - b).abs().max()) for a, b in zip(*grads)))
    return out[0], out[1]


def _interleaved_times(runs: dict, params: list[torch.Tensor], repeats: int, ctx: RunContext) -> dict:
    """Best CPU time of ``torch.autograd.grad(run(), params)`` for every ``run`` (a function returning
    the loss), measured in rounds that visit every setting once, so that a slow spell on a shared
    machine does not land on one setting only."""
    best = dict.fromkeys(runs, math.inf)
    for _ in ctx.progress(range(repeats), total=repeats, description="timing rounds"):
        for key, loss_fn in runs.items():
            t0 = time.thread_time()
            torch.autograd.grad(loss_fn(), params)
            best[key] = min(best[key], time.thread_time() - t0)
    return best


def _loss_fn(blocks, x, segments: int | None, checkpointed):
    return lambda: checkpoint_sequential(blocks, x, segments, checkpointed).sum()


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    err64, err32 = _grad_difference(cfg, ctx)
    res.claim(
        "gradients_equal",
        "gradients with sqrt(n) checkpointed segments equal the plain model's: float64 with dropout (masks "
        "replayed), largest |difference|",
        err64,
        "<=",
        1e-12,
        text_zh="√n 分段检查点的梯度等于原模型（float64、含 dropout，掩码重放），最大绝对差",
    )
    res.claim(
        "gradients_equal_float32",
        "the same in float32 without dropout, largest |difference|",
        err32,
        "<=",
        1e-6,
        text_zh="float32、无 dropout 时同样一致，最大绝对差",
    )

    n = cfg.depth
    blocks = make_blocks(cfg, ctx.torch_generator("model"), cfg.dropout)
    x = torch.randn(cfg.batch, cfg.width, generator=ctx.torch_generator("x"))
    sqrt_k = default_segments(n)
    ks = sorted({k for k in (2, 4, sqrt_k, 8, 16, n) if 1 <= k <= n})
    plain, _ = sequential_cost(blocks, x, checkpointed=())
    memory = {k: sequential_cost(blocks, x, segments=k)[0] for k in ks}
    params = [p for b in blocks for p in b.parameters()]
    runs = {None: _loss_fn(blocks, x, None, ())} | {k: _loss_fn(blocks, x, k, None) for k in ks}
    times = _interleaved_times(runs, params, cfg.repeats, ctx)
    t_plain = times[None]
    sweep = {k: (memory[k], times[k]) for k in ks}

    # memory model: segment s recomputed while inputs 0..s are held; a = one boundary, A = one block
    a = cfg.batch * cfg.width * 4
    per_block = plain.peak_bytes / n
    predicted = {
        k: max((s + 1) * a + (stop - start) * per_block - a for s, (start, stop) in enumerate(segment_bounds(n, k)))
        for k in ks
    }
    rows = [("plain", plain.peak_bytes / 2**20, 1.0, "", t_plain * 1e3, 1.0)]
    for k in ks:
        mem, t = sweep[k]
        rows.append(
            (k, mem.peak_bytes / 2**20, plain.peak_bytes / mem.peak_bytes, predicted[k] / 2**20, t * 1e3, t / t_plain)
        )
    res.table(
        "sweep",
        ["segments", "peak saved MiB", "memory ratio plain/ckpt", "model MiB", "CPU ms", "time ratio ckpt/plain"],
        rows,
        caption_en=f"{n} residual MLP blocks (d={cfg.width}, batch {cfg.batch}); every segment but the last is "
        "checkpointed. Peak bytes of tensors autograd holds for backward (saved-tensor hooks); time: best of "
        f"{cfg.repeats} forward + backward passes in single-thread CPU time.",
        caption_zh=f"{n} 个残差 MLP 块（d={cfg.width}，批大小 {cfg.batch}）；除最后一段外都做检查点。"
        "峰值为 autograd 为反向保存的张量字节数（saved-tensor hooks 统计）；时间为 "
        f"{cfg.repeats} 次前向+反向中最快一次的单线程 CPU 时间。",
    )
    mem_sqrt, t_sqrt = sweep[sqrt_k]
    ratio = plain.peak_bytes / mem_sqrt.peak_bytes
    overhead = t_sqrt / t_plain - 1
    res.metric("memory_ratio_sqrt_n", ratio, "x")
    res.metric("time_overhead_sqrt_n", overhead, "")
    res.metric(
        "bytes_per_block_over_boundary", per_block / a, "", "A / a: activation bytes of a block per boundary tensor"
    )
    res.claim(
        "memory_ratio_sqrt_n",
        f"sqrt(n) = {sqrt_k} segments lower the peak saved-activation memory at least 4x (plain / checkpointed)",
        ratio,
        ">=",
        4.0,
        text_zh=f"√n = {sqrt_k} 段使激活的峰值内存至少降低 4 倍（原模型 / 检查点）",
    )
    res.claim(
        "memory_model_fits",
        "the count 'inputs of segments 0..s plus segment s's activations' predicts every measured peak "
        "(largest relative error)",
        max(abs(sweep[k][0].peak_bytes / predicted[k] - 1) for k in ks),
        "<=",
        0.01,
        text_zh="“第 0..s 段的输入加第 s 段的激活”这一计数预测了每个实测峰值（最大相对误差）",
    )
    if cfg.check_time:
        res.claim(
            "time_overhead_sqrt_n",
            f"the extra forward pass costs at most {cfg.max_time_overhead:.0%} more time at sqrt(n) segments "
            "(single-thread CPU time, ckpt / plain - 1)",
            overhead,
            "<=",
            cfg.max_time_overhead,
            text_zh=f"√n 分段时多出的一次前向最多增加 {cfg.max_time_overhead:.0%} 的时间（单线程 CPU 时间，检查点/原模型 - 1）",
        )

    fig, (ax, ax_t) = new_figure(1, 2, figsize=(9.0, 3.8))
    ax.plot(ks, [sweep[k][0].peak_bytes / 2**20 for k in ks], "o-", label="measured (saved-tensor hooks)")
    ax.plot(ks, [predicted[k] / 2**20 for k in ks], "x--", label="model: inputs held + one segment")
    ax.axhline(plain.peak_bytes / 2**20, color="gray", ls=":", label="plain model")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("segments k")
    ax.set_ylabel("peak saved activations (MiB)")
    ax.legend(fontsize=8)
    ax_t.plot(ks, [sweep[k][1] / t_plain for k in ks], "s-", color="tab:red")
    ax_t.axhline(1.0, color="gray", ls=":")
    ax_t.set_xscale("log", base=2)
    ax_t.set_xlabel("segments k")
    ax_t.set_ylabel("time / plain model")
    for a in (ax, ax_t):
        a.axvline(sqrt_k, color="gray", lw=0.8)
    ctx.save_figure(
        fig,
        "sweep",
        caption_en="Left: peak activation memory against the number of segments (log scales), measured and "
        "predicted. Right: forward + backward time relative to the plain model. The vertical line marks sqrt(n).",
        caption_zh="左：激活峰值内存随分段数的变化（对数坐标），实测与预测。右：前向加反向时间相对原模型的比值。"
        "竖线为 √n。",
    )
    return res


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """sqrt(n) segments against the plain model (memory, time) and against torch.utils.checkpoint (time)."""
    from torch.utils.checkpoint import checkpoint_sequential as torch_checkpoint_sequential

    blocks = make_blocks(cfg, ctx.torch_generator("model"), cfg.dropout)
    x = torch.randn(cfg.batch, cfg.width, generator=ctx.torch_generator("x"))
    params = [p for b in blocks for p in b.parameters()]
    k = default_segments(cfg.depth)
    seq = nn.Sequential(*blocks)
    with torch_threads(1):
        plain, _ = sequential_cost(blocks, x, checkpointed=())
        ours, _ = sequential_cost(blocks, x, segments=k)
        runs = {
            "plain": _loss_fn(blocks, x, None, ()),
            "ours": _loss_fn(blocks, x, k, None),
            "torch": lambda: torch_checkpoint_sequential(seq, k, x, use_reentrant=False).sum(),
        }
        times = _interleaved_times(runs, params, cfg.repeats, ctx)
    t_plain, t_ours, t_torch = times["plain"], times["ours"], times["torch"]
    return [
        BenchRow(
            f"peak saved activations, {k} segments",
            ours.peak_bytes,
            plain.peak_bytes,
            "the same model without checkpointing",
            "bytes",
            f"memory ratio plain/ckpt = {plain.peak_bytes / ours.peak_bytes:.2f}",
        ),
        BenchRow(f"forward + backward, {k} segments", t_ours, t_plain, "the same model without checkpointing", "s"),
        BenchRow(
            f"forward + backward, {k} segments",
            t_ours,
            t_torch,
            "torch.utils.checkpoint.checkpoint_sequential (use_reentrant=False)",
            "s",
        ),
    ]
