"""Hybrid retrieval: dense (Chroma, e5) and keyword (BM25) results, fused.

A chunk's dense score is its best sentence's cosine to the question (sentence vectors are
stored, nothing but the question is embedded): a short passage that answers precisely is
not drowned by a long one that mentions many names. Candidates are the union of the best
dense sentences' chunks and the best BM25 chunks; their fused score is
``dense + keyword_weight * bm25 / max(bm25)`` (``index.tuning``). In stories of several
languages, the keyword query also holds the question's words in the other languages
(``index.crosslang``).

The ranking key (``Passage.focused``) also takes away how generic the best sentence is, a
per-story offset the caller may give (the answer step gives each story's off-topic median
for the question's language, so that a question is not drawn to text in its own language),
and, for a close call only, adds the latent-terms match (``index.embed``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from index.crosslang import expansion
from index.embed import Terms, has_terms
from index.store import Snapshot, Store
from index.tuning import TUNING

CANDIDATES = 20  # passages scored per question (the best dense and the best keyword ones)

_STORY_FILTER = re.compile(r"^\s*story:(?P<id>[^\s\"'`]+)(?:\s+|$)", re.I)


def split_story_filter(text: str) -> tuple[str | None, str]:
    """Split a leading ``story:<id>`` off a question: ``("apple-alibaba", "why not Baidu?")``
    for ``"story:apple-alibaba why not Baidu?"``; ``(None, text)`` when there is none.

    The id runs to the first white space, less a trailing ``,;:`` (ids are file paths below
    the stories folder, without their suffix, e.g. ``2024/apple-alibaba``); "story:" is
    case-insensitive.
    Pure: whether the id exists is for the caller (``search`` with an unknown id finds nothing).
    """
    m = _STORY_FILTER.match(text or "")
    story = m.group("id").rstrip(",;:") if m else ""
    if not m or not story:
        return None, text
    return story, text[m.end():]


@dataclass(frozen=True)
class SentenceHit:
    start: int
    end: int
    text: str
    kind: str
    dense: float  # cosine to the question
    generic: float = 0.0  # cosine to its story's mean vector: how much it sums the story up


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores; ``sentences`` carry offsets into the story text."""

    chunk_id: str
    text: str
    story: str
    title: str
    section: str | None
    paragraph: int
    start: int
    end: int
    score: float  # fused score (dense + weighted, normalised BM25)
    dense: float  # best sentence cosine to the question
    keyword: float  # BM25 score
    rank: int
    sentences: tuple[SentenceHit, ...] = ()
    outlet: str | None = None
    date: str | None = None
    url: str | None = None
    # what the ranking sorts by: ``score`` with the best sentence's cosine less
    # ``generic_penalty`` times its cosine to its story's mean vector, less the story's
    # offset, plus ``latent_weight`` times ``latent`` on a close call
    focused: float = 0.0
    latent: float = 0.0  # latent-terms match to the question (0 unless it was a close call)


def _none(v):
    return v if v not in ("", None) else None


