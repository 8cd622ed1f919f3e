"""Activations and feed-forward blocks against torch.nn.functional / torch.nn (values and gradients)."""

from __future__ import annotations

import math
import zlib

import pytest
import torch
import torch.nn.functional as F

from shiyan.nn import activations as A


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 6)]


def _random(shape, seed, dtype=torch.float64, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=dtype)).requires_grad_(True)


# (name, ours, torch reference)
ELEMENTWISE = [
    ("sigmoid", A.sigmoid, torch.sigmoid),
    ("tanh", A.tanh, torch.tanh),
    ("relu", A.relu, F.relu),
    ("leaky_relu", lambda x: A.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
    ("leaky_relu_default", A.leaky_relu, F.leaky_relu),
    ("elu", lambda x: A.elu(x, 1.3), lambda x: F.elu(x, 1.3)),
    ("gelu", A.gelu, F.gelu),
    ("gelu_tanh", lambda x: A.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ("silu", A.silu, F.silu),
    ("swish_beta", lambda x: A.swish(x, 1.7), lambda x: x * torch.sigmoid(1.7 * x)),
    ("threshold", lambda x: A.threshold(x, 0.3, -2.0), lambda x: F.threshold(x, 0.3, -2.0)),
]

MODULES = [
    (A.Sigmoid(), torch.nn.Sigmoid()),
    (A.Tanh(), torch.nn.Tanh()),
    (A.ReLU(), torch.nn.ReLU()),
    (A.LeakyReLU(0.05), torch.nn.LeakyReLU(0.05)),
    (A.ELU(0.7), torch.nn.ELU(0.7)),
    (A.GELU(), torch.nn.GELU()),
    (A.GELU("tanh"), torch.nn.GELU("tanh")),
    (A.SiLU(), torch.nn.SiLU()),
    (A.Swish(1.0), torch.nn.SiLU()),
    (A.Threshold(0.1, 5.0), torch.nn.Threshold(0.1, 5.0)),
    (A.GLU(), torch.nn.GLU()),
    (A.GLU(dim=0), torch.nn.GLU(dim=0)),
]


def _assert_same_value_and_grad(ours, ref, x, rtol, atol):
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref, rtol=rtol, atol=atol)
    g = torch.Generator().manual_seed(99)
    upstream = torch.randn(y.shape, generator=g, dtype=y.dtype)
    (gx,) = torch.autograd.grad(y, x, upstream)
    (gx_ref,) = torch.autograd.grad(y_ref, x_ref, upstream)
    torch.testing.assert_close(gx, gx_ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,ours,ref", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_matches_torch_float64(name, ours, ref, shape):
    x = _random(shape, seed=zlib.crc32(f"{name}{shape}".encode()))
    _assert_same_value_and_grad(ours, ref, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,ours,ref", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_matches_torch_float32(name, ours, ref):
    x = _random((64, 33), seed=5, dtype=torch.float32)
    _assert_same_value_and_grad(ours, ref, x, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name,ours,ref", ELEMENTWISE[:-1], ids=[e[0] for e in ELEMENTWISE[:-1]])
def test_gradcheck_float64(name, ours, ref):
    # smooth points only (away from the kinks of relu/leaky/elu/threshold at 0)
    x = _random((4, 5), seed=11)
    with torch.no_grad():
        x.add_(torch.sign(x) * 0.05)
    assert torch.autograd.gradcheck(ours, (x,), eps=1e-6, atol=1e-7)


def test_kinks_match_torch_at_exact_zero():
    x = torch.tensor([0.0, -0.0, 1e-300, -1e-300], dtype=torch.float64, requires_grad=True)
    for ours, ref in [
        (A.relu, F.relu),
        (lambda t: A.leaky_relu(t, 0.3), lambda t: F.leaky_relu(t, 0.3)),
        (lambda t: A.elu(t, 2.0), lambda t: F.elu(t, 2.0)),
    ]:
        _assert_same_value_and_grad(ours, ref, x, rtol=0, atol=0)


def test_extreme_inputs_stay_finite_like_torch():
    x = torch.tensor([-1e4, -800.0, -90.0, -20.0, 0.0, 20.0, 90.0, 800.0, 1e4], requires_grad=True)
    for ours, ref in [
        (A.sigmoid, torch.sigmoid),
        (A.tanh, torch.tanh),
        (A.silu, F.silu),
        (A.elu, F.elu),
        (A.gelu, F.gelu),
        (lambda t: A.gelu(t, "tanh"), lambda t: F.gelu(t, approximate="tanh")),
    ]:
        y = ours(x)
        (gx,) = torch.autograd.grad(y.sum(), x)
        assert torch.isfinite(y).all() and torch.isfinite(gx).all()
        _assert_same_value_and_grad(ours, ref, x, rtol=1e-6, atol=1e-6)


def test_tanh_is_accurate_for_tiny_inputs():
    x = torch.tensor([1e-10, -3e-8, 1e-20], dtype=torch.float64)
    torch.testing.assert_close(A.tanh(x), torch.tanh(x), rtol=1e-14, atol=0)


def test_step_is_the_perceptron_rule():
    x = torch.tensor([-2.0, -0.0, 0.0, 0.49, 0.5, 3.0])
    torch.testing.assert_close(A.step(x), torch.heaviside(x, torch.tensor(1.0)))
    torch.testing.assert_close(A.step(x, threshold=0.5), torch.heaviside(x - 0.5, torch.tensor(1.0)))
    assert A.step(x).grad_fn is None
    torch.testing.assert_close(A.Step(0.5)(x), A.step(x, 0.5))


def test_swish_approaches_relu_for_large_beta():
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    assert (A.swish(x, 60.0) - F.relu(x)).abs().max() < 1e-2
    torch.testing.assert_close(A.swish(x, 1.0), F.silu(x))


@pytest.mark.parametrize("ours,ref", MODULES, ids=[type(m[0]).__name__ + str(i) for i, m in enumerate(MODULES)])
def test_modules_match_torch_modules(ours, ref):
    x = _random((4, 6, 8), seed=3)
    _assert_same_value_and_grad(ours, ref, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_glu_family_matches_torch_composition(dim):
    x = _random((4, 6, 8), seed=17)
    a_ref = lambda t: t.chunk(2, dim=dim)[0]  # noqa: E731
    b_ref = lambda t: t.chunk(2, dim=dim)[1]  # noqa: E731
    _assert_same_value_and_grad(lambda t: A.glu(t, dim), lambda t: F.glu(t, dim), x, 1e-12, 1e-12)
    _assert_same_value_and_grad(
        lambda t: A.geglu(t, dim), lambda t: a_ref(t) * F.gelu(b_ref(t)), x, rtol=1e-12, atol=1e-12
    )
    _assert_same_value_and_grad(
        lambda t: A.swiglu(t, dim), lambda t: a_ref(t) * F.silu(b_ref(t)), x, rtol=1e-12, atol=1e-12
    )
    _assert_same_value_and_grad(A.GeGLU(dim), lambda t: a_ref(t) * F.gelu(b_ref(t)), x, 1e-12, 1e-12)
    _assert_same_value_and_grad(A.SwiGLU(dim), lambda t: a_ref(t) * F.silu(b_ref(t)), x, 1e-12, 1e-12)


def _reference_gated(x, w1, w3, w2, b1=None, b3=None, b2=None, act=F.silu):
    return F.linear(act(F.linear(x, w1, b1)) * F.linear(x, w3, b3), w2, b2)


@pytest.mark.parametrize("bias", [False, True])
def test_swiglu_ffn_matches_reference(bias):
    g = torch.Generator().manual_seed(0)
    ffn = A.SwiGLUFeedForward(12, 20, bias=bias, generator=g).double()
    x = _random((3, 5, 12), seed=8)
    x_ref = x.detach().clone().requires_grad_(True)
    y = ffn(x)
    args = [ffn.w1.weight, ffn.w3.weight, ffn.w2.weight]
    if bias:
        args += [ffn.w1.bias, ffn.w3.bias, ffn.w2.bias]
    ref_params = [p.detach().clone().requires_grad_(True) for p in args]
    y_ref = _reference_gated(x_ref, *ref_params)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(y.shape, generator=g, dtype=y.dtype)
    grads = torch.autograd.grad(y, [x, *args], upstream)
    grads_ref = torch.autograd.grad(y_ref, [x_ref, *ref_params], upstream)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    n_params = sum(p.numel() for p in ffn.parameters())
    assert n_params == 3 * 12 * 20 + (2 * 20 + 12 if bias else 0)


def test_geglu_ffn_and_gradcheck():
    g = torch.Generator().manual_seed(1)
    ffn = A.GeGLUFeedForward(6, 9, generator=g).double()
    x = _random((2, 6), seed=2)
    ref = _reference_gated(x, ffn.w1.weight, ffn.w3.weight, ffn.w2.weight, act=F.gelu)
    torch.testing.assert_close(ffn(x), ref, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: ffn(t), (x,))


@pytest.mark.parametrize("act,ref_act", [(A.ReLU(), F.relu), (A.GELU("tanh"), lambda t: F.gelu(t, approximate="tanh"))])
def test_plain_ffn_matches_torch_sequential(act, ref_act):
    g = torch.Generator().manual_seed(4)
    ffn = A.FeedForward(10, 32, activation=act, generator=g).double()
    ref = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Identity(), torch.nn.Linear(32, 10)).double()
    ref.load_state_dict(
        {"0.weight": ffn.w1.weight, "0.bias": ffn.w1.bias, "2.weight": ffn.w2.weight, "2.bias": ffn.w2.bias}
    )
    x = _random((7, 10), seed=6)
    y_ref = ref[2](ref_act(ref[0](x)))
    torch.testing.assert_close(ffn(x), y_ref, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: ffn(t), (x.detach()[:2].clone().requires_grad_(True),))


def test_ffn_init_from_generator_equals_torch_linear_init():
    # our generator-driven init draws exactly what nn.Linear.reset_parameters would draw
    ffn = A.FeedForward(5, 7, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(123)
    w = torch.empty(7, 5)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    b = torch.empty(7).uniform_(-1 / math.sqrt(5), 1 / math.sqrt(5), generator=g)
    torch.testing.assert_close(ffn.w1.weight, w, rtol=0, atol=0)
    torch.testing.assert_close(ffn.w1.bias, b, rtol=0, atol=0)
    state = torch.get_rng_state()
    A.SwiGLUFeedForward(5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state()), "global RNG must not be touched"


def test_gated_width_matches_plain_parameter_count():
    d = 48
    for d_ff in (64, 192, 384):
        h = A.gated_d_ff_for_equal_params(d_ff)
        plain = sum(p.numel() for p in A.FeedForward(d, d_ff, bias=False).parameters())
        gated = sum(p.numel() for p in A.SwiGLUFeedForward(d, h).parameters())
        assert abs(gated - plain) / plain < 0.02
    assert A.gated_d_ff_for_equal_params(4 * 4096, multiple_of=256) == 11008  # LLaMA-7B


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match="even"):
        A.glu(x)
    with pytest.raises(ValueError, match="dim"):
        A.swiglu(x, dim=4)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        A.relu([1.0, 2.0])
    with pytest.raises(TypeError, match="floating-point"):
        A.sigmoid(torch.arange(3))
    with pytest.raises(ValueError, match="approximate"):
        A.gelu(x, "erf")
    with pytest.raises(ValueError, match="negative_slope"):
        A.leaky_relu(x, float("nan"))
    with pytest.raises(ValueError, match="d_model"):
        A.SwiGLUFeedForward(0, 8)
    with pytest.raises(ValueError, match="d_model=6"):
        A.SwiGLUFeedForward(6, 8)(torch.randn(2, 5))
    with pytest.raises(TypeError, match="activation"):
        A.FeedForward(4, 8, activation="relu")
