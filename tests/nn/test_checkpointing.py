"""Gradient checkpointing: gradients equal to the plain model, RNG replay for dropout, and the
saved-activation meter against a closed-form count."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from shiyan.nn.checkpointing import (
    checkpoint,
    checkpoint_sequential,
    default_segments,
    measure_saved_activations,
    segment_bounds,
    sequential_cost,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread avoids OpenMP contention on a busy machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class _Residual(nn.Module):
    """x + W2 dropout(GELU(W1 LayerNorm(x))): a Transformer-style MLP block."""

    def __init__(self, width: int, p: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 2 * width)
        self.drop = nn.Dropout(p)
        self.down = nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.down(self.drop(torch.nn.functional.gelu(self.up(self.norm(x)))))


def _blocks(n: int, width: int = 16, p: float = 0.0, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [_Residual(width, p).double() for _ in range(n)]


def _grads(blocks, x, seed: int = 123, **kwargs):
    params = [p for b in blocks for p in b.parameters()]
    torch.manual_seed(seed)
    out = checkpoint_sequential(blocks, x, **kwargs)
    loss = (out**2).sum()
    wrt = params + ([x] if x.requires_grad else [])
    return out.detach(), torch.autograd.grad(loss, wrt)


def _max_diff(a, b) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b))


# --- segments --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 9, 10, 16, 17, 100])
def test_segment_bounds_cover_the_blocks_evenly(n):
    for k in {1, default_segments(n), n, max(1, n // 3)}:
        bounds = segment_bounds(n, k)
        assert len(bounds) == k
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        lengths = [stop - start for start, stop in bounds]
        assert min(lengths) >= 1 and max(lengths) - min(lengths) <= 1
    assert default_segments(n) == math.ceil(math.sqrt(n))


# --- gradients -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"segments": 1, "checkpointed": [0]},
        {"segments": 3, "checkpointed": range(3)},
        {"segments": 9, "checkpointed": [0, 4, -1]},
        {"segments": 2, "checkpointed": []},
    ],
)
@pytest.mark.parametrize("input_grad", [True, False])
def test_gradients_equal_the_plain_model_float64(kwargs, input_grad):
    blocks = _blocks(9)
    x = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(input_grad)
    out0, g0 = _grads(blocks, x, checkpointed=())
    out1, g1 = _grads(blocks, x, **kwargs)
    assert torch.equal(out0, out1)
    assert len(g0) == len(g1) == 9 * 6 + int(input_grad)
    assert _max_diff(g0, g1) <= 1e-12


def test_gradients_float32_within_1e6():
    blocks = [b.float() for b in _blocks(16)]
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    _, g0 = _grads(blocks, x, checkpointed=())
    _, g1 = _grads(blocks, x, segments=4, checkpointed=range(4))
    assert _max_diff(g0, g1) <= 1e-6


def test_dropout_masks_are_replayed():
    blocks = _blocks(8, p=0.5)
    x = torch.randn(6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out0, g0 = _grads(blocks, x, checkpointed=())
    state_plain = torch.get_rng_state()
    out1, g1 = _grads(blocks, x, segments=3, checkpointed=range(3))
    state_ckpt = torch.get_rng_state()
    assert torch.equal(out0, out1)
    assert _max_diff(g0, g1) <= 1e-12
    # backward restored the generator: the caller sees the state a plain forward + backward leaves
    assert torch.equal(state_plain, state_ckpt)
    # without replay the recomputed masks differ and so do the gradients: the check above can fail
    _, g2 = _grads(blocks, x, segments=3, checkpointed=range(3), preserve_rng_state=False)
    assert _max_diff(g0, g2) > 1e-3


def test_matches_torch_utils_checkpoint_sequential():
    from torch.utils.checkpoint import checkpoint_sequential as torch_ckpt

    blocks = _blocks(6)
    x = torch.randn(4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    params = [p for b in blocks for p in b.parameters()] + [x]
    ref = torch.autograd.grad(torch_ckpt(nn.Sequential(*blocks), 3, x, use_reentrant=False).sum(), params)
    ours = torch.autograd.grad(checkpoint_sequential(blocks, x, 3).sum(), params)
    assert _max_diff(ref, ours) <= 1e-12


def test_checkpoint_function_with_two_inputs_and_closure_params():
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, dtype=torch.float64)  # needs no gradient

    def f(u, v):
        return torch.tanh(u @ w) * v.sin()

    ref = torch.autograd.grad(f(a, b).sum(), [a, w])
    ours = torch.autograd.grad(checkpoint(f, a, b, params=[w]).sum(), [a, w])
    assert _max_diff(ref, ours) <= 1e-14
    torch.autograd.gradcheck(lambda u, ww: checkpoint(lambda t: torch.tanh(t @ ww), u, params=[ww]), (a, w))


def test_no_grad_mode_just_runs():
    blocks = _blocks(4)
    x = torch.randn(2, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(checkpoint_sequential(blocks, x, 2, range(2)), checkpoint_sequential(blocks, x, 2, ()))


# --- memory meter ----------------------------------------------------------------------------------


def _relu_mlp(n: int, width: int) -> list[nn.Module]:
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(width, width, bias=False), nn.ReLU()) for _ in range(n)]


@pytest.mark.parametrize("n,k", [(16, 4), (12, 3), (10, 4), (9, 9)])
def test_saved_bytes_match_the_closed_form(n, k):
    """Linear (no bias) + ReLU: a plain pass keeps the input and every ReLU output, (n + 1) tensors
    of B x W floats (the ReLU output is the next Linear's saved input: one storage). Checkpointing
    segments of lengths L_0..L_{k-1}: while segment s is recomputed (last one first), the inputs of
    segments 0..s are still held, so the peak is max_s (s + 1 + L_s) tensors."""
    batch, width = 8, 32
    unit = batch * width * 4  # bytes of one float32 activation
    blocks = _relu_mlp(n, width)
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(5))
    plain, _ = sequential_cost(blocks, x, checkpointed=())
    assert plain.peak_bytes == (n + 1) * unit
    expected = max(s + 1 + (stop - start) for s, (start, stop) in enumerate(segment_bounds(n, k)))
    ckpt_all, _ = sequential_cost(blocks, x, segments=k, checkpointed=range(k))
    assert ckpt_all.peak_bytes == expected * unit
    ckpt_default, _ = sequential_cost(blocks, x, segments=k)  # the last segment runs plainly: same peak
    assert ckpt_default.peak_bytes == expected * unit
    assert ckpt_all.packed_bytes > plain.packed_bytes  # the recomputation packs everything again


def test_meter_counts_shared_storage_once_and_leaves_grads_alone():
    w = torch.randn(4, 4, requires_grad=True)
    x = torch.randn(3, 4)

    def loss():
        h = x @ w  # saves x (w is a parameter: excluded)
        return (h.relu() * h.relu()).sum()  # both relu results saved; mul saves them too

    m = measure_saved_activations(loss, [w])
    assert w.grad is None
    assert m.n_packed >= 4
    # x, two relu outputs: distinct storages of 3 x 4 floats each
    assert m.peak_bytes == 3 * 3 * 4 * 4


def test_bad_arguments():
    blocks = _blocks(4)
    x = torch.randn(2, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(blocks, x, segments=5)
    with pytest.raises(ValueError, match="checkpointed segment"):
        checkpoint_sequential(blocks, x, segments=2, checkpointed=[2])
    with pytest.raises(ValueError, match="blocks"):
        checkpoint_sequential([], x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        checkpoint_sequential(blocks, [1.0])
    with pytest.raises(TypeError, match="inputs\\[0\\]"):
        checkpoint(lambda t: t, 3.0)
    with pytest.raises(ValueError, match="scalar"):
        measure_saved_activations(lambda: x * 2)
