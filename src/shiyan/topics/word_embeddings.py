"""N2 -- word embeddings: one-hot times a matrix is a lookup; what a learned table captures and what it cannot."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.core.device import torch_threads
from shiyan.text import Vocab, corpora, english_words, pos_tagged
from shiyan.text.embedding import CBOW, cbow_examples, cosine_neighbours, embed, one_hot_embed, pca_2d, train_cbow

META = TopicMeta(
    slug="word-embeddings",
    category="NLP",
    date=dt.date(2024, 11, 25),
    title_en="Word embeddings: a one-hot product, a lookup table, and what the table learns",
    title_zh="词嵌入：独热向量乘矩阵、查表，以及嵌入表学到了什么",
    summary_en=(
        "Multiplying a one-hot vector by a matrix reads one row: forward and gradient equal torch's embedding. "
        "A small CBOW model trained on People's Daily and Shakespeare puts words of the same part of speech "
        "next to each other, while words it never reads keep their random initial vectors exactly."
    ),
    summary_zh=(
        "独热向量乘矩阵就是取出一行：前向和梯度都与 torch 的 embedding 一致。在《人民日报》和莎士比亚上训练的"
        "小型 CBOW 模型让同词性的词彼此靠近，而从未读到的词则原封不动地保留随机初始向量。"
    ),
    implements=("shiyan.text.embedding",),
)

PROBES = {
    "zh": ("中国", "北京", "经济", "发展", "我们", "一月"),
    "en": ("king", "love", "night", "thou", "sword", "good"),
}
FREQ_BUCKETS = ((1, 2), (3, 9), (10, 49), (50, 10**12))


@dataclass(frozen=True)
class Config(TopicConfig):
    zh_paragraphs: int = 6000
    """People's Daily paragraphs (segmented words with POS tags) used for the Chinese model."""
    en_lines: int = 40_000
    """Shakespeare lines used for the English model."""
    heldout_frac: float = 0.1
    """Fraction of paragraphs/lines withheld from training; words seen only there are never read."""
    dim: int = 32
    """Embedding dimension d."""
    window: int = 2
    """CBOW context: c words on each side."""
    out_vocab: int = 2000
    """Size of the softmax (the most frequent words); the input table holds every word."""
    epochs: int = 2
    """Passes over the training examples."""
    batch_size: int = 512
    """Examples per Adam step."""
    lr: float = 1e-2
    """Adam learning rate."""
    frequent_min: int = 50
    """Training count from which a word counts as frequent (for the part-of-speech neighbour test)."""
    pos_gain_threshold: float = 0.1
    """Claimed minimum gain in nearest-neighbour part-of-speech agreement of frequent words over the init."""
    bench_batch: int = 4096
    """Ids per call in the lookup benchmark."""
    bench_vocab: int = 30_000
    """Table rows V in the lookup benchmark."""

    def validate(self) -> None:
        if self.zh_paragraphs < 200 or self.en_lines < 1000:
            raise ConfigError(f"zh_paragraphs must be >= 200 and en_lines >= 1000; got {self.zh_paragraphs}")
        if not 0.01 <= self.heldout_frac <= 0.5:
            raise ConfigError(f"heldout_frac must be in [0.01, 0.5]; got {self.heldout_frac}")
        if self.dim < 2 or self.window < 1 or self.out_vocab < 50:
            raise ConfigError("dim must be >= 2, window >= 1 and out_vocab >= 50")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("epochs and batch_size must be >= 1 and lr > 0")
        if self.frequent_min < 3 or not 0 < self.pos_gain_threshold < 1:
            raise ConfigError("frequent_min must be >= 3 and pos_gain_threshold in (0, 1)")
        if self.bench_batch < 1 or self.bench_vocab < 10:
            raise ConfigError("bench_batch must be >= 1 and bench_vocab >= 10")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            zh_paragraphs=1500,
            en_lines=6000,
            out_vocab=800,
            epochs=1,
            batch_size=256,
            frequent_min=20,
            bench_vocab=5000,
        )


