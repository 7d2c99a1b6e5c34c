"""The bars that depend on the index, calibrated when a version is built.

How high an off-topic question scores depends on the stories (a long story of short
sentences resembles anything a little) and on the question's language (a French question
scores higher against a French story than an English one does). Instead of constants
measured on one story, each refresh scores the shipped off-topic banks
(``index/data/offtopic_<lang>.txt``: generic messages that belong to no story, one file per
language) against the new version and stores, per language, the quantiles of their best
sentence scores that ``index.tuning.TUNING`` names, separately for the stories of each
language (a French question scores higher against a French story than against an English
one, so one bar per question language would refuse French questions about English stories):

- ``refuse``: questions scoring below it, with nothing else tying them to the stories,
  are off topic (refused);
- ``offtopic``: ... and below this one, they get the closest passages, hedged;
- ``answer``: questions scoring at or above it are answered with confidence, whatever
  other evidence says;
- ``bank_neighbour``: between the two first bars, a question this close to one of the
  bank's messages (query to query) is of their kind ("who won the match?") and refused;
  others get the closest passages, hedged.

The record is stored as the meta record ``calibration:<version>``, beside the version it
belongs to. The bank's vectors depend only on the embedder, so they are cached in a
collection per embedder (``storybot_bank_<hash>``, ``Store.cached_vectors``): a refresh does
not embed them again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from importlib import resources

import numpy as np

from index.embed import embed_queries

from index.tuning import TUNING, Tuning

log = logging.getLogger(__name__)

META_KEY = "calibration:{version}"
# The record's layout; a record of another one (an index calibrated by an older storybot) is
# made again on first use. 2: answer bars per story (``answer_story:<lang>``).
FORMAT = 2


def bank_languages() -> list[str]:
    """The languages a shipped off-topic bank exists for (``offtopic_<lang>.txt``)."""
    folder = resources.files("index") / "data"
    return sorted(p.name[len("offtopic_"):-len(".txt")] for p in folder.iterdir()
                  if p.name.startswith("offtopic_") and p.name.endswith(".txt"))


def load_bank(lang: str) -> list[str]:
    """The off-topic bank of a language: one message per line, ``#`` lines are comments."""
    text = (resources.files("index") / "data" / f"offtopic_{lang}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def bank_vectors(store, lines: list[str]) -> np.ndarray:
    """Query vectors of ``lines``, embedded once per embedder and kept in a collection."""
    return store.cached_vectors("bank", lines, lambda texts: embed_queries(store.embedder, texts))


def top_scores(sents, vectors: np.ndarray, total: int, story_langs: dict[str, str],
               depth: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each vector's best cosine to a body sentence of each story language's stories
    (``{story language: scores}``) and of each story (``{story id: scores}``), from one
    query of the ``depth`` nearest sentences. Headings are topics, not answers: the same
    rule retrieval uses. A language or story with no sentence among the ``depth`` nearest
    gets the farthest one's score, an upper bound."""
    n = max(1, min(total, depth))
    res = sents.query(query_embeddings=list(vectors), n_results=n, include=["distances", "metadatas"])
    langs = sorted(set(story_langs.values()))
    stories = sorted(story_langs)
    out: dict[str, list[float]] = {lang: [] for lang in langs}
    per_story = np.zeros((len(res["distances"]), len(stories)), dtype=np.float32)
    column = {sid: i for i, sid in enumerate(stories)}
    for row, (dists, metas) in enumerate(zip(res["distances"], res["metadatas"])):
        best: dict[str, float] = {}
        floor = 1.0 - dists[-1] if dists else 0.0
        per_story[row, :] = floor
        seen: set[str] = set()
        for d, m in zip(dists, metas):
            m = m or {}
            sid = m.get("story")
            lang = story_langs.get(sid)
            if m.get("kind") != "body" or lang is None:
                continue
            if lang not in best:
                best[lang] = 1.0 - d
            if sid not in seen:  # nearest first: the first hit of a story is its best
                seen.add(sid)
                per_story[row, column[sid]] = 1.0 - d
        for lang in langs:
            out[lang].append(best.get(lang, floor))
    return ({lang: np.asarray(v, dtype=np.float32) for lang, v in out.items()},
            {sid: per_story[:, i] for sid, i in column.items()})


_BANKS: dict[str, np.ndarray] = {}


def bank_matrix(store) -> np.ndarray:
    """Every shipped bank's query vectors, one row per message (all languages), kept per
    embedder for the life of the process: a question near the refusal bar is compared with
    them (``index.tuning.Tuning.bank_neighbour_quantile``)."""
    name = store.embedder.name
    if name not in _BANKS:
        rows = [bank_vectors(store, [x for x in load_bank(lang) if any(ch.isalnum() for ch in x)])
                for lang in bank_languages()]
        _BANKS[name] = np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)
    return _BANKS[name]


def bank_neighbour_bar(vectors: np.ndarray, t: Tuning = TUNING) -> float:
    """How close a message must come to one of the bank's messages to count as one of its
    kind: this quantile of the bank messages' cosines to their nearest other message."""
    if len(vectors) < 2:
        return 1.0
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    return float(np.quantile(sims.max(axis=1), t.bank_neighbour_quantile))


def calibrate(store, version: str, sentences: int, story_langs: dict[str, str], t: Tuning = TUNING) -> dict:
    """Score every shipped bank against ``version`` and store the bars (see the module
    docstring) for each question language and story language, e.g. ``{"offtopic:en:fr":
    0.80, "answer:en:fr": 0.82, ...}``. ``story_langs``: ``{story id: language}``
    (``index.language.story_languages``)."""
    _, sents, _ = store.collections_for(version)
    record: dict = {"version": version, "format": FORMAT, "tuning": tuning_key(t)}
    for lang in bank_languages():
        lines = [line for line in load_bank(lang) if any(ch.isalnum() for ch in line)]
        if not lines:
            continue
        scores, by_story = top_scores(sents, bank_vectors(store, lines), sentences, story_langs,
                                      t.calibration_depth)
        for story_lang, sc in scores.items():
            record[f"refuse:{lang}:{story_lang}"] = float(np.quantile(sc, t.refuse_quantile))
            record[f"offtopic:{lang}:{story_lang}"] = float(np.quantile(sc, t.offtopic_quantile))
            record[f"answer:{lang}:{story_lang}"] = float(np.quantile(sc, t.answer_quantile))
            record[f"answer_unsupported:{lang}:{story_lang}"] = float(np.quantile(sc, t.unsupported_quantile))
        # the answer bars of each story alone: how close off-topic messages come to *its*
        # sentences, which, unlike the language's bar, does not rise with every story added
        # beside it (a question is answered from the story it is about); kept, as JSON, for
        # the stories whose bar is below their language's
        own = {}
        for sid, sc in by_story.items():
            lang_bar = record[f"answer:{lang}:{story_langs[sid]}"]
            bar = float(np.quantile(sc, t.answer_quantile))
            if bar < lang_bar:
                own[sid] = [round(bar, 5), round(float(np.quantile(sc, t.unsupported_quantile)), 5)]
        record[f"answer_story:{lang}"] = json.dumps(own, ensure_ascii=False, sort_keys=True)
        record[f"bank:{lang}"] = len(lines)
    record["bank_neighbour"] = bank_neighbour_bar(bank_matrix(store), t)
    store.set_meta(META_KEY.format(version=version), record)
    log.info("calibrated %s: %s", version, {k: round(v, 3) for k, v in record.items() if isinstance(v, float)})
    return record


def tuning_key(t: Tuning = TUNING) -> str:
    """A digest of the tuning a calibration record is made with: a record made with another
    (an index calibrated before a value changed) is made again. The whole object, not the
    values calibrate() reads today, so a value added later cannot be left out; a change to
    any other value costs one recalibration per index version (the bank's vectors are cached)."""
    return hashlib.sha256(json.dumps(dataclasses.asdict(t), sort_keys=True).encode()).hexdigest()[:16]


def bars(store, version: str, t: Tuning = TUNING) -> dict:
    """The stored calibration of ``version`` ({} for an index built before calibration, or
    calibrated in an older ``FORMAT`` or with other tuning values, ``tuning_key``)."""
    record = store.get_meta(META_KEY.format(version=version)) or {}
    return record if record.get("format") == FORMAT and record.get("tuning") == tuning_key(t) else {}


def story_answer_bars(record: dict, lang: str) -> dict[str, tuple[float, float]]:
    """``{story id: (answer bar, answer bar without support)}`` of a calibration record for
    questions in ``lang``: only the stories whose own bars are below their language's."""
    raw = record.get(f"answer_story:{lang}")
    return {sid: (float(a), float(b)) for sid, (a, b) in json.loads(raw).items()} if raw else {}
