"""shiyan.text.embedding against torch built-ins, a naive window builder and scikit-learn's PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from shiyan.text.embedding import (
    CBOW,
    cbow_examples,
    cosine_neighbours,
    embed,
    one_hot,
    one_hot_embed,
    pca_2d,
    train_cbow,
)


def test_one_hot_product_equals_lookup_forward_and_gradient():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(50, 7, generator=g)
    ids = torch.randint(0, 50, (6, 9), generator=g)  # repeated ids, 2-D batch
    G = torch.randn(6, 9, 7, generator=g)
    assert torch.equal(one_hot(ids, 50), F.one_hot(ids, 50).float())
    results = []
    for f in (
        embed,
        one_hot_embed,
        lambda i, w: F.embedding(i, w),
        lambda i, w: torch.nn.Embedding.from_pretrained(w, freeze=False)(i),
    ):
        w = W.clone().requires_grad_(True)
        y = f(ids, w)
        (y * G).sum().backward()
        grad = w.grad if w.grad is not None else None
        results.append((y.detach(), grad))
    ref_y = F.embedding(ids, W)
    ref_grad = torch.zeros_like(W).index_add_(0, ids.reshape(-1), G.reshape(-1, 7))
    for y, grad in results[:3]:
        assert torch.equal(y, ref_y)
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-5)
    assert torch.equal(results[3][0], ref_y)


def test_cbow_examples_equal_naive_windows():
    ids = np.array([5, 6, 7, 8, 9, 10, 11])
    offsets = np.array([0, 3, 3, 7])  # sentences [5 6 7], [], [8 9 10 11]
    ctx, ctr = cbow_examples(ids, offsets, window=2, pad_id=1)
    sents = [[5, 6, 7], [], [8, 9, 10, 11]]
    expected = []
    for s in sents:
        for t in range(len(s)):
            expected.append([s[t + j] if 0 <= t + j < len(s) else 1 for j in (-2, -1, 1, 2)])
    assert ctx.tolist() == expected and ctr.tolist() == ids.tolist()
    with pytest.raises(ValueError, match="window"):
        cbow_examples(ids, offsets, window=0, pad_id=1)


def test_training_never_moves_unread_rows_and_lowers_the_loss():
    rng = np.random.default_rng(0)
    V = 40
    ids = rng.integers(3, 30, 3000)  # ids 30..39 are never read
    offsets = np.arange(0, 3001, 10)
    ctx, ctr = cbow_examples(ids, offsets, 2, pad_id=1)
    g = torch.Generator().manual_seed(0)
    m = CBOW(V, 8, num_out=20, generator=g)
    init = m.emb.detach().clone()
    losses = list(train_cbow(m, ctx, ctr, epochs=3, batch_size=64, lr=1e-2, generator=g))
    assert torch.equal(m.emb.detach()[30:], init[30:])
    assert not torch.equal(m.emb.detach()[3:30], init[3:30])
    assert losses[-1] < losses[0]


def test_cosine_neighbours_and_pca_match_references():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(30, 5, generator=g, dtype=torch.float64)
    q = torch.tensor([0, 4, 29])
    sims, nb = cosine_neighbours(W, q, 3)
    U = W.numpy() / np.linalg.norm(W.numpy(), axis=1, keepdims=True)
    S = U[q.numpy()] @ U.T
    S[np.arange(3), q.numpy()] = -np.inf
    assert nb.tolist() == np.argsort(-S, axis=1)[:, :3].tolist()
    np.testing.assert_allclose(sims.numpy(), np.sort(S, axis=1)[:, ::-1][:, :3])
    xy = pca_2d(W).numpy()
    ref = PCA(2).fit_transform(W.numpy())
    np.testing.assert_allclose(np.abs(xy), np.abs(ref), atol=1e-10)  # axes are defined up to sign


def test_bad_input_names_the_argument():
    W = torch.randn(5, 2)
    with pytest.raises(ValueError, match="ids"):
        embed(torch.tensor([5]), W)
    with pytest.raises(TypeError, match="ids"):
        embed(torch.tensor([0.0]), W)
    with pytest.raises(ValueError, match="weight"):
        one_hot_embed(torch.tensor([0]), torch.randn(5))
    with pytest.raises(ValueError, match="k"):
        cosine_neighbours(W, torch.tensor([0]), 5)
    with pytest.raises(ValueError, match="num_in"):
        CBOW(1, 2)
