"""Upsampling from the equations equals torch's functionals and layers, forward and backward."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shiyan.nn.upsampling import (
    PixelShuffle,
    PixelUnshuffle,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
    conv_transpose2d,
    interpolate,
    max_unpool2d,
    pixel_shuffle,
    pixel_unshuffle,
    upsample_bilinear2d,
    upsample_nearest,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP contention on a busy machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def _randn(seed: int, *shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _same_forward_and_backward(ours_fn, ref_fn, *inputs: torch.Tensor, atol: float = 1e-12) -> None:
    """Outputs equal, and the gradients of <out, g> for a random g equal, for every input."""
    xs_a = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    xs_b = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    a, b = ours_fn(*xs_a), ref_fn(*xs_b)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=0, atol=atol)
    g = _randn(99, *a.shape, dtype=a.dtype)
    (a * g).sum().backward()
    (b * g).sum().backward()
    for xa, xb in zip(xs_a, xs_b):
        if xa.requires_grad:
            torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=atol)


# --- nearest and bilinear ----------------------------------------------------------------------------

sizes = st.integers(1, 9)
scales = st.one_of(
    st.floats(0.3, 4.0, allow_nan=False),
    st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 1 / 3, 2.5, 1.25]),
)


def _resize_args(data, in_sizes: tuple[int, ...]):
    """Either a size or a scale factor (one per axis or shared) that gives a non-empty output."""
    if data.draw(st.booleans(), label="use size"):
        return {"size": tuple(data.draw(st.integers(1, 17)) for _ in in_sizes)}
    if data.draw(st.booleans(), label="one scale"):
        s = data.draw(scales.filter(lambda s: all(math.floor(n * s) >= 1 for n in in_sizes)), label="scale")
        return {"scale_factor": s}
    return {"scale_factor": tuple(data.draw(scales.filter(lambda s, n=n: math.floor(n * s) >= 1)) for n in in_sizes)}


def _adjoint_from_forward(ref_fn, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """J^T r with the Jacobian J of a linear, channel-wise map built from ``ref_fn``'s forward pass on
    one-hot images (no backward of ``ref_fn`` involved)."""
    spatial = x.shape[2:]
    m = math.prod(spatial)
    basis = torch.eye(m, dtype=x.dtype).view(m, 1, *spatial)
    jac = ref_fn(basis).reshape(m, -1)  # (input pixels, output pixels)
    return (r.reshape(-1, jac.shape[1]) @ jac.T).reshape(x.shape)


@SETTINGS
@given(data=st.data(), ndim=st.integers(1, 3), exact=st.booleans(), seed=st.integers(0, 10_000))
def test_nearest_matches_interpolate(data, ndim, exact, seed):
    """Forward equal to F.interpolate; gradient equal to the adjoint of F.interpolate's forward (and to
    torch's backward in 2-D: torch 2.13's CPU 1-D/3-D nearest backward uses the copy/halve shortcuts
    that its forward does not, see test_nearest_gradient_is_the_true_gradient)."""
    in_sizes = tuple(data.draw(sizes) for _ in range(ndim))
    x = _randn(seed, 2, 3, *in_sizes)
    kwargs = _resize_args(data, in_sizes)
    mode = "nearest-exact" if exact else "nearest"

    def ref(t):
        return F.interpolate(t, mode=mode, **kwargs)

    xa = x.clone().requires_grad_()
    y = upsample_nearest(xa, exact=exact, **kwargs)
    torch.testing.assert_close(y, ref(x), rtol=0, atol=0)
    r = _randn(seed + 1, *y.shape)
    (y * r).sum().backward()
    torch.testing.assert_close(xa.grad, _adjoint_from_forward(ref, x, r), rtol=0, atol=1e-12)
    if ndim == 2:
        _same_forward_and_backward(lambda t: upsample_nearest(t, exact=exact, **kwargs), ref, x)


def test_nearest_gradient_is_the_true_gradient():
    """Length 6 with scale_factor 1.0345 keeps the length: the forward (ours and torch's) maps
    i -> floor(i / 1.0345) = 0, 0, 1, 2, 3, 4; our gradient is that map's transpose (gradcheck)."""
    x = _randn(0, 1, 2, 6).requires_grad_()
    y = upsample_nearest(x, scale_factor=1.0345)
    torch.testing.assert_close(y, F.interpolate(x, scale_factor=1.0345, mode="nearest"))
    torch.testing.assert_close(y[0, 0], x[0, 0, [0, 0, 1, 2, 3, 4]])
    assert torch.autograd.gradcheck(lambda t: upsample_nearest(t, scale_factor=1.0345), (x,))
    assert torch.autograd.gradcheck(
        lambda t: upsample_nearest(t, scale_factor=2.1), (_randn(1, 1, 1, 2, 3, 5).requires_grad_(),)
    )


@SETTINGS
@given(data=st.data(), align_corners=st.booleans(), seed=st.integers(0, 10_000), single=st.booleans())
def test_bilinear_matches_interpolate(data, align_corners, seed, single):
    in_sizes = (data.draw(sizes), data.draw(sizes))
    dtype = torch.float32 if single else torch.float64
    x = _randn(seed, 2, 3, *in_sizes, dtype=dtype)
    kwargs = _resize_args(data, in_sizes)
    _same_forward_and_backward(
        lambda t: upsample_bilinear2d(t, align_corners=align_corners, **kwargs),
        lambda t: F.interpolate(t, mode="bilinear", align_corners=align_corners, **kwargs),
        x,
        atol=1e-5 if single else 1e-12,
    )


@pytest.mark.parametrize("align_corners", [True, False])
def test_bilinear_source_coordinates_by_hand(align_corners):
    """1 x 3 -> 1 x 5 on the row [0, 1, 2]: the output *is* the source coordinate."""
    x = torch.tensor([[[[0.0, 1.0, 2.0]]]], dtype=torch.float64)
    y = upsample_bilinear2d(x, size=(1, 5), align_corners=align_corners)[0, 0, 0]
    if align_corners:  # x(i) = i (3-1)/(5-1)
        expected = [0.0, 0.5, 1.0, 1.5, 2.0]
    else:  # x(i) = max(0, (i + 1/2) 3/5 - 1/2), then clamped at the last pixel
        expected = [0.0, 0.4, 1.0, 1.6, 2.0]
    torch.testing.assert_close(y, torch.tensor(expected, dtype=torch.float64))


def test_nearest_non_integer_scale_picks_torch_pixels():
    x = torch.arange(7.0).view(1, 1, 7)
    for s in (1.7, 2.3, 0.6, 1 / 3, 2.9999):
        torch.testing.assert_close(
            upsample_nearest(x, scale_factor=s), F.interpolate(x, scale_factor=s, mode="nearest")
        )


def test_layers_match_torch_layers():
    x = _randn(0, 2, 8, 5, 6)
    pairs = [
        (Upsample(scale_factor=2.5, mode="nearest"), nn.Upsample(scale_factor=2.5, mode="nearest")),
        (Upsample(size=(7, 3), mode="bilinear", align_corners=False), nn.Upsample(size=(7, 3), mode="bilinear")),
        (UpsamplingNearest2d(scale_factor=3), nn.UpsamplingNearest2d(scale_factor=3)),
        (UpsamplingBilinear2d(size=(11, 4)), nn.UpsamplingBilinear2d(size=(11, 4))),
        (PixelShuffle(2), nn.PixelShuffle(2)),
        (PixelUnshuffle(1), nn.PixelUnshuffle(1)),
    ]
    for ours, ref in pairs:
        _same_forward_and_backward(ours, ref, x)
    y = _randn(1, 2, 3, 8, 6)
    _same_forward_and_backward(PixelUnshuffle(2), nn.PixelUnshuffle(2), y)


# --- PixelShuffle -------------------------------------------------------------------------------------


@SETTINGS
@given(
    r=st.integers(1, 4),
    c=st.integers(1, 3),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    lead=st.lists(st.integers(1, 2), max_size=2),
    seed=st.integers(0, 10_000),
)
def test_pixel_shuffle_and_unshuffle_match_torch(r, c, h, w, lead, seed):
    x = _randn(seed, *lead, c * r * r, h, w)
    _same_forward_and_backward(lambda t: pixel_shuffle(t, r), lambda t: F.pixel_shuffle(t, r), x, atol=0)
    y = _randn(seed + 1, *lead, c, h * r, w * r)
    _same_forward_and_backward(lambda t: pixel_unshuffle(t, r), lambda t: F.pixel_unshuffle(t, r), y, atol=0)
    torch.testing.assert_close(pixel_unshuffle(pixel_shuffle(x, r), r), x, rtol=0, atol=0)


def test_pixel_shuffle_index_formula():
    r, c, h, w = 3, 2, 2, 4
    x = torch.arange(c * r * r * h * w, dtype=torch.float64).view(1, c * r * r, h, w)
    y = pixel_shuffle(x, r)
    for cc in range(c):
        for i in range(r):
            for j in range(r):
                torch.testing.assert_close(y[0, cc, i::r, j::r], x[0, cc * r * r + i * r + j])


# --- transposed convolution ---------------------------------------------------------------------------


@SETTINGS
@given(
    groups=st.integers(1, 3),
    c_in_g=st.integers(1, 2),
    c_out_g=st.integers(1, 3),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    p=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    d=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    op_frac=st.tuples(st.floats(0, 0.999), st.floats(0, 0.999)),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_conv_transpose2d_matches_torch(groups, c_in_g, c_out_g, k, s, p, d, hw, op_frac, bias, seed):
    op = tuple(int(f * max(sa, da)) for f, sa, da in zip(op_frac, s, d))  # output_padding < max(stride, dilation)
    out = [(hw[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)]
    if min(out) < 1:
        with pytest.raises(RuntimeError):
            conv_transpose2d(
                _randn(seed, 1, groups * c_in_g, *hw),
                _randn(seed, groups * c_in_g, c_out_g, *k),
                None,
                s,
                p,
                op,
                groups,
                d,
            )
        return
    x = _randn(seed, 2, groups * c_in_g, *hw)
    weight = _randn(seed + 1, groups * c_in_g, c_out_g, *k)
    b = _randn(seed + 2, groups * c_out_g) if bias else None
    inputs = (x, weight) if b is None else (x, weight, b)
    _same_forward_and_backward(
        lambda *t: conv_transpose2d(*t[:2], t[2] if len(t) > 2 else None, s, p, op, groups, d),
        lambda *t: F.conv_transpose2d(*t[:2], t[2] if len(t) > 2 else None, s, p, op, groups, d),
        *inputs,
        atol=1e-10,
    )


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv(u), v> = <u, conv_transpose(v)>: the defining property, no torch transposed conv involved."""
    u, w = _randn(0, 2, 3, 9, 8), _randn(1, 4, 3, 3, 2)
    s, p, d = (2, 2), (1, 1), (1, 2)
    y = F.conv2d(u, w, stride=s, padding=p, dilation=d)
    v = _randn(2, *y.shape)
    # output_padding recovers the input length that the floor in conv2d's output length dropped
    op = tuple(
        u.shape[2 + a] - ((y.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (w.shape[2 + a] - 1) + 1) for a in range(2)
    )
    back = conv_transpose2d(v, w, stride=s, padding=p, output_padding=op, dilation=d)
    assert back.shape == u.shape
    torch.testing.assert_close((y * v).sum(), (u * back).sum())


def test_conv_transpose_layer_weights_from_torch():
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(4, 6, (3, 4), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2).double()
    x = _randn(3, 2, 4, 5, 4)
    ours = conv_transpose2d(x, layer.weight, layer.bias, layer.stride, layer.padding, layer.output_padding, 2)
    torch.testing.assert_close(ours, layer(x), rtol=0, atol=1e-12)


# --- max unpooling ------------------------------------------------------------------------------------


@SETTINGS
@given(
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    p_frac=st.floats(0, 0.999),
    hw=st.tuples(st.integers(4, 12), st.integers(4, 12)),
    give_size=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_max_unpool2d_matches_torch(k, s, p_frac, hw, give_size, seed):
    p = int(p_frac * (k // 2 + 1))  # torch: pad <= kernel / 2
    x = _randn(seed, 2, 3, *hw)
    pooled, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    size = hw if give_size else None
    default = tuple((n - 1) * s - 2 * p + k for n in pooled.shape[2:])
    if size is None and int(idx.max()) >= default[0] * default[1]:
        size = hw  # the default output is too small for these indices (torch raises too)
    _same_forward_and_backward(
        lambda t: max_unpool2d(t, idx, k, s, p, output_size=size),
        lambda t: F.max_unpool2d(t, idx, k, s, p, output_size=size),
        pooled,
        atol=0,
    )
    restored = max_unpool2d(pooled, idx, k, s, p, output_size=hw)
    mask = restored != 0
    torch.testing.assert_close(restored[mask], x[mask])  # values go back to where the maxima were


# --- errors -------------------------------------------------------------------------------------------


def test_bad_arguments_are_named():
    x = _randn(0, 1, 4, 3, 3)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        upsample_nearest(x)
    with pytest.raises(ValueError, match="scale_factor"):
        upsample_nearest(x, scale_factor=-1.0)
    with pytest.raises(ValueError, match="size"):
        upsample_bilinear2d(x, size=(0, 3))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        upsample_bilinear2d(x[0], size=(4, 4))
    with pytest.raises(ValueError, match="mode"):
        interpolate(x, size=4, mode="bicubic")
    with pytest.raises(ValueError, match="divisible by r"):
        pixel_shuffle(x, 3)
    with pytest.raises(ValueError, match="r must be a positive int"):
        pixel_shuffle(x, 0)
    with pytest.raises(ValueError, match="divisible by r"):
        pixel_unshuffle(x, 2)
    with pytest.raises(ValueError, match="weight.shape"):
        conv_transpose2d(x, _randn(0, 3, 2, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d(x, _randn(0, 4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="stride"):
        conv_transpose2d(x, _randn(0, 4, 2, 3, 3), stride=0)
    with pytest.raises(ValueError, match="indices"):
        max_unpool2d(x, torch.zeros(1, 4, 3, 3, dtype=torch.int64) + 100, 2)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        upsample_nearest([[1.0]], size=2)
