"""LossScaler against torch.amp.GradScaler("cpu") under the same injected overflows."""

from __future__ import annotations

import math

import pytest
import torch

from shiyan.optim import Adam, LossScaler, MasterWeights


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(dtype=torch.float32) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.Tanh(), torch.nn.Linear(12, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g))
    return model.to(dtype)


def _data(n_steps):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 5, generator=g), torch.randn(16, 2, generator=g)) for _ in range(n_steps)]


def _run(scaler, n_steps, inject, *, make_opt, clip=None, nan=False, autocast=None, loss_mult=1.0):
    """Train for n_steps; at the steps in ``inject`` one gradient entry is set to inf (or NaN).

    Returns (scales after each update, skipped flags, final parameters)."""
    model = _model()
    opt = make_opt(model.parameters())
    scales, skipped = [], []
    for t, (x, y) in enumerate(_data(n_steps)):
        opt.zero_grad()
        if autocast is not None:
            with torch.autocast("cpu", dtype=autocast):
                out = model(x)
        else:
            out = model(x)
        loss = loss_mult * ((out.float() - y) ** 2).mean()
        scaler.scale(loss).backward()
        if t in inject:
            model[0].weight.grad[1, 2] = math.nan if nan else math.inf
        before = [p.detach().clone() for p in model.parameters()]
        if clip is not None:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        skipped.append(all(torch.equal(b, p) for b, p in zip(before, model.parameters())))
    return scales, skipped, [p.detach().clone() for p in model.parameters()]


SCENARIOS = [
    # (scaler kwargs, injected steps, extra run kwargs)
    ({"init_scale": 2.0**16, "growth_interval": 3}, {2, 3, 9, 10, 11, 20}, {}),
    ({"init_scale": 2.0**10, "growth_factor": 1.7, "backoff_factor": 0.3, "growth_interval": 2}, {1, 5, 6, 17}, {}),
    (
        {"init_scale": 1.0e5, "growth_factor": 3.0, "backoff_factor": 0.9, "growth_interval": 1},
        {0, 4, 8},
        {"nan": True},
    ),
    ({"init_scale": 2.0**126, "growth_interval": 4}, set(), {"loss_mult": 1e4}),  # real overflows until S backs off
    ({"growth_interval": 2}, {3, 7}, {"clip": 0.5}),
    ({"growth_interval": 5}, {2, 12}, {"autocast": torch.bfloat16}),
    ({"init_scale": 3.0e38, "growth_factor": 10.0, "growth_interval": 1}, {0}, {}),  # growth would overflow S
]


@pytest.mark.parametrize("kwargs,inject,extra", SCENARIOS)
@pytest.mark.parametrize(
    "make_opt",
    [lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), lambda ps: Adam(ps, lr=1e-2, weight_decay=0.01)],
    ids=["sgd", "adam"],
)
def test_scale_sequence_and_skips_equal_grad_scaler(kwargs, inject, extra, make_opt):
    n = 30
    ours = _run(LossScaler(**kwargs), n, inject, make_opt=make_opt, **extra)
    ref = _run(torch.amp.GradScaler("cpu", **kwargs), n, inject, make_opt=make_opt, **extra)
    assert ours[0] == ref[0], "scale sequences differ"
    assert ours[1] == ref[1], "skipped steps differ"
    for p, q in zip(ours[2], ref[2]):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert all(ours[1][t] for t in inject)  # every injected overflow skipped the step
    assert any(ours[1])


