"""Attention, one interface for every variant: ``f(q, k, v, *, causal=False, mask=None, scale=None)``.

Shapes ``q (batch, heads, seq_q, d)``, ``k (batch, heads, seq_k, d)``, ``v (batch, heads, seq_k, d_v)``
-> ``(batch, heads, seq_q, d_v)``; a boolean ``mask`` is True where a query may attend, a floating one
is added to the scores; ``causal`` is aligned bottom-right (query ``i`` sees keys ``j <= i + seq_k -
seq_q``); ``scale`` defaults to ``1/sqrt(d)``. See :mod:`shiyan.attention.naive` for the details.

* :func:`naive_attention` -- the oracle, the full score matrix in memory.
* :func:`flash_attention` -- FlashAttention(-2): tiles, online softmax, recomputation in backward;
  on CUDA tensors the Triton kernels of :mod:`shiyan.attention.flash_triton` (imported lazily, so
  this package imports without ``triton``).
* :func:`linear_attention` -- Katharopoulos et al. (2020), parallel, causal and recurrent forms.
* :func:`sparse_attention` -- local, strided and fixed patterns (Child et al. 2019), block-sparse.
"""

from shiyan.attention.flash import flash_attention, flash_attention_forward
from shiyan.attention.linear import (
    LinearAttentionState,
    elu_feature_map,
    kernel_attention_naive,
    linear_attention,
    linear_attention_init_state,
    linear_attention_recurrent,
    linear_attention_state,
    linear_attention_step,
)
from shiyan.attention.naive import causal_mask, check_attention_args, default_scale, masked_softmax, naive_attention
from shiyan.attention.sparse import (
    PATTERNS,
    SparsePattern,
    computed_scores,
    fixed_attention,
    local_attention,
    pattern_mask,
    sparse_attention,
    strided_attention,
)

__all__ = [
    "PATTERNS",
    "LinearAttentionState",
    "SparsePattern",
    "causal_mask",
    "check_attention_args",
    "computed_scores",
    "default_scale",
    "elu_feature_map",
    "fixed_attention",
    "flash_attention",
    "flash_attention_forward",
    "kernel_attention_naive",
    "linear_attention",
    "linear_attention_init_state",
    "linear_attention_recurrent",
    "linear_attention_state",
    "linear_attention_step",
    "local_attention",
    "masked_softmax",
    "naive_attention",
    "pattern_mask",
    "sparse_attention",
    "strided_attention",
]