def search(store: Store, question: str, k: int = 5, *, snapshot: Snapshot | None = None,
           query_vec: np.ndarray | None = None, story: str | None = None,
           candidates: int = CANDIDATES, offsets: Mapping[str, float] | None = None,
           lang: str | None = None) -> list[Passage]:
    """The ``k`` best passages for ``question``, best first, each with all its sentences
    scored against the question (``Passage.sentences``).

    ``story`` restricts the search to one story id; ``offsets`` (story id -> score) is taken
    from each story's passages' ranking key; ``lang`` is the question's language when the
    caller has read it (else it is detected). Returns [] when the index is empty.
    """
    snap = snapshot or store.snapshot()
    if snap is None or not snap.ids:
        return []
    q = query_vec if query_vec is not None else store.embedder.embed_query(question)
    n = min(candidates, len(snap.ids))

    # dense: the best sentences (headings excluded: they name topics, they do not answer)
    pool = _dense_pool(snap, q, n, story)
    # keyword
    kw = snap.keyword.scores(question)
    if extra := expansion(store, snap, question, lang=lang):  # its words in the stories' other languages
        kw = kw + snap.keyword.token_scores(extra)
    if story:
        kw = np.where(snap.story_rows == story, kw, 0.0)
    top_kw = float(kw.max()) if kw.size else 0.0
    pool += [snap.ids[i] for i in _top(kw, n) if kw[i] > 0 and snap.ids[i] not in pool]
    pool = [cid for cid in pool if cid in snap.pos]

    sentences = score_sentences(snap, pool, q)
    scored = []
    beta = TUNING.generic_penalty
    for cid in pool:
        body = [h for h in sentences.get(cid, []) if h.kind == "body"]
        dense = max((h.dense for h in body), default=0.0)
        # ranked by the best sentence less a share of how generic it is: a story's lead
        # sums up the whole story and resembles every question about it a little; the
        # sentence that answers is specific (see TUNING.generic_penalty)
        focused = max((h.dense - beta * h.generic for h in body), default=0.0)
        keyword = float(kw[snap.pos[cid]])
        kw_part = TUNING.keyword_weight * (keyword / top_kw if top_kw > 0 else 0.0)
        shift = (offsets or {}).get(snap.metas[snap.pos[cid]]["story"], 0.0)
        scored.append([focused + kw_part - shift, dense + kw_part, dense, keyword, cid, 0.0])
    scored.sort(key=lambda t: (-t[0], t[4]))
    if len(scored) > 1 and scored[0][0] - scored[1][0] < TUNING.latent_margin:
        _settle(store, snap, question, scored)
    return [replace(_passage(snap, cid, rank, fused, dense, keyword, tuple(sentences.get(cid, ()))),
                    focused=focused, latent=latent)
            for rank, (focused, fused, dense, keyword, cid, latent) in enumerate(scored[:k], 1)]


def _settle(store: Store, snap: Snapshot, question: str, scored: list[list]) -> None:
    """A close call: add each candidate's latent-terms match to its ranking key and sort
    again (``TUNING.latent_weight``). Nothing happens when the embedder or the index has no
    latent terms. Only close calls pay for it: it is a second pass of the model."""
    rows = [snap.terms[snap.pos[t[4]]] for t in scored]
    if not has_terms(store.embedder) or not any(r is not None for r in rows):
        return
    (q,) = store.embedder.embed_terms([question])
    for t, terms in zip(scored, rows):
        t[5] = latent_match(q, terms)
        t[0] += TUNING.latent_weight * t[5]
    scored.sort(key=lambda t: (-t[0], t[4]))


def latent_match(question: Terms, passage: Terms | None) -> float:
    """The dot product of two texts' latent terms over the question's norm (0 for none): how
    much of what the question is about the passage covers."""
    if passage is None:
        return 0.0
    qi, qv = question
    norm = float(np.linalg.norm(qv))
    if not norm:
        return 0.0
    _, a, b = np.intersect1d(qi, passage[0], assume_unique=True, return_indices=True)
    return float(qv[a] @ passage[1][b]) / norm


