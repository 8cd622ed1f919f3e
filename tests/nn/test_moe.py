"""Mixture of experts against a slow per-token loop (forward and gradients, with capacity overflow),
the dense limits (E = k = 1 is a plain FFN; k = E without capacity is the dense softmax mixture),
and the auxiliary losses against their closed forms on hand-made router outputs."""

from __future__ import annotations

import math

import pytest
import torch

from shiyan.nn.activations import FeedForward
from shiyan.nn.lm import LMConfig, TransformerLM
from shiyan.nn.moe import MoEFeedForward, expert_capacity, load_balancing_loss, route_top_k, router_z_loss


def _moe(E=4, k=2, cf=None, d=6, h=5, **kw) -> MoEFeedForward:
    return MoEFeedForward(d, h, E, k, capacity_factor=cf, generator=torch.Generator().manual_seed(0), **kw).double()


def _x(*shape, seed=1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def reference_moe(moe: MoEFeedForward, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
    """One token at a time: its top-k experts, each accepted while the expert has room, in the
    priority order first choices (token order), then second choices, ..."""
    tokens = x.reshape(-1, moe.d_model)
    T, E, k = tokens.shape[0], moe.n_experts, moe.k
    logits = moe.router(tokens) if logits is None else logits
    probs = torch.softmax(logits, dim=-1)
    cap = expert_capacity(T, E, k, moe.capacity_factor)
    used = [0] * E
    accepted = {}
    for choice in range(k):
        for t in range(T):
            order = sorted(range(E), key=lambda i: (-probs[t, i].item(), i))
            e = order[choice]
            if used[e] < cap:
                used[e] += 1
                accepted[(t, choice)] = e
    rows = []
    for t in range(T):
        chosen = sorted(range(E), key=lambda i: (-probs[t, i].item(), i))[:k]
        denom = sum(probs[t, i] for i in chosen) if moe.renormalize else 1.0
        y = torch.zeros(moe.d_model, dtype=x.dtype)
        for choice in range(k):
            if (t, choice) in accepted:
                e = accepted[(t, choice)]
                y = y + probs[t, e] / denom * moe.experts[e](tokens[t : t + 1])[0]
        rows.append(y)
    return torch.stack(rows).view(x.shape)


@pytest.mark.parametrize(
    ("E", "k", "cf", "renorm"), [(4, 1, None, False), (4, 2, None, True), (4, 1, 0.5, False), (5, 2, 0.8, False)]
)
def test_equals_per_token_loop_forward_and_gradients(E, k, cf, renorm):
    moe = _moe(E, k, cf, renormalize=renorm)
    x = _x(3, 7, 6).requires_grad_()
    out = moe(x)
    ref = reference_moe(moe, x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    params = [x, *moe.parameters()]
    w = _x(*out.shape, seed=2)
    g = torch.autograd.grad((out * w).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((ref * w).sum(), params, allow_unused=True)
    for a, b in zip(g, g_ref):
        if a is None or b is None:
            assert (a is None or a.abs().max() == 0) and (b is None or b.abs().max() == 0)
        else:
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    if cf is not None and cf < 1:  # overflow happened: some tokens pass through with a zero output
        assert moe.stats["dropped_fraction"] > 0
        assert (moe.stats["load"] <= moe.stats["capacity"]).all()
        assert (out.reshape(-1, 6).abs().sum(1) == 0).any()


def test_overflow_tokens_are_the_late_ones_and_get_zero():
    """Hand-made routing: 5 tokens all prefer expert 0, capacity 2 -> tokens 2, 3, 4 are dropped."""
    moe = _moe(E=2, k=1, cf=0.8)  # C = ceil(1 * 5 / 2 * 0.8) = 2
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 5.0
    x = _x(5, 6).abs() + 0.1  # positive first feature: expert 0 wins everywhere
    out = moe(x)
    assert moe.stats["capacity"] == 2 and moe.stats["load"].tolist() == [2, 0]
    assert torch.equal(out[2:], torch.zeros(3, 6, dtype=torch.float64))
    p0 = torch.softmax(moe.router(x), -1)[:2, 0:1]
    torch.testing.assert_close(out[:2], p0 * moe.experts[0](x[:2]))
    assert moe.stats["dropped_fraction"].item() == pytest.approx(0.6)


def test_single_expert_equals_plain_ffn():
    moe = _moe(E=1, k=1)
    ffn = FeedForward(6, 5).double()
    ffn.load_state_dict(moe.experts[0].state_dict())
    x = _x(2, 9, 6)
    torch.testing.assert_close(moe(x), ffn(x), atol=0, rtol=0)
    assert moe.stats["balance_loss"].item() == pytest.approx(1.0)


def test_all_experts_without_capacity_equal_dense_mixture():
    moe = _moe(E=3, k=3)
    x = _x(11, 6)
    p = torch.softmax(moe.router(x), -1)  # (T, E)
    dense = sum(p[:, i : i + 1] * moe.experts[i](x) for i in range(3))
    torch.testing.assert_close(moe(x), dense, atol=1e-12, rtol=1e-12)


def test_experts_only_see_their_routed_tokens():
    moe = _moe(E=4, k=1)
    seen = [0] * 4
    for i, ex in enumerate(moe.experts):
        ex.register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, seen[i] + inp[0].shape[0]))
    moe(_x(20, 6))
    assert sum(seen) == 20 and seen == moe.stats["load"].tolist()


def test_load_balancing_loss_closed_form():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    top1 = torch.tensor([[0], [1], [0], [2]])
    # f = (2/4, 1/4, 1/4), P = column means = (0.4, 0.375, 0.225)
    expected = 3 * (0.5 * 0.4 + 0.25 * 0.375 + 0.25 * 0.225)
    assert load_balancing_loss(probs, top1).item() == pytest.approx(expected)
    uniform = torch.full((6, 3), 1 / 3)
    assert load_balancing_loss(uniform, torch.tensor([[0], [1], [2], [0], [1], [2]])).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0, 0]] * 4)
    assert load_balancing_loss(collapsed, torch.zeros(4, 1, dtype=torch.long)).item() == pytest.approx(3.0)
    top2 = torch.tensor([[0, 1], [1, 0], [0, 1], [2, 1]])  # f = (3/8, 4/8, 1/8)
    expected2 = 3 * (3 / 8 * 0.4 + 4 / 8 * 0.375 + 1 / 8 * 0.225)
    assert load_balancing_loss(probs, top2).item() == pytest.approx(expected2)
    # gradient flows through P only: dL/dp_{t,i} = E f_i / T
    p = probs.clone().requires_grad_()
    load_balancing_loss(p, top1).backward()
    torch.testing.assert_close(p.grad, (3 * torch.tensor([0.5, 0.25, 0.25]) / 4).expand(4, 3))