def identity_check(gen: torch.Generator, V: int = 500, d: int = 16, n: int = 2000) -> tuple[float, float]:
    """Max abs difference of forward values and of gradients between the four ways to read rows."""
    W = torch.randn(V, d, generator=gen, dtype=torch.float64).float()
    ids = torch.randint(0, V, (n,), generator=gen)  # repeats: gradients of a row add up
    G = torch.randn(n, d, generator=gen)  # upstream gradient dL/dY
    outs, grads = [], []
    for f in (
        lambda w: embed(ids, w),
        lambda w: one_hot_embed(ids, w),
        lambda w: F.embedding(ids, w),
        lambda w: F.one_hot(ids, V).to(w.dtype) @ w,
    ):
        w = W.clone().requires_grad_(True)
        y = f(w)
        (y * G).sum().backward()
        outs.append(y.detach())
        grads.append(w.grad)
    fwd = max(float((o - outs[0]).abs().max()) for o in outs[1:])
    grd = max(float((g - grads[0]).abs().max()) for g in grads[1:])
    return fwd, grd


def chinese_data(n: int) -> tuple[list[list[str]], dict[str, str]]:
    """Segmented paragraphs and each word's most frequent POS tag (first letter of the PKU tag)."""
    tags: dict[str, Counter] = {}
    sents = []
    for line in corpora.peoples_daily_lines()[:n]:
        pairs = pos_tagged(line)
        sents.append([w for w, _ in pairs])
        for w, t in pairs:
            tags.setdefault(w, Counter())[t[:1]] += 1
    return sents, {w: c.most_common(1)[0][0] for w, c in tags.items()}


def train_table(sents: list[list[str]], cfg: Config, ctx: RunContext, lang: str):
    """Vocab over *all* sentences, a CBOW trained on the non-held-out ones; returns what the analysis needs."""
    held = ctx.numpy_generator("split", lang).random(len(sents)) < cfg.heldout_frac
    vocab = Vocab.build(sents)  # every word, so words seen only in held-out text have rows too
    train = [s for s, h in zip(sents, held) if not h]
    ids, offsets = vocab.encode_batch(train, bos=False, eos=False)
    context, centre = cbow_examples(ids, offsets, cfg.window, pad_id=vocab.bos_id)
    centre = np.where((centre >= 3) & (centre < cfg.out_vocab), centre, -1)  # predict frequent words only
    gen = ctx.torch_generator("cbow", lang)
    model = CBOW(len(vocab), cfg.dim, num_out=cfg.out_vocab, generator=gen)
    init = model.emb.detach().clone()
    losses = list(train_cbow(model, context, centre, cfg.epochs, cfg.batch_size, cfg.lr, gen))
    counts = np.bincount(ids, minlength=len(vocab))  # (V,) training count of each word (0: never read)
    return vocab, model.emb.detach(), init, counts, losses


def pos_agreement(W: torch.Tensor, words: np.ndarray, candidates: np.ndarray, tag_of: list[str]) -> float:
    """Fraction of ``words`` whose nearest neighbour among ``candidates`` (cosine) has the same POS tag."""
    exclude = torch.ones(W.shape[0], dtype=torch.bool)
    exclude[torch.from_numpy(candidates)] = False
    _, nn_ids = cosine_neighbours(W, torch.from_numpy(words), 1, exclude=exclude)
    return float(np.mean([tag_of[a] == tag_of[b] for a, b in zip(words.tolist(), nn_ids[:, 0].tolist())]))


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    with torch_threads(1):
        return _run(cfg, ctx, res)


