"""The answering core: ``Answerer.answer(question) -> Answer``. Knows nothing of chat platforms.

Extractive by default: the answer is the story's own sentence(s) that answer the question,
each with a numbered citation whose quote is checked, character for character, against the
stored story before it is shown. When the story does not answer, the core says so, names
the closest topic it does cover, and cites nothing. With an LLM configured, the LLM writes
the answer in the asker's language from the same cited passages (bot/llm.py); any fault
falls back to the extractive answer.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import prompts
from bot.markup import plain
from bot.question import CURRENCY, NUMBER, TIME, Question, analyse, clean, detect_lang, forms, mentioned
from bot.stories import unknown_story_text
from bot.types import Answer, Citation
from index.chunk import passage_text
from index.errors import StoreUnavailable, StoryIndexError
from index.keyword import PREFIX, tokenize, words
from index.refresh import Progress, RefreshReport, Refresher
from index.search import Passage, SentenceHit, search, split_story_filter
from index.store import Snapshot, Store

if TYPE_CHECKING:
    from bot.answerlog import AnswerLog
    from bot.config import Settings

log = logging.getLogger(__name__)

CANDIDATE_PASSAGES = 6  # passages the answer step reads
NAME_BONUS = 0.02
PASSAGE_KW = 0.5  # tuned on eval/ (40 answerable): hit@1 .90, hit@3 1.0
SENT_KW = 0.04
SEE_ALSO_MARGIN = 0.05  # a further citation must score within this of the best sentence
SECOND_SENTENCE_MARGIN = 0.012  # ... and within this to be part of the answer text
KEYWORD_SUPPORT = 0.1  # BM25 score below which a passage shares no real keyword with the question
UNSUPPORTED_MARGIN = 0.05  # how much higher an unsupported question must score (min_score + this)
FRENCH_MARGIN = 0.085  # added to min_score for a French question on a French story
FRENCH_MARGIN_NAMED = 0.06  # ... when the question also names something specific to the story
FOLLOW_UP_WORDS = 3
_FOLLOW_UP_START = re.compile(r"^(and|et|what about|how about|et pour|et concernant|also|aussi)\b", re.I)
EXAMPLE_QUESTION = {"en": "Why not Baidu?", "fr": "Pourquoi pas Baidu ?"}


@dataclass(frozen=True)
class _Pick:
    passage: Passage
    sentence: SentenceHit
    score: float


class Answerer:
    """Owns the index handle, the answer log and the refresh of one process.

    Contract used by every adapter (CLI, Discord, Slack):

    - ``answer(question, *, context=None, source="cli", user=None, story=None, on_text=None)
      -> Answer``: blocking, thread-safe; call it from a worker thread in async code.
      ``context`` is the previous question of a conversation, used for retrieval when
      ``question`` is short ("and Tencent?"). ``story`` restricts retrieval to one story id.
      ``on_text(text_so_far)`` receives a streamed LLM answer as it grows (provisional: the
      returned Answer is what to show in the end), called on the worker thread. Raises ``index.errors.StoryIndexError`` subclasses (safe messages) when the
      index is unavailable. Never raises for bad questions: empty / huge / odd input gets an
      Answer whose text explains (``abstained=True``, no citations).
    - ``refresh(full=False, progress=None) -> RefreshReport``: re-reads the stories and swaps
      the new index in at once; questions keep being answered from the old index meanwhile.
      Raises ``RefreshInProgress`` if a refresh is already running.
      ``RefreshReport.summary()`` is a one-line human text; ``.to_json()`` a dict.
    - ``refreshing`` (bool property).
    - ``vote(answer_id, user, value) -> bool``: +1 / -1, one vote per user per answer,
      changeable; False when the answer id is unknown.
    - ``close()`` releases the store (and its lock) and the answer log.
    - ``Answerer.from_settings(settings)`` builds the real one (Chroma + e5).
    """

    def __init__(self, store: Store | None = None, refresher: Refresher | None = None, *, top_k: int = 3,
                 min_score: float = 0.76, max_question_chars: int = 1000, answer_log: "AnswerLog | None" = None,
                 llm=None):
        self.store = store
        self.refresher = refresher
        self.top_k = top_k
        self.min_score = min_score
        self.max_question_chars = max_question_chars
        self.answer_log = answer_log
        self.llm = llm
        self._first_build = threading.Lock()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Answerer":
        """The real answerer: Chroma (embedded or server), the configured embedder, the
        answer log in the data dir, and the LLM writer when one is configured."""
        from bot.answerlog import AnswerLog
        from index.embed import get_embedder

        key = settings.embed_api_key.get_secret_value() if settings.embed_api_key else None
        embedder = get_embedder(settings.embed_model, base_url=settings.embed_base_url, api_key=key,
                                batch_size=settings.embed_batch, input_type=settings.embed_input_type)
        store = Store.open(embedder, data_dir=settings.data_dir, chroma_host=settings.chroma_host,
                           chroma_port=settings.chroma_port, chroma_ssl=settings.chroma_ssl,
                           chroma_headers=settings.chroma_header_dict, timeout=settings.chroma_timeout)
        refresher = Refresher(store, settings.stories_dir, settings.chunk_max_chars, settings.embed_batch,
                              settings.max_story_bytes)
        answer_log = (AnswerLog(Path(settings.data_dir) / "answers.sqlite3", keep_days=settings.log_days)
                      if settings.log_answers else None)
        llm = None
        if settings.llm_provider != "none":
            from bot.llm import LLMWriter

            llm = LLMWriter.from_settings(settings)
        return cls(store, refresher, top_k=settings.top_k, min_score=settings.min_score,
                   max_question_chars=settings.max_question_chars, answer_log=answer_log, llm=llm)

    # -- index ----------------------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        return bool(self.refresher and self.refresher.running)

    def refresh(self, *, full: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Re-read the stories and swap the new index in at once (see ``Refresher``)."""
        return self.refresher.refresh(full=full, progress=progress)

    def ensure_index(self, progress: Progress | None = None) -> RefreshReport | None:
        """Build the index if there is none yet (the first question of a new install)."""
        with self._first_build:
            if self.store.active() is None:
                log.info("no index yet: building it from %s", self.refresher.stories_dir)
                return self.refresh(progress=progress)
        return None

    def _snapshot(self) -> Snapshot:
        try:
            snap = self.store.snapshot()
            if snap is None:
                self.ensure_index()
                snap = self.store.snapshot()
        except StoryIndexError:
            raise
        except Exception as exc:
            log.exception("the story index could not be read")
            raise StoreUnavailable("The story index is unavailable right now; try again shortly.") from exc
        if snap is None:
            raise StoreUnavailable("The story index is empty; run `storybot refresh`.")
        return snap

    def story_ids(self) -> list[str]:
        """The ids of the indexed stories, sorted (the chat adapters' autocomplete)."""
        return sorted(_story_ids(self._snapshot()))

    def vote(self, answer_id: int, user: str, value: int) -> bool:
        """Record a 👍 (+1) or 👎 (-1) on an answer; one per user, changeable."""
        return bool(self.answer_log and self.answer_log.vote(answer_id, user, value))

    def close(self) -> None:
        if self.answer_log:
            self.answer_log.close()
        if self.store:
            self.store.close()

    # -- answering ------------------------------------------------------------------------
    def answer(self, question: str, *, context: str | None = None, source: str = "cli", user: str | None = None,
               story: str | None = None, on_text: Callable[[str], None] | None = None) -> Answer:
        """Answer one question from the stories. See the class docstring for the contract."""
        t0 = time.perf_counter()
        question = question if isinstance(question, str) else str(question or "")
        question = plain(question)  # chat markup (mentions, links, emoji, quotes) is not the question
        if story is None:  # "story:<id> question" restricts any question to one story
            story, question = split_story_filter(question)
        q = analyse(question, self.max_question_chars)
        note = prompts.render("truncated", q.lang, limit=self.max_question_chars) if q.truncated else None
        if q.empty:
            text = prompts.render("empty_question", q.lang, example=EXAMPLE_QUESTION[q.lang])
            return Answer(question=q.text, text=text, abstained=True, lang=q.lang, note=note,
                          took_ms=(time.perf_counter() - t0) * 1000)

        snap = self._snapshot()
        if story and story not in _story_ids(snap):
            text = unknown_story_text(story, _story_ids(snap), q.lang)
            return self._record(Answer(question=q.text, text=text, abstained=True, lang=q.lang, note=note,
                                       index_version=snap.version.version,
                                       took_ms=(time.perf_counter() - t0) * 1000), source, user)
        retrieval = q.text
        if context and is_follow_up(q.text):
            retrieval = f"{clean(context, self.max_question_chars)[0]} {q.text}"
        try:
            qv = self.store.embedder.embed_query(retrieval)
            passages = search(self.store, retrieval, k=CANDIDATE_PASSAGES, snapshot=snap, query_vec=qv, story=story)
        except StoryIndexError:
            raise
        except Exception as exc:
            log.exception("retrieval failed")
            raise StoreUnavailable("The story index is unavailable right now; try again shortly.") from exc

        result = self._extract(q, passages, snap)
        answer = Answer(question=q.text, lang=q.lang, note=note, index_version=snap.version.version, **result)
        if self.llm is not None and not answer.abstained:
            answer = self._write_with_llm(answer, on_text)
        answer = replace(answer, took_ms=(time.perf_counter() - t0) * 1000)
        return self._record(answer, source, user)

    def _extract(self, q: Question, passages: list[Passage], snap: Snapshot) -> dict:
        """The extractive answer, or an abstention: returns Answer fields."""
        if not passages:
            return self._abstain("off_topic", q, None, snap)
        top = passages[0]
        vocab, prefixes = _vocabulary(snap)
        known = [n for n in q.names if mentioned(n, vocab, prefixes)]
        # Short sentences resemble almost any question a little, so a cosine threshold alone
        # lets chit-chat through ("hello" scores 0.80). A question the story supports names
        # something in it or shares keywords with it; one that does neither must score higher.
        supported = bool(known) or max(p.keyword for p in passages) >= KEYWORD_SUPPORT
        missing = [n for n in q.names if n not in known] + [n for n in q.numbers if not _number_in(n, snap)]
        bar = self.min_score
        if q.lang == "fr" and detect_lang(top.text) == "fr":
            # A French question scores higher against anything in a French story (French
            # chit-chat reaches 0.84 on the shipped story, English chit-chat 0.80; English on
            # English stories shows no such lift: 0.75 off topic, 0.81 on) and shares false
            # cognates with it ("gagné" ~ "gagner"): a higher bar, a little lower when the
            # question names someone or something specific to the story.
            named = any(_rare(snap, n) for n in known)
            bar += FRENCH_MARGIN_NAMED if named else FRENCH_MARGIN
        if top.dense < bar:
            return self._abstain("off_topic", q, top, snap)
        if missing:  # on topic, but about someone or something the story never mentions
            return self._abstain("not_mentioned", q, top, snap, missing=missing)
        if not supported and top.dense < bar + UNSUPPORTED_MARGIN:
            return self._abstain("not_in_story", q, top, snap)

        picks = self._pick(q, passages, snap)
        if not picks:
            return self._abstain("not_in_story", q, top, snap)
        citations = [_citation(n, p) for n, p in enumerate(picks, 1)]
        best = picks[0].score
        parts = [f"{citations[0].quote} [1]"]
        extra = [c for c, p in zip(citations[1:], picks[1:]) if p.score >= best - SECOND_SENTENCE_MARGIN][:1]
        parts += [f"{c.quote} [{c.n}]" for c in extra]
        rest = [f"[{c.n}]" for c in citations[1 + len(extra):]]
        if rest:
            parts.append(prompts.render("see_also", q.lang, refs=", ".join(rest)))
        return {"text": " ".join(parts), "abstained": False, "citations": tuple(citations)}

    def _pick(self, q: Question, passages: list[Passage], snap: Snapshot) -> list[_Pick]:
        """The best verified sentence of each passage that carries what the question asks
        for, best first, at most ``top_k``, within ``SEE_ALSO_MARGIN`` of the best."""
        # Only names that set passages apart earn a bonus: in a story about Apple and Alibaba,
        # "Apple" in the question says nothing about which sentence answers it.
        rare = [n for n in q.names if _rare(snap, n)]
        name_forms = [forms(n) for n in rare]
        best_per_passage: list[_Pick] = []
        qtokens = set(tokenize(q.text))
        qmax = sum(_idf(snap, t) for t in qtokens) or 1.0
        for p in passages:
            # A question about a specific name (one few passages mention) is answered only
            # from passages that mention it: "When did Apple first approach Baidu?" must not
            # be answered by a dated sentence about something else.
            if rare and not all(_has_name(p.text, f) for f in name_forms):
                continue
            bonus = PASSAGE_KW * (p.score - p.dense)  # the passage's keyword share of the fused score
            options = []
            for s in p.sentences:
                if s.kind != "body" or not _carries(q, s.text):
                    continue
                hits = sum(_has_name(s.text, f) for f in name_forms)
                kw = SENT_KW * _overlap(snap, qtokens, s.text) / qmax
                options.append(_Pick(p, s, s.dense + bonus + kw + NAME_BONUS * hits))
            options.sort(key=lambda o: -o.score)
            for o in options:
                if _verified(snap, p, o.sentence):
                    best_per_passage.append(o)
                    break
        best_per_passage.sort(key=lambda o: -o.score)
        if not best_per_passage or best_per_passage[0].sentence.dense < self.min_score - 0.02:
            return []
        best = best_per_passage[0].score
        return [o for o in best_per_passage if o.score >= best - SEE_ALSO_MARGIN][: self.top_k]

    def _abstain(self, kind: str, q: Question, top: Passage | None, snap: Snapshot, missing=()) -> dict:
        topic = (top.section or top.title) if top else (snap.metas[0]["title"] if snap.metas else "")
        if kind == "off_topic":
            topic = top.title if top else topic
        values = {"topic": topic}
        if kind == "not_mentioned":
            values["missing"] = _join(missing, q.lang)
        return {"text": prompts.render(kind, q.lang, **values), "abstained": True, "citations": (),
                "closest_topic": topic}

    def _write_with_llm(self, answer: Answer, on_text) -> Answer:
        from bot.llm import LLMFailure, LLMPassage

        passages = [LLMPassage(c.n, c.title, c.section, c.passage) for c in answer.citations]
        try:
            result = self.llm.write(answer.question, passages, answer.lang, on_text=on_text)
        except LLMFailure as exc:
            log.warning("LLM answer not used (%s); answering extractively", exc.reason)
            return replace(answer, mode=f"extractive (fallback: {exc.reason})",
                           note=_join_notes(answer.note, prompts.render("llm_fallback", answer.lang,
                                                                        reason=exc.reason)))
        return replace(answer, text=result.text, mode="llm")

    def _record(self, answer: Answer, source: str, user: str | None = None) -> Answer:
        if not self.answer_log:
            return answer
        try:
            rid = self.answer_log.record(
                question=answer.question, abstained=answer.abstained,
                citations=[c.chunk_id for c in answer.citations], took_ms=answer.took_ms,
                index_version=answer.index_version, mode=answer.mode, source=source, user=user)
        except Exception:  # the log must never cost the user their answer
            log.exception("could not write the answer log")
            return answer
        return replace(answer, answer_id=rid)


