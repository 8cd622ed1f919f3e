"""Word2Vec: one update against torch autograd, the kernel against the numpy update, the Huffman tree and
the noise sampler against closed forms, planted neighbours, gensim interoperability, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiyan.text import _w2v_kernels as K
from shiyan.text.word2vec import (
    KeyedVectors,
    Word2Vec,
    encode_corpus,
    hs_probabilities,
    huffman_tree,
    keep_probabilities,
    logistic_loss_grads,
    noise_distribution,
    sgd_step,
)

D = 8


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- one update vs autograd ----------------------------------------------------------------------------------------


def test_sgns_gradients_equal_autograd():
    rng = _rng(1)
    h = rng.normal(size=D)
    v_out = rng.normal(size=(6, D))  # target then 5 negatives
    labels = np.array([1.0, 0, 0, 0, 0, 0])
    loss, g_h, g_out = logistic_loss_grads(h, v_out, labels)

    th = torch.tensor(h, requires_grad=True)
    tv = torch.tensor(v_out, requires_grad=True)
    # -log sigma(v'_O . h) - sum_i log sigma(-v'_i . h), written as in the paper
    ref = -torch.nn.functional.logsigmoid(tv[0] @ th) - torch.nn.functional.logsigmoid(-(tv[1:] @ th)).sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(g_h, th.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_out, tv.grad.numpy(), rtol=1e-10, atol=1e-12)


def _tree_and_counts(v: int = 12):
    counts = np.sort(_rng(2).integers(1, 200, size=v))[::-1].copy()
    return counts, huffman_tree(counts)


def test_hs_gradients_equal_autograd_of_path_probability():
    counts, tree = _tree_and_counts()
    rng = _rng(3)
    h = rng.normal(size=D)
    w_hs = rng.normal(size=(len(counts) - 1, D))
    w = 7
    points, codes = tree.path(w)
    loss, g_h, g_rows = logistic_loss_grads(h, w_hs[points], 1.0 - codes)

    th = torch.tensor(h, requires_grad=True)
    tw = torch.tensor(w_hs, requires_grad=True)
    sign = torch.tensor(1.0 - 2.0 * codes.astype(np.float64))  # [[next = ch(n)]] as +-1
    p = torch.sigmoid(sign * (tw[torch.tensor(points)] @ th)).prod()  # p(w | h), eq. (3)
    (-torch.log(p)).backward()
    assert loss == pytest.approx(-np.log(hs_probabilities(h, w_hs, tree)[w]), rel=1e-10)
    np.testing.assert_allclose(g_h, th.grad.numpy(), rtol=1e-9, atol=1e-12)
    full = np.zeros_like(w_hs)
    full[points] = g_rows
    np.testing.assert_allclose(full, tw.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_sgd_step_is_minus_alpha_gradient_and_kernel_mirrors_it():
    rng = _rng(4)
    v = 20
    w_in = rng.normal(size=(v, D)).astype(np.float32)
    w_out = rng.normal(size=(v, D)).astype(np.float32)
    rows = np.array([3, 11, 5, 17, 0])
    labels = np.array([1, 0, 0, 0, 0], dtype=np.float32)
    alpha = 0.05
    new_in, new_out = sgd_step(w_in, w_out, 9, rows, labels, alpha)

    # autograd on the same loss, plain SGD
    t_in = torch.tensor(w_in, dtype=torch.float64, requires_grad=True)
    t_out = torch.tensor(w_out, dtype=torch.float64, requires_grad=True)
    s = t_out[torch.tensor(rows)] @ t_in[9]
    y = torch.tensor(labels, dtype=torch.float64)
    torch.nn.functional.binary_cross_entropy_with_logits(s, y, reduction="sum").backward()
    np.testing.assert_allclose(new_in, w_in - alpha * t_in.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_out, w_out - alpha * t_out.grad.numpy(), rtol=1e-5, atol=1e-6)

    # the compiled kernel: output rows in place, the input gradient returned in grad_h
    k_in, k_out = w_in.copy(), w_out.copy()
    grad_h = np.zeros(D, np.float32)
    loss = K.logistic_rows_update(k_in[9], k_out, rows, labels, len(rows), np.float32(alpha), grad_h, True)
    k_in[9] += grad_h
    np.testing.assert_allclose(k_in, new_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(k_out, new_out, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(logistic_loss_grads(w_in[9], w_out[rows], labels)[0], rel=1e-5)


def test_kernel_hs_update_matches_numpy_on_a_huffman_path():
    counts, tree = _tree_and_counts()
    rng = _rng(5)
    w_in = rng.normal(size=(len(counts), D)).astype(np.float32)
    w_hs = rng.normal(size=(len(counts) - 1, D)).astype(np.float32)
    points, codes = tree.path(2)
    labels = (1.0 - codes).astype(np.float32)
    new_in, new_hs = sgd_step(w_in, w_hs, 4, points, labels, 0.1)
    k_in, k_hs = w_in.copy(), w_hs.copy()
    grad_h = np.zeros(D, np.float32)
    K.logistic_rows_update(k_in[4], k_hs, points, labels, len(points), np.float32(0.1), grad_h, False)
    k_in[4] += grad_h
    np.testing.assert_allclose(k_in, new_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(k_hs, new_hs, rtol=1e-5, atol=1e-6)


# -- a slow reference written from word2vec.c's equations, and gensim's own update ---------------------------------

_MAX_EXP, _TABLE = 6.0, 1000


def _table_sigmoid(s: float) -> float | None:
    """word2vec.c's (and gensim's) sigmoid: a 1000-entry table on (-6, 6); None where it skips the node.
    The index multiplier is the C integer expression 1000 / 6 / 2 = 83, not 83.33."""
    if s <= -_MAX_EXP or s >= _MAX_EXP:
        return None
    x = (int((s + _MAX_EXP) * (_TABLE // int(_MAX_EXP) // 2)) / _TABLE * 2 - 1) * _MAX_EXP
    return float(np.exp(x) / (np.exp(x) + 1))


def _hs_reference(sent, w_in, w_hs, tree, sg: bool, alpha: float, table: bool):
    r"""Hierarchical softmax on one sentence with window 1 (no random window, no subsampling), loop by loop
    as word2vec.c: for each centre word i and its context words, $f = \sigma(h^\top v'_n)$ at every node of
    the centre word's path, $g = (1 - d - f)\,\alpha$, $e \mathrel{+}= g\,v'_n$, $v'_n \mathrel{+}= g\,h$,
    then the input vector(s) $\mathrel{+}= e$. Skip-gram: $h$ is one context word's vector at a time; CBOW:
    the mean of the context vectors, and each of them receives $e$."""
    w_in, w_hs = w_in.astype(np.float64), w_hs.astype(np.float64)
    for i in range(len(sent)):
        context = [sent[j] for j in (i - 1, i + 1) if 0 <= j < len(sent)]
        inputs = [[c] for c in context] if sg else [context]
        for group in inputs:
            h = w_in[group].mean(axis=0)  # (D,)
            e = np.zeros_like(h)
            points, codes = tree.path(sent[i])
            for node, d in zip(points.tolist(), codes.tolist(), strict=True):
                s = float(h @ w_hs[node])
                f = _table_sigmoid(s) if table else 1.0 / (1.0 + np.exp(-s))
                if f is None:
                    continue
                g = (1 - d - f) * alpha
                e += g * w_hs[node]
                w_hs[node] += g * h
            for c in group:
                w_in[c] += e
    return w_in, w_hs


def _run_kernel_on_sentence(sent, w_in, w_hs, tree, sg: bool, alpha: float):
    v, d = w_in.shape
    k_in, k_hs = w_in.copy(), w_hs.copy()
    prob, alias = K.alias_table(np.ones(v))
    K.train_chunk(
        np.array(sent, np.int32), np.array([0, len(sent)], np.int64), 0, 1, k_in, np.zeros((1, d), np.float32), k_hs,
        np.ones(v), prob, alias, tree.points, tree.codes, tree.offsets, int(np.diff(tree.offsets).max()),
        sg, True, 0, 1, True, alpha, alpha, 0.0, 1.0, np.uint64(1), False,
    )  # fmt: skip
    return k_in, k_hs


_SENT = [3, 0, 7, 1, 0, 11, 5, 2]  # word 0 twice: its vector is read after its own update


@pytest.mark.parametrize("sg", [True, False])
def test_hs_kernel_equals_slow_word2vec_c_reference(sg):
    counts, tree = _tree_and_counts()
    rng = _rng(12)
    w_in = rng.normal(scale=0.3, size=(len(counts), D)).astype(np.float32)
    w_hs = rng.normal(scale=0.3, size=(len(counts) - 1, D)).astype(np.float32)
    ref_in, ref_hs = _hs_reference(_SENT, w_in, w_hs, tree, sg, 0.05, table=False)
    k_in, k_hs = _run_kernel_on_sentence(_SENT, w_in, w_hs, tree, sg, 0.05)
    assert np.abs(ref_in - w_in).max() > 0.02  # the sentence moves the vectors
    np.testing.assert_allclose(k_in, ref_in, atol=2e-6)
    np.testing.assert_allclose(k_hs, ref_hs, atol=2e-6)
    # a convention error (target d instead of 1 - d) would be far outside these tolerances
    flipped = huffman_tree(counts)
    object.__setattr__(flipped, "codes", (1 - tree.codes).astype(np.uint8))
    bad_in, _ = _hs_reference(_SENT, w_in, w_hs, flipped, sg, 0.05, table=False)
    assert np.abs(bad_in - ref_in).max() > 0.01


@pytest.mark.parametrize("sg", [True, False])
def test_huffman_tree_and_hs_update_equal_gensims(sg):
    """gensim builds the same tree (points and codes) from the same counts, and its compiled HS update on one
    sentence equals the slow reference run with gensim's tabulated sigmoid; ours differs from gensim only by
    that table (exact sigmoid here)."""
    gensim_models = pytest.importorskip("gensim.models")
    inner = pytest.importorskip("gensim.models.word2vec_inner")
    counts = np.array([290, 250, 171, 120, 98, 61, 44, 30, 22, 13, 9, 5])  # distinct: one order of the words
    tree = huffman_tree(counts)
    words = [f"w{i}" for i in range(len(counts))]
    g = gensim_models.Word2Vec(vector_size=D, window=1, min_count=1, sg=int(sg), hs=1, negative=0, sample=0, workers=1)
    g.build_vocab_from_freq(dict(zip(words, counts.tolist(), strict=True)))
    assert g.wv.index_to_key == words
    for i, w in enumerate(words):
        points, codes = tree.path(i)
        np.testing.assert_array_equal(g.wv.get_vecattr(w, "point"), points)
        np.testing.assert_array_equal(g.wv.get_vecattr(w, "code"), codes)

    rng = _rng(13)
    w_in = rng.normal(scale=0.3, size=(len(counts), D)).astype(np.float32)
    w_hs = rng.normal(scale=0.3, size=(len(counts) - 1, D)).astype(np.float32)
    g.wv.vectors[:] = w_in
    g.syn1[:] = 0.0
    g.syn1[: len(counts) - 1] = w_hs
    batch = [[words[i] for i in _SENT]]
    work = np.zeros(D, np.float32)
    if sg:
        inner.train_batch_sg(g, batch, 0.05, work, False)
    else:
        inner.train_batch_cbow(g, batch, 0.05, work, np.zeros(D, np.float32), False)
    g_in, g_hs = g.wv.vectors, g.syn1[: len(counts) - 1]
    ref_in, ref_hs = _hs_reference(_SENT, w_in, w_hs, tree, sg, 0.05, table=True)
    np.testing.assert_allclose(g_in, ref_in, atol=2e-6)
    np.testing.assert_allclose(g_hs, ref_hs, atol=2e-6)
    k_in, k_hs = _run_kernel_on_sentence(_SENT, w_in, w_hs, tree, sg, 0.05)
    step = np.abs(g_in - w_in).max()
    assert np.abs(k_in - g_in).max() < 0.05 * step  # the table's resolution, not a different update
    assert np.abs(k_hs - g_hs).max() < 0.05 * np.abs(g_hs - w_hs).max()


# -- Huffman tree, noise, subsampling ------------------------------------------------------------------------------


def test_huffman_probabilities_sum_to_one_and_codes_are_optimal_order():
    counts, tree = _tree_and_counts(50)
    rng = _rng(6)
    for _ in range(5):
        p = hs_probabilities(rng.normal(size=D), rng.normal(size=(49, D)), tree)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
    lengths = np.diff(tree.offsets)
    assert np.sum(0.5**lengths) == pytest.approx(1.0)  # Kraft equality: a full binary tree
    assert np.all(np.diff(lengths) >= 0)  # more frequent words never get longer codes
    # Huffman's cost equals the sum of the merged weights (computed here independently with a sorted list)
    weights = sorted(counts.tolist())
    cost = 0
    while len(weights) > 1:
        a, b = weights.pop(0), weights.pop(0)
        cost += a + b
        weights = sorted([*weights, a + b])
    assert int(np.sum(counts * lengths)) == cost
    assert set(tree.points.tolist()) == set(range(49))


def test_alias_sampler_matches_the_unigram_power_distribution():
    counts = np.array([1000, 400, 90, 30, 5, 1], dtype=np.int64)
    p = noise_distribution(counts, 0.75)
    np.testing.assert_allclose(p, counts**0.75 / np.sum(counts**0.75))
    prob, alias = K.alias_table(p)
    # the exact probability the table encodes
    n = len(p)
    encoded = prob / n
    np.add.at(encoded, alias, (1.0 - prob) / n)
    np.testing.assert_allclose(encoded, p, atol=1e-12)
    draws = K.draw_many(prob, alias, 400_000, 7)
    freq = np.bincount(draws, minlength=n) / draws.size
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / draws.size) + 1e-5)


def test_keep_probability_is_mikolovs_formula():
    counts = np.array([10_000, 1_000, 100, 10, 1])
    sample = 1e-3
    t = sample * counts.sum()
    expected = np.minimum(1.0, np.sqrt(t / counts) + t / counts)  # (sqrt(c/t) + 1) t / c
    np.testing.assert_allclose(keep_probabilities(counts, sample), expected)
    assert np.all(keep_probabilities(counts, 0) == 1)


def test_encode_corpus_drops_rare_words_and_splits_long_sentences():
    sents = [["a", "b", "a", "rare"], ["rare2"], ["b"] * 25_000]
    c = encode_corpus(sents, min_count=2)
    assert c.vocab == ["b", "a"]
    assert c.counts.tolist() == [25_001, 2]
    assert c.ids[:3].tolist() == [1, 0, 1]
    assert np.diff(c.offsets).tolist() == [3, 10_000, 10_000, 5_000]


# -- training ------------------------------------------------------------------------------------------------------


def _planted_corpus(n_clusters=6, per=8, n_sent=1500, length=12, seed=0) -> tuple[list[list[str]], list[set[str]]]:
    """Sentences that each use the words of one cluster only: neighbours must be cluster mates."""
    rng = _rng(seed)
    clusters = [[f"c{k}w{i}" for i in range(per)] for k in range(n_clusters)]
    sents = []
    for _ in range(n_sent):
        words = clusters[rng.integers(n_clusters)]
        sents.append([words[i] for i in rng.integers(per, size=length)])
    return sents, [set(c) for c in clusters]


@pytest.mark.parametrize(("sg", "hs", "negative"), [(1, 0, 5), (0, 0, 5), (1, 1, 0), (0, 1, 0)])
def test_planted_clusters_are_recovered(sg, hs, negative):
    sents, clusters = _planted_corpus()
    model = Word2Vec(
        vector_size=16, window=3, min_count=1, sg=sg, hs=hs, negative=negative, sample=0, epochs=5, workers=2, seed=3
    ).fit(sents)
    hits = total = 0
    for cluster in clusters:
        for w in cluster:
            nn = {x for x, _ in model.wv.most_similar(w, topn=len(cluster) - 1)}
            hits += len(nn & cluster)
            total += len(cluster) - 1
    assert hits / total > 0.95
    assert model.epoch_words == [1500 * 12] * 5


def test_one_worker_is_deterministic_and_seed_matters():
    sents, _ = _planted_corpus(n_sent=300)
    kw = {"vector_size": 10, "min_count": 1, "sg": 1, "hs": 1, "negative": 3, "epochs": 2, "workers": 1}
    a = Word2Vec(seed=5, **kw).fit(sents)
    b = Word2Vec(seed=5, **kw).fit(sents)
    c = Word2Vec(seed=6, **kw).fit(sents)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    np.testing.assert_array_equal(a.syn1neg, b.syn1neg)
    np.testing.assert_array_equal(a.syn1, b.syn1)
    assert not np.array_equal(a.wv.vectors, c.wv.vectors)


def test_loss_decreases_over_epochs():
    sents, _ = _planted_corpus(n_sent=500)
    m = Word2Vec(vector_size=10, min_count=1, sg=1, epochs=4, workers=1, compute_loss=True).fit(sents)
    assert all(a > b for a, b in zip(m.epoch_loss, m.epoch_loss[1:], strict=False))


# -- keyed vectors, files and gensim -------------------------------------------------------------------------------


def _random_kv(v=40, d=6) -> KeyedVectors:
    rng = _rng(9)
    return KeyedVectors([f"w{i}" for i in range(v)], rng.normal(size=(v, d)).astype(np.float32))


def test_most_similar_doesnt_match_similarity_against_brute_force():
    kv = _random_kv()
    x = kv.vectors.astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    q = u[1] + u[2] - u[3]
    q /= np.linalg.norm(q)
    order = [i for i in np.argsort(-(u @ q)) if i not in (1, 2, 3)][:4]
    got = kv.most_similar(positive=["w1", "w2"], negative=["w3"], topn=4)
    assert [w for w, _ in got] == [f"w{i}" for i in order]
    np.testing.assert_allclose([s for _, s in got], (u @ q)[order])
    assert kv.similarity("w4", "w5") == pytest.approx(u[4] @ u[5])
    words = ["w1", "w2", "w3", "w4"]
    mean = u[[1, 2, 3, 4]].mean(0)
    assert kv.doesnt_match(words) == words[int(np.argmin(u[[1, 2, 3, 4]] @ mean))]


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip_and_gensim_reads_it(tmp_path, binary):
    gensim_models = pytest.importorskip("gensim.models")
    sents, _ = _planted_corpus(n_sent=300)
    kv = Word2Vec(vector_size=12, min_count=1, epochs=2, workers=1).fit(sents).wv
    path = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(path, binary=binary)
    back = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(back.vectors, kv.vectors)  # 9 significant digits are exact for float32
    g = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert g.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(g.vectors, kv.vectors)
    for w in ("c0w0", "c3w5"):
        ours = kv.most_similar(w, topn=5)
        theirs = g.most_similar(w, topn=5)
        assert [a for a, _ in ours] == [a for a, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
    # and what gensim writes, we read
    out = tmp_path / "g.out"
    g.save_word2vec_format(str(out), binary=binary)
    np.testing.assert_array_equal(KeyedVectors.load_word2vec_format(out, binary=binary).vectors, kv.vectors)


def test_evaluations_equal_gensims_on_the_same_vectors(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    from shiyan.text import corpora

    questions = corpora.analogy_questions()
    words = sorted({w for sec in list(questions.values())[:3] for q in sec[:60] for w in q})
    words += sorted({w for a, b, _ in corpora.wordsim353() for w in (a, b)} - set(words))
    rng = _rng(11)
    base = rng.normal(size=(len(words), 20)).astype(np.float32)
    kv = KeyedVectors(words, base)
    path = tmp_path / "kv.txt"
    kv.save_word2vec_format(path)
    g = gensim_models.KeyedVectors.load_word2vec_format(str(path))
    qfile = corpora.gensim_test_file("questions-words.txt")
    # make some analogies answerable: d = b + c - a exactly
    for a, b, c, d in list(questions.values())[0][:30]:
        i = {w: kv.key_to_index[w] for w in (a, b, c, d)}
        kv.vectors[i[d]] = kv.vectors[i[b]] + kv.vectors[i[c]] - kv.vectors[i[a]]
        g.vectors[g.key_to_index[d]] = kv.vectors[i[d]]
    g.fill_norms(force=True)
    acc, sections = kv.evaluate_word_analogies(qfile, restrict_vocab=len(words))
    g_acc, g_sections = g.evaluate_word_analogies(str(qfile), restrict_vocab=len(words))
    assert acc == pytest.approx(g_acc) and acc > 0
    assert [(s["section"], s["correct"], s["incorrect"]) for s in sections] == [
        (s["section"], len(s["correct"]), len(s["incorrect"])) for s in g_sections
    ]
    pearson, spearman, oov = kv.evaluate_word_pairs(corpora.wordsim353())
    g_p, g_s, g_oov = g.evaluate_word_pairs(str(corpora.gensim_test_file("wordsim353.tsv")))
    assert pearson == pytest.approx(g_p.statistic, abs=1e-6)
    assert spearman == pytest.approx(g_s.statistic, abs=1e-6)
    assert oov == pytest.approx(g_oov)


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"vector_size": 0}, "vector_size"),
        ({"window": 0}, "window"),
        ({"min_count": 0}, "min_count"),
        ({"negative": -1}, "negative"),
        ({"negative": 0, "hs": False}, "negative"),
        ({"sample": -0.1}, "sample"),
        ({"alpha": 0.0}, "alpha"),
        ({"min_alpha": 1.0}, "min_alpha"),
        ({"epochs": 0}, "epochs"),
        ({"workers": 0}, "workers"),
        ({"vector_size": 2.5}, "vector_size"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Word2Vec(**kwargs)


def test_bad_inputs_name_themselves(tmp_path):
    with pytest.raises(TypeError, match="sentences"):
        Word2Vec(min_count=1).fit("just a string")
    with pytest.raises(TypeError, match="sentences"):
        Word2Vec(min_count=1).fit(["a sentence that is a str", ["ok"]])
    with pytest.raises(ValueError, match="sentences"):
        Word2Vec(min_count=5).fit([["a", "b"]])
    kv = _random_kv()
    with pytest.raises(KeyError, match="nope"):
        kv.most_similar("nope")
    with pytest.raises(ValueError, match="topn"):
        kv.most_similar("w1", topn=0)
    with pytest.raises(ValueError, match="vectors"):
        KeyedVectors(["a", "b"], np.zeros((3, 2)))
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\nw 1 2\n")
    with pytest.raises(ValueError, match="path"):
        KeyedVectors.load_word2vec_format(bad)
    with pytest.raises(ValueError, match="keys"):
        KeyedVectors(["a b", "c"], np.zeros((2, 2))).save_word2vec_format(tmp_path / "x.txt")
