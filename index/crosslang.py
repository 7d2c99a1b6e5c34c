"""The words of a question in the other languages of the stories, for keyword search.

BM25 matches words. In an index of English and French stories, an English question scores
on the English stories' words, and on the French stories' only through names, numbers and
the cognates that five-letter prefixes let meet (``index.keyword``): keyword search pulls
the question towards the stories of its own language, whatever they are about. Here each
content word of the question gets its nearest word among the words of the stories of each
other language (the e5 cosine of the two words alone: wolf ~ loup .95, council ~ conseil
.93); a neighbour at ``TUNING.cross_word_cosine`` or above joins the keyword query
(``index.search``).

Written here because no package available offline ships a bilingual dictionary or a
translation model: the stories' own vocabulary and the embedding model stand in for one.

Only an index whose stories are in more than one language expands: in one language, what
the expansion would add is the same story's words a second time (the shipped story alone,
English questions: first citation right 971 -> 960 of 1120 with it). And only the words
the stories of the question's own language lack are carried across: a word they have
already scores there, and its translation only pulls the question towards the other
language's stories ("combien ça va coûter", about a French story, drew an English
paragraph about money through "cost"). Round 23, few-story tuning views (1201 answerable),
first citation right / retrieval top passage right: none 980 / 912, every word 994 / 946,
the words the question's language lacks 996 / 937; on round 22's four stories (60) 50 / 42,
45 / 44, 49 / 42. It also spares most questions the model call for their words.

The stories' words are embedded once per embedder and kept (``Store.cached_vectors``), at
refresh time (``warm``) so that the first question does not wait; a question's words go
through ``index.embed.word_vectors``, a bounded in-process cache, and are never stored.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from index.embed import word_vectors
from index.keyword import stopwords, tokenize, words
from index.language import detect
from index.tuning import TUNING, Tuning

KIND = "words"  # the cache collection: storybot_words_<embedder hash>
MIN_LETTERS = 3  # shorter words are too often abbreviations to have a meaning of their own
# words kept per language: a bound on memory (384 floats a word) and on each question's
# comparison, not a tuning value; a few stories hold 300 to 450 words each
MAX_WORDS = 20_000


def content_words(text: str) -> list[str]:
    """The folded words of ``text`` that can carry its meaning: letters only, not a stop
    word, at least ``MIN_LETTERS`` long; each once, in order."""
    stop = stopwords()
    return list(dict.fromkeys(w for w in words(text) if len(w) >= MIN_LETTERS and w.isalpha() and w not in stop))


def vocabularies(texts_by_lang: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each language's content words, sorted, from its stories' texts: at most
    ``MAX_WORDS``, those in the most texts (then alphabetically) in a larger corpus."""
    out = {}
    for lang, texts in texts_by_lang.items():
        df: dict[str, int] = {}
        for text in texts:
            for w in content_words(text):
                df[w] = df.get(w, 0) + 1
        keep = sorted(df, key=lambda w: (-df[w], w))[:MAX_WORDS]
        out[lang] = sorted(keep)
    return out


def several_languages(story_langs: dict[str, str]) -> bool:
    return len(set(story_langs.values())) > 1


def warm(store, texts_by_lang: dict[str, list[str]]) -> None:
    """Embed (and keep) the words of stories in several languages, so that questions find
    them ready. Nothing to do for stories in one language."""
    if len(texts_by_lang) > 1:
        for ws in vocabularies(texts_by_lang).values():
            store.cached_vectors(KIND, ws, store.embedder.embed_passages)


def _vocabulary(store, snap) -> dict[str, tuple[list[str], np.ndarray, frozenset[str]]]:
    """Per story language, its words, their vectors and their keyword tokens, once per
    index version."""
    def make():
        texts: dict[str, list[str]] = {}
        for meta, doc in zip(snap.metas, snap.docs):
            texts.setdefault(snap.story_langs.get(meta["story"], ""), []).append(doc)
        return {lang: (ws, store.cached_vectors(KIND, ws, store.embedder.embed_passages),
                       frozenset(tok for w in ws for tok in tokenize(w)))
                for lang, ws in vocabularies(texts).items() if ws}

    return snap.derived(f"cross_vocabulary:{store.embedder.name}", make)


@cache
def _blas():
    """threadpoolctl's handle on numpy's BLAS (made once: it scans the loaded libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def expansion(store, snap, question: str, t: Tuning = TUNING, lang: str | None = None) -> list[str]:
    """Keyword tokens of the question's words in the stories' other languages: for each
    content word the stories of the question's language lack, its nearest word among one
    other language's stories' words when their cosine reaches ``t.cross_word_cosine``, less
    the tokens the question already has. [] when the stories are in one language or no
    content word of the question is missing from its own language's stories. ``lang`` is
    the question's language, detected when not given (the answer core passes the one it
    read the question in: a follow-up's retrieval text leads with the previous question)."""
    if not several_languages(snap.story_langs):
        return []
    lang = lang or detect(question)
    vocabulary = _vocabulary(store, snap)
    mine = vocabulary[lang][2] if lang in vocabulary else frozenset()
    asked = [w for w in content_words(question) if mine.isdisjoint(tokenize(w))]
    if not asked:
        return []
    vectors = np.stack(word_vectors(store.embedder, asked))
    own = set(tokenize(question))
    out: list[str] = []
    for other, (ws, matrix, _) in vocabulary.items():
        if other == lang:
            continue
        # One BLAS thread: at this size OpenBLAS starts its threads, which then spin for a
        # while after the product and take the cores from the e5 model's next call (the
        # question's vector, its latent terms). Four stories in two languages, warm p50:
        # 69 ms with them, 27 ms without (26 ms with no expansion at all).
        with _blas().limit(limits=1, user_api="blas"):
            sims = vectors @ matrix.T
        for row, best in zip(sims, sims.argmax(axis=1)):
            if row[best] >= t.cross_word_cosine:
                out += [tok for tok in tokenize(ws[best]) if tok not in own]
    return list(dict.fromkeys(out))


def translated(store, snap, question: str, target: str, t: Tuning = TUNING) -> str:
    """The question's words as the stories of language ``target`` would write them, to
    measure how many of its keywords a passage of theirs holds (``bot.decide.supported_across``):
    each content word their words lack becomes its nearest word among them when the cosine
    reaches ``t.cross_word_cosine`` (stadium -> stade); the words they have (names,
    cognates) and numbers stay. "" when the stories are in one language (the words are
    embedded at refresh time only for stories of several) or none is in ``target``."""
    if not several_languages(snap.story_langs):
        return ""
    vocabulary = _vocabulary(store, snap)
    if target not in vocabulary:
        return ""
    ws, matrix, theirs = vocabulary[target]
    content = content_words(question)
    asked = [w for w in content if theirs.isdisjoint(tokenize(w))]
    found: dict[str, str] = {}
    if asked:
        vectors = np.stack(word_vectors(store.embedder, asked))
        with _blas().limit(limits=1, user_api="blas"):  # see ``expansion``
            sims = vectors @ matrix.T
        found = {w: ws[best] for w, row, best in zip(asked, sims, sims.argmax(axis=1))
                 if row[best] >= t.cross_word_cosine}
    numbers = [w for w in tokenize(question) if w.isdigit()]
    return " ".join([found.get(w, w) for w in content] + numbers)
