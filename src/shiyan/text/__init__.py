"""Text: corpora shipped in installed packages, tokenisation, vocabularies and n-gram language models.

>>> from shiyan.text import NGramLM, english_words
>>> lm = NGramLM(order=3, smoothing="mkn").fit([english_words(line) for line in lines])  # doctest: +SKIP
>>> lm.score("to be or not to be".split())  # log10 p, as KenLM  # doctest: +SKIP
"""

from shiyan.text.arpa import ArpaModel, format_arpa, parse_arpa
from shiyan.text.features import hashed_ngram_counts
from shiyan.text.ngram import NGramCounts, NGramLM, NGramTable, PerplexityReport, count_ngrams, ngram_matrix
from shiyan.text.tokenize import chinese_chars, english_chars, english_words, pos_tagged, strip_pos_tags
from shiyan.text.vocab import BOS, EOS, UNK, Vocab
from shiyan.text.word2vec import KeyedVectors, Word2Vec

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "ArpaModel",
    "KeyedVectors",
    "NGramCounts",
    "NGramLM",
    "NGramTable",
    "PerplexityReport",
    "Vocab",
    "Word2Vec",
    "chinese_chars",
    "count_ngrams",
    "english_chars",
    "english_words",
    "format_arpa",
    "hashed_ngram_counts",
    "ngram_matrix",
    "parse_arpa",
    "pos_tagged",
    "strip_pos_tags",
]
