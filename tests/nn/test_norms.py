"""LayerNorm / RMSNorm against torch.nn.LayerNorm / torch.nn.RMSNorm; pre- and post-norm blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shiyan.nn import norms


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _x(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (2.0 * torch.randn(shape, generator=g, dtype=dtype) + 0.5).requires_grad_(True)


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


def _compare(ours, ref, x, rtol, atol):
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref, rtol=rtol, atol=atol)
    g = torch.Generator().manual_seed(1)
    up = torch.randn(y.shape, generator=g, dtype=y.dtype)
    ours_params = list(ours.parameters())
    ref_params = list(ref.parameters())
    grads = torch.autograd.grad(y, [x, *ours_params], up)
    grads_ref = torch.autograd.grad(y_ref, [x_ref, *ref_params], up)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


CASES = [((4, 10), 10), ((2, 3, 8), 8), ((2, 3, 4, 5), (4, 5)), ((6, 7), (7,))]


@pytest.mark.parametrize("shape,normalized", CASES)
@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_matches_torch(shape, normalized, affine, bias, eps):
    ours = norms.LayerNorm(normalized, eps=eps, elementwise_affine=affine, bias=bias, dtype=torch.float64)
    ref = torch.nn.LayerNorm(normalized, eps=eps, elementwise_affine=affine, bias=bias, dtype=torch.float64)
    _randomise(ours, 3)
    ref.load_state_dict(ours.state_dict())
    _compare(ours, ref, _x(shape, 5), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape,normalized", CASES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [None, 1e-6, 0.3])
def test_rms_norm_matches_torch(shape, normalized, affine, eps):
    ours = norms.RMSNorm(normalized, eps=eps, elementwise_affine=affine, dtype=torch.float64)
    ref = torch.nn.RMSNorm(normalized, eps=eps, elementwise_affine=affine, dtype=torch.float64)
    _randomise(ours, 4)
    ref.load_state_dict(ours.state_dict())
    _compare(ours, ref, _x(shape, 6), rtol=1e-10, atol=1e-10)


def test_float32_and_functionals_match_torch():
    x = _x((16, 32), 7, dtype=torch.float32)
    w, b = torch.randn(32), torch.randn(32)
    torch.testing.assert_close(norms.layer_norm(x, 32, w, b), F.layer_norm(x, (32,), w, b), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norms.rms_norm(x, 32, w), F.rms_norm(x, (32,), w), rtol=1e-5, atol=1e-5)
    # eps=None is the dtype's machine epsilon, as torch does
    tiny = torch.full((2, 4), 1e-4)
    torch.testing.assert_close(norms.rms_norm(tiny, 4), F.rms_norm(tiny, (4,)), rtol=1e-6, atol=1e-6)


def test_gradcheck_norms():
    x = _x((3, 6), 8)
    ln = norms.LayerNorm(6, dtype=torch.float64)
    rms = norms.RMSNorm(6, dtype=torch.float64)
    _randomise(ln, 1)
    _randomise(rms, 2)
    assert torch.autograd.gradcheck(ln, (x,))
    assert torch.autograd.gradcheck(rms, (x,))


def test_pre_and_post_norm_blocks_follow_their_equations():
    d = 8
    f = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.GELU(), torch.nn.Linear(16, d)).double()
    norm = torch.nn.LayerNorm(d, dtype=torch.float64)
    _randomise(norm, 9)
    x = _x((3, 5, d), 10)
    pre = norms.PreNormBlock(f, norm)
    post = norms.PostNormBlock(f, norm)
    torch.testing.assert_close(pre(x), x + f(norm(x)))
    torch.testing.assert_close(post(x), norm(x + f(x)))
    # post-norm output is normalised per position, pre-norm output is not
    out = post(x)
    torch.testing.assert_close((out - norm.bias) / norm.weight, F.layer_norm(x + f(x), (d,)), rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(pre, (x[:1, :2].detach().clone().requires_grad_(True),))
    assert torch.autograd.gradcheck(post, (x[:1, :2].detach().clone().requires_grad_(True),))


def test_pre_norm_keeps_identity_gradient_path():
    # with a zero sub-layer, pre-norm is exactly the identity and post-norm is the norm
    d = 5
    zero = torch.nn.Linear(d, d).double()
    torch.nn.init.zeros_(zero.weight)
    torch.nn.init.zeros_(zero.bias)
    x = _x((4, d), 11)
    (g_pre,) = torch.autograd.grad(norms.PreNormBlock(zero, norms.RMSNorm(d))(x).sum(), x)
    torch.testing.assert_close(g_pre, torch.ones_like(x))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="normalized_shape"):
        norms.LayerNorm(8)(torch.randn(3, 7))
    with pytest.raises(ValueError, match="normalized_shape"):
        norms.RMSNorm((4, 5))(torch.randn(5))
    with pytest.raises(ValueError, match="normalized_shape"):
        norms.LayerNorm(0)
    with pytest.raises(ValueError, match="eps"):
        norms.RMSNorm(4, eps=-1.0)
    with pytest.raises(ValueError, match="weight"):
        norms.layer_norm(torch.randn(2, 4), 4, weight=torch.ones(5))
    with pytest.raises(ValueError, match="sublayer output shape"):
        norms.PreNormBlock(torch.nn.Linear(4, 3), norms.LayerNorm(4))(torch.randn(2, 4))
    with pytest.raises(TypeError, match="sublayer"):
        norms.PostNormBlock(lambda t: t, norms.LayerNorm(4))