def _dense_pool(snap: Snapshot, q: np.ndarray, n: int, story: str | None) -> list[str]:
    """The chunks of the ``n * 3`` best body sentences, best first, at most ``n``.

    Headings are dropped here rather than by a ``where={"kind": "body"}`` filter: Chroma
    pre-filters by reading the metadata of every matching record, which made that filter
    cost more than the vector search itself and grow with the index (11 ms at 3k sentences,
    vs 0.7 ms unfiltered). Sentence ids are ``<chunk id>/<i>`` and the chunk's metadata
    says which are headings, so nothing but ids is fetched.
    """
    want = n * 3
    total = snap.version.sentences or len(snap.ids) * 4
    fetch = min(want + max(10, want // 3), total)
    while True:
        res = snap.sents.query(query_embeddings=[q], n_results=max(1, fetch), include=[],
                               where={"story": story} if story else None)
        ids = res["ids"][0]
        body = [sid for sid in ids if _sentence_kind(snap, sid) == "body"]
        if len(body) >= want or len(ids) < fetch or fetch >= total:
            break
        fetch = min(fetch * 2, total)  # many headings among the best: look further
    chunks = (sid.rsplit("/", 1)[0] for sid in body[:want])
    return list(dict.fromkeys(chunks))[:n]


def _sentence_kind(snap: Snapshot, sentence_id: str) -> str | None:
    cid, _, i = sentence_id.rpartition("/")
    pos = snap.pos.get(cid)
    if pos is None or not i.isdigit():
        return None
    spans = snap.spans[pos]
    return spans[int(i)][2] if int(i) < len(spans) else None


def _top(scores: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` highest scores, best first (ties by index): a partial sort, as
    a full one costs ~10 ms at 100k chunks."""
    if scores.size <= n:
        idx = np.arange(scores.size)
    else:
        idx = np.argpartition(-scores, n - 1)[:n]
    return sorted(idx.tolist(), key=lambda i: (-scores[i], i))


def _passage(snap: Snapshot, cid: str, rank: int, score: float, dense: float, keyword: float,
             sentences: tuple[SentenceHit, ...]) -> Passage:
    i = snap.pos[cid]
    m = snap.metas[i]
    return Passage(
        chunk_id=cid, text=snap.docs[i], story=m["story"], title=m["title"], section=_none(m["section"]),
        paragraph=int(m["paragraph"]), start=int(m["start"]), end=int(m["end"]), score=score, dense=dense,
        keyword=keyword, rank=rank, outlet=_none(m.get("outlet")), date=_none(m.get("date")),
        url=_none(m.get("url")), sentences=sentences,
    )


def _split_chunk(doc: str, spans: list) -> list[str] | None:
    """The sentence texts of a chunk document (``Chunk.text``: sentences joined by a space,
    or a blank line after a heading), by their lengths; None if the document does not
    match its spans exactly."""
    out: list[str] = []
    pos = 0
    prev = None
    for s, e, kind in spans:
        if out:
            sep = "\n\n" if prev == "heading" else " "
            if not doc.startswith(sep, pos):
                return None
            pos += len(sep)
        out.append(doc[pos:pos + int(e) - int(s)])
        pos += int(e) - int(s)
        prev = kind
    return out if pos == len(doc) else None


def score_sentences(snap: Snapshot, chunk_ids: list[str], q: np.ndarray) -> dict[str, list[SentenceHit]]:
    """Every sentence of the chunks ``chunk_ids`` with its cosine to the question vector ``q``, read
    from the stored sentence vectors (nothing is embedded here). Text is taken from the
    chunk document by offsets, so it can be verified against the story later."""
    ids = []
    spans: dict[str, list] = {}
    for cid in chunk_ids:
        sents = snap.spans[snap.pos[cid]]
        spans[cid] = sents
        ids += [f"{cid}/{i}" for i in range(len(sents))]
    if not ids:
        return {}
    # Vectors only, kept by the snapshot: the texts are cut from the chunk document (4.6 ->
    # 1.5 ms per question at 10k chunks); a chunk whose document does not split cleanly has
    # its texts fetched.
    vectors = snap.sentence_vectors(ids)
    texts: dict[str, str] = {}
    unsplit = []
    for cid in chunk_ids:
        parts = _split_chunk(snap.docs[snap.pos[cid]], spans[cid])
        if parts is None:
            unsplit += [f"{cid}/{i}" for i in range(len(spans[cid]))]
        else:
            texts.update((f"{cid}/{i}", t) for i, t in enumerate(parts))
    if unsplit:
        more = snap.sents.get(ids=unsplit, include=["documents"])
        texts.update(zip(more["ids"], more["documents"]))
    vec = {i: (v, texts.get(i, "")) for i, v in vectors.items()}
    centroids = snap.story_centroids if TUNING.generic_penalty else {}
    out: dict[str, list[SentenceHit]] = {}
    for cid in chunk_ids:
        hits = []
        centroid = centroids.get(snap.metas[snap.pos[cid]]["story"])
        for i, (s, e, kind) in enumerate(spans[cid]):
            v, doc = vec.get(f"{cid}/{i}", (None, ""))
            if v is None:
                continue
            generic = float(v @ centroid) if centroid is not None else 0.0
            hits.append(SentenceHit(int(s), int(e), doc, kind, float(v @ q), generic))
        out[cid] = hits
    return out
