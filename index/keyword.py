"""Keyword search over chunks with bm25s, and the tokenizer that lets English questions
match a French story.

The tokenizer folds accents, drops English and French stop words and cuts every word to its
first five characters (numbers stay whole), so cognates meet: "compatibility" and
"compatibilité" both become "compa", "developers" and "développeurs" both "devel".
"""
from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

import numpy as np

PREFIX = 5
_WORD = re.compile(r"[^\W_]+", re.U)


@lru_cache(maxsize=16384)
def fold(text: str) -> str:
    """Lower-case, strip accents, and normalise compatibility forms (ﬁ -> fi, full-width)
    and the ligatures œ and æ, which Unicode does not decompose: "cœur" and "coeur" (as a
    keyboard without œ types it, and as the lexicons hold it) are one word. Kept per text:
    the stories' sentences are folded again for every question."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s' English and French stop words plus each language file's own (index/lang/)."""
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

    from index.language import all_languages

    extra = [w for lang in all_languages() for w in lang.stop_words]
    return frozenset(fold(w) for w in (*STOPWORDS_EN, *STOPWORDS_FRENCH, *extra))


def words(text: str) -> list[str]:
    """Folded words of ``text`` (apostrophes split "l’IA" into "l", "ia")."""
    return _WORD.findall(fold(text))


def tokenize(text: str) -> list[str]:
    """The keyword tokens of ``text``: folded, stop words out, cut to 5 characters."""
    stop = stopwords()
    out = []
    for w in words(text):
        if w in stop or (len(w) < 2 and not w.isdigit()):
            continue
        out.append(w if w.isdigit() else w[:PREFIX])
    return out


class KeywordIndex:
    """BM25 over a fixed list of documents (one refresh's chunks)."""

    def __init__(self, docs: list[str]):
        import logging

        import bm25s

        # bm25s sets its own logger to DEBUG when imported; keep it quiet unless asked
        if logging.getLogger("bm25s").level == logging.DEBUG and logging.getLogger().level > logging.DEBUG:
            logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.size = len(docs)
        self._bm25 = bm25s.BM25()
        tokens = [tokenize(d) or ["\u0000"] for d in docs]  # bm25s needs a token per doc
        self._df: dict[str, int] = {}
        if docs:
            self._bm25.index(tokens, show_progress=False)
            # bm25s keeps its scores as a token-major sparse matrix: the number of documents
            # a token occurs in is the length of its row, so document frequencies (and the
            # IDF bm25s itself uses) come from the index instead of a second count
            indptr = np.asarray(self._bm25.scores["indptr"])
            self._df = {t: int(indptr[i + 1] - indptr[i]) for t, i in self._bm25.vocab_dict.items()
                        if i + 1 < len(indptr)}

    def docs_with(self, token: str) -> np.ndarray:
        """The indices of the documents that hold ``token`` (from bm25s' sparse matrix)."""
        i = self._bm25.vocab_dict.get(token) if self.size else None
        if i is None or token not in self._df:
            return np.zeros(0, dtype=np.int64)
        indptr = self._bm25.scores["indptr"]
        return np.asarray(self._bm25.scores["indices"][indptr[i]:indptr[i + 1]], dtype=np.int64)

    def doc_freq(self, token: str) -> int:
        """How many documents hold the keyword token ``token`` (0 when none)."""
        return self._df.get(token, 0)

    def idf(self, token: str) -> float:
        """The token's inverse document frequency in bm25s' own (Lucene) form; a token no
        document holds gets the highest value, as if it occurred in none."""
        df = self._df.get(token, 0)
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when nothing matches)."""
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        return self.token_scores(tokenize(query))

    def token_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for keyword tokens already made (``tokenize``)."""
        if not self.size or not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
