"""The decision rules of the answering core, as small named functions.

``bot/answer.py`` runs the flow (analyse -> retrieve -> decide -> compose -> verify); every
rule that decides what is cited, and whether the reply is an answer ("high"), a hedge with
the closest passages ("low") or a refusal ("none"), lives here and is tested on its own
(tests/test_decide.py). Numbers come from ``index.tuning.TUNING``; words from the
per-language data files (``bot/lang/``).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from bot.question import CURRENCY, NUMBER, TIME, Question, forms, mentioned
from index.chunk import passage_text
from index.keyword import PREFIX, tokenize, words
from index.search import Passage, SentenceHit
from index.store import Snapshot
from index.tuning import TUNING, Tuning

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    """A sentence chosen to cite, with the passage it sits in and its answer score."""

    passage: Passage
    sentence: SentenceHit
    score: float


# --- what the question asks for ----------------------------------------------------------
def carries(q: Question, text: str) -> bool:
    """Does a sentence carry the kind of fact the question asks for (an amount of money, a
    number, a date)?"""
    if q.wants_money and not CURRENCY.search(text):
        return False
    if q.wants_number and not q.wants_money and not NUMBER.search(text):
        return False
    if q.wants_time and not TIME.search(text):
        return False
    return True


def number_in(number: str, snap: Snapshot) -> bool:
    """Is a number of the question in the stories? "2.5", "20,000" and "20 000" are all
    found by their digit groups (the story writes "Qwen2.5-Max", "20 000")."""
    return all(g in snap.digits for g in re.findall(r"\d+", number))


def has_name(text: str, name_forms: list[list[str]]) -> bool:
    """Does ``text`` contain one of the word sequences of a name (5-letter prefixes allowed)?"""
    tw = set(words(text))
    tp = {w[:PREFIX] for w in tw}
    return any(seq and all(w in tw or (len(w) >= PREFIX and w[:PREFIX] in tp) for w in seq)
               for seq in name_forms)


def is_rare(snap: Snapshot, name: str, share: float = TUNING.rare_name_share) -> bool:
    """A name found in at most ``share`` of the chunks (at least one chunk allowed), from
    the keyword index's document frequencies: the chunks holding every word of a form are
    at most as many as those holding its rarest word, so no question rescans the corpus."""
    counts = [min(snap.doc_freq(t) for t in toks)
              for toks in (tokenize(" ".join(seq)) for seq in forms(name)) if toks]
    return max(counts, default=0) <= max(1, share * len(snap.docs))


def known_names(q: Question, snap: Snapshot) -> list[str]:
    """The question's names that the stories mention."""
    return [n for n in q.names if mentioned(n, snap.vocabulary, snap.prefixes)]


def missing_facts(q: Question, snap: Snapshot, known: list[str]) -> list[str]:
    """Names and numbers of the question that the stories never mention."""
    return [n for n in q.names if n not in known] + [n for n in q.numbers if not number_in(n, snap)]


def keyword_supported(known: list[str], passages: list[Passage], t: Tuning = TUNING) -> bool:
    """Short sentences resemble almost any question a little, so a cosine alone lets
    chit-chat through ("hello" scores 0.80). A question the story supports names something
    in it or shares keywords with it."""
    return bool(known) or max((p.keyword for p in passages), default=0.0) >= t.keyword_support


def is_follow_up(text: str, starts: re.Pattern, t: Tuning = TUNING) -> bool:
    """A question that leans on the previous one: "and Tencent?", "what about DeepSeek?",
    or one of very few words ("why?")."""
    return len(text.split()) <= t.follow_up_words or bool(starts.match(text))


# --- quotes ------------------------------------------------------------------------------
def verified(snap: Snapshot, p: Passage, s: SentenceHit) -> bool:
    """The quote must be exactly the story's text at its offsets, and the whole passage
    shown around it (and given to an LLM) must be the story's text too, rebuilt from its
    sentence offsets: a corrupted record is never quoted."""
    story_text = snap.story_text(p.story)
    ok = story_text is not None and story_text[s.start:s.end] == s.text and bool(p.sentences)
    if ok:
        ok = p.text == passage_text([(story_text[h.start:h.end], h.kind) for h in p.sentences])
    if not ok:
        log.warning("stored passage %s does not match its story text: not quoted", p.chunk_id)
    return ok


def keyword_overlap(snap: Snapshot, qtokens: set[str], text: str) -> float:
    """IDF-weighted keyword tokens the question and a sentence share."""
    return sum(snap.idf(t) for t in qtokens & set(tokenize(text)))


def pick_sentences(q: Question, passages: list[Passage], snap: Snapshot, *, top_k: int,
                   min_dense: float, t: Tuning = TUNING) -> list[Pick]:
    """The best verified sentence of each passage that carries what the question asks
    for, best first, at most ``top_k``, within ``see_also_margin`` of the best; [] when the
    best sentence's cosine is below ``min_dense``."""
    # Only names that set passages apart earn a bonus: in a story about Apple and Alibaba,
    # "Apple" in the question says nothing about which sentence answers it.
    rare = [n for n in q.names if is_rare(snap, n, t.rare_name_share)]
    name_forms = [forms(n) for n in rare]
    best_per_passage: list[Pick] = []
    qtokens = set(tokenize(q.text))
    qmax = sum(snap.idf(tok) for tok in qtokens) or 1.0
    for p in passages:
        # A question about a specific name (one few passages mention) is answered only
        # from passages that mention it: "When did Apple first approach Baidu?" must not
        # be answered by a dated sentence about something else.
        if rare and not all(has_name(p.text, f) for f in name_forms):
            continue
        bonus = t.passage_kw * (p.score - p.dense)  # the passage's keyword share of the fused score
        options = []
        for s in p.sentences:
            if s.kind != "body" or not carries(q, s.text):
                continue
            hits = sum(has_name(s.text, f) for f in name_forms)
            kw = t.sent_kw * keyword_overlap(snap, qtokens, s.text) / qmax
            options.append(Pick(p, s, s.dense + bonus + kw + t.name_bonus * hits))
        options.sort(key=lambda o: -o.score)
        for o in options:
            if verified(snap, p, o.sentence):
                best_per_passage.append(o)
                break
    best_per_passage.sort(key=lambda o: -o.score)
    if not best_per_passage or best_per_passage[0].sentence.dense < min_dense:
        return []
    best = best_per_passage[0].score
    return [o for o in best_per_passage if o.score >= best - t.see_also_margin][:top_k]