def test_growth_and_backoff_rule_by_hand():
    scaler = LossScaler(init_scale=8.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    trace = []
    for bad in [False, False, False, True, False, False]:
        p.grad = torch.full((3,), math.inf if bad else 8.0)
        scaler.step(opt)
        scaler.update()
        trace.append((scaler.get_scale(), scaler.get_growth_tracker()))
    assert trace == [(8.0, 1), (16.0, 0), (16.0, 1), (8.0, 0), (8.0, 1), (16.0, 0)]
    # the good steps used the unscaled gradient: 5 steps of lr * 8 / S
    assert p.detach().tolist() == pytest.approx([1 - 0.1 * (1 + 1 + 0.5 + 1 + 1)] * 3)


def test_unscale_divides_by_scale_and_reports_inf():
    scaler = LossScaler(init_scale=1024.0)
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=1.0)
    scaler.scale(p.sum() * 3.0).backward()
    torch.testing.assert_close(p.grad, torch.full((4,), 3.0 * 1024))
    scaler.unscale_(opt)
    torch.testing.assert_close(p.grad, torch.full((4,), 3.0))
    assert not scaler.found_inf(opt)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="already called"):
        scaler.step(opt)
    scaler.update()


def test_master_weights_fp16_model_equals_grad_scaler_pipeline():
    def train(scaler, n=25):
        model = _model(torch.float16)
        masters = MasterWeights(model)
        opt = torch.optim.SGD(masters.params, lr=0.05)
        scales = []
        for t, (x, y) in enumerate(_data(n)):
            loss = ((model(x.half()).float() - y) ** 2).mean()
            scaler.scale(loss).backward()
            masters.copy_grads_()
            if t in (4, 5):
                masters.params[0].grad[0, 0] = math.inf
            scaler.step(opt)
            scaler.update()
            masters.copy_params_()
            opt.zero_grad()
            scales.append(scaler.get_scale())
        assert all(p.dtype == torch.float16 for p in model.parameters())
        assert all(p.dtype == torch.float32 for p in masters.params)
        return scales, [p.detach() for p in masters.params]

    ours, ref = (
        train(LossScaler(init_scale=2.0**12, growth_interval=3)),
        train(torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=3)),
    )
    assert ours[0] == ref[0]
    for p, q in zip(ours[1], ref[1]):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_master_weights_keep_updates_that_fp16_would_lose():
    model = torch.nn.Linear(1, 1, bias=False).half()
    with torch.no_grad():
        model.weight.fill_(1.0)
    masters = MasterWeights(model)
    for _ in range(100):
        masters.params[0].data -= 1e-4  # each update is below half an fp16 ulp at 1.0 (2**-11)
    masters.copy_params_()
    assert model.weight.item() == pytest.approx(0.99, abs=1e-3)
    lost = torch.ones(1, dtype=torch.float16)
    for _ in range(100):
        lost -= 1e-4
    assert lost.item() == 1.0  # the same updates applied in fp16 vanish


def test_state_dict_is_compatible_with_grad_scaler():
    ours = LossScaler(init_scale=512.0, growth_factor=1.5, backoff_factor=0.25, growth_interval=7)
    ref = torch.amp.GradScaler("cpu")
    ref.load_state_dict(ours.state_dict())
    assert ref.state_dict() == ours.state_dict()
    back = LossScaler()
    back.load_state_dict(ref.state_dict())
    assert back.state_dict() == ours.state_dict()


def test_disabled_scaler_is_a_pass_through():
    scaler = LossScaler(enabled=False)
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.5)
    loss = (p * 2).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    assert p.detach().tolist() == [0.0, 0.0]
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="init_scale"):
        LossScaler(init_scale=0.0)
    with pytest.raises(ValueError, match="growth_factor"):
        LossScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff_factor"):
        LossScaler(backoff_factor=1.5)
    with pytest.raises(ValueError, match="growth_interval"):
        LossScaler(growth_interval=0)
    with pytest.raises(ValueError, match="init_scale"):
        LossScaler(init_scale=math.inf)
    scaler = LossScaler()
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float16))
    p.grad = torch.ones(2, dtype=torch.float16)
    with pytest.raises(ValueError, match="fp16 gradients"):
        scaler.unscale_(torch.optim.SGD([p], lr=0.1))
    with pytest.raises(TypeError, match="optimizer"):
        scaler.step(object())
    with pytest.raises(RuntimeError, match="update"):
        LossScaler().update()
    with pytest.raises(TypeError, match="outputs"):
        scaler.scale(3.0)
