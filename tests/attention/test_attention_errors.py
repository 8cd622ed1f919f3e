"""Bad inputs raise a ValueError or TypeError whose message names the offending argument."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from shiyan.attention import flash_attention, naive_attention
from shiyan.attention.linear import (
    kernel_attention_naive,
    linear_attention,
    linear_attention_init_state,
    linear_attention_recurrent,
    linear_attention_step,
)
from shiyan.attention.sparse import computed_scores, pattern_mask, sparse_attention

ALL = {
    "naive": naive_attention,
    "flash": flash_attention,
    "linear": linear_attention,
    "linear_naive": kernel_attention_naive,
    "linear_recurrent": linear_attention_recurrent,
    "sparse": functools.partial(sparse_attention, pattern="local", window=3),
}


def qkv(b=2, h=3, n_q=5, n_k=5, d=4, d_v=4, dtype=torch.float32):
    return (
        torch.randn(b, h, n_q, d, dtype=dtype),
        torch.randn(b, h, n_k, d, dtype=dtype),
        torch.randn(b, h, n_k, d_v, dtype=dtype),
    )


def cases():
    q, k, v = qkv()
    nan_q = q.clone()
    nan_q[0, 0, 0, 0] = math.nan
    inf_v = v.clone()
    inf_v[1, 2, 3, 0] = math.inf
    return [
        ("not_a_tensor", (q.numpy(), k, v), {}, TypeError, r"^q must be a torch\.Tensor"),
        ("q_3d", (q[0], k, v), {}, ValueError, r"^q must have 4 dimensions"),
        ("int_dtype", (q.long(), k.long(), v.long()), {}, TypeError, r"^q must be a floating-point"),
        (
            "dtype_mix_k",
            (q, k.double(), v),
            {},
            TypeError,
            r"^k has dtype torch\.float64 but q has dtype torch\.float32",
        ),
        ("dtype_mix_v", (q, k, v.half()), {}, TypeError, r"^v has dtype"),
        ("heads_mismatch", (q, k[:, :2], v[:, :2]), {}, ValueError, r"^k has \(batch, heads\) = \(2, 2\)"),
        ("batch_mismatch_v", (q, k, v[:1]), {}, ValueError, r"^v has \(batch, heads\)"),
        ("head_dim_mismatch", (q, k[..., :3], v), {}, ValueError, r"^k has head dimension d = 3"),
        ("seq_k_mismatch", (q, k, v[:, :, :4]), {}, ValueError, r"^v has seq_k = 4"),
        ("empty_query", (q[:, :, :0], k, v), {}, ValueError, r"^q has seq_q = 0"),
        ("nan_q", (nan_q, k, v), {}, ValueError, r"^q contains NaN"),
        ("inf_v", (q, k, inf_v), {}, ValueError, r"^v contains NaN"),
        ("nan_scale", (q, k, v), {"scale": math.nan}, ValueError, r"^scale must be a finite"),
        ("string_scale", (q, k, v), {"scale": "0.5"}, ValueError, r"^scale must be"),
    ]


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_bad_inputs_name_the_argument(name, case):
    _, args, kwargs, error, pattern = case
    with pytest.raises(error, match=pattern):
        ALL[name](*args, **kwargs)


@pytest.mark.parametrize("f", [naive_attention, flash_attention, ALL["sparse"]])
def test_bad_masks(f):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^mask of shape \(5, 4\) does not broadcast"):
        f(q, k, v, mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"^mask must be boolean .* or floating"):
        f(q, k, v, mask=torch.ones(5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^mask contains NaN"):
        f(q, k, v, mask=torch.full((5, 5), math.nan))
    with pytest.raises(TypeError, match=r"^mask must be a torch\.Tensor"):
        f(q, k, v, mask=[[True]])


def test_flash_specific_arguments():
    q, k, v = qkv()
    for name in ("block_q", "block_k"):
        for bad in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive integer"):
                flash_attention(q, k, v, **{name: bad})
    with pytest.raises(ValueError, match=r"^mask requires grad"):
        flash_attention(q, k, v, mask=torch.zeros(5, 5, requires_grad=True))


def test_linear_specific_arguments():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^mask must be a key-padding mask"):
        linear_attention(q, k, v, mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"^mask must be a boolean key-padding mask"):
        linear_attention(q, k, v, mask=torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"^chunk_size must be a positive integer"):
        linear_attention(q, k, v, causal=True, chunk_size=0)
    with pytest.raises(ValueError, match=r"^eps must be a non-negative"):
        linear_attention(q, k, v, eps=-1.0)
    with pytest.raises(TypeError, match=r"^feature_map must be callable"):
        linear_attention(q, k, v, feature_map="elu")
    with pytest.raises(ValueError, match=r"^causal must be True"):
        linear_attention_recurrent(q, k, v, causal=False)
    with pytest.raises(ValueError, match=r"^q has seq_q = 5 but k has seq_k = 6"):
        linear_attention_recurrent(q, *qkv(n_k=6)[1:])
    state = linear_attention_init_state(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"^q_t must be a tensor of shape \(batch, heads, dim\)"):
        linear_attention_step(state, q, k[:, :, 0], v[:, :, 0])
    with pytest.raises(ValueError, match=r"^state\.s has shape"):
        linear_attention_step(linear_attention_init_state(2, 2, 4, 4), q[:, :, 0], k[:, :, 0], v[:, :, 0])


def test_sparse_specific_arguments():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"^pattern must be one of local, strided, fixed"):
        sparse_attention(q, k, v, pattern="dilated", window=3)
    with pytest.raises(ValueError, match=r"^window must be a positive integer; got None"):
        sparse_attention(q, k, v, pattern="local")
    with pytest.raises(ValueError, match=r"^stride must be a positive integer; got 0"):
        sparse_attention(q, k, v, pattern="strided", stride=0)
    with pytest.raises(ValueError, match=r"^summary must be at most stride = 3"):
        sparse_attention(q, k, v, pattern="fixed", stride=3, summary=4)
    with pytest.raises(ValueError, match=r"^window applies to pattern='local'"):
        sparse_attention(q, k, v, pattern="strided", stride=2, window=3)
    with pytest.raises(ValueError, match=r"^block must be a positive integer"):
        sparse_attention(q, k, v, pattern="local", window=2, block=0)
    with pytest.raises(ValueError, match=r"^n_q must be a positive integer"):
        pattern_mask("local", 0, window=2)
    with pytest.raises(ValueError, match=r"^block must be a positive integer"):
        computed_scores("local", 10, window=2, block=-1)