def _carries(q: Question, text: str) -> bool:
    """Does a sentence carry the kind of fact the question asks for?"""
    if q.wants_money and not CURRENCY.search(text):
        return False
    if q.wants_number and not q.wants_money and not NUMBER.search(text):
        return False
    if q.wants_time and not TIME.search(text):
        return False
    return True


def _verified(snap: Snapshot, p: Passage, s: SentenceHit) -> bool:
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


def _citation(n: int, pick: _Pick) -> Citation:
    p, s = pick.passage, pick.sentence
    return Citation(n=n, quote=s.text, passage=p.text, story=p.story, title=p.title, section=p.section,
                    start=s.start, end=s.end, score=pick.score, dense=s.dense, keyword=p.keyword,
                    chunk_id=p.chunk_id, outlet=p.outlet, date=p.date, url=p.url)


def _vocabulary(snap: Snapshot) -> tuple[set[str], set[str]]:
    """Every folded word of the live index, and their 5-letter prefixes (cached per version)."""
    if "vocab" not in snap.cache:
        vocab: set[str] = set()
        for doc, meta in zip(snap.docs, snap.metas):
            vocab.update(words(doc))
            vocab.update(words(meta.get("title", "")))
        snap.cache["vocab"] = (vocab, {w[:PREFIX] for w in vocab if len(w) >= PREFIX})
    return snap.cache["vocab"]


