"""The Triton FlashAttention-2 kernels (forward and backward) against naive attention and SDPA.

With a CUDA device the kernels are compiled and run on the GPU. Without one they run on CPU
tensors under Triton's interpreter, which ``conftest.py`` switches on before ``triton`` is first
imported. Skipped cleanly when ``triton`` does not import, or when it was imported earlier in the
process without the interpreter (then its kernels could run nowhere).
"""

from __future__ import annotations

import pytest
import torch
from attention_oracles import max_diff, out_and_grads, rand_qkv, sdpa
from hypothesis import given, settings
from hypothesis import strategies as st

triton = pytest.importorskip("triton")
CUDA = torch.cuda.is_available()
if not CUDA and type(triton.language.zeros).__name__ != "InterpretedFunction":
    pytest.skip("triton was imported before TRITON_INTERPRET=1 was set; no GPU to compile for", allow_module_level=True)

import shiyan.attention.flash_triton as KERNELS  # noqa: E402
from shiyan.attention import flash_attention, flash_attention_forward, naive_attention  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
TOL = {"rtol": 1e-5, "atol": 2e-5} if not CUDA else {"rtol": 1e-4, "atol": 1e-4}
triton_attention = KERNELS.flash_attention_triton


def _qkv(b, h, n_q, n_k, d, d_v=None, *, seed=0, dtype=torch.float32):
    q, k, v = rand_qkv(b, h, n_q, n_k, d, d_v, dtype=dtype, seed=seed, requires_grad=False)
    return tuple(t.to(DEVICE).requires_grad_() for t in (q, k, v))


# (n_q, n_k, d, d_v): equal lengths not a multiple of the 16-row tiles, longer keys (decoding-like),
# longer queries (the first rows see no key when causal), one query, head dims that are not powers of 2
SHAPES = [(37, 37, 16, 16), (20, 45, 24, 8), (45, 20, 16, 16), (1, 33, 8, 8), (64, 64, 32, 40)]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k", "d", "d_v"), SHAPES)
def test_forward_and_backward_equal_naive(n_q, n_k, d, d_v, causal):
    q, k, v = _qkv(1, 2, n_q, n_k, d, d_v, seed=n_q + 7 * n_k)
    g = torch.randn(1, 2, n_q, d_v, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    ours = out_and_grads(triton_attention, q, k, v, g, causal=causal, block_m=16, block_n=16)
    ref = out_and_grads(naive_attention, q, k, v, g, causal=causal)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, **TOL)


