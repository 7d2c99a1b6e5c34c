"""Answer quality on the real index, asserted on enough questions and with a stated margin,
so that a machine whose CPU rounds the last bits of an embedding differently (AVX-512 vs
AVX2) reaches the same verdicts.

Question sets (all of them seen while tuning; the round-2 held-out eval/*test2_questions.jsonl
are not used here):
- shipped story: eval/dev_questions.jsonl + extra + fresh + test_questions.jsonl
  (120 answerable, 39 unanswerable);
- multi-story: the shipped story + eval/multi/stories/ with eval/multi/dev_questions.jsonl and
  test_questions.jsonl (78 answerable, 21 unanswerable);
- few stories (from round 13): the shipped story + eval/dev9/stories/ with round 9's dev
  questions about them and its unanswerable ones (52 answerable, 25 unanswerable; the bars
  are with FEW_BARS below).

Measured in round 2: shipped hit@1 .83 vs .80 for plain retrieval's top passage, 3
answerable refused, 3 unanswerable answered "high", .90 of the answerable answered "high";
multi-story hit@1 .72 vs .64, 1 refused, 3 unanswerable "high", .78 "high". Measured at the
end of round 5 (where the bars were last moved): shipped .83 vs .78, 1 refused, 2 unanswerable
"high", .93 "high"; multi-story .74 vs .69, 0 refused, 3 unanswerable "high", .81 "high".
Measured at the end of round 6: shipped .84 vs .81, 1 refused, 0 unanswerable "high", .93
"high"; multi-story .79 vs .72, 0 refused, 2 unanswerable "high", .81 "high". Measured at the
end of round 7 (where the bars were last moved): shipped .84 vs .81 (101 and 97 of 120), 1
refused, 0 unanswerable "high", .93 "high"; multi-story .77 vs .72 (60 and 56 of 78), 0
refused, 2 unanswerable "high", .82 "high" (the retrieval top passage's sentence is now always
cited first: two first citations fewer here, five more on round 7's fourteen-story held-out
set, see index/tuning.py). Round 13 (a story's passages also ranked by the question
without its subject's name, in indexes of two stories and more) moved neither: multi-story .77
vs .72 (60 and 56 of 78). Each bar below sits at least two questions away from those numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

from bot.answer import Answerer
from bot.config import load_settings
from bot.evaluate import combined_stories, evaluate, load_questions
from index.sources import read_stories

from tests.conftest import REPO, STORIES

SHIPPED_SETS = [REPO / "eval" / f"{name}_questions.jsonl" for name in ("dev", "extra", "fresh", "test")]
MULTI_SETS = [REPO / "eval" / "multi" / f"{name}_questions.jsonl" for name in ("dev", "test")]


def verdicts(result: dict, *, hit1: float, high: float, refused: int, unanswerable_high: int) -> dict[str, bool]:
    """The quality claims for one evaluation, each True when it holds."""
    n = result["answerable"]
    return {
        "enough questions": n >= 40 or result["questions"] >= 40,
        f"hit@1 >= {hit1}": result["hit@1"] >= hit1,
        # the answer layer adds to retrieval: within one question of plain retrieval's top passage
        "first citation >= retrieval top-1": result["hit@1"] >= result["retrieval_hit@1"] - 1 / n,
        f"answerable refused <= {refused}": result["answerable_none"] <= refused,
        f"unanswerable answered high <= {unanswerable_high}": result["unanswerable_high"] <= unanswerable_high,
        f"answerable high >= {high}": result["answerable_high"] / n >= high,
    }


SHIPPED_BARS = {"hit1": 0.82, "high": 0.90, "refused": 3, "unanswerable_high": 2}
MULTI_BARS = {"hit1": 0.74, "high": 0.78, "refused": 2, "unanswerable_high": 4}
# Round 9's dev set viewed over the shipped story and its own three stories only (the shape
# of the hidden set; eval/few_story_views.py): 52 answerable, 25 unanswerable. Measured in
# round 13: first citation 38 of 52 against 31 for plain retrieval's top passage (30 before
# the round ranked a story's passages also by the question without its subject's name), 0
# refused, 38 answered "high", 7 unanswerable "high".
FEW_STORIES = REPO / "eval" / "dev9" / "stories"
FEW_SET = REPO / "eval" / "dev9" / "dev9_questions.jsonl"
FEW_BARS = {"hit1": 0.69, "high": 0.69, "refused": 2, "unanswerable_high": 9}
FEW_AHEAD = 5  # first citations right beyond retrieval's (measured: 7; before round 13: -1)


@pytest.fixture(scope="module")
def multi_answerer(tmp_path_factory):
    """A real Answerer over the shipped story plus the three multi-story corpus stories."""
    tmp = tmp_path_factory.mktemp("multi")
    stories = combined_stories(STORIES, [REPO / "eval" / "multi" / "stories"], tmp / "stories")
    with Answerer.from_settings(load_settings(data_dir=tmp / "data", stories_dir=stories, _env_file=None,
                                              log_answers=False)) as answerer:
        answerer.ensure_index()
        yield answerer


@pytest.fixture(scope="module")
def few_answerer(tmp_path_factory):
    """A real Answerer over the shipped story plus round 9's three dev stories: the shape of
    the hidden set (a few stories, most of them new)."""
    tmp = tmp_path_factory.mktemp("few")
    stories = combined_stories(STORIES, [FEW_STORIES], tmp / "stories")
    with Answerer.from_settings(load_settings(data_dir=tmp / "data", stories_dir=stories, _env_file=None,
                                              log_answers=False)) as answerer:
        answerer.ensure_index()
        yield answerer


def shipped_questions() -> list[dict]:
    return [q for f in SHIPPED_SETS for q in load_questions(f)]


def multi_questions() -> list[dict]:
    return [q for f in MULTI_SETS for q in load_questions(f)]


_CLEAN: dict[str, dict] = {}


def questions_of(which: str) -> list[dict]:
    return {"shipped": shipped_questions, "multi": multi_questions, "few": few_questions}[which]()


def few_questions() -> list[dict]:
    """The set's questions about the few-story corpus's stories, and its unanswerable ones."""
    ids = {story.id for folder in (STORIES, FEW_STORIES) for story in read_stories(folder)[0]}
    return [q for q in load_questions(FEW_SET) if q["gold"] is None or q.get("story") in ids]


def clean_result(answerer, which: str) -> dict:
    """The evaluation without noise, computed once per corpus for the whole module (the
    quality tests and every noise seed compare against it)."""
    if which not in _CLEAN:
        _CLEAN[which] = evaluate(answerer, questions_of(which))
    return _CLEAN[which]


def test_shipped_story_quality(shared_answerer):
    result = clean_result(shared_answerer, "shipped")
    assert result["answerable"] >= 40
    assert verdicts(result, **SHIPPED_BARS) == dict.fromkeys(verdicts(result, **SHIPPED_BARS), True), result


def test_multi_story_quality(multi_answerer):
    result = clean_result(multi_answerer, "multi")
    assert len({r["id"] for r in result["rows"]}) >= 40
    assert verdicts(result, **MULTI_BARS) == dict.fromkeys(verdicts(result, **MULTI_BARS), True), result


def test_a_story_filter_refuses_a_name_only_other_stories_hold(multi_answerer):
    # "story:<id>" asks one story: Baidu is in the shipped story, not in the tram's
    whole = multi_answerer.answer("why not Baidu?")
    assert whole.confidence == "high" and whole.citations[0].story == "apple-alibaba-ia-iphone-chine.fr"
    one = multi_answerer.answer("story:kelbridge-tram-airport why not Baidu?")
    assert one.confidence == "none" and one.citations == () and "Baidu" in one.text
    one = multi_answerer.answer("Who pays for the tram?", story="apple-alibaba-ia-iphone-chine.fr")
    assert one.confidence != "high" and all(c.story == "apple-alibaba-ia-iphone-chine.fr" for c in one.citations)


def few_verdicts(result: dict) -> dict[str, bool]:
    ahead = round((result["hit@1"] - result["retrieval_hit@1"]) * result["answerable"])
    return verdicts(result, **FEW_BARS) | {f"first citation >= retrieval + {FEW_AHEAD}": ahead >= FEW_AHEAD}


def test_few_story_quality(few_answerer):
    result = clean_result(few_answerer, "few")
    assert result["answerable"] >= 40
    assert few_verdicts(result) == dict.fromkeys(few_verdicts(result), True), result


def test_a_confident_answer_quotes_one_story(few_answerer):
    # a sentence of another story scoring near the best is not support: a question about one
    # story's figure must not be answered "[1] ... [2] <another story's figure>"
    rows = clean_result(few_answerer, "few")["rows"]
    spread = [(r["id"], r["stories"]) for r in rows if r["confidence"] == "high" and len(set(r["stories"])) > 1]
    assert not spread, spread


def _retrieval_top1(answerer, questions) -> int:
    from index.search import search

    snap = answerer.store.snapshot()
    return sum(bool(found) and q["gold"] in found[0].text
               for q in questions for found in [search(answerer.store, q["q"], k=1, snapshot=snap)])


def test_a_question_that_mixes_two_stories_up_is_not_answered_with_confidence(few_answerer):
    # the steelworks is one French story's, the fire brigade of Roquesterne another's: no
    # passage says what one gave the other, whatever passage comes closest
    from bot import decide
    from bot.question import analyse

    snap = few_answerer.store.snapshot()
    for text in ("Combien l'aciérie de Hagondel a-t-elle versé aux pompiers de Roquesterne ?",
                 "How much did the Hagondel steelworks give the Roquesterne firefighters?"):
        q = analyse(text, 500)
        assert decide.names_apart(snap, decide.name_forms(q, snap, few_answerer.store.embedder)), text
        assert few_answerer.answer(text).confidence != "high", text
    # each name alone is answered from its story
    answer = few_answerer.answer("Combien de salariés l'aciérie de Hagondel emploie-t-elle ?")
    assert answer.confidence == "high" and "hagondel" in answer.citations[0].story


def test_a_questions_words_in_the_stories_other_language_add_to_retrieval(multi_answerer, few_answerer,
                                                                           monkeypatch):
    """Keyword search with the question's words in the other language of the stories
    (index.crosslang) ranks the right passage first at least as often as without, over the
    questions asked in another language than their story's, on both two-language corpora.
    Measured (round 23: only the words the question's own language lacks): 34 of 60
    without, 35 with (over every few-story tuning view, 912 -> 937 of 1201); one question
    may flip on another CPU before the verdict does."""
    import index.search
    from index.language import detect

    asked_across = []
    for answerer, which in ((multi_answerer, "multi"), (few_answerer, "few")):
        langs = answerer.store.snapshot().story_langs
        asked_across.append((answerer, [q for q in questions_of(which)
                                        if q["gold"] and detect(q["q"]) != langs.get(q.get("story") or
                                                                                        "apple-alibaba-ia-iphone-chine.fr")]))
    assert sum(len(qs) for _, qs in asked_across) >= 40
    with_words = sum(_retrieval_top1(a, qs) for a, qs in asked_across)
    monkeypatch.setattr(index.search, "expansion", lambda *a, **k: [])
    without = sum(_retrieval_top1(a, qs) for a, qs in asked_across)
    assert with_words >= without, (with_words, without)


def test_the_other_languages_words_of_a_question(multi_answerer, shared_answerer):
    from index import crosslang

    store = multi_answerer.store
    snap = store.snapshot()
    # stadium ~ stade (.93): the French story's word joins the keyword query
    assert "stade" in crosslang.expansion(store, snap, "Who will pay for the new stadium?")
    assert crosslang.expansion(store, snap, "why not?") == []  # no content word
    # read as French (the language the answer core read it in), its words are carried the
    # other way: towards the English stories, never to the French story's own "stade"
    assert "stade" not in crosslang.expansion(store, snap, "Who will pay for the new stadium?", lang="fr")
    # the refresh embedded every word of the stories: questions never wait for them
    texts: dict[str, list[str]] = {}
    for meta, doc in zip(snap.metas, snap.docs):
        texts.setdefault(snap.story_langs[meta["story"]], []).append(doc)

    def embed(words):
        raise AssertionError(f"embedded again: {words[:5]}")

    for words in crosslang.vocabularies(texts).values():
        assert store.cached_vectors(crosslang.KIND, words, embed).shape == (len(words), 384)
    # stories of one language: nothing to add
    one = shared_answerer.store
    assert crosslang.expansion(one, one.snapshot(), "Who will pay for the new stadium?") == []


ACROSS_STORIES = REPO / "eval" / "holdout27" / "stories"  # two English stories, one French
ACROSS_SET = REPO / "eval" / "holdout27" / "test27_questions.jsonl"


@pytest.fixture(scope="module")
def across_answerer(tmp_path_factory):
    """A real Answerer over the shipped story plus round 27's held-out stories (tuning data
    since then): 40 of its 60 answerable questions are asked in another language than
    their story's."""
    tmp = tmp_path_factory.mktemp("across")
    stories = combined_stories(STORIES, [ACROSS_STORIES], tmp / "stories")
    with Answerer.from_settings(load_settings(data_dir=tmp / "data", stories_dir=stories, _env_file=None,
                                              log_answers=False)) as answerer:
        answerer.ensure_index()
        yield answerer