def _doc_freq(snap: Snapshot) -> dict[str, int]:
    """How many chunks hold each keyword token (built once per version)."""
    if "df" not in snap.cache:
        df: dict[str, int] = {}
        for doc in snap.docs:
            for t in set(tokenize(doc)):
                df[t] = df.get(t, 0) + 1
        snap.cache["df"] = df
    return snap.cache["df"]


def _idf(snap: Snapshot, token: str) -> float:
    df = _doc_freq(snap).get(token, 0)
    return math.log(1 + (len(snap.docs) - df + 0.5) / (df + 0.5))


def _overlap(snap: Snapshot, qtokens: set[str], text: str) -> float:
    return sum(_idf(snap, t) for t in qtokens & set(tokenize(text)))


def _story_ids(snap: Snapshot) -> set[str]:
    if "story_ids" not in snap.cache:
        snap.cache["story_ids"] = {m["story"] for m in snap.metas}
    return snap.cache["story_ids"]


def _number_in(number: str, snap: Snapshot) -> bool:
    """Is a number of the question in the stories? "2.5", "20,000" and "20 000" are all
    found by their digit groups (the story writes "Qwen2.5-Max", "20 000")."""
    if "digits" not in snap.cache:
        snap.cache["digits"] = {g for doc in snap.docs for g in re.findall(r"\d+", doc)}
    return all(g in snap.cache["digits"] for g in re.findall(r"\d+", number))


