"""N1 -- n-gram language models: perplexity vs order and smoothing, KenLM parity, plausibility, hashed n-gram features."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

import numpy as np

from shiyan.core import BenchRow, ConfigError, Result, RunContext, TopicConfig, TopicMeta, new_figure
from shiyan.text import NGramLM, Vocab, chinese_chars, corpora, count_ngrams, english_words, strip_pos_tags
from shiyan.text.arpa import parse_arpa
from shiyan.text.features import hashed_ngram_counts
from shiyan.text.kenlm_ref import DictKneserNey, find_lmplz, run_lmplz

META = TopicMeta(
    slug="ngram-lm",
    category="NLP",
    date=dt.date(2024, 11, 18),
    title_en="N-gram language models: add-k, Kneser–Ney and KenLM-exact modified Kneser–Ney",
    title_zh="n 元语言模型：加 k 平滑、Kneser–Ney 与和 KenLM 逐位一致的修正 Kneser–Ney",
    summary_en=(
        "Vectorised n-gram counting and three smoothings on Shakespeare and People's Daily: held-out perplexity "
        "for orders 1-5, modified Kneser–Ney equal to KenLM's lmplz entry by entry, telling real sentences from "
        "shuffled ones, and hashed n-gram counts as features for a genre classifier."
    ),
    summary_zh=(
        "向量化的 n 元计数与三种平滑，在莎士比亚全集和《人民日报》上测量 1-5 元模型的留出困惑度；"
        "修正 Kneser–Ney 与 KenLM 的 lmplz 逐条一致；用语言模型分辨真实句子与打乱语序的句子；"
        "并把哈希 n 元计数作为特征做体裁分类。"
    ),
    implements=("shiyan.text.ngram", "shiyan.text.arpa", "shiyan.text.features", "shiyan.text.kenlm_ref"),
)

SCHEMES = ("addk", "kn", "mkn")
SCHEME_LABEL = {"addk": "add-k (best k)", "kn": "Kneser–Ney", "mkn": "modified Kneser–Ney"}

# The First Folio (1623) groups the plays as Comedies, Histories and Tragedies. Pericles (not in the Folio)
# and Troilus and Cressida (printed between the groups, in no catalogue list) are left out, as are the poems.
FOLIO_GENRE = {
    **dict.fromkeys(
        (
            "tempest two_gentlemen_of_verona merry_wives_of_windsor measure_for_measure comedy_of_errors "
            "much_ado_about_nothing loves_labours_lost midsummer_nights_dream merchant_of_venice as_you_like_it "
            "taming_of_the_shrew alls_well_that_ends_well twelfth_night winters_tale"
        ).split(),
        "comedy",
    ),
    **dict.fromkeys(
        (
            "john richard_ii henry_iv_part_1 henry_iv_part_2 henry_v henry_vi_part_1 henry_vi_part_2 "
            "henry_vi_part_3 richard_iii henry_viii"
        ).split(),
        "history",
    ),
    **dict.fromkeys(
        (
            "coriolanus tragedy_of_titus_andronicus romeo_and_juliet timon_of_athens julius_caesar macbeth hamlet "
            "lear othello antony_and_cleopatra cymbeline"
        ).split(),
        "tragedy",
    ),
}
GENRES = ("comedy", "history", "tragedy")


@dataclass(frozen=True)
class Config(TopicConfig):
    en_lines: int = 146_569
    """Shakespeare lines used (all 146,569 non-blank lines of the 42 works by default); one line = one sentence."""
    zh_paragraphs: int = 8000
    """People's Daily (Jan. 1998) paragraphs used; modelled as character sequences."""
    heldout_frac: float = 0.1
    """Fraction of lines/paragraphs held out at random for perplexity and plausibility."""
    max_order: int = 5
    """Perplexity is measured for orders 1..max_order."""
    addk_grid: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001, 0.0001)
    """k values of add-k; the best one on the held-out text is reported (an optimistic baseline)."""
    plausibility_order: int = 3
    """Order of the MKN model that ranks a real sentence against its shuffled copy."""
    plausibility_min_len: int = 6
    """Only held-out sentences with at least this many tokens are shuffled and ranked."""
    plausibility_max: int = 3000
    """At most this many held-out sentences per language in the plausibility test."""
    plausibility_threshold: float = 0.9
    """Claimed minimum accuracy of choosing the real sentence over its shuffled copy."""
    parity_lines: int = 30_000
    """Training lines (English) on which our MKN is compared entry by entry with lmplz (or the dict reference)."""
    reference_lines: int = 2000
    """Training lines for the slow dict reference when lmplz is not built."""
    passage_lines: int = 20
    """Lines per passage in the genre task (passages of consecutive lines from one play)."""
    genre_folds: int = 5
    """Folds of the play-grouped cross-validation (no play is in both training and test)."""
    genre_passages: int = 0
    """Use at most this many passages (0 = all), sampled at random; keeps the quick profile fast."""
    n_features: int = 2**18
    """Columns of the hashed feature matrix."""
    bench_repeats: int = 3
    """Timed repetitions per benchmark row (the best is kept)."""

    def validate(self) -> None:
        if self.en_lines < 1000:
            raise ConfigError(f"en_lines must be >= 1000; got {self.en_lines}")
        if self.zh_paragraphs < 100:
            raise ConfigError(f"zh_paragraphs must be >= 100; got {self.zh_paragraphs}")
        if not 0.01 <= self.heldout_frac <= 0.5:
            raise ConfigError(f"heldout_frac must be in [0.01, 0.5]; got {self.heldout_frac}")
        if not 2 <= self.max_order <= 6:
            raise ConfigError(f"max_order must be in [2, 6]; got {self.max_order}")
        if not self.addk_grid or any(not k > 0 for k in self.addk_grid):
            raise ConfigError(f"addk_grid must be a non-empty tuple of values > 0; got {self.addk_grid}")
        if not 2 <= self.plausibility_order <= self.max_order:
            raise ConfigError(f"plausibility_order must be in [2, max_order]; got {self.plausibility_order}")
        if self.plausibility_min_len < 3 or self.plausibility_max < 10:
            raise ConfigError("plausibility_min_len must be >= 3 and plausibility_max >= 10")
        if not 0.5 < self.plausibility_threshold < 1:
            raise ConfigError(f"plausibility_threshold must be in (0.5, 1); got {self.plausibility_threshold}")
        if self.parity_lines < 500 or self.reference_lines < 100:
            raise ConfigError("parity_lines must be >= 500 and reference_lines >= 100")
        if self.passage_lines < 1 or self.genre_folds < 2 or self.genre_passages < 0:
            raise ConfigError("passage_lines must be >= 1, genre_folds >= 2, genre_passages >= 0")
        if not 2**8 <= self.n_features <= 2**24:
            raise ConfigError(f"n_features must be in [2**8, 2**24]; got {self.n_features}")
        if self.bench_repeats < 1:
            raise ConfigError(f"bench_repeats must be >= 1; got {self.bench_repeats}")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            en_lines=20_000,
            zh_paragraphs=600,
            max_order=4,
            addk_grid=(1.0, 0.01),
            plausibility_max=500,
            parity_lines=3000,
            reference_lines=600,
            genre_folds=3,
            genre_passages=600,
            n_features=2**16,
            bench_repeats=1,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(zh_paragraphs=19_484, max_order=6, plausibility_max=20_000)