def test_words_shared_in_translation_support_an_answer(across_answerer, monkeypatch):
    """A question asked in another language than its story's shares no keyword with it as
    written; its words in the story's language (index.crosslang.translated) do, and count as
    support for a confident answer (bot.decide.supported_across), never for an unanswerable
    question. Measured (round 30) on this set: answerable "high" 50 -> 53 of 60, unanswerable
    "high" 3 -> 3 of 20, first citations unchanged (over every few-story tuning view: 951 ->
    965 of 1140, nothing else moved). Bar: two more, so one question may flip on another CPU."""
    from bot import decide

    questions = load_questions(ACROSS_SET)
    with_support = evaluate(across_answerer, questions)
    monkeypatch.setattr(decide, "supported_across", lambda *a, **k: False)
    without = evaluate(across_answerer, questions)
    assert with_support["answerable_high"] >= without["answerable_high"] + 2, (with_support["answerable_high"],
                                                                              without["answerable_high"])
    assert with_support["unanswerable_high"] <= without["unanswerable_high"]
    assert with_support["hit@1"] >= without["hit@1"]


def test_the_sentence_after_the_first_quote_joins_it_when_nearly_as_close(across_answerer, monkeypatch):
    """The sentence closest to a question often announces what the next one says; that one
    joins the first quote when it scores within follow_margin (bot.decide.with_next_sentence).
    Measured (round 30) on this set: first quotes holding the answer 51 -> 53 of 60 (over
    the few-story tuning views of rounds 22-30: 392 -> 403 of 540). Bar: one more, so one
    question may flip on another CPU. Nothing else may change: the quote only grows, after
    every decision is made."""
    from bot import decide

    questions = load_questions(ACROSS_SET)
    joined = evaluate(across_answerer, questions)
    monkeypatch.setattr(decide, "with_next_sentence", lambda q, pick, **k: pick)
    alone = evaluate(across_answerer, questions)
    n = joined["answerable"]
    assert round(joined["quote_hit@1"] * n) >= round(alone["quote_hit@1"] * n) + 1, (joined["quote_hit@1"],
                                                                                   alone["quote_hit@1"])
    assert [(r["rank"], r["confidence"], r["why"]) for r in joined["rows"]] == \
        [(r["rank"], r["confidence"], r["why"]) for r in alone["rows"]]
    assert all(j["quote_right"] or not a["quote_right"] for j, a in zip(joined["rows"], alone["rows"]))