def _run(cfg: Config, ctx: RunContext, res: Result) -> Result:
    fwd, grd = identity_check(ctx.torch_generator("identity"))
    res.metric("onehot_forward_max_abs_diff", fwd)
    res.metric("onehot_grad_max_abs_diff", grd)
    res.claim(
        "onehot_equals_lookup",
        "One-hot times W equals the row lookup: max abs difference of the outputs of embed, one_hot_embed, "
        "F.embedding and F.one_hot @ W",
        value=fwd,
        op="<=",
        threshold=1e-6,
        text_zh="独热向量乘 W 等于按行查表：embed、one_hot_embed、F.embedding 与 F.one_hot @ W 输出的最大绝对差",
    )
    res.claim(
        "onehot_grad_equals_lookup_grad",
        "Their gradients with respect to W agree too (scatter-add of the upstream gradient; max abs difference)",
        value=grd,
        op="<=",
        threshold=1e-5,
        text_zh="对 W 的梯度也一致（上游梯度按行累加；最大绝对差）",
    )

    zh_sents, zh_tag = chinese_data(cfg.zh_paragraphs)
    en_sents = [english_words(line) for line in corpora.shakespeare_lines()[: cfg.en_lines]]
    tables = {}
    for lang, sents in ctx.progress((("zh", zh_sents), ("en", en_sents)), total=2, description="training CBOW"):
        t0 = time.perf_counter()
        tables[lang] = train_table(sents, cfg, ctx, lang)
        res.metric(f"{lang}_train_seconds", time.perf_counter() - t0, unit="s")
        vocab, W, init, counts, losses = tables[lang]
        res.metric(f"{lang}_vocab", len(vocab), unit="types")
        res.metric(f"{lang}_final_loss", losses[-1])

    # what the table does not learn: rows never read stay at their initial values
    unseen_change, n_unseen = 0.0, 0
    for lang, (_, W, init, counts, _) in tables.items():
        unseen = np.flatnonzero(counts == 0)
        unseen = unseen[unseen >= 3]
        n_unseen += unseen.size
        if unseen.size:
            unseen_change = max(unseen_change, float((W[unseen] - init[unseen]).abs().max()))
        res.metric(f"{lang}_unseen_words", unseen.size, unit="words")
    res.claim(
        "unseen_rows_stay_at_init",
        f"Rows of the {n_unseen} words that occur only in held-out text never move (max abs change from init)",
        value=unseen_change,
        op="<=",
        threshold=0.0,
        text_zh=f"只出现在留出文本中的 {n_unseen} 个词，其嵌入行从未改变（相对初始值的最大绝对变化）",
    )

    # what it learns: nearest neighbours share a part of speech (People's Daily tags), more so for frequent words
    vocab, W, init, counts, _ = tables["zh"]
    tag_of = [zh_tag.get(w, "?") for w in vocab.itos]
    frequent = np.flatnonzero(counts >= cfg.frequent_min)
    frequent = frequent[frequent >= 3]
    rows, agree = [], {}
    for lo, hi in FREQ_BUCKETS:
        words = np.flatnonzero((counts >= lo) & (counts <= hi))
        words = words[words >= 3]
        if words.size < 5:
            continue
        a_learned = pos_agreement(W, words, frequent, tag_of)
        a_init = pos_agreement(init, words, frequent, tag_of)
        move = float((W[words] - init[words]).norm(dim=1).median())
        agree[(lo, hi)] = (a_learned, a_init, move, words.size)
        label = f"{lo}-{hi}" if hi < 10**12 else f">={lo}"
        rows.append([label, int(words.size), round(a_learned, 4), round(a_init, 4), round(move, 4)])
    res.table(
        "pos-agreement",
        columns=[
            "training count",
            "words",
            "same POS as nearest (learned)",
            "same POS (random init)",
            "median |w - w0|",
        ],
        rows=rows,
        caption_en="People's Daily: does a word's nearest frequent neighbour (cosine) carry the same part-of-speech "
        "tag? By how often the word was seen in training. The random init is the one-hot/no-learning baseline.",
        caption_zh="《人民日报》：词的最近高频邻居（余弦）是否同词性？按训练中出现次数分组。随机初始化即独热/未学习的基线。",
    )
    top = agree[max(agree)]
    gain = top[0] - top[1]
    res.claim(
        "neighbours_share_pos",
        f"Learned vectors of frequent Chinese words (count >= {FREQ_BUCKETS[-1][0]}) have a same-POS nearest "
        "neighbour more often than random vectors (gain in agreement)",
        value=gain,
        op=">=",
        threshold=cfg.pos_gain_threshold,
        text_zh=f"高频中文词（次数 ≥ {FREQ_BUCKETS[-1][0]}）学到的向量比随机向量更常以同词性的词为最近邻（一致率的提升）",
    )
    rare = agree.get(FREQ_BUCKETS[0])
    if rare is not None:
        res.claim(
            "rare_words_learn_less",
            "Words seen once or twice gain far less: agreement gain of the frequent bucket minus that of the "
            "count-1-2 bucket",
            value=gain - (rare[0] - rare[1]),
            op=">=",
            threshold=0.05,
            text_zh="只出现一两次的词几乎学不到：高频组的一致率提升减去出现 1-2 次组的提升",
        )

    nb_rows = []
    for lang, (vocab, W, _, counts, _) in tables.items():
        cand = torch.from_numpy(counts < max(5, cfg.frequent_min // 5))
        for w in PROBES[lang]:
            if w not in vocab or counts[vocab.index(w)] == 0:
                continue
            _, ids = cosine_neighbours(W, torch.tensor([vocab.index(w)]), 6, exclude=cand)
            nb_rows.append([lang, w, " ".join(vocab.itos[i] for i in ids[0].tolist())])
    res.table(
        "neighbours",
        columns=["corpus", "word", "nearest neighbours (cosine)"],
        rows=nb_rows,
        caption_en="Six nearest neighbours of probe words among words seen at least a few times in training.",
        caption_zh="探针词在训练中出现过若干次的词里的 6 个最近邻。",
    )

    _figures(cfg, ctx, tables["zh"], tag_of, agree)
    return res


def _cjk_font():
    """FontProperties of an installed font with Chinese glyphs (for the PNG; the SVG keeps text as text), or None."""
    from matplotlib import font_manager

    for path in sorted(font_manager.findSystemFonts()):
        if any(key in path.lower() for key in ("wqy", "notosanscjk", "notoserifcjk", "droidsansfallback")):
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path)
            except (OSError, RuntimeError, ValueError):
                continue
    return None


def _figures(cfg: Config, ctx: RunContext, zh, tag_of: list[str], agree) -> None:
    vocab, W, init, counts, losses = zh
    cjk = _cjk_font()
    show = np.flatnonzero(counts >= max(cfg.frequent_min, 1))
    show = show[show >= 3][:300]
    fig, axes = new_figure(ncols=2, figsize=(10, 4.2))
    for ax, M, title in ((axes[0], init, "random init"), (axes[1], W, "after CBOW training")):
        xy = pca_2d(M[show]).numpy()
        for tag, color in (("n", "C0"), ("v", "C1"), ("a", "C2"), ("m", "C3"), ("t", "C4")):
            sel = np.array([tag_of[i] == tag for i in show])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, c=color, label=tag)
        for i, (x, y) in list(zip(show.tolist(), xy.tolist()))[:25]:
            ax.annotate(vocab.itos[i], (x, y), fontsize=7, fontproperties=cjk)
        ax.set_title(title)
    axes[1].legend(title="POS", fontsize=7)
    ctx.save_figure(
        fig,
        "pca",
        caption_en="Frequent People's Daily words on the first two principal axes of their vectors, coloured by "
        "part of speech (n noun, v verb, a adjective, m numeral, t time).",
        caption_zh="《人民日报》高频词向量在前两个主成分上的投影，按词性着色（n 名词、v 动词、a 形容词、m 数词、t 时间词）。",
    )
    fig, ax = new_figure(figsize=(6, 3.6))
    labels = [f"{lo}-{hi}" if hi < 10**12 else f">={lo}" for lo, hi in agree]
    ax.plot(labels, [v[0] for v in agree.values()], marker="o", label="learned")
    ax.plot(labels, [v[1] for v in agree.values()], marker="s", label="random init")
    ax.set_xlabel("training count of the word")
    ax.set_ylabel("nearest neighbour has the same POS")
    ax.legend()
    ctx.save_figure(
        fig,
        "pos-vs-frequency",
        caption_en="Part-of-speech agreement of the nearest neighbour grows with how often a word was seen.",
        caption_zh="最近邻的词性一致率随词在训练中出现次数的增加而提高。",
    )