# -- data ------------------------------------------------------------------------------------------------------------


def english_sentences(n_lines: int) -> list[list[str]]:
    """Shakespeare lines as lowercased words with punctuation runs kept as tokens."""
    return [english_words(line, punctuation="keep") for line in corpora.shakespeare_lines()[:n_lines]]


def chinese_sentences(n_paragraphs: int) -> list[list[str]]:
    """People's Daily paragraphs as character sequences (the segmentation and POS tags removed)."""
    return [chinese_chars("".join(strip_pos_tags(line))) for line in corpora.peoples_daily_lines()[:n_paragraphs]]


def split(sentences: list[list[str]], frac: float, rng: np.random.Generator) -> tuple[list, list]:
    held = rng.random(len(sentences)) < frac
    return [s for s, h in zip(sentences, held) if not h], [s for s, h in zip(sentences, held) if h]


def perplexity_grid(
    train: list[list[str]], test: list[list[str]], cfg: Config
) -> tuple[dict[str, list[float]], list[float], dict[int, NGramLM], Vocab]:
    """Held-out perplexity (OOVs included) per scheme and order; counts once at max_order."""
    vocab, ids, offsets = Vocab.build_encoded(train)
    levels = count_ngrams(ids, offsets, cfg.max_order, len(vocab))
    ppl: dict[str, list[float]] = {s: [] for s in SCHEMES}
    best_k: list[float] = []
    mkn_models: dict[int, NGramLM] = {}
    for n in range(1, cfg.max_order + 1):
        for scheme in ("kn", "mkn"):
            lm = NGramLM(order=n, smoothing=scheme).fit_counts(levels, vocab)
            ppl[scheme].append(lm.perplexity(test).perplexity)
            if scheme == "mkn":
                mkn_models[n] = lm
        addk = NGramLM(order=n, smoothing="addk").fit_counts(levels, vocab)
        by_k = []
        for k in cfg.addk_grid:
            addk.k = k  # k enters only at scoring time: one count table serves the whole grid
            by_k.append(addk.perplexity(test).perplexity)
        ppl["addk"].append(min(by_k))
        best_k.append(cfg.addk_grid[int(np.argmin(by_k))])
    return ppl, best_k, mkn_models, vocab


