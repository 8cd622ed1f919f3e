"""S8 -- Mixture of experts: top-k routing, the Switch balancing loss, capacity, dense vs sparse compute."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.core.timing import best_time
from shiyan.core.train import TrainConfig, train
from shiyan.data.text import char_corpus, random_windows
from shiyan.nn.activations import GELU, FeedForward
from shiyan.nn.lm import LMConfig, TransformerLM
from shiyan.nn.moe import MoEFeedForward, expert_capacity, route_top_k

META = TopicMeta(
    slug="moe",
    category="LLM",
    date=dt.date(2025, 3, 4),
    title_en="Mixture of experts: routing, load balance and capacity",
    title_zh="混合专家：路由、负载均衡与容量",
    summary_en=(
        "A mixture-of-experts feed-forward layer sends each token to its top-k experts and computes only "
        "those. Written from the equations (Switch balancing loss, router z-loss, capacity with overflow "
        "through the residual), checked against a per-token loop, and trained on Shakespeare against dense "
        "models of equal parameters and of equal compute."
    ),
    summary_zh=(
        "混合专家前馈层把每个 token 送到得分最高的 k 个专家，只计算这些专家。按公式实现（Switch 负载均衡损失、"
        "路由 z-loss、容量限制与溢出 token 走残差），与逐 token 的循环实现对照，并在莎士比亚文本上与参数量相同、"
        "计算量相同的稠密模型比较。"
    ),
    implements=("shiyan.nn.moe",),
)


@dataclass(frozen=True)
class Config(TopicConfig):
    n_chars: int = 400_000
    """Characters of the complete Shakespeare used (the first ones; the last 10% are held out)."""
    seq_len: int = 64
    """Training context in characters."""
    batch_size: int = 16
    """Sequences per training step (the router sees batch_size * seq_len tokens at once)."""
    steps: int = 250
    """Training steps of every model."""
    d_model: int = 64
    """Width of the residual stream."""
    n_layers: int = 2
    """Transformer blocks."""
    n_experts: int = 8
    """Experts E per MoE layer."""
    expert_hidden: int = 64
    """Hidden width of one expert (and of the equal-compute dense FFN)."""
    capacity_factor: float = 1.25
    """Capacity factor cf during training."""
    balance_coef: float = 0.01
    """Weight of the Switch load-balancing loss in the balanced MoE."""
    z_coef: float = 0.001
    """Weight of the router z-loss."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, warm-up + cosine)."""
    eval_batches: int = 8
    """Held-out batches of the evaluation (fixed)."""
    capacity_grid: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
    """Capacity factors of the dropped-token measurement."""

    def validate(self) -> None:
        if self.n_chars < 10 * self.seq_len * self.batch_size:
            raise ConfigError(f"n_chars must be >= 10 * seq_len * batch_size; got {self.n_chars}")
        for name in ("seq_len", "batch_size", "steps", "d_model", "n_layers", "expert_hidden", "eval_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.n_experts < 2:
            raise ConfigError(f"n_experts must be >= 2; got {self.n_experts}")
        if self.d_model % 4:
            raise ConfigError(f"d_model must be divisible by 4 (attention heads); got {self.d_model}")
        if not self.capacity_factor > 0 or not self.capacity_grid or min(self.capacity_grid) <= 0:
            raise ConfigError("capacity_factor and every capacity_grid value must be > 0")
        if not self.balance_coef > 0 or self.z_coef < 0 or not self.lr > 0:
            raise ConfigError("balance_coef and lr must be > 0, z_coef >= 0")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_chars=60_000, batch_size=8, steps=60, d_model=32, n_experts=4, expert_hidden=32, eval_batches=2)

    @classmethod
    def full(cls) -> Config:
        return cls(n_chars=2_000_000, steps=3000, seq_len=128, d_model=128, n_layers=4, expert_hidden=128)


def _cv(load: np.ndarray) -> float:
    """Coefficient of variation std/mean of the tokens each expert receives."""
    return float(load.std() / load.mean())


