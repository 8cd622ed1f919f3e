r"""Word embeddings: the one-hot product, a lookup table, and a small model that learns one.

**One-hot times a matrix is a lookup.** Let word $w$ have id $i \in \{0, \dots, V-1\}$ and one-hot
vector $\mathbf{e}_i \in \{0,1\}^V$. For a table $W \in \mathbb{R}^{V \times d}$,

$$\mathbf{e}_i^\top W = W_{i,:},$$

so a linear layer applied to one-hot inputs is an *embedding lookup*: row $i$ of $W$, read in $O(d)$
instead of the $O(Vd)$ of the product. The gradients agree as well: for a loss $L$ of the output
rows $Y = E W$ (with $E$ the $(B, V)$ one-hot matrix of a batch),

$$\frac{\partial L}{\partial W} = E^\top \frac{\partial L}{\partial Y}, \qquad
\Big(\frac{\partial L}{\partial W}\Big)_{i,:} = \sum_{b : \text{id}_b = i} \Big(\frac{\partial L}{\partial Y}\Big)_{b,:},$$

i.e. the gradient of a lookup scatters-adds each output gradient into the row that was read. A row
whose word is never read gets an exactly zero gradient -- and with SGD or Adam (no weight decay) it
never moves from its initial value. That is the first thing an embedding table does *not* learn.

**A model that learns a table** (continuous bag of words, Mikolov et al. 2013): predict the word
$w_t$ from the mean of the embeddings of its $2c$ neighbours,

$$\mathbf{h}_t = \frac{1}{2c}\sum_{0 < |j| \le c} W_{w_{t+j},:}, \qquad
p(w_t = v \mid \text{context}) = \operatorname{softmax}_v\big(U \mathbf{h}_t + \mathbf{b}\big),$$

trained by minimising the cross-entropy with the full softmax (vocabularies here are small). Words
used in similar contexts get similar rows, which shows as nearest neighbours under the cosine
similarity $\cos(\mathbf{u}, \mathbf{v}) = \mathbf{u}^\top\mathbf{v} / (\|\mathbf{u}\|\,\|\mathbf{v}\|)$.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def one_hot(ids: torch.Tensor, num_words: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(..., V) one-hot rows $\\mathbf{e}_i$ of integer ``ids`` in ``[0, num_words)``."""
    _check_ids(ids, num_words)
    out = torch.zeros(*ids.shape, num_words, dtype=dtype, device=ids.device)  # (..., V)
    return out.scatter_(-1, ids.unsqueeze(-1), 1.0)