def _has_name(text: str, name_forms: list[list[str]]) -> bool:
    """Does ``text`` contain one of the word sequences of a name (5-letter prefixes allowed)?"""
    tw = set(words(text))
    tp = {w[:PREFIX] for w in tw}
    return any(seq and all(w in tw or (len(w) >= PREFIX and w[:PREFIX] in tp) for w in seq)
               for seq in name_forms)


def _rare(snap: Snapshot, name: str, share: float = 0.25) -> bool:
    """A name found in at most ``share`` of the chunks (at least one chunk allowed), from
    the per-version token counts: the chunks holding every word of a form are at most as
    many as those holding its rarest word, so no question rescans the corpus."""
    df = _doc_freq(snap)
    counts = [min(df.get(t, 0) for t in toks) for toks in (tokenize(" ".join(seq)) for seq in forms(name)) if toks]
    return max(counts, default=0) <= max(1, share * len(snap.docs))


def is_follow_up(text: str) -> bool:
    """A question that leans on the previous one: "and Tencent?", "what about DeepSeek?",
    or one of very few words ("why?")."""
    return len(text.split()) <= FOLLOW_UP_WORDS or bool(_FOLLOW_UP_START.match(text))


def _join(items, lang: str) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    word = " et " if lang == "fr" else " and "
    return ", ".join(items[:-1]) + word + items[-1]


def _join_notes(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return " ".join(kept) if kept else None
