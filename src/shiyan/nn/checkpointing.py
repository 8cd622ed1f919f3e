r"""Gradient checkpointing: keep a few activations, recompute the rest during the backward pass.

Back-propagation through $y = f_n \circ \dots \circ f_1 (x)$ needs, for every block $f_i$, the
tensors its backward uses (its input, pre-activations, dropout masks...). Keeping them all costs
memory proportional to the depth $n$. *Checkpointing* (Chen et al., 2016, "Training deep nets with
sublinear memory cost") splits the chain into $k$ segments, runs each checkpointed segment without
recording a graph and keeps only the segment's input $h_{b}$. In the backward pass, when the gradient
reaches the end of a segment, the segment is run again from $h_b$ -- this time recording -- and
back-propagated at once; its activations are freed before the next segment is recomputed.

Peak activation memory is then about (the $k$ stored segment inputs) + (one segment's activations):

$$M(k) \approx k\, a + \frac{n}{k}\, A, \qquad \text{minimised at } k^\star = \sqrt{n A / a},$$

with $a$ the size of a segment input and $A$ the activation memory of one block. With $A \approx a$
this is the $\sqrt n$ rule: $k = \sqrt n$ segments, $O(\sqrt n)$ memory, at the price of one extra
forward pass over every checkpointed segment (about a third more compute when the backward costs
twice the forward).

**The mechanism.** :class:`CheckpointFunction` is a ``torch.autograd.Function``. Its ``forward``
runs the segment under ``torch.no_grad()`` and saves only the segment's input tensors (through
``save_for_backward``, so saved-tensor hooks see them). Its ``backward`` detaches those inputs,
re-runs the segment with grad enabled and returns ``torch.autograd.grad`` of the recomputed output
with respect to the inputs and to the segment's parameters -- the parameters are passed to the
Function as explicit inputs, so the gradients flow even when the segment input needs no gradient.

**Randomness.** A segment that draws random numbers (dropout) must draw the *same* numbers when it
is recomputed, or the gradient belongs to a different network. With ``preserve_rng_state=True`` the
forward records torch's global CPU generator state (and the CUDA one for CUDA inputs) before running
the segment; the backward forks the generators (``torch.random.fork_rng``), restores the recorded
state, recomputes, and leaves the caller's generator state untouched. This is the one place this
module touches global random state: dropout layers draw from it, so it is what has to be replayed.
Layers that update buffers in forward (BatchNorm's running statistics in training mode) update them
again during recomputation; keep such layers outside checkpointed segments or in eval mode.

**Measuring memory.** :func:`measure_saved_activations` runs a forward + backward inside
``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd saves for backward passes through
the pack hook, which records its storage's bytes; a ``weakref.finalize`` on the packed handle
subtracts them when autograd frees the saved tensor. The running total over distinct storages
(parameters excluded) and its peak are deterministic -- the same on every run and every machine --
unlike the process' resident memory on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = [
    "CheckpointFunction",
    "SavedMemory",
    "checkpoint",
    "checkpoint_sequential",
    "default_segments",
    "measure_saved_activations",
    "segment_bounds",
    "sequential_cost",
]


class CheckpointFunction(torch.autograd.Function):
    """``forward(ctx, fn, preserve_rng_state, n_inputs, *inputs_then_params)``: see the module docstring."""

    @staticmethod
    def forward(ctx, fn, preserve_rng_state, n_inputs, *args):
        inputs, params = args[:n_inputs], args[n_inputs:]
        ctx.fn = fn
        ctx.n_inputs = n_inputs
        ctx.n_params = len(params)
        ctx.params = params
        ctx.preserve_rng_state = preserve_rng_state
        ctx.input_requires_grad = [isinstance(t, torch.Tensor) and t.requires_grad for t in inputs]
        if preserve_rng_state:
            ctx.cpu_rng = torch.get_rng_state()
            ctx.cuda_devices = sorted({t.device.index or 0 for t in inputs if t.is_cuda})
            ctx.cuda_rng = [torch.cuda.get_rng_state(d) for d in ctx.cuda_devices]
        ctx.save_for_backward(*inputs)  # the only activations kept: the segment's input
        with torch.no_grad():
            out = fn(*inputs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"checkpointed function must return one tensor; got {type(out).__name__}")
        return out

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [t.detach().requires_grad_(rg) for t, rg in zip(ctx.saved_tensors, ctx.input_requires_grad)]
        devices = ctx.cuda_devices if ctx.preserve_rng_state else []
        with torch.random.fork_rng(devices=devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                torch.set_rng_state(ctx.cpu_rng)
                for d, state in zip(devices, ctx.cuda_rng):
                    torch.cuda.set_rng_state(state, d)
            with torch.enable_grad():
                out = ctx.fn(*inputs)  # recompute, this time recording the graph
        wanted = [t for t, rg in zip(inputs, ctx.input_requires_grad) if rg]
        wanted += [p for p in ctx.params if p.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad_out, allow_unused=True) if wanted else ())
        input_grads = [next(grads) if rg else None for rg in ctx.input_requires_grad]
        param_grads = [next(grads) if p.requires_grad else None for p in ctx.params]
        return (None, None, None, *input_grads, *param_grads)


def checkpoint(
    fn: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    params: Iterable[torch.Tensor] = (),
    preserve_rng_state: bool = True,
) -> torch.Tensor:
    """``fn(*inputs)`` with its intermediate activations dropped and recomputed in backward.

    ``params`` are the tensors ``fn`` uses besides its inputs whose gradients are wanted (for a
    module, ``module.parameters()``). ``fn`` must return a single tensor and be deterministic given
    the global generator state (see the module docstring on dropout)."""
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    for i, t in enumerate(inputs):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"inputs[{i}] must be a torch.Tensor; got {type(t).__name__}")
    params = tuple(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch.Tensor; got {type(p).__name__}")
    return CheckpointFunction.apply(fn, bool(preserve_rng_state), len(inputs), *inputs, *params)


def default_segments(n_blocks: int) -> int:
    r"""$\lceil \sqrt{n} \rceil$ segments (at least 1)."""
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1; got {n_blocks}")
    return max(1, math.ceil(math.sqrt(n_blocks)))


def segment_bounds(n_blocks: int, segments: int) -> list[tuple[int, int]]:
    """Split ``range(n_blocks)`` into ``segments`` contiguous ``(start, stop)`` runs whose lengths
    differ by at most one (the longer ones first)."""
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1; got {n_blocks}")
    if not isinstance(segments, int) or not 1 <= segments <= n_blocks:
        raise ValueError(f"segments must be an int in [1, {n_blocks}]; got {segments!r}")
    base, extra = divmod(n_blocks, segments)
    bounds, start = [], 0
    for s in range(segments):
        stop = start + base + (1 if s < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _run_blocks(blocks: Sequence[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(h: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            h = block(h)
        return h

    return run


def checkpoint_sequential(
    blocks: Sequence[nn.Module] | nn.Sequential,
    x: torch.Tensor,
    segments: int | None = None,
    checkpointed: Iterable[int] | None = None,
    preserve_rng_state: bool = True,
) -> torch.Tensor:
    r"""Run ``blocks`` one after the other on ``x``, checkpointing whole segments.

    ``segments`` defaults to $\lceil\sqrt n\rceil$ (:func:`default_segments`). ``checkpointed`` lists
    the segment indices (0-based, negative allowed) whose activations are dropped; the default is
    every segment but the last -- the last one's activations are needed as soon as backward starts,
    so recomputing it would cost time and save nothing at the peak. Pass ``range(segments)`` to
    checkpoint them all, or ``()`` to checkpoint none (the plain model). Without grad mode
    everything just runs.
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks must not be empty")
    for i, b in enumerate(blocks):
        if not callable(b):
            raise TypeError(f"blocks[{i}] must be callable (an nn.Module); got {type(b).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    n = len(blocks)
    k = default_segments(n) if segments is None else segments
    bounds = segment_bounds(n, k)
    if checkpointed is None:
        chosen = set(range(k - 1))
    else:
        chosen = set()
        for s in checkpointed:
            if not isinstance(s, int) or not -k <= s < k:
                raise ValueError(f"checkpointed segment {s!r} is out of range for {k} segments")
            chosen.add(s % k)
    h = x
    for s, (start, stop) in enumerate(bounds):
        run = _run_blocks(blocks[start:stop])
        if s in chosen and torch.is_grad_enabled():
            params = [p for b in blocks[start:stop] if isinstance(b, nn.Module) for p in b.parameters()]
            h = checkpoint(run, h, params=params, preserve_rng_state=preserve_rng_state)
        else:
            h = run(h)
    return h


# --- measurement ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SavedMemory:
    """What autograd saved for backward during one forward + backward."""

    peak_bytes: int
    """Largest total size of distinct saved storages alive at once (parameters excluded)."""
    packed_bytes: int
    """Bytes of every pack event, counted each time (an upper bound that ignores sharing)."""
    n_packed: int
    """Number of tensors packed."""


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def measure_saved_activations(loss_fn: Callable[[], torch.Tensor], params: Iterable[torch.Tensor] = ()) -> SavedMemory:
    """Run ``loss = loss_fn()`` and ``torch.autograd.grad(loss, params)`` while counting, with
    saved-tensor hooks, the bytes autograd holds for backward; return the peak over the whole
    forward + backward (recomputations included).

    Storages shared by several saved tensors count once; storages of ``params`` are excluded (they
    exist anyway). Gradients are computed with ``torch.autograd.grad`` and discarded, so nothing's
    ``.grad`` changes."""
    params = [p for p in params if p.requires_grad]
    excluded = {_storage_key(p) for p in params}
    live: dict[tuple[str, int], list[int]] = {}  # storage -> [nbytes, handles alive]
    state = {"now": 0, "peak": 0, "packed": 0, "count": 0}

    class _Handle:
        __slots__ = ("tensor", "__weakref__")

        def __init__(self, tensor: torch.Tensor):
            self.tensor = tensor

    def release(key: tuple[str, int]) -> None:
        entry = live[key]
        entry[1] -= 1
        if entry[1] == 0:
            state["now"] -= entry[0]
            del live[key]

    def pack(t: torch.Tensor):
        handle = _Handle(t)
        key = _storage_key(t)
        nbytes = t.untyped_storage().nbytes()
        state["packed"] += nbytes
        state["count"] += 1
        if key not in excluded:
            if key in live:
                live[key][1] += 1
            else:
                live[key] = [nbytes, 1]
                state["now"] += nbytes
                state["peak"] = max(state["peak"], state["now"])
            weakref.finalize(handle, release, key)
        return handle

    def unpack(handle: _Handle) -> torch.Tensor:
        return handle.tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        loss = loss_fn()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        if params:
            torch.autograd.grad(loss, params)
        else:
            loss.backward()
        del loss
    return SavedMemory(int(state["peak"]), int(state["packed"]), int(state["count"]))


def sequential_cost(
    blocks: Sequence[nn.Module],
    x: torch.Tensor,
    segments: int | None = None,
    checkpointed: Iterable[int] | None = None,
    repeats: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[SavedMemory, float]:
    """Peak saved-activation memory (:func:`measure_saved_activations`) and the best time of
    ``repeats`` forward + backward passes of ``checkpoint_sequential(blocks, x, ...)`` with loss
    ``output.sum()``. ``checkpointed=()`` gives the plain model.

    ``clock`` defaults to wall time; ``time.thread_time`` (CPU time of the calling thread) with
    ``torch.set_num_threads(1)`` measures the work itself, unaffected by other processes on a busy
    machine."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    blocks = list(blocks)
    params = [p for b in blocks for p in b.parameters() if p.requires_grad]
    chosen = None if checkpointed is None else tuple(checkpointed)

    def loss_fn() -> torch.Tensor:
        return checkpoint_sequential(blocks, x, segments, chosen).sum()

    memory = measure_saved_activations(loss_fn, params)
    best = math.inf
    for _ in range(repeats):
        t0 = clock()
        torch.autograd.grad(loss_fn(), params)
        best = min(best, clock() - t0)
    return memory, best