BARS_STORIES = REPO / "eval" / "holdout38" / "stories"  # two English stories, one French
BARS_SET = REPO / "eval" / "holdout38" / "test38_questions.jsonl"


def test_each_candidate_is_held_to_its_own_storys_answer_bar(tmp_path):
    """A French question about an English story scores higher against the French stories'
    text, held to their higher bar: the answer is confident when any candidate reaches its
    own story's bar (bot.decide.clears_a_bar), not only the highest-scoring one. Measured
    (round 34) on this set, round 38's held-out stories (tuning data since then): answerable
    "high" 44 -> 53 of 60, unanswerable "high" 4 -> 5 of 20, first citations unchanged (over
    every few-story tuning view: 1360 -> 1398 of 1620, unanswerable 136 -> 138 of 539). Bar:
    five more, so a few questions may flip on another CPU."""
    from bot import decide

    stories = combined_stories(STORIES, [BARS_STORIES], tmp_path / "stories")
    questions = load_questions(BARS_SET)
    with Answerer.from_settings(load_settings(data_dir=tmp_path / "data", stories_dir=stories, _env_file=None,
                                              log_answers=False)) as answerer:
        answerer.ensure_index()
        own = evaluate(answerer, questions)

        def highest_only(passages, bars, is_supported, like_bank=lambda: True):
            peak = max(passages, key=lambda p: p.dense)
            return decide.confidence(peak, *bars[peak.story], is_supported, like_bank) == "high"

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(decide, "clears_a_bar", highest_only)
            highest = evaluate(answerer, questions)
    assert own["answerable_high"] >= highest["answerable_high"] + 5, (own["answerable_high"],
                                                                      highest["answerable_high"])
    assert own["unanswerable_high"] <= highest["unanswerable_high"] + 2
    # only the confidence moves: the first citation is the same passage either way
    assert [r["rank"] == 1 for r in own["rows"]] == [r["rank"] == 1 for r in highest["rows"]]