def plausibility(lm: NGramLM, test: list[list[str]], cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """log10 p(real) - log10 p(shuffled) for held-out sentences whose shuffle differs from the original."""
    real, fake = [], []
    for s in test:
        if len(s) < cfg.plausibility_min_len:
            continue
        perm = rng.permutation(len(s))
        shuffled = [s[i] for i in perm]
        if shuffled != s:
            real.append(s)
            fake.append(shuffled)
        if len(real) >= cfg.plausibility_max:
            break
    return lm.scores(real) - lm.scores(fake)


def passages(cfg: Config) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Passages of consecutive lines (text), their genre label, their play index, the play names."""
    texts, labels, groups, plays = [], [], [], []
    for name, text in corpora.shakespeare_works().items():
        if name not in FOLIO_GENRE:
            continue
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for i in range(0, len(lines) - cfg.passage_lines + 1, cfg.passage_lines):
            texts.append(" ".join(lines[i : i + cfg.passage_lines]))
            labels.append(GENRES.index(FOLIO_GENRE[name]))
            groups.append(len(plays))
        plays.append(name)
    return texts, np.array(labels), np.array(groups), plays


def genre_accuracy(docs, y, groups, ngram_range, cfg: Config, rng: np.random.Generator) -> float:
    """Out-of-fold accuracy of a linear SVM on hashed n-gram counts, folds grouped by play."""
    from sklearn.preprocessing import normalize
    from sklearn.svm import LinearSVC

    x = hashed_ngram_counts(docs, n_features=cfg.n_features, ngram_range=ngram_range)
    x.data = np.sign(x.data) * np.log1p(np.abs(x.data))  # sublinear term frequency
    x = normalize(x)
    fold_of_play = rng.permutation(groups.max() + 1) % cfg.genre_folds
    fold = fold_of_play[groups]
    pred = np.empty_like(y)
    for f in range(cfg.genre_folds):
        tr, te = fold != f, fold == f
        clf = LinearSVC(C=1.0).fit(x[tr], y[tr])
        pred[te] = clf.predict(x[te])
    return float(np.mean(pred == y))


# -- run -------------------------------------------------------------------------------------------------------------


def run(cfg: Config, ctx: RunContext) -> Result:
    res = Result()
    langs = {
        "en": split(english_sentences(cfg.en_lines), cfg.heldout_frac, ctx.numpy_generator("split", "en")),
        "zh": split(chinese_sentences(cfg.zh_paragraphs), cfg.heldout_frac, ctx.numpy_generator("split", "zh")),
    }
    orders = list(range(1, cfg.max_order + 1))
    grids, models = {}, {}
    for lang, (train, test) in ctx.progress(langs.items(), total=2, description="perplexity grid"):
        ppl, best_k, mkn, vocab = perplexity_grid(train, test, cfg)
        grids[lang] = (ppl, best_k)
        models[lang] = mkn
        res.metric(f"{lang}_train_tokens", sum(map(len, train)), unit="tokens")
        res.metric(f"{lang}_vocab", len(vocab), unit="types")
        res.metric(f"{lang}_mkn3_perplexity", ppl["mkn"][min(2, cfg.max_order - 1)])

    rows = []
    for lang in langs:
        ppl, best_k = grids[lang]
        for i, n in enumerate(orders):
            rows.append([lang, n, *(round(ppl[s][i], 2) for s in SCHEMES), best_k[i]])
    res.table(
        "perplexity",
        columns=["corpus", "order", "add-k (best k)", "KN", "MKN", "best k"],
        rows=rows,
        caption_en="Held-out perplexity (OOVs scored as <unk>, </s> included). en: Shakespeare words; zh: "
        "People's Daily characters.",
        caption_zh="留出集困惑度（未登录词按 <unk> 计分，含 </s>）。en：莎士比亚单词；zh：《人民日报》汉字。",
    )
    ratio_addk = min(
        grids[lang][0]["addk"][i] / grids[lang][0]["mkn"][i] for lang in langs for i in range(1, cfg.max_order)
    )
    res.claim(
        "mkn_beats_addk",
        "Modified Kneser–Ney has lower held-out perplexity than the best add-k at every order >= 2, in both "
        "languages (smallest ratio ppl(add-k) / ppl(MKN))",
        value=ratio_addk,
        op=">",
        threshold=1.0,
        text_zh="在两种语言、所有阶数 ≥ 2 上，修正 Kneser–Ney 的留出困惑度都低于最佳的加 k 平滑（最小比值 ppl(加k)/ppl(MKN)）",
    )
    ratio_kn = max(
        grids[lang][0]["mkn"][i] / grids[lang][0]["kn"][i] for lang in langs for i in range(1, cfg.max_order)
    )
    res.claim(
        "mkn_not_worse_than_kn",
        "Three discounts per order never hurt: ppl(MKN) / ppl(KN) <= 1 at every order >= 2 (largest ratio)",
        value=ratio_kn,
        op="<=",
        threshold=1.0,
        text_zh="每阶三个折扣从不变差：所有阶数 ≥ 2 上 ppl(MKN)/ppl(KN) ≤ 1（最大比值）",
    )
    gain = min(grids[lang][0]["mkn"][0] / grids[lang][0]["mkn"][2 if cfg.max_order >= 3 else 1] for lang in langs)
    res.claim(
        "context_helps",
        "Context helps: the MKN trigram's perplexity is at least 2x lower than the unigram's in both languages",
        value=gain,
        op=">=",
        threshold=2.0,
        text_zh="上下文有用：两种语言中 MKN 三元模型的困惑度都比一元模型低至少一半",
    )

    fig, axes = new_figure(ncols=2, figsize=(9, 3.6))
    for ax, lang, title in zip(axes, langs, ("Shakespeare (words)", "People's Daily (characters)")):
        ppl = grids[lang][0]
        for s, marker in zip(SCHEMES, "sox"):
            ax.plot(orders, ppl[s], marker=marker, label=SCHEME_LABEL[s])
        ax.set_yscale("log")
        ax.set_xlabel("order N")
        ax.set_ylabel("held-out perplexity")
        ax.set_title(title)
        ax.set_xticks(orders)
    axes[0].legend()
    ctx.save_figure(
        fig,
        "perplexity-vs-order",
        caption_en="Held-out perplexity against the order: add-k (best k on the grid) gets worse beyond bigrams, "
        "Kneser–Ney keeps improving or levels off.",
        caption_zh="留出困惑度随阶数的变化：加 k 平滑（网格上最好的 k）在二元之后变差，Kneser–Ney 持续下降或趋于平稳。",
    )

    _parity(res, cfg, langs["en"], ctx)

    # plausibility: the real sentence against its shuffled copy
    diffs = {}
    for lang, (_, test) in langs.items():
        lm = models[lang][cfg.plausibility_order]
        diffs[lang] = plausibility(lm, test, cfg, ctx.numpy_generator("shuffle", lang))
        res.metric(f"{lang}_plausibility_accuracy", float(np.mean(diffs[lang] > 0)))
        res.metric(f"{lang}_plausibility_pairs", diffs[lang].size, unit="pairs")
    acc = min(float(np.mean(d > 0)) for d in diffs.values())
    res.claim(
        "plausibility_ranking",
        f"The {cfg.plausibility_order}-gram MKN prefers a held-out sentence to its shuffled word (character) order "
        "(accuracy, the lower of the two languages)",
        value=acc,
        op=">=",
        threshold=cfg.plausibility_threshold,
        text_zh=f"{cfg.plausibility_order} 元 MKN 模型在留出句子与其打乱语序（字序）的版本之间选出原句（准确率，取两种语言中较低者）",
    )
    fig, ax = new_figure(figsize=(6, 3.6))
    for lang, d in diffs.items():
        ax.hist(np.clip(d, -20, 60), bins=60, alpha=0.6, label=f"{lang} ({np.mean(d > 0):.1%} > 0)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("log10 p(real) - log10 p(shuffled)")
    ax.set_ylabel("sentences")
    ax.legend()
    ctx.save_figure(
        fig,
        "plausibility",
        caption_en="How much more probable the real sentence is than its shuffled copy (log10, clipped to [-20, 60]).",
        caption_zh="原句比打乱后的句子可能性高多少（log10，截断到 [-20, 60]）。",
    )

    _genre(res, cfg, ctx)
    return res


def _parity(res: Result, cfg: Config, en: tuple[list, list], ctx: RunContext) -> None:
    """Our MKN against lmplz (every ARPA entry) when it is built, else against the dict reference."""
    train, test = en
    lmplz = find_lmplz()
    if lmplz is not None:
        sub = train[: cfg.parity_lines]
        diffs = []
        for n in (3, cfg.max_order):
            out = run_lmplz(sub, n, memory="100M", lmplz=lmplz)
            theirs = parse_arpa(out.arpa)
            ours = parse_arpa(NGramLM(order=n).fit(sub).to_arpa())
            for k in range(n):
                a = _arpa_dict(theirs, k)
                b = _arpa_dict(ours, k)
                if a.keys() != b.keys():
                    diffs.append(math.inf)
                    continue
                keys = list(a)
                diffs.append(float(np.max(np.abs(np.array([a[g] for g in keys]) - np.array([b[g] for g in keys])))))
        value, ref = max(diffs), "KenLM lmplz"
        res.metric("lmplz_available", 1.0)
    else:
        sub = train[: cfg.reference_lines]
        ref_model = DictKneserNey(sub, 3)
        lm = NGramLM(order=3).fit(sub)
        few = test[:300]
        ours = lm.scores(few)
        theirs = np.array([ref_model.sentence_log10(s) for s in few])
        value, ref = float(np.max(np.abs(ours - theirs))), "the dict reference (lmplz not built)"
        res.metric("lmplz_available", 0.0)
    res.metric("parity_max_abs_log10_diff", value)
    res.claim(
        "mkn_equals_reference",
        f"Our modified Kneser–Ney equals {ref} (max abs difference of log10 probabilities and back-offs)",
        value=value,
        op="<=",
        threshold=1e-4,
        text_zh=f"我们的修正 Kneser–Ney 与 {ref} 一致（log10 概率与回退权重的最大绝对差）",
    )


def _arpa_dict(model, k: int) -> dict[tuple[str, ...], tuple[float, float]]:
    """(k+1)-gram words -> (log10 p, log10 backoff) of a parsed ARPA model."""
    words = np.array(model.vocab, dtype=object)
    grams = map(tuple, words[model.grams[k]].tolist())
    return dict(zip(grams, zip(model.log10_prob[k].tolist(), model.log10_backoff[k].tolist())))


def _genre(res: Result, cfg: Config, ctx: RunContext) -> None:
    texts, y, groups, plays = passages(cfg)
    if cfg.genre_passages and cfg.genre_passages < len(texts):
        keep = np.sort(ctx.numpy_generator("passages").choice(len(texts), cfg.genre_passages, replace=False))
        texts = [texts[i] for i in keep]
        y, groups = y[keep], groups[keep]
    docs = [english_words(t) for t in texts]
    majority = float(np.max(np.bincount(y, minlength=3)) / y.size)
    settings = {"bag of words (1-grams)": (1, 1), "word 1-2-grams": (1, 2), "word 1-3-grams": (1, 3)}
    accs = {}
    for name, rng_ in ctx.progress(settings.items(), total=len(settings), description="genre"):
        accs[name] = genre_accuracy(docs, y, groups, rng_, cfg, ctx.numpy_generator("folds"))
    res.table(
        "genre",
        columns=["features", "accuracy"],
        rows=[["majority class", round(majority, 4)], *([k, round(v, 4)] for k, v in accs.items())],
        caption_en=f"First Folio genre (comedy / history / tragedy) of {len(docs)} passages of {cfg.passage_lines} "
        f"lines from {len(plays)} plays; {cfg.genre_folds}-fold cross-validation grouped by play; linear "
        f"SVM on {cfg.n_features} signed hashed columns.",
        caption_zh=f"第一对开本体裁（喜剧/历史剧/悲剧）：来自 {len(plays)} 部剧的 {len(docs)} 段、每段 {cfg.passage_lines} 行；"
        f"按剧本分组的 {cfg.genre_folds} 折交叉验证；在 {cfg.n_features} 个带符号哈希列上训练线性 SVM。",
    )
    best = max(accs.values())
    for name, v in accs.items():
        res.metric("genre_acc_" + name.split(" (")[0].replace(" ", "_").replace("-", "_"), v)
    res.metric("genre_majority", majority)
    res.claim(
        "hashed_ngrams_classify_genre",
        "Hashed n-gram counts tell a passage's genre in plays never seen in training: best accuracy minus the "
        "majority-class rate",
        value=best - majority,
        op=">=",
        threshold=0.15,
        text_zh="哈希 n 元计数能判断训练中从未见过的剧本里段落的体裁：最佳准确率减去多数类比例",
    )


# -- bench -----------------------------------------------------------------------------------------------------------


def _best(repeats: int, fn, *args, **kwargs) -> float:
    """Best wall time of ``fn(*args, **kwargs)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return min(times)


def _fit(train: list[list[str]], order: int) -> NGramLM:
    return NGramLM(order=order).fit(train)


def _kenlm_scores(model, texts: list[str]) -> list[float]:
    return [model.score(t) for t in texts]


def bench(cfg: Config, ctx: RunContext) -> list[BenchRow]:
    """Build (estimate) and query time: ours vs KenLM (lmplz + the kenlm module), or vs the dict reference."""
    import os
    import tempfile

    rows: list[BenchRow] = []
    lmplz = find_lmplz()
    data = {
        "Shakespeare": split(english_sentences(cfg.en_lines), cfg.heldout_frac, ctx.numpy_generator("split", "en")),
        "People's Daily": split(
            chinese_sentences(cfg.zh_paragraphs), cfg.heldout_frac, ctx.numpy_generator("split", "zh")
        ),
    }
    try:
        import kenlm
    except ImportError:  # pragma: no cover - kenlm is an optional reference
        kenlm = None
    for name, (train, test) in data.items():
        n_tok = sum(map(len, train))
        for n in (3, 5):
            if n > cfg.max_order:
                continue
            t_ours = _best(cfg.bench_repeats, _fit, train, n)
            lm = _fit(train, n)
            if lmplz is not None:
                t_ref = _best(cfg.bench_repeats, run_lmplz, train, n, memory="500M", lmplz=lmplz)
                note = "ours: tokens in, queryable model out; lmplz: tokens in, ARPA text out (one process)"
                rows.append(
                    BenchRow(
                        f"build {n}-gram MKN, {name} ({n_tok} tokens)", t_ours, t_ref, "KenLM lmplz", "s", note=note
                    )
                )
            elif n == 3:
                sub = train[: cfg.reference_lines * 5]
                t_o = _best(cfg.bench_repeats, _fit, sub, n)
                t_ref = _best(1, DictKneserNey, sub, n)
                rows.append(
                    BenchRow(
                        f"build {n}-gram MKN, {name} subset",
                        t_o,
                        t_ref,
                        "python dict reference",
                        "s",
                        note="lmplz not built (scripts/build_lmplz.sh)",
                    )
                )
            if kenlm is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "model.arpa")
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write(lm.to_arpa())
                    model = kenlm.Model(path)
                texts = [" ".join(s) for s in test]
                t_q_ref = _best(cfg.bench_repeats, _kenlm_scores, model, texts)
                t_q_ours = _best(cfg.bench_repeats, lm.scores, test)
                n_test = sum(map(len, test)) + len(test)
                rows.append(
                    BenchRow(
                        f"score {n}-gram, {name} held-out ({n_test} tokens)",
                        t_q_ours,
                        t_q_ref,
                        "kenlm.Model.score (python loop)",
                        "s",
                    )
                )
    return rows