def _best(repeats: int, fn, *args) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Our lookup vs torch's, and the one-hot product vs F.one_hot @ W (forward, one thread)."""
    gen = ctx.torch_generator("bench")
    V, d = cfg.bench_vocab, cfg.dim * 4
    W = torch.randn(V, d, generator=gen)
    ids = torch.randint(0, V, (cfg.bench_batch,), generator=gen)
    with torch_threads(1), torch.no_grad():
        t_ours = _best(20, embed, ids, W)
        t_ref = _best(20, F.embedding, ids, W)
        small = ids[: max(1, cfg.bench_batch // 16)]
        t_oh = _best(3, one_hot_embed, small, W)
        t_oh_ref = _best(3, lambda i, w: F.one_hot(i, V).float() @ w, small, W)
    return [
        BenchRow(f"lookup {cfg.bench_batch} rows of a {V}x{d} table", t_ours, t_ref, "torch.nn.functional.embedding"),
        BenchRow(f"one-hot product, {small.numel()} ids, {V}x{d}", t_oh, t_oh_ref, "F.one_hot(ids) @ W"),
        BenchRow(
            f"one-hot product vs lookup ({small.numel()} ids)",
            t_oh,
            _best(20, embed, small, W),
            "embed (lookup)",
            note="how much the O(Vd) product costs over the O(d) lookup",
        ),
    ]