@pytest.mark.parametrize("causal", [False, True])
def test_equals_sdpa_and_the_cpu_path(causal):
    q, k, v = _qkv(2, 1, 50, 50, 16, seed=3)
    g = torch.randn(2, 1, 50, 16, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    ours = out_and_grads(triton_attention, q, k, v, g, causal=causal, block_m=16, block_n=32)
    for other in (sdpa, flash_attention):
        for a, r in zip(ours, out_and_grads(other, q, k, v, g, causal=causal), strict=True):
            torch.testing.assert_close(a, r, **TOL)


def test_strided_inputs_from_a_head_split():
    """Heads split by a transpose (as in the LM): non-contiguous q, k, v are read through strides."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 40, 2, 3 * 16, generator=gen).to(DEVICE)  # (B, N, H, 3 d)
    q, k, v = (t.transpose(1, 2).detach().requires_grad_() for t in x.split(16, dim=-1))  # (B, H, N, d)
    assert not q.is_contiguous()
    g = torch.randn(1, 2, 40, 16, generator=gen).to(DEVICE).transpose(2, 3).contiguous().transpose(2, 3)
    ours = out_and_grads(triton_attention, q, k, v, g, causal=True, block_m=16, block_n=16)
    ref = out_and_grads(naive_attention, q, k, v, g, causal=True)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, **TOL)


def test_log_sum_exp_matches_the_cpu_path():
    q, k, v = _qkv(1, 2, 21, 26, 8, seed=5)
    out, lse = KERNELS.flash_attention_triton_forward(q, k, v, causal=True, block_m=16, block_n=16)
    ref_out, ref_lse = flash_attention_forward(q, k, v, causal=True)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(lse, ref_lse, **TOL)


def test_queries_that_see_no_key_output_zero_and_get_zero_gradient():
    q, k, v = _qkv(1, 2, 40, 9, 16, seed=6)  # causal, N_q > N_k: the first 31 rows see no key
    out = triton_attention(q, k, v, causal=True, block_m=16, block_n=16)
    out.sum().backward()
    assert torch.equal(out[:, :, :31], torch.zeros_like(out[:, :, :31]))
    assert torch.equal(q.grad[:, :, :31], torch.zeros_like(q.grad[:, :, :31]))
    assert bool(torch.isfinite(k.grad).all() and torch.isfinite(v.grad).all())
    assert max_diff([out], [naive_attention(q, k, v, causal=True)]) < 1e-5


@settings(max_examples=8, deadline=None)
@given(
    n_q=st.integers(1, 40),
    n_k=st.integers(1, 40),
    d=st.integers(1, 20),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_sdpa(n_q, n_k, d, causal, seed):
    q, k, v = _qkv(1, 1, n_q, n_k, d, seed=seed)
    g = torch.randn(1, 1, n_q, d, generator=torch.Generator().manual_seed(seed)).to(DEVICE)
    ours = out_and_grads(triton_attention, q, k, v, g, causal=causal, block_m=16, block_n=16)
    ref = out_and_grads(sdpa, q, k, v, g, causal=causal)
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, **TOL)


def test_bad_arguments_name_the_argument():
    q, k, v = _qkv(1, 1, 8, 8, 8)
    with pytest.raises(ValueError, match="mask"):
        triton_attention(q, k, v, mask=torch.ones(8, 8, dtype=torch.bool, device=DEVICE))
    with pytest.raises(ValueError, match="block_m"):
        triton_attention(q, k, v, block_m=24)
    with pytest.raises(TypeError, match="dtype"):
        triton_attention(q.double(), k.double(), v.double())
    with pytest.raises(ValueError, match="k has head dimension"):
        triton_attention(q, k[..., :4], v)


def test_support_rules():
    q, k, v = _qkv(1, 1, 8, 8, 8)
    assert KERNELS.supports(q, k, v)
    assert not KERNELS.supports(q, k, v, torch.ones(8, 8, dtype=torch.bool))
    assert not KERNELS.supports(q.double(), k.double(), v.double())


# -- on a GPU: the automatic dispatch, low precision and realistic sizes --------------------------------------


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_flash_attention_dispatches_to_triton_on_cuda(monkeypatch):
    calls = []
    real = KERNELS.flash_attention_triton
    monkeypatch.setattr(KERNELS, "flash_attention_triton", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v = _qkv(1, 2, 64, 64, 32)
    flash_attention(q, k, v, causal=True)
    assert calls == [1]
    flash_attention(q, k, v, mask=torch.ones(64, 64, dtype=torch.bool, device="cuda"))  # a mask: PyTorch path
    assert calls == [1]


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_low_precision_large_sizes_match_sdpa(dtype, d, causal):
    q, k, v = _qkv(2, 4, 1000, 1000, d, seed=d, dtype=dtype)
    g = torch.randn(2, 4, 1000, d, device="cuda", dtype=dtype)
    ours = out_and_grads(flash_attention, q, k, v, g, causal=causal)
    ref32 = out_and_grads(sdpa, *(t.float().detach().requires_grad_() for t in (q, k, v)), g.float(), causal=causal)
    ref_lp = out_and_grads(sdpa, q, k, v, g, causal=causal)
    for a, r32, rlp in zip(ours, ref32, ref_lp, strict=True):
        # no worse than PyTorch's own low-precision kernel, measured against the fp32 result (plus slack)
        err, err_ref = float((a.float() - r32).abs().max()), float((rlp.float() - r32).abs().max())
        assert err <= 2 * err_ref + 1e-3, (err, err_ref)
