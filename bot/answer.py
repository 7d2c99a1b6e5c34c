"""The answering core: ``Answerer.answer(question) -> Answer``. Knows nothing of chat platforms.

The flow: analyse the question (bot/question.py) -> retrieve (index/search.py) -> decide
(bot/decide.py) -> compose -> verify. Three outcomes (``Answer.confidence``):

- "high": the story's own sentence(s) that answer, each with a numbered citation whose
  quote is checked, character for character, against the stored story before it is shown;
  the retrieval top passage's sentence comes first unless it lacks what is asked.
- "low": on topic, but below the answer bar calibrated for this index (index/calibrate.py):
  "The story may not say this directly; the closest passages:" and up to two verified quotes.
- "none": refused, citing nothing: off topic, about names or numbers the stories never
  mention, asking for a kind of fact (an amount, a count, a date) no passage carries, or
  not a question about the stories (an instruction to the bot, a request for its opinion,
  a poem): the reply names the closest topic the stories do cover.

With an LLM configured, the LLM writes "high" answers in the asker's language from the same
cited passages (bot/llm.py), and only the passages it cites are shown; any fault falls back
to the extractive answer.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import prompts
from bot.markup import links, plain, quoted
from bot import decide
from bot.decide import Pick
from bot.errors import AnswerLogDamaged
from bot.question import Question, analyse, clean
from bot.stories import unknown_story_text
from bot.types import Answer, Citation
from index.calibrate import bank_matrix, bars, calibrate, story_answer_bars
from index.crosslang import translated
from index.embed import recipe_for
from index.errors import StoreUnavailable, StoryIndexError
from index.keyword import words
from index.language import DEFAULT
from index.refresh import Progress, RefreshReport, Refresher
from index.search import CANDIDATES, Passage, search, split_story_filter
from index.store import Snapshot, Store
from index.tuning import TUNING

if TYPE_CHECKING:
    from bot.answerlog import AnswerLog
    from bot.config import Settings

log = logging.getLogger(__name__)

EXAMPLE_QUESTION = {"en": "Why not Baidu?", "fr": "Pourquoi pas Baidu ?"}
# the sources whose user types in a terminal, where storybot's own commands can be run
TERMINAL_SOURCES = frozenset({"cli", "cli-chat", "eval"})
# Why a question is refused (``Answer.why``), by the kind of refusal
WHY = {"off_topic": "off topic", "not_a_question": "not a question about the stories",
       "not_mentioned": "not mentioned", "not_in_story": "no passage carries what is asked"}


class Answerer:
    """Owns the index handle, the answer log and the refresh of one process.

    Contract used by every adapter (CLI, Discord, Slack):

    - ``answer(question, *, context=None, source="cli", user=None, story=None, on_text=None)
      -> Answer``: blocking, thread-safe; call it from a worker thread in async code.
      ``context`` is the previous question of a conversation, used for retrieval when
      ``question`` is short ("and Tencent?"). ``story`` restricts retrieval to one story id;
      without it, a link in the question to one of the stories does (``decide.linked_story``).
      ``on_text(text_so_far)`` receives a streamed LLM answer as it grows (provisional: the
      returned Answer is what to show in the end), called on the worker thread. Raises ``index.errors.StoryIndexError`` subclasses (safe messages) when the
      index is unavailable. Never raises for bad questions: empty / huge / odd input gets an
      Answer whose text explains (``abstained=True``, no citations). ``Answer.confidence``
      is "high", "low" or "none" (see the module docstring).
    - ``refresh(full=False, progress=None) -> RefreshReport``: re-reads the stories and swaps
      the new index in at once; questions keep being answered from the old index meanwhile.
      Raises ``RefreshInProgress`` if a refresh is already running.
      ``RefreshReport.summary()`` is a one-line human text; ``.to_json()`` a dict.
    - ``refreshing`` (bool property).
    - ``vote(answer_id, user, value) -> bool``: +1 / -1, one vote per user per answer,
      changeable; False when the answer id is unknown.
    - ``close()`` releases the store (and its lock) and the answer log; ``with Answerer...``
      closes it on leaving the block.
    - ``Answerer.from_settings(settings)`` builds the real one (Chroma + e5).
    """

    def __init__(self, store: Store | None = None, refresher: Refresher | None = None, *, top_k: int = 3,
                 min_score: float = 0.76, max_question_chars: int = 1000, answer_log: "AnswerLog | None" = None,
                 llm=None, open_log: "Callable[[], AnswerLog] | None" = None):
        self.store = store
        self.refresher = refresher
        self.top_k = top_k
        self.min_score = min_score
        self.max_question_chars = max_question_chars
        self._answer_log = answer_log
        # opened on first use: refreshing, listing or searching never creates the log file
        self._open_log = open_log if answer_log is None else None
        self._log_lock = threading.Lock()
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
                                batch_size=settings.embed_batch, input_type=settings.embed_input_type,
                                terms=settings.latent_terms)
        store = Store.open(embedder, data_dir=settings.data_dir, chroma_host=settings.chroma_host,
                           chroma_port=settings.chroma_port, chroma_ssl=settings.chroma_ssl,
                           chroma_headers=settings.chroma_header_dict, timeout=settings.chroma_timeout)
        refresher = Refresher(store, settings.stories_dir, settings.chunk_max_chars, settings.embed_batch,
                              settings.max_story_bytes)
        open_log = functools.partial(AnswerLog, Path(settings.data_dir) / "answers.sqlite3",
                                     keep_days=settings.log_days) if settings.log_answers else None
        llm = None
        if settings.llm_provider != "none":
            from bot.llm import LLMWriter

            llm = LLMWriter.from_settings(settings)
        return cls(store, refresher, top_k=settings.top_k, min_score=settings.min_score,
                   max_question_chars=settings.max_question_chars, llm=llm, open_log=open_log)

    @property
    def answer_log(self) -> "AnswerLog | None":
        """The answer log, opened (created, the first time) when an answer or a vote is first
        recorded; None when answers are not logged or the log file is damaged."""
        if self._open_log is not None:
            with self._log_lock:
                if self._open_log is not None:
                    opener, self._open_log = self._open_log, None
                    try:
                        self._answer_log = opener()
                    except AnswerLogDamaged as exc:  # the log must never cost people their answers
                        log.error("%s Answering without it until then (no votes either).", exc)
        return self._answer_log

    # -- index ----------------------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        return bool(self.refresher and self.refresher.running)

    def refresh(self, *, full: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Re-read the stories and swap the new index in at once (see ``Refresher``)."""
        return self.refresher.refresh(full=full, progress=progress)

    def ensure_index(self, progress: Progress | None = None) -> RefreshReport | None:
        """Build the index if there is none yet (the first question of a new install), or
        rebuild it if its sentence vectors were made another way than this storybot makes
        them for that many stories (``index.embed.recipe_for``), e.g. by an older one."""
        with self._first_build:
            active = self.store.active()
            if active is None:
                log.info("no index yet: building it from %s", self.refresher.stories_dir)
                return self.refresh(progress=progress)
            if active.recipe != recipe_for(active.stories) and active.embedder == self.store.embedder.name:
                log.info("the index was built by an older storybot: rebuilding it from %s",
                         self.refresher.stories_dir)
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
        return sorted(self._snapshot().story_ids)

    def vote(self, answer_id: int, user: str, value: int) -> bool:
        """Record a 👍 (+1) or 👎 (-1) on an answer; one per user, changeable."""
        return bool(self.answer_log and self.answer_log.vote(answer_id, user, value))

    def __enter__(self) -> "Answerer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._answer_log:  # not self.answer_log: closing must not create the log
            self._answer_log.close()
        if self.store:
            self.store.close()

    # -- answering ------------------------------------------------------------------------
    def answer(self, question: str, *, context: str | None = None, source: str = "cli", user: str | None = None,
               story: str | None = None, on_text: Callable[[str], None] | None = None) -> Answer:
        """Answer one question from the stories. See the class docstring for the contract."""
        t0 = time.perf_counter()
        question = question if isinstance(question, str) else str(question or "")
        # chat markup (mentions, links, emoji, quotes) is not the question; a quoted earlier
        # message is what the question is about ("> ..." then "who said that?"): context
        quote = quoted(question)
        linked = links(question)
        question = plain(question)
        if quote:
            context = quote
        if story is not None:  # a story id pasted with spaces or a newline around it
            story = story.strip() or None
        if story is None:  # "story:<id> question" restricts any question to one story
            story, question = split_story_filter(question)
        q = analyse(question, self.max_question_chars)
        note = prompts.render("truncated", q.lang, limit=self.max_question_chars) if q.truncated else None
        if q.empty:
            text = prompts.render("empty_question", q.lang, example=EXAMPLE_QUESTION[q.lang])
            return Answer(question=q.text, text=text, abstained=True, lang=q.lang, note=note, why="empty question",
                          took_ms=(time.perf_counter() - t0) * 1000)

        snap = self._snapshot()
        if story and story not in snap.story_ids:
            text = unknown_story_text(story, snap.story_ids, q.lang, terminal=source in TERMINAL_SOURCES)
            return self._record(Answer(question=q.text, text=text, abstained=True, lang=q.lang, note=note,
                                       index_version=snap.version.version, why="unknown story",
                                       took_ms=(time.perf_counter() - t0) * 1000), source, user)
        if story is None and linked:  # a link to one of the stories asks about that story
            story = decide.linked_story(snap, linked)
        retrieval = q.text
        if context and (quote or is_follow_up(q.text)):
            retrieval = f"{clean(context, self.max_question_chars)[0]} {q.text}"
        try:
            qv = self.store.embedder.embed_query(retrieval)
            passages = self._retrieve(q, retrieval, qv, snap, story)
        except StoryIndexError:
            raise
        except Exception as exc:
            log.exception("retrieval failed")
            raise StoreUnavailable("The story index is unavailable right now; try again shortly.") from exc

        resolved = decide.name_forms(q, snap, self.store.embedder)
        if story:
            resolved = decide.within_story(snap, resolved, story)
        named = {story} if story else decide.named_stories(snap, resolved)  # the stories it is about
        if story is None and passages:
            passages = self._pinned(q, retrieval, qv, passages, snap, named)
        if passages:
            passages = self._beside_subject(q, retrieval, qv, passages, snap, resolved, named)
        result = self._extract(q, passages, snap, resolved, retrieval, qv, named)
        answer = Answer(question=q.text, lang=q.lang, note=note, index_version=snap.version.version, **result)
        if self.llm is not None and answer.confidence == "high":
            answer = self._write_with_llm(answer, on_text)
        answer = replace(answer, took_ms=(time.perf_counter() - t0) * 1000)
        return self._record(answer, source, user)

    def _bars(self, snap: Snapshot, lang: str, story_lang: str,
              story: str | None = None) -> tuple[float, float, float, float]:
        """(refusal bar, off-topic bar, answer bar, answer bar without support) for questions in ``lang`` about stories in
        ``story_lang`` on this index version, as calibrated when it was built
        (``index/calibrate.py``; an index built before that is calibrated on first use). A
        language without a bank uses the default language's; with no calibration at all,
        the configured ``min_score`` is the off-topic bar and the answer bar. With
        ``story``, the answer bars are that story's own where they are lower (off-topic
        messages come closer to some story of a large corpus than to the one asked about)."""
        record = self._calibration(snap)
        key = lang if f"bank:{lang}" in record else DEFAULT
        off = float(record.get(f"offtopic:{key}:{story_lang}", self.min_score))
        refuse = min(off, float(record.get(f"refuse:{key}:{story_lang}", off)))
        high = max(off, float(record.get(f"answer:{key}:{story_lang}", off)))
        unsupported = max(high, float(record.get(f"answer_unsupported:{key}:{story_lang}", high)))
        own = snap.derived(f"story_bars:{key}", lambda: story_answer_bars(record, key)).get(story) if story else None
        if own:
            high, unsupported = max(refuse, min(high, own[0])), max(refuse, min(unsupported, own[1]))
        return refuse, off, high, unsupported

    def _calibration(self, snap: Snapshot) -> dict:
        """The calibration record of this index version, read (or made) once per version."""
        def load() -> dict:
            record = bars(self.store, snap.version.version)
            if not record:
                try:
                    record = calibrate(self.store, snap.version.version,
                                       snap.version.sentences or len(snap.ids) * 4, snap.story_langs)
                except Exception:  # a reader that cannot write the record still answers
                    log.warning("could not calibrate index %s", snap.version.version, exc_info=True)
                    record = {}
            return record

        return snap.derived("calibration", load)

    def _like_bank(self, qv, snap: Snapshot) -> bool:
        """Is the question as close to one of the shipped off-topic messages as they are to
        each other (``index.calibrate.bank_neighbour_bar``)? Read only by the rules that need
        it: near the refusal bar, a name hedged for its language, an answer without support."""
        bar = float(self._calibration(snap).get("bank_neighbour", 1.0))
        try:
            bank = bank_matrix(self.store)
        except Exception:  # no bank to compare with: the hedge stands
            log.warning("the off-topic bank could not be read", exc_info=True)
            return False
        return bool(len(bank)) and float((bank @ qv).max()) >= bar

    def _retrieve(self, q: Question, retrieval: str, qv, snap: Snapshot, story: str | None) -> list[Passage]:
        """The passages the answer step reads, best first. Each story's score is taken
        relative to its off-topic median for the question's language (a question scores
        higher against any text in its own language; the median of the shipped off-topic
        bank against those stories measures by how much), and a passage that cannot carry
        the kind of fact asked for moves down (``decide.prefer_carrying``)."""
        refuse = {lang: self._bars(snap, q.lang, lang)[0] for lang in set(snap.story_langs.values())}
        offsets = {sid: refuse[lang] for sid, lang in snap.story_langs.items()}
        found = search(self.store, retrieval, k=CANDIDATES, snapshot=snap, query_vec=qv, story=story,
                       offsets=offsets, lang=q.lang)
        return decide.prefer_carrying(q, found)[:TUNING.candidate_passages]

    def _pinned(self, q: Question, retrieval: str, qv, passages: list[Passage], snap: Snapshot,
                stories: set[str]) -> list[Passage]:
        """Only the passages of the stories the question names (``decide.named_stories``);
        when it names one story and retrieval brought others, that story is searched alone."""
        if not stories or len(stories) == len(snap.story_ids) or all(p.story in stories for p in passages):
            return passages
        if len(stories) == 1:
            kept = self._retrieve(q, retrieval, qv, snap, next(iter(stories)))
        else:
            kept = [p for p in passages if p.story in stories]
        return kept or passages

    def _beside_subject(self, q: Question, retrieval: str, qv, passages: list[Passage], snap: Snapshot,
                        resolved: dict[str, decide.Forms | None], named: set[str]) -> list[Passage]:
        """The passages of the one story a question is about, ranked also by the question
        without that story's subject (the names of its title, ``decide.subject_names``).

        Every passage of a story is about its subject, but few repeat its name, and those
        few (the lead first) draw a question that names it, by the name alone: "how long
        did the Castlebury raid last?" finds the lead that names Castlebury rather than the
        sentence that answers, "The raid lasted four minutes". Each passage is ranked by a
        blend (``TUNING.subject_free_weight``) of its ranking key for the question and for
        the question less the subject's names (one more embedding). Only the order changes:
        the scores the answer bars read are the whole question's. Nothing changes when the
        question names no story's subject, or ``named`` (the stories it is about: its story
        filter, else ``decide.named_stories``) is not that one story, or it is only names,
        or in an index of fewer than ``TUNING.subject_free_min_stories`` stories."""
        if len(snap.story_ids) < TUNING.subject_free_min_stories:
            return passages
        top = passages[0]
        subject = decide.subject_names(resolved, top.title)
        if not subject or named != {top.story} or not (rest := decide.without_names(retrieval, subject)) \
                or len(words(rest)) < 2:
            return passages
        whole = search(self.store, retrieval, k=CANDIDATES, snapshot=snap, query_vec=qv, story=top.story,
                       lang=q.lang)
        free = search(self.store, rest, k=CANDIDATES, snapshot=snap,
                      query_vec=self.store.embedder.embed_query(rest), story=top.story, lang=q.lang)
        if not whole or not free:
            return passages
        w = TUNING.subject_free_weight
        keys = [{p.chunk_id: p.focused for p in found} for found in (whole, free)]
        floors = [min(k.values()) for k in keys]  # a passage one search did not bring: its last
        key = {cid: (1 - w) * keys[0].get(cid, floors[0]) + w * keys[1].get(cid, floors[1])
               for cid in keys[0]}
        ranked = sorted(whole, key=lambda p: (-key[p.chunk_id], p.chunk_id))
        ranked = [replace(p, focused=key[p.chunk_id], rank=n) for n, p in enumerate(ranked, 1)]
        return decide.prefer_carrying(q, ranked)[:TUNING.candidate_passages]

    def _extract(self, q: Question, passages: list[Passage], snap: Snapshot,
                 resolved: dict[str, decide.Forms | None], retrieval: str | None = None, qv=None,
                 named: set[str] | None = None) -> dict:
        """The extractive answer ("high"), the closest passages with a hedge ("low"), or a
        refusal ("none"): returns Answer fields. ``named``: the stories the question is about
        (``decide.named_stories``)."""
        if not passages:
            return self._abstain("off_topic", q, None, snap)
        top = passages[0]
        # an instruction to the bot, a request for its opinion, a poem...; or no word of any
        # language at all ("asdfghjkl")
        if q.request or decide.no_known_word(q, resolved):
            return self._abstain("not_a_question", q, top, snap)
        bars = {p.story: self._bars(snap, q.lang, snap.story_langs.get(p.story, DEFAULT), p.story) for p in passages}
        # a follow-up or a question about a quoted message is supported by what it leans on
        is_supported = decide.supported(replace(q, text=retrieval or q.text), resolved, passages, snap)
        # is the question as close to the shipped off-topic messages as they are to each
        # other? Read at most once, and only by the rules below that need it
        like_bank = functools.cache(lambda: qv is not None and self._like_bank(qv, snap))
        missing = decide.missing_facts(q, snap, resolved)
        # a word of the question's language that stories in another may write their own way
        # ("Norvège" for a story that says "Norway"): the closest passages, hedged, unless
        # another missing fact settles it or the message is of the off-topic bank's kind
        # ("quelle est la capitale de l'Australie ?")
        foreign = decide.other_language_words(q, missing, snap.story_langs)
        if foreign and len(foreign) == len(missing) and not like_bank():
            missing = []
        else:
            foreign = []
        # initials too short to spell out ("au RU ?"): the closest passages, hedged
        initials = decide.short_initials(missing)
        if initials and len(initials) == len(missing):
            missing = []
        if missing:  # about someone or something the stories never mention
            return self._abstain("not_mentioned", q, top, snap, missing=missing)
        # below the refusal bar, with nothing tying it to the stories: refused when it is of
        # the off-topic bank's kind or shares not one keyword with the passages; else hedged
        # like the questions between the two bars: a paraphrase in the story's own language
        # can score that low and share a word or two (index.tuning.Tuning.refuse_quantile)
        if decide.off_topic(passages, {s: b[0] for s, b in bars.items()}, is_supported) and (
                like_bank() or not decide.shares_keywords(snap, retrieval or q.text, passages)):
            return self._abstain("off_topic", q, top, snap)
        # below the off-topic bar but above the refusal bar (or below it, sharing a keyword),
        # with nothing tying it to the stories: perhaps a paraphrase in another language,
        # perhaps chit-chat: hedged
        unsure = decide.off_topic(passages, {s: b[1] for s, b in bars.items()}, is_supported)
        if unsure and like_bank():  # "who won the match?"
            return self._abstain("off_topic", q, top, snap)
        # Past the refusals, the question's words that a passage of another language holds
        # in translation are shared keywords too: a question asked across languages shares
        # none as written, and one that does in translation is a paraphrase, not chit-chat.
        # Not for the refusals: a word's nearest word across languages is often only of its
        # topic, and chit-chat ("a recipe for banana bread") then found support. Round 30,
        # few-story views (1140 answerable, 379 not): answerable high 951 -> 965, nothing
        # else moves; with the refusals too, 966, and 8 off-topic messages hedged, not refused.
        if not is_supported and decide.supported_across(q, passages, snap, functools.cache(
                lambda lang: translated(self.store, snap, retrieval or q.text, lang))):
            is_supported = True
            unsure = decide.off_topic(passages, {s: b[1] for s, b in bars.items()}, is_supported)
        picks = decide.pick_sentences(q, passages, snap, resolved, top_k=self.top_k, embedder=self.store.embedder)
        # the first quote with the sentence after it when that one is nearly as close: read
        # only once every decision on the first sentence is made
        follow = functools.partial(decide.with_next_sentence, q, snap=snap, resolved=resolved)
        if not picks:
            if decide.absent_everywhere(q, passages):  # asks for a fact no passage carries
                return self._abstain("not_in_story", q, top, snap)
            return self._hedge(q, decide.closest(passages, snap), "no sentence carries what is asked")
        # how close the stories come: the best sentence of each candidate against its own
        # story's answer bar (the calibration scores the off-topic bank the same way, story
        # language by story language), whichever passage ranks first
        if unsure or foreign or initials or \
                not decide.clears_a_bar(passages, {s: b[2:] for s, b in bars.items()}, is_supported, like_bank):
            return self._hedge(q, picks, "below the off-topic bar" if unsure else
                               "a word of another language" if foreign else
                               "initials the stories do not write" if initials else "below the answer bar", follow)
        doubt = decide.doubt(q, picks[0], snap, resolved, embedder=self.store.embedder) or (
            "names of different stories" if decide.names_apart(snap, resolved) else None)
        if doubt:  # the best sentence may answer something else than what is asked
            log.debug("hedged (%s): %s", doubt, q.text)
            return self._hedge(q, picks, doubt, follow)
        emb = self.store.embedder
        # a count of another kind of thing, or an amount of another kind than the one asked
        # (a salary, a fare): another cited sentence that gives what is asked comes first;
        # with none, hedge
        for why, other_kind, fits in (("a count of another kind",
                                       lambda s: decide.counts_something_else(q, s, emb),
                                       lambda s: decide.counts_what_is_asked(q, s, emb)),
                                      ("an amount of another kind",
                                       lambda s: decide.prices_something_else(q, s),
                                       lambda s: not decide.prices_something_else(q, s))):
            if other_kind(picks[0].sentence.text):
                moved = decide.fitting_first(picks, fits, q)
                if moved is None:
                    return self._hedge(q, picks, why, follow)
                picks = moved
        # (``named`` holds every story when the question names none: that allows nothing more)
        picks = decide.same_story(picks, named if named and len(named) < len(snap.story_ids) else set())
        citations = [_citation(n, p) for n, p in enumerate([follow(picks[0]), *picks[1:]], 1)]
        best = picks[0].score
        parts = [f"{citations[0].quote} [1]"]
        extra = [c for c, p in zip(citations[1:], picks[1:]) if p.score >= best - TUNING.second_sentence_margin][:1]
        parts += [f"{c.quote} [{c.n}]" for c in extra]
        rest = [f"[{c.n}]" for c in citations[1 + len(extra):]]
        if rest:
            parts.append(prompts.render("see_also", q.lang, refs=", ".join(rest)))
        return {"text": " ".join(parts), "abstained": False, "citations": tuple(citations), "confidence": "high"}

    def _hedge(self, q: Question, picks: list[Pick], why: str, follow=None) -> dict:
        """On topic but below the answer bar, or doubtful (``why``: the rule that decided):
        say so, and quote the closest passages (``follow``: what the first quote becomes,
        ``decide.with_next_sentence``)."""
        picks = picks[:TUNING.hedge_citations]
        if picks and follow:
            picks = [follow(picks[0]), *picks[1:]]
        citations = [_citation(n, p) for n, p in enumerate(picks, 1)]
        if not citations:
            return {"text": prompts.render("not_in_story", q.lang, topic=""), "abstained": True, "citations": (),
                    "why": WHY["not_in_story"]}
        text = prompts.render("low_confidence", q.lang) + " " + " ".join(f"{c.quote} [{c.n}]" for c in citations)
        return {"text": text, "abstained": False, "citations": tuple(citations), "confidence": "low", "why": why}

    def _abstain(self, kind: str, q: Question, top: Passage | None, snap: Snapshot, missing=()) -> dict:
        topic = (top.section or top.title) if top else (snap.metas[0]["title"] if snap.metas else "")
        if kind in ("off_topic", "not_a_question"):
            topic = top.title if top else topic
        values = {"topic": topic}
        if kind == "not_mentioned":
            values["missing"] = _join(missing, q.lang)
        return {"text": prompts.render(kind, q.lang, **values), "abstained": True, "citations": (),
                "closest_topic": topic, "why": WHY[kind]}

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
        # only the passages the written answer cites are shown, renumbered in order of use
        from bot.llm import renumber

        kept = tuple(replace(answer.citations[old - 1], n=new) for new, old in enumerate(result.cited, 1))
        return replace(answer, text=renumber(result.text, result.cited), citations=kept, mode="llm")

    def _record(self, answer: Answer, source: str, user: str | None = None) -> Answer:
        try:
            answer_log = self.answer_log  # opened here the first time (an OSError is logged below)
            if not answer_log:
                return answer
            rid = answer_log.record(
                question=answer.question, abstained=answer.abstained,
                citations=[c.chunk_id for c in answer.citations], took_ms=answer.took_ms,
                index_version=answer.index_version, mode=answer.mode, source=source, user=user,
                confidence=answer.confidence, why=answer.why)
        except Exception:  # the log must never cost the user their answer
            log.exception("could not write the answer log")
            return answer
        return replace(answer, answer_id=rid)


def _citation(n: int, pick: Pick) -> Citation:
    p, s = pick.passage, pick.sentence
    return Citation(n=n, quote=s.text, passage=p.text, story=p.story, title=p.title, section=p.section,
                    start=s.start, end=s.end, score=pick.score, dense=s.dense, keyword=p.keyword,
                    chunk_id=p.chunk_id, outlet=p.outlet, date=p.date, url=p.url)


def is_follow_up(text: str) -> bool:
    """A question that leans on the previous one: "and Tencent?", "what about DeepSeek?",
    or one of very few words ("why?")."""
    return decide.is_follow_up(text)


def _join(items, lang: str) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    word = " et " if lang == "fr" else " and "
    return ", ".join(items[:-1]) + word + items[-1]


def _join_notes(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return " ".join(kept) if kept else None