def test_a_questions_words_in_another_language(multi_answerer, shared_answerer):
    from bot import decide
    from bot.question import analyse
    from index import crosslang

    store = multi_answerer.store
    snap = store.snapshot()
    text = "Combien de voyageurs l'aéroport a-t-il accueillis en 2025 ?"
    english = crosslang.translated(store, snap, text, "en").split()
    # voyageurs ~ journeys, aéroport ~ airport (the English stories' words); the number stays
    assert "airport" in english and "2025" in english and "aéroport" not in english, english
    q = analyse(text, 500)
    passages = multi_answerer._retrieve(q, q.text, store.embedder.embed_query(q.text), snap, None)
    assert passages[0].story == "kelbridge-tram-airport"
    assert not decide.supported(q, decide.name_forms(q, snap, store.embedder), passages, snap)
    assert decide.supported_across(q, passages, snap, lambda lang: crosslang.translated(store, snap, text, lang))
    # no word of the story's language for it, no support
    assert not decide.supported_across(q, passages, snap, lambda lang: "")
    # stories of one language: no words of another to write it with
    one = shared_answerer.store
    assert crosslang.translated(one, one.snapshot(), "How many passengers?", "fr") == ""


class NoisyEmbedder:
    """The real embedder, with noise of ``scale`` per component added to every query vector
    (then renormalised): what another CPU's rounding does, a thousand times over."""

    def __init__(self, inner, seed: int, scale: float = 1e-3):
        self.inner = inner
        self.name = inner.name
        self.rng = np.random.default_rng(seed)
        self.scale = scale

    def embed_query(self, text: str) -> np.ndarray:
        v = self.inner.embed_query(text)
        v = v + self.rng.normal(0.0, self.scale, size=v.shape).astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def __getattr__(self, name: str):
        # everything else is the real model's, the latent terms too (a copy without them
        # ranks close calls differently: that is not what another CPU does)
        return getattr(self.inner, name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quality_verdicts_survive_query_noise(shared_answerer, multi_answerer, few_answerer, seed, monkeypatch):
    judge = {"shipped": lambda r: verdicts(r, **SHIPPED_BARS), "multi": lambda r: verdicts(r, **MULTI_BARS),
             "few": few_verdicts}
    for answerer, which in ((shared_answerer, "shipped"), (multi_answerer, "multi"), (few_answerer, "few")):
        clean = judge[which](clean_result(answerer, which))
        monkeypatch.setattr(answerer.store, "embedder", NoisyEmbedder(answerer.store.embedder, seed))
        noisy = judge[which](evaluate(answerer, questions_of(which)))
        monkeypatch.undo()
        assert noisy == clean, (which, seed, noisy)
