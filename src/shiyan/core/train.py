r"""The one training loop: AdamW, linear warm-up + cosine decay, gradient clipping, optional
bf16 autocast or fp16 with a dynamic loss scaler, periodic evaluation, atomic checkpoints with
exact resume, and DistributedDataParallel when launched under ``torchrun``.

Learning-rate schedule (step $t$ from 0, warm-up $W$, total $T$, peak $\eta$, floor $\rho\eta$):

$$\eta_t = \begin{cases} \eta\,(t+1)/W & t < W \\
 \rho\eta + \tfrac12(1-\rho)\eta\,\bigl(1 + \cos\bigl(\pi\,\tfrac{t-W}{T-W}\bigr)\bigr) & t \ge W \end{cases}$$

Exact resume: the checkpoint holds the model, the optimizer, the loss scaler, the step, the
history and the state of the generator that draws batches (and torch's global generator, which
dropout uses), so a run killed at any point and resumed from its last checkpoint ends with the
same parameters and losses as one that never stopped.

Data: ``next_batch(generator)`` returns the *global* batch ``(x, y)``; under DDP each rank keeps
its slice (:func:`shard`), and DDP's gradient averaging makes one step on $P$ processes equal one
step on one process with the same global batch.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from shiyan.core.checkpoint import load_checkpoint, save_checkpoint
from shiyan.optim import AdamW, LossScaler

Batch = tuple[Tensor, Tensor]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of :func:`train`."""

    steps: int = 1000
    """Optimizer steps T."""
    lr: float = 3e-3
    """Peak learning rate η."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction ρ of the peak."""
    warmup_steps: int = 50
    """Linear warm-up steps W."""
    weight_decay: float = 0.1
    """AdamW's decoupled weight decay λ (applied to matrices only)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam's β1, β2."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """fp32; bf16 autocast; or fp16 autocast with dynamic loss scaling."""
    eval_every: int = 100
    """Evaluate every this many steps (and at the end); 0 only at the end."""
    checkpoint_every: int = 0
    """Write a checkpoint every this many steps (0: never)."""
    seed: int = 0
    """Seed of the batch generator (and of dropout)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"TrainConfig.steps must be >= 1; got {self.steps}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"TrainConfig.warmup_steps must be in [0, steps]; got {self.warmup_steps}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"TrainConfig.lr must be > 0 and min_lr_ratio in [0, 1]; got {self.lr}, {self.min_lr_ratio}"
            )
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be fp32, bf16 or fp16; got {self.precision!r}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Warm-up then cosine decay (module docstring)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices (weights of linear and embedding layers), not biases or norm gains."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def distributed() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside ``torch.distributed``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(batch: Batch, rank: int, world: int) -> Batch:
    """Rank ``rank``'s contiguous slice of a global batch (its size must divide by ``world``)."""
    x, y = batch
    if x.shape[0] % world:
        raise ValueError(f"global batch of {x.shape[0]} does not divide over {world} processes")
    n = x.shape[0] // world
    return x[rank * n : (rank + 1) * n], y[rank * n : (rank + 1) * n]


