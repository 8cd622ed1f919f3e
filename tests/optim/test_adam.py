"""shiyan.optim.Adam / AdamW step for step against torch.optim.Adam / AdamW (foreach=False)."""

from __future__ import annotations

import copy

import pytest
import torch

from shiyan.optim import Adam, AdamW


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(dtype: torch.dtype) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
    return model


def _batches(n_steps: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        x = torch.randn(32, 6, generator=g, dtype=dtype)
        y = torch.randn(32, 3, generator=g, dtype=dtype)
        yield x, y


def _train(model, opt, n_steps, dtype, start=0):
    batches = list(_batches(start + n_steps, dtype))[start:]
    for x, y in batches:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    return model


CONFIGS = [
    {},
    {"weight_decay": 0.1},
    {"amsgrad": True},
    {"betas": (0.5, 0.9), "eps": 1e-3},
    {"betas": (0.0, 0.0), "eps": 0.5, "lr": 0.01},
    {"maximize": True, "lr": 1e-4},
    {"weight_decay": 0.3, "amsgrad": True, "betas": (0.8, 0.95), "eps": 1e-6, "maximize": True, "lr": 3e-3},
]


# float32 on every configuration (tolerance 1e-6), float64 on three, where we ask for bitwise equality: the
# update performs the same floating-point operations in the same order as torch's single-tensor path
CASES = [(kw, torch.float32, 1e-6) for kw in CONFIGS] + [(CONFIGS[i], torch.float64, 0.0) for i in (0, 1, 6)]


@pytest.mark.parametrize("ours_cls,ref_cls", [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)])
@pytest.mark.parametrize("kwargs,dtype,tol", CASES)
def test_200_steps_equal_torch(ours_cls, ref_cls, kwargs, dtype, tol):
    ours_model, ref_model = _model(dtype), _model(dtype)
    ours = ours_cls(ours_model.parameters(), **kwargs)
    ref = ref_cls(ref_model.parameters(), foreach=False, **kwargs)
    for step, (x, y) in enumerate(_batches(200, dtype)):
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
        max_diff = max((p - q).abs().max().item() for p, q in zip(ours_model.parameters(), ref_model.parameters()))
        assert max_diff <= tol, f"parameters differ by {max_diff:.3g} after step {step + 1}"
    for p in ours_model.parameters():
        s_ours, s_ref = ours.state[p], ref.state[dict(zip(ours_model.parameters(), ref_model.parameters()))[p]]
        assert s_ours["step"].item() == s_ref["step"].item() == 200
        torch.testing.assert_close(s_ours["exp_avg_sq"], s_ref["exp_avg_sq"], rtol=1e-5, atol=tol)


def test_adam_l2_and_adamw_differ_and_agree_without_decay():
    a_model, w_model = _model(torch.float64), _model(torch.float64)
    _train(a_model, Adam(a_model.parameters(), weight_decay=0.0), 30, torch.float64)
    _train(w_model, AdamW(w_model.parameters(), weight_decay=0.0), 30, torch.float64)
    for p, q in zip(a_model.parameters(), w_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    a_model, w_model = _model(torch.float64), _model(torch.float64)
    _train(a_model, Adam(a_model.parameters(), weight_decay=0.1), 30, torch.float64)
    _train(w_model, AdamW(w_model.parameters(), weight_decay=0.1), 30, torch.float64)
    assert max((p - q).abs().max().item() for p, q in zip(a_model.parameters(), w_model.parameters())) > 1e-4


def test_first_step_is_lr_times_sign_and_adamw_decay_is_multiplicative():
    # at t = 1 with eps = 0, m̂ / sqrt(v̂) = g / |g| exactly
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    p.grad = torch.tensor([0.5, 0.25, -4.0], dtype=torch.float64)
    AdamW([p], lr=0.1, eps=0.0, weight_decay=0.5).step()
    expected = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64) * (1 - 0.1 * 0.5) - 0.1 * torch.tensor(
        [1.0, 1.0, -1.0], dtype=torch.float64
    )
    torch.testing.assert_close(p.detach(), expected, rtol=1e-15, atol=1e-15)


def test_param_groups_with_their_own_hyperparameters():
    ours_model, ref_model = _model(torch.float64), _model(torch.float64)
    groups = lambda m: [  # noqa: E731
        {"params": m[0].parameters(), "lr": 1e-2, "weight_decay": 0.2},
        {"params": m[2].parameters(), "betas": (0.7, 0.99), "amsgrad": True},
    ]
    _train(ours_model, AdamW(groups(ours_model), lr=1e-3), 50, torch.float64)
    _train(ref_model, torch.optim.AdamW(groups(ref_model), lr=1e-3, foreach=False), 50, torch.float64)
    for p, q in zip(ours_model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("ours_cls,ref_cls", [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)])
def test_state_dict_round_trip_and_torch_compatibility(ours_cls, ref_cls):
    kwargs = {"lr": 3e-3, "weight_decay": 0.05, "amsgrad": True}
    dtype = torch.float64
    # uninterrupted: 100 steps
    full = _model(dtype)
    _train(full, ours_cls(full.parameters(), **kwargs), 100, dtype)
    # interrupted after 50 steps, state saved, restored into a fresh optimiser
    half = _model(dtype)
    opt = ours_cls(half.parameters(), **kwargs)
    _train(half, opt, 50, dtype)
    saved_model, saved_opt = copy.deepcopy(half.state_dict()), copy.deepcopy(opt.state_dict())
    resumed = _model(dtype)
    resumed.load_state_dict(saved_model)
    opt2 = ours_cls(resumed.parameters(), **kwargs)
    opt2.load_state_dict(copy.deepcopy(saved_opt))  # load_state_dict aliases the tensors it is given
    _train(resumed, opt2, 50, dtype, start=50)
    for p, q in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # torch's optimiser continues from our state (same keys and meaning)
    by_torch = _model(dtype)
    by_torch.load_state_dict(saved_model)
    ref = ref_cls(by_torch.parameters(), foreach=False, **kwargs)
    ref.load_state_dict(copy.deepcopy(saved_opt))
    _train(by_torch, ref, 50, dtype, start=50)
    for p, q in zip(full.parameters(), by_torch.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-13)


def test_closure_and_skipped_params():
    model = _model(torch.float32)
    frozen = torch.nn.Parameter(torch.ones(3))
    opt = Adam([*model.parameters(), frozen], lr=0.1)
    x, y = next(_batches(1, torch.float32))

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() > 0
    assert torch.equal(frozen, torch.ones(3)) and frozen not in opt.state


def test_bad_hyperparameters_raise_clear_errors():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="lr"):
        Adam(params, lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        AdamW(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas must be a pair"):
        Adam(params, betas=(0.9,))
    with pytest.raises(ValueError, match="eps"):
        Adam(params, eps=-1e-8)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(params, weight_decay=-0.1)
    with pytest.raises(ValueError, match="lr must be finite"):
        Adam(params, lr=float("nan"))
    with pytest.raises(ValueError, match="lr"):
        Adam([{"params": params, "lr": -3.0}])