def run(cfg: Config, ctx: RunContext) -> Result:
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    corpus = char_corpus("shakespeare", cfg.n_chars)
    train_ids, val_ids, chars = corpus.train, corpus.val, list(corpus.chars)
    gv = ctx.torch_generator("held-out")
    val = [random_windows(val_ids, cfg.seq_len, cfg.batch_size, gv) for _ in range(cfg.eval_batches)]
    E, h = cfg.n_experts, cfg.expert_hidden

    def evaluate(m) -> dict[str, float]:
        return {"loss": sum(float(m.loss(x, y)) for x, y in val) / len(val)}

    def moe(balance: float):
        return lambda d: MoEFeedForward(
            d, h, E, 1, capacity_factor=cfg.capacity_factor, balance_coef=balance, z_coef=cfg.z_coef
        )

    specs = {
        "dense_flops": ("dense, equal compute", lambda d: FeedForward(d, h, activation=GELU())),
        "dense_params": ("dense, equal parameters", lambda d: FeedForward(d, E * h, activation=GELU())),
        "moe": ("MoE, balancing loss", moe(cfg.balance_coef)),
        "moe_nobal": ("MoE, no balancing loss", moe(0.0)),
    }
    tc = TrainConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=min(20, cfg.steps // 5),
        eval_every=max(1, cfg.steps // 10),
        seed=cfg.seed,
    )
    lm_cfg = LMConfig(vocab_size=len(chars), d_model=cfg.d_model, n_layers=cfg.n_layers, max_seq_len=cfg.seq_len)
    models, hist = {}, {}
    for key in ctx.progress(list(specs), total=len(specs), description="training"):
        m = TransformerLM(lm_cfg, ffn=specs[key][1], generator=ctx.torch_generator("init"))
        hist[key] = train(
            m,
            lambda g: random_windows(train_ids, cfg.seq_len, cfg.batch_size, g),
            lambda net, x, y: net.loss(x, y) + getattr(net, "module", net).aux_loss(),
            tc,
            evaluate=evaluate,
        )
        models[key] = m.eval()
    loss = {k: hist[k].evals[-1][1]["loss"] for k in specs}

    # quality table: parameters, active FFN parameters per token, loss
    d = cfg.d_model
    ffn_active = {"dense_flops": 2 * d * h, "dense_params": 2 * d * E * h, "moe": 2 * d * h, "moe_nobal": 2 * d * h}
    rows = []
    for k, (label, _) in specs.items():
        rows.append([label, models[k].num_parameters(exclude_embeddings=True), ffn_active[k] * cfg.n_layers, loss[k]])
        res.metric(f"heldout_loss_{k}", loss[k], unit="nats/char", description=f"{label}, {cfg.steps} steps")
    res.table(
        "dense_vs_sparse",
        ["model", "parameters (no embeddings)", "FFN weights used per token", "held-out loss (nats/char)"],
        rows,
        caption_en=f"Character-level Shakespeare, {cfg.steps} steps, {cfg.n_layers} blocks, d = {d}; MoE: E = {E} "
        f"experts of width {h}, top-1, capacity factor {cfg.capacity_factor:g}.",
        caption_zh=f"莎士比亚字符级语言模型，{cfg.steps} 步，{cfg.n_layers} 个块，d = {d}；MoE：E = {E} 个宽 {h} 的专家，"
        f"top-1，容量因子 {cfg.capacity_factor:g}。",
    )
    res.claim(
        "moe_near_equal_compute_dense",
        "The top-1 MoE's held-out loss is within 0.05 nats/char of the dense model with the same compute per token",
        abs(loss["moe"] - loss["dense_flops"]),
        "<=",
        0.05,
        text_zh="top-1 MoE 的留出集损失与每 token 计算量相同的稠密模型相差不超过 0.05 奈特/字符",
    )
    res.claim(
        "equal_params_dense_still_better",
        "At this budget the dense model with the MoE's parameter count (E× the compute) beats the MoE "
        "(MoE loss minus its loss, nats/char)",
        loss["moe"] - loss["dense_params"],
        ">",
        0.0,
        text_zh="在这个训练量下，参数量与 MoE 相同（计算量为 E 倍）的稠密模型优于 MoE（MoE 损失减去其损失）",
    )

    # load balance and capacity on held-out tokens
    inputs = {k: _moe_inputs(models[k], val) for k in ("moe", "moe_nobal")}
    loads, drops = {}, {}
    for k in inputs:
        loads[k] = np.stack([_routing_load(b.ffn, xs) for b, xs in zip(models[k].blocks, inputs[k])])  # (L, E)
        drops[k] = np.array([_dropped_fraction(models[k], inputs[k], cf) for cf in cfg.capacity_grid])
    cv = {k: float(np.mean([_cv(row) for row in loads[k]])) for k in loads}
    for k in cv:
        res.metric(f"load_cv_{k}", cv[k], description="std/mean of tokens per expert, mean over layers")
    res.claim(
        "balancing_loss_evens_load",
        "The balancing loss evens out the expert load: coefficient of variation with it / without it",
        cv["moe"] / cv["moe_nobal"],
        "<=",
        0.75,
        text_zh="负载均衡损失让专家负载更均匀：有它与没有它时专家负载变异系数之比",
    )
    i1 = min(range(len(cfg.capacity_grid)), key=lambda i: abs(cfg.capacity_grid[i] - 1.0))
    cf1 = cfg.capacity_grid[i1]
    res.claim(
        "fewer_drops_with_balancing",
        f"At capacity factor {cf1:g}, the balanced router drops fewer tokens (dropped fraction: with − without)",
        float(drops["moe"][i1] - drops["moe_nobal"][i1]),
        "<",
        0.0,
        text_zh=f"容量因子 {cf1:g} 时，均衡后的路由丢弃的 token 更少（丢弃比例：有均衡损失 − 无均衡损失）",
    )
    T = cfg.batch_size * cfg.seq_len
    bound = np.array([max(0.0, 1 - E * expert_capacity(T, E, 1, cf) / T) for cf in cfg.capacity_grid])
    slack = float(min((drops[k] - bound).min() for k in drops))
    res.claim(
        "drops_respect_slot_count",
        "No capacity factor keeps more tokens than there are slots: measured drop fraction − (1 − E·C/T) ≥ 0",
        slack,
        ">=",
        -1e-12,
        text_zh="任何容量因子下保留的 token 都不超过槽位总数：实测丢弃比例 − (1 − E·C/T) ≥ 0",
    )
    res.table(
        "dropped_vs_capacity",
        ["capacity factor", "C per expert", "lower bound 1 − E·C/T", "dropped, balanced", "dropped, unbalanced"],
        [
            [cf, expert_capacity(T, E, 1, cf), bound[i], drops["moe"][i], drops["moe_nobal"][i]]
            for i, cf in enumerate(cfg.capacity_grid)
        ],
        caption_en=f"Fraction of held-out tokens dropped (passed through the residual) per MoE layer, T = {T} tokens "
        "per batch, averaged over layers and batches.",
        caption_zh=f"留出集 token 被丢弃（直接走残差）的比例，每批 T = {T} 个 token，对层和批取平均。",
    )
    _figures(cfg, ctx, specs, hist, loads, drops, bound, models["moe"], inputs["moe"], val, chars)
    return res


def _moe_inputs(model: TransformerLM, val) -> list[list[torch.Tensor]]:
    """Inputs (T, d) of every MoE layer on every held-out batch: [layer][batch]."""
    captured: list[list[torch.Tensor]] = [[] for _ in model.blocks]
    hooks = [
        b.ffn.register_forward_pre_hook(
            lambda mod, args, i=i: captured[i].append(args[0].reshape(-1, args[0].shape[-1]))
        )
        for i, b in enumerate(model.blocks)
    ]
    with torch.no_grad():
        for x, _ in val:
            model(x)
    for hk in hooks:
        hk.remove()
    return captured


def _probs(moe: MoEFeedForward, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(moe.router_logits(x), dim=-1)


def _routing_load(moe: MoEFeedForward, layer_inputs: list[torch.Tensor]) -> np.ndarray:
    """Tokens whose top-1 choice is each expert (before the capacity limit), summed over batches."""
    counts = np.zeros(moe.n_experts)
    for x in layer_inputs:
        counts += np.bincount(_probs(moe, x).argmax(-1).numpy(), minlength=moe.n_experts)
    return counts


def _dropped_fraction(model: TransformerLM, inputs: list[list[torch.Tensor]], cf: float) -> float:
    fracs = []
    for block, layer_inputs in zip(model.blocks, inputs):
        moe = block.ffn
        for x in layer_inputs:
            cap = expert_capacity(x.shape[0], moe.n_experts, moe.k, cf)
            r = route_top_k(_probs(moe, x), moe.k, cap)
            fracs.append(1.0 - float(r.keep.float().mean()))
    return float(np.mean(fracs))


def _figures(cfg, ctx, specs, hist, loads, drops, bound, moe_model, moe_inputs, val, chars) -> None:
    fig, ax = new_figure()
    for i, (k, (label, _)) in enumerate(specs.items()):
        ax.plot(
            [s for s, _ in hist[k].evals], [m["loss"] for _, m in hist[k].evals], marker="o", color=f"C{i}", label=label
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title("Dense vs sparse feed-forward layers")
    ax.legend()
    ctx.save_figure(
        fig,
        "heldout-loss",
        caption_en="Held-out loss during training for the two dense baselines and the two MoE models.",
        caption_zh="训练过程中两个稠密基线与两个 MoE 模型的留出集损失。",
    )

    E = cfg.n_experts
    fig, axes = new_figure(1, 2, figsize=(10, 4))
    for ax, k, title in ((axes[0], "moe_nobal", "no balancing loss"), (axes[1], "moe", "balancing loss")):
        share = loads[k] / loads[k].sum(axis=1, keepdims=True)  # (L, E)
        width = 0.8 / share.shape[0]
        for layer in range(share.shape[0]):
            ax.bar(np.arange(E) + layer * width, share[layer], width=width, label=f"layer {layer + 1}")
        ax.axhline(1 / E, color="k", ls="--", lw=1, label="uniform 1/E")
        ax.set_xlabel("expert")
        ax.set_ylabel("share of held-out tokens")
        ax.set_title(title)
        ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "expert-load",
        caption_en="Share of held-out tokens each expert receives (top-1 choice, before capacity), per layer.",
        caption_zh="每个专家分到的留出集 token 比例（top-1 选择，容量限制之前），按层显示。",
    )

    fig, ax = new_figure()
    grid = np.array(cfg.capacity_grid)
    ax.plot(grid, drops["moe"], marker="o", label="balancing loss")
    ax.plot(grid, drops["moe_nobal"], marker="s", label="no balancing loss")
    ax.plot(grid, bound, "k--", lw=1, label="lower bound 1 − E·C/T")
    ax.set_xlabel("capacity factor")
    ax.set_ylabel("fraction of tokens dropped")
    ax.set_title("Dropped tokens vs capacity")
    ax.legend()
    ctx.save_figure(
        fig,
        "dropped-vs-capacity",
        caption_en="Measured fraction of held-out tokens that overflow their expert, against the capacity factor.",
        caption_zh="实测的留出集 token 溢出比例随容量因子的变化。",
    )

    # routing of layer 1 by the current input character
    first = moe_model.blocks[0].ffn
    x_ids = torch.cat([x.reshape(-1) for x, _ in val])
    choice = torch.cat([_probs(first, xi).argmax(-1) for xi in moe_inputs[0]])
    counts = np.zeros((len(chars), E))
    np.add.at(counts, (x_ids.numpy(), choice.numpy()), 1)
    top = np.argsort(-counts.sum(1))[:20]
    frac = counts[top] / counts[top].sum(1, keepdims=True)
    fig, ax = new_figure(figsize=(7, 6))
    im = ax.imshow(frac, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(top)), [repr(chars[i])[1:-1].replace(" ", "␣") for i in top])
    ax.set_xticks(range(E))
    ax.set_xlabel("expert chosen in layer 1")
    ax.set_ylabel("input character")
    ax.set_title("Routing by character (balanced MoE)")
    fig.colorbar(im, ax=ax, label="share of that character's tokens")
    ctx.save_figure(
        fig,
        "routing",
        caption_en="Which expert the first MoE layer picks for the 20 most frequent input characters (held-out text).",
        caption_zh="第一层 MoE 为最常见的 20 个输入字符选择的专家（留出集文本）。",
    )


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Sparse dispatch (gather, per-expert FFN, index_add) against computing every expert on every token."""
    rows = []
    with torch_threads(1), torch.no_grad():
        g = ctx.torch_generator("bench")
        E, h, d = cfg.n_experts, cfg.expert_hidden, cfg.d_model
        moe = MoEFeedForward(d, h, E, 1, generator=g).eval()
        w1 = torch.stack([e.w1.weight.T for e in moe.experts])  # (E, d, h)
        b1 = torch.stack([e.w1.bias for e in moe.experts])  # (E, h)
        w2 = torch.stack([e.w2.weight.T for e in moe.experts])  # (E, h, d)
        b2 = torch.stack([e.w2.bias for e in moe.experts])  # (E, d)
        for T in (1024, 8192):
            x = torch.randn(T, d, generator=g)

            def dense(x=x):
                p = torch.softmax(moe.router(x), -1)  # (T, E)
                top = torch.zeros_like(p).scatter(1, p.argmax(-1, keepdim=True), 1.0) * p  # (T, E) top-1 gates
                hid = torch.nn.functional.gelu(torch.einsum("td,edh->eth", x, w1) + b1[:, None])  # (E, T, h)
                y = torch.einsum("eth,ehd->etd", hid, w2) + b2[:, None]  # (E, T, d)
                return torch.einsum("te,etd->td", top, y)

            torch.testing.assert_close(moe(x), dense(), atol=1e-5, rtol=1e-4)
            rows.append(
                BenchRow(
                    f"top-1 MoE forward, T = {T} tokens, E = {E}, d = {d}, expert width {h}",
                    best_time(lambda x=x: moe(x), 5),
                    best_time(dense, 5),
                    "every expert on every token (torch.einsum), masked to the top-1 gate",
                    note="one thread",
                )
            )
    return rows