@dataclasses.dataclass
class TrainHistory:
    """Per-step training loss and learning rate; evaluations as (step, metrics)."""

    steps: list[int] = dataclasses.field(default_factory=list)
    loss: list[float] = dataclasses.field(default_factory=list)
    lr: list[float] = dataclasses.field(default_factory=list)
    skipped: list[int] = dataclasses.field(default_factory=list)
    evals: list[tuple[int, dict[str, float]]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_state(self) -> dict:
        return {
            "steps": self.steps,
            "loss": self.loss,
            "lr": self.lr,
            "skipped": self.skipped,
            "evals": [[s, dict(m)] for s, m in self.evals],
            "seconds": self.seconds,
        }

    @classmethod
    def from_state(cls, d: dict) -> TrainHistory:
        return cls(d["steps"], d["loss"], d["lr"], d["skipped"], [(s, m) for s, m in d["evals"]], d["seconds"])


def _autocast(precision: str, device: str):
    if precision == "fp32":
        return torch.autocast(device_type=device, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


def train(
    model: nn.Module,
    next_batch: Callable[[torch.Generator], Batch],
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    cfg: TrainConfig,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = True,
    progress: Callable | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainHistory:
    """Train ``model`` for ``cfg.steps`` steps and return its history.

    ``loss_fn(model, x, y)`` returns the scalar loss of a (local) batch. With ``checkpoint_path``
    and ``resume=True`` an existing checkpoint there is loaded first and training continues from
    its step. ``progress`` wraps the step iterator (e.g. ``ctx.progress``); ``on_step(step, loss)``
    is called after every step (tests use it to interrupt a run).
    """
    rank, world = distributed()
    device = next(model.parameters()).device.type
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    optimizer = AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    scaler = LossScaler(enabled=cfg.precision == "fp16")
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    history = TrainHistory()
    start = 0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and resume and path.exists():
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        batch_gen.set_state(state["batch_generator"])
        torch.set_rng_state(state["torch_rng"])
        history = TrainHistory.from_state(state["history"])
        start = int(state["step"])
    else:
        torch.manual_seed(cfg.seed + rank)

    def checkpoint(step: int) -> None:
        if path is None or rank != 0:
            return
        save_checkpoint(
            path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "batch_generator": batch_gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history.to_state(),
                "step": step,
            },
        )

    def run_eval(step: int) -> None:
        if evaluate is None:
            return
        was = model.training
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model).items()}
        model.train(was)
        history.evals.append((step, metrics))

    import time

    t0 = time.perf_counter()
    model.train()
    steps = range(start, cfg.steps)
    for step in progress(steps, total=len(steps), description="training") if progress else steps:
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = shard(next_batch(batch_gen), rank, world)
        with _autocast(cfg.precision, device):
            loss = loss_fn(net, x, y)
        if not torch.isfinite(loss) and cfg.precision != "fp16":
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scale_before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        if scaler.is_enabled() and scaler.get_scale() < scale_before:
            history.skipped.append(step)
        history.steps.append(step)
        history.loss.append(float(loss.detach()))
        history.lr.append(lr)
        done = step + 1
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            run_eval(done)
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            history.seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            checkpoint(done)
        if on_step is not None:
            on_step(step, history.loss[-1])
    run_eval(cfg.steps)
    history.seconds += time.perf_counter() - t0
    if path is not None:
        checkpoint(cfg.steps)
    return history


def lm_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Next-token cross-entropy plus the model's auxiliary losses (MoE balancing, ...), if it has any.
    Works on the bare model and on a DistributedDataParallel wrapper."""
    inner = getattr(model, "module", model)
    logits = model(x)  # (B, T, V)
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    aux = getattr(inner, "aux_loss", None)
    return loss + aux() if callable(aux) else loss


@dataclasses.dataclass
class CorpusRun:
    """What :func:`train_lm_on_corpus` measured."""

    held_out_loss: float
    """Mean next-token cross-entropy on the corpus's fixed held-out windows after the last step (nats)."""
    seconds: float
    """Wall-clock training time (evaluation included)."""
    history: TrainHistory

    @property
    def loss_curve(self) -> list[float]:
        return self.history.loss


def train_lm_on_corpus(
    model: nn.Module,
    corpus,
    cfg: TrainConfig,
    *,
    seq_len: int,
    batch_size: int,
    eval_windows: int = 64,
    progress: Callable | None = None,
) -> CorpusRun:
    """Train a language model on random windows of ``corpus`` (a :class:`shiyan.data.text.CharCorpus`) with
    :func:`train` and :func:`lm_loss`, then measure the held-out loss on ``eval_windows`` fixed windows.
    Every sequence topic trains this way, so their numbers are comparable."""
    evaluate = corpus.evaluator(seq_len, n_windows=eval_windows, batch_size=batch_size)
    history = train(
        model,
        lambda g: corpus.batch("train", seq_len, batch_size, g),
        lm_loss,
        cfg,
        evaluate=evaluate,
        progress=progress,
    )
    return CorpusRun(held_out_loss=history.evals[-1][1]["held_out_loss"], seconds=history.seconds, history=history)
