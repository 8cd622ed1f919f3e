"""Initialisers against torch.nn.init (fans, gains, identical draws), closed-form variances and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from shiyan.nn import init


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SHAPES = [(3, 4), (8, 3, 5), (16, 8, 3, 3), (4, 2, 3, 3, 3), (1, 1)]


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    t = torch.empty(shape)
    assert init.fan_in_and_fan_out(t) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    assert init.fan_in_and_fan_out(list(shape)) == torch.nn.init._calculate_fan_in_and_fan_out(t)


@pytest.mark.parametrize(
    "nonlinearity,param",
    [
        ("linear", None),
        ("conv2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_gain_equals_torch(nonlinearity, param):
    assert init.gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


# (ours, torch's, kwargs): the same generator state must give the same numbers
SAME_DRAWS = [
    (init.xavier_uniform_, torch.nn.init.xavier_uniform_, {}),
    (init.xavier_uniform_, torch.nn.init.xavier_uniform_, {"gain": 5 / 3}),
    (init.xavier_normal_, torch.nn.init.xavier_normal_, {"gain": 0.7}),
    (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, {}),
    (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
    (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}),
    (init.kaiming_normal_, torch.nn.init.kaiming_normal_, {"a": 0.1, "mode": "fan_out"}),
    (init.kaiming_normal_, torch.nn.init.kaiming_normal_, {"nonlinearity": "tanh"}),
]


@pytest.mark.parametrize("ours,ref,kwargs", SAME_DRAWS)
@pytest.mark.parametrize("shape", SHAPES[:4])
def test_same_draws_as_torch_init(ours, ref, kwargs, shape):
    a, b = torch.empty(shape), torch.empty(shape)
    ours(a, **kwargs, generator=_g(7))
    ref(b, **kwargs, generator=_g(7))
    torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_xavier_and_kaiming_bounds_equal_torch_formulas():
    w = torch.empty(300, 200, 3)
    fan_in, fan_out = 600, 900
    # torch's documented bounds, recomputed here from its own gain function
    xavier_bound = torch.nn.init.calculate_gain("tanh") * math.sqrt(6.0 / (fan_in + fan_out))
    kaiming_bound = torch.nn.init.calculate_gain("leaky_relu", 0.0) * math.sqrt(3.0 / fan_in)
    init.xavier_uniform_(w, gain=5 / 3, generator=_g(1))
    assert w.abs().max() <= xavier_bound and w.abs().max() > 0.999 * xavier_bound
    assert math.sqrt(3) * init.xavier_std(fan_in, fan_out, 5 / 3) == pytest.approx(xavier_bound, rel=1e-14)
    init.kaiming_uniform_(w, generator=_g(2))
    assert w.abs().max() <= kaiming_bound and w.abs().max() > 0.999 * kaiming_bound
    assert math.sqrt(3) * init.kaiming_std(fan_in) == pytest.approx(kaiming_bound, rel=1e-14)


@pytest.mark.parametrize(
    "fill,expected_var",
    [
        (lambda w, g: init.lecun_normal_(w, generator=g), 1 / 1024),
        (lambda w, g: init.lecun_uniform_(w, generator=g), 1 / 1024),
        (lambda w, g: init.xavier_uniform_(w, generator=g), 2 / (1024 + 512)),
        (lambda w, g: init.xavier_normal_(w, gain=2.0, generator=g), 4 * 2 / (1024 + 512)),
        (lambda w, g: init.kaiming_normal_(w, nonlinearity="relu", generator=g), 2 / 1024),
        (lambda w, g: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu", generator=g), 2 / 512),
        (lambda w, g: init.kaiming_normal_(w, a=0.5, generator=g), 2 / (1 + 0.25) / 1024),
        (lambda w, g: init.normal_(w, 1.5, 0.3, generator=g), 0.09),
        (lambda w, g: init.uniform_(w, -2.0, 4.0, generator=g), 36 / 12),
    ],
)
def test_empirical_variance_matches_formula(fill, expected_var):
    w = torch.empty(512, 1024)  # fan_in 1024, fan_out 512; 524288 samples
    fill(w, _g(3))
    assert w.double().var().item() == pytest.approx(expected_var, rel=0.02)


@pytest.mark.parametrize(
    "mean,std,a,b",
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 0.02, -0.04, 0.04),
        (1.0, 2.0, -1.0, 7.0),
        (0.0, 1.0, 3.0, 5.0),
        (0.0, 1.0, -6.0, -4.0),
    ],
)
def test_truncated_normal_against_scipy(mean, std, a, b):
    w = torch.empty(200_000, dtype=torch.float64)
    init.trunc_normal_(w, mean, std, a, b, generator=_g(4))
    assert w.min() >= a and w.max() <= b
    alpha, beta = (a - mean) / std, (b - mean) / std
    ref = scipy.stats.truncnorm(alpha, beta, loc=mean, scale=std)
    assert init.truncated_normal_std(std, alpha, beta) == pytest.approx(ref.std(), rel=1e-9)
    assert w.std().item() == pytest.approx(ref.std(), rel=0.01)
    assert w.mean().item() == pytest.approx(ref.mean(), abs=0.01 * ref.std())
    # whole distribution: Kolmogorov-Smirnov distance against scipy's CDF
    ks = scipy.stats.kstest(w[:20000].numpy(), ref.cdf)
    assert ks.statistic < 0.015


def test_trunc_normal_float32_tensor_and_torch_bounds():
    w = torch.empty(64, 64)
    init.trunc_normal_(w, 0.0, 1.0, -0.5, 0.5, generator=_g(5))
    assert w.dtype == torch.float32 and w.abs().max() <= 0.5


def test_t5_stds_formulas():
    s = init.t5_init_stds(d_model=512, d_kv=64, n_heads=8, d_ff=2048)
    assert s.q == pytest.approx(1 / math.sqrt(512 * 64))
    assert s.k == s.v == s.wi == s.lm_head == pytest.approx(1 / math.sqrt(512))
    assert s.o == pytest.approx(1 / math.sqrt(8 * 64))
    assert s.wo == pytest.approx(1 / math.sqrt(2048))
    assert s.embedding == 1.0
    assert init.t5_init_stds(512, 64, 8, 2048, factor=2.0).q == pytest.approx(2 * s.q)


def _logit_variance(std_q, std_k, d_model, d_kv, scale, seed):
    g = _g(seed)
    x = torch.randn(4096, d_model, generator=g, dtype=torch.float64)  # unit-variance inputs
    y = torch.randn(4096, d_model, generator=g, dtype=torch.float64)
    w_q = torch.empty(d_kv, d_model, dtype=torch.float64)
    w_k = torch.empty(d_kv, d_model, dtype=torch.float64)
    init.normal_(w_q, 0.0, std_q, generator=g)
    init.normal_(w_k, 0.0, std_k, generator=g)
    logits = scale * ((x @ w_q.T) * (y @ w_k.T)).sum(-1)  # q_i . k_j for 4096 pairs
    return logits.var().item()


def test_t5_init_gives_unit_logit_variance_without_sqrt_d():
    d_model, d_kv = 256, 64
    s = init.t5_init_stds(d_model, d_kv, n_heads=4, d_ff=1024)
    t5 = _logit_variance(s.q, s.k, d_model, d_kv, scale=1.0, seed=0)
    standard_scaled = _logit_variance(d_model**-0.5, d_model**-0.5, d_model, d_kv, scale=d_kv**-0.5, seed=0)
    standard_unscaled = _logit_variance(d_model**-0.5, d_model**-0.5, d_model, d_kv, scale=1.0, seed=0)
    assert t5 == pytest.approx(1.0, rel=0.15)
    assert standard_scaled == pytest.approx(1.0, rel=0.15)
    assert standard_unscaled == pytest.approx(d_kv, rel=0.15)


def test_linear_default_equals_torch_reset_parameters():
    layer = init.linear(6, 4, generator=_g(9))
    torch.manual_seed(1234)
    ref = torch.nn.Linear(6, 4)
    g = _g(9)
    torch.nn.init.kaiming_uniform_(ref.weight, a=math.sqrt(5), generator=g)
    bound = 1 / math.sqrt(6)
    with torch.no_grad():
        ref.bias.uniform_(-bound, bound, generator=g)
    torch.testing.assert_close(layer.weight, ref.weight, rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, ref.bias, rtol=0, atol=0)


def test_samplers_leave_global_rng_alone_and_are_reproducible():
    state = torch.get_rng_state()
    a, b = torch.empty(10, 10), torch.empty(10, 10)
    init.trunc_normal_(a, generator=_g(8))
    init.trunc_normal_(b, generator=_g(8))
    assert torch.equal(a, b)
    init.xavier_normal_(a, generator=_g(8))
    assert torch.equal(state, torch.get_rng_state())
    assert np.isfinite(a.numpy()).all()


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(torch.empty(5), generator=_g())
    with pytest.raises(TypeError, match="generator"):
        init.kaiming_normal_(torch.empty(3, 3), generator=None)
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg", generator=_g())
    with pytest.raises(ValueError, match="nonlinearity"):
        init.gain("softplus")
    with pytest.raises(ValueError, match="std"):
        init.normal_(torch.empty(3), 0.0, -1.0, generator=_g())
    with pytest.raises(ValueError, match="a must be < b"):
        init.trunc_normal_(torch.empty(3), a=1.0, b=-1.0, generator=_g())
    with pytest.raises(ValueError, match="no probability"):
        init.trunc_normal_(torch.empty(3), a=50.0, b=60.0, generator=_g())
    with pytest.raises(ValueError, match="d_kv"):
        init.t5_init_stds(512, 0, 8, 2048)
    with pytest.raises(TypeError, match="floating-point"):
        init.uniform_(torch.zeros(3, dtype=torch.int64), generator=_g())