def one_hot_embed(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(..., d) $E W$: the one-hot matrix of ``ids`` times ``weight`` (V, d) -- the slow way to look rows up."""
    _check_weight(weight)
    E = one_hot(ids, weight.shape[0], dtype=weight.dtype)  # (..., V)
    return E @ weight  # (..., d)


def embed(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(..., d) rows ``weight[ids]``: the lookup $W_{i,:}$ (gradient: scatter-add into the rows read)."""
    _check_weight(weight)
    _check_ids(ids, weight.shape[0])
    return weight.index_select(0, ids.reshape(-1)).reshape(*ids.shape, weight.shape[1])


def cbow_examples(ids: np.ndarray, offsets: np.ndarray, window: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Contexts and centres for CBOW from sentences laid out back to back.

    Args:
        ids: (T,) int64 token ids; offsets: (S + 1,) sentence boundaries.
        window: c, neighbours on each side.
        pad_id: id placed where a neighbour falls outside the sentence.

    Returns:
        context: (T, 2c) int64 ids $w_{t-c}, \\dots, w_{t-1}, w_{t+1}, \\dots, w_{t+c}$; centre: (T,) $w_t$.
    """
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1; got {window!r}")
    if ids.ndim != 1 or offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != ids.size:
        raise ValueError("ids must be 1-D and offsets must run from 0 to len(ids)")
    T = ids.shape[0]
    pos = np.arange(T)
    sent = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))  # (T,)
    shifts = [j for j in range(-window, window + 1) if j != 0]
    context = np.full((T, 2 * window), pad_id, dtype=np.int64)
    for k, j in enumerate(shifts):
        src = pos + j
        ok = (src >= 0) & (src < T)
        ok[ok] &= sent[src[ok]] == sent[ok]
        context[ok, k] = ids[src[ok]]
    return context, ids.copy()


class CBOW(nn.Module):
    """Continuous bag of words with a full softmax.

    The input table ``emb`` (V_in, d) and the output layer ``out`` (V_out, d) + ``bias`` may have different
    vocabularies: a lookup costs $O(d)$ whatever $V_{in}$, while the softmax costs $O(V_{out} d)$, so the input
    side can hold every word and the output side only the frequent ones (centres outside it are skipped).
    """

    def __init__(
        self,
        num_in: int,
        dim: int,
        num_out: int | None = None,
        generator: torch.Generator | None = None,
        init_scale: float = 0.1,
    ):
        super().__init__()
        num_out = num_in if num_out is None else num_out
        if num_in < 2 or num_out < 2 or dim < 1:
            raise ValueError(f"num_in and num_out must be >= 2 and dim >= 1; got {num_in}, {num_out}, {dim}")
        self.emb = nn.Parameter(torch.randn(num_in, dim, generator=generator) * init_scale)  # (V_in, d)
        self.out = nn.Parameter(torch.randn(num_out, dim, generator=generator) * init_scale)  # (V_out, d)
        self.bias = nn.Parameter(torch.zeros(num_out))  # (V_out,)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        h = embed(context, self.emb).mean(dim=1)  # (B, 2c, d) -> (B, d)
        return h @ self.out.T + self.bias  # (B, V_out) logits


def train_cbow(
    model: CBOW,
    context: np.ndarray,
    centre: np.ndarray,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> Iterator[float]:
    """Adam on the CBOW cross-entropy over examples with ``0 <= centre < V_out`` (others are skipped).

    Yields the mean training loss of every epoch.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    keep = (centre >= 0) & (centre < model.out.shape[0])
    X = torch.from_numpy(np.ascontiguousarray(context[keep]))  # (M, 2c)
    y = torch.from_numpy(np.ascontiguousarray(centre[keep]))  # (M,)
    if X.shape[0] == 0:
        raise ValueError("no example has its centre word in the output vocabulary")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    M = X.shape[0]
    for _ in range(epochs):
        order = torch.randperm(M, generator=generator)
        total = 0.0
        for start in range(0, M, batch_size):
            b = order[start : start + batch_size]
            loss = F.cross_entropy(model(X[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * b.shape[0]
        yield total / M


def cosine_neighbours(weight: torch.Tensor, query: torch.Tensor, k: int, exclude: torch.Tensor | None = None):
    """Top-``k`` rows of ``weight`` (V, d) by cosine similarity to each row id in ``query`` (Q,), itself excluded.

    Returns (similarities (Q, k), ids (Q, k)). ``exclude``: (V,) bool rows never returned.
    """
    _check_weight(weight)
    _check_ids(query, weight.shape[0])
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < weight.shape[0]:
        raise ValueError(f"k must be an integer in [1, V); got {k!r}")
    unit = F.normalize(weight, dim=1)  # (V, d)
    sims = unit[query] @ unit.T  # (Q, V)
    sims[torch.arange(query.shape[0]), query] = -torch.inf
    if exclude is not None:
        sims[:, exclude] = -torch.inf
    return sims.topk(k, dim=1)


def pca_2d(weight: torch.Tensor) -> torch.Tensor:
    """(V, 2) coordinates of the rows of ``weight`` on its first two principal axes."""
    _check_weight(weight)
    X = weight - weight.mean(dim=0, keepdim=True)  # (V, d)
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return X @ Vh[:2].T  # (V, 2)


def _check_ids(ids: torch.Tensor, num_words: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"ids must be an int64/int32 tensor; got {type(ids).__name__} {getattr(ids, 'dtype', '')}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_words):
        raise ValueError(f"ids must lie in [0, {num_words}); got min {int(ids.min())}, max {int(ids.max())}")


def _check_weight(weight: torch.Tensor) -> None:
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError(f"weight must be a 2-D tensor (V, d); got {getattr(weight, 'shape', type(weight))}")


__all__ = ["CBOW", "cbow_examples", "cosine_neighbours", "embed", "one_hot", "one_hot_embed", "pca_2d", "train_cbow"]