def test_router_z_loss_closed_form():
    logits = torch.tensor([[0.0, 0.0], [1.0, 2.0], [math.log(3.0), 0.0]])
    lse = [math.log(2.0), math.log(math.e + math.e**2), math.log(4.0)]
    assert router_z_loss(logits).item() == pytest.approx(sum(v * v for v in lse) / 3)


def test_capacity_formula_and_priority():
    assert expert_capacity(10, 4, 1, 1.0) == 3  # ceil(2.5)
    assert expert_capacity(10, 4, 2, 1.25) == 7  # ceil(6.25)
    assert expert_capacity(10, 4, 2, None) == 20
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.1, 0.7, 0.2]])
    r = route_top_k(probs, 2, capacity=2)
    # expert 0: first choices of tokens 0, 1 fill it; expert 1: first choice of 2, then token 0's second
    assert r.experts.tolist() == [[0, 1], [0, 1], [1, 2]]
    assert r.keep.tolist() == [[True, True], [True, False], [True, True]]


def test_noisy_gating_uses_only_its_generator_and_only_in_training():
    a = _moe(noisy_gating=True, noise_generator=torch.Generator().manual_seed(3))
    b = _moe(noisy_gating=True, noise_generator=torch.Generator().manual_seed(3))
    x = _x(8, 6)
    torch.manual_seed(0)
    ya = a(x)
    torch.manual_seed(123)  # global state must not matter
    torch.testing.assert_close(ya, b(x))
    assert not torch.equal(a.router_logits(x), a.router(x))
    a.eval()
    torch.testing.assert_close(a.router_logits(x), a.router(x))


def test_errors():
    with pytest.raises(ValueError, match="n_experts"):
        MoEFeedForward(4, 4, 0)
    with pytest.raises(ValueError, match="k"):
        MoEFeedForward(4, 4, 2, k=3)
    with pytest.raises(ValueError, match="capacity_factor"):
        MoEFeedForward(4, 4, 2, capacity_factor=0.0)
    with pytest.raises(ValueError, match="noise_generator"):
        MoEFeedForward(4, 4, 2, noisy_gating=True)
    with pytest.raises(ValueError, match="balance_coef"):
        MoEFeedForward(4, 4, 2, balance_coef=float("nan"))
    moe = MoEFeedForward(4, 4, 2)
    with pytest.raises(ValueError, match="d_model"):
        moe(torch.randn(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        moe(torch.full((3, 4), float("nan")))
    with pytest.raises(ValueError, match="probs"):
        route_top_k(torch.rand(3), 1, 2)


def test_lm_collects_the_aux_loss():
    cfg = LMConfig(vocab_size=11, d_model=8, n_layers=2, n_heads=2, max_seq_len=12)
    lm = TransformerLM(
        cfg,
        ffn=lambda d: MoEFeedForward(d, 16, 4, 1, balance_coef=0.5, z_coef=0.1),
        generator=torch.Generator().manual_seed(0),
    )
    idx = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(1))
    lm(idx)
    expected = sum(0.5 * b.ffn.stats["balance_loss"] + 0.1 * b.ffn.stats["z_loss"] for b in lm.blocks)
    torch.testing.assert_close(lm.aux_loss(), expected)
    assert lm.aux_loss().requires_grad
