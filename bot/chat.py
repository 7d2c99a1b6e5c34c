"""The chat layer both chat adapters share: one policy for Discord and Slack.

An adapter turns a platform event into a call on :class:`ChatSession` (``ask``, ``refresh``,
``vote``) together with a :class:`Destination`, its own small object that knows how to show,
send and edit on that platform. Everything else lives here, once: the per-user rate limit,
follow-up memory, skipping events delivered twice, the one-refresh-at-a-time rule, vote
replies, turning a failure into a message (and a log line), and the language of every text
the bot says (all of them are templates in ``prompts/{en,fr}/chat_*.txt``).

Chat map::

    Discord event -> discord_app --+                     +-> Core.answer / refresh / vote
                                   +-> ChatSession ------+   (bot.answer.Answerer, blocking,
    Slack event ---> slack_app ----+   policy and texts  |    run in a worker thread)
                                                          |
    Destination.show / send / edit <---------------------+   render: discord_render, slack_blocks
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import aiohttp

import prompts
from bot.errors import RateLimited, RefreshInProgress, StorybotError, StoryIndexError
from bot.markup import plain
from bot.question import Question, analyse, detect_lang
from bot.ratelimit import RateLimiter
from bot.recent import Recent
from bot.types import Answer

log = logging.getLogger(__name__)

REMEMBERED = 10_000  # conversations, event ids and askers' languages kept in memory, each
MAX_CHOICES = 25  # Discord's limit on autocomplete choices


class PlatformUnreachable(StorybotError):
    """A chat platform's API did not answer at start-up (the message names which, and where)."""


class Undeliverable(Exception):
    """A destination could not take the answer and has told the asker why: stop quietly."""


class Report(Protocol):
    def summary(self) -> str: ...


class Core(Protocol):
    """What the adapters call on the answering core (``bot.answer.Answerer``). Blocking:
    the session runs each call in a worker thread."""

    @property
    def refreshing(self) -> bool: ...

    def answer(self, question: str, *, context: str | None = None, source: str = "cli",
               user: str | None = None, story: str | None = None,
               on_text: Callable[[str], None] | None = None) -> Answer: ...

    def refresh(self) -> Report: ...

    def vote(self, answer_id: int, user: str, value: int) -> bool: ...

    def story_ids(self) -> list[str]: ...


class Destination(Protocol):
    """Where one exchange goes, as a platform shows it, in ``lang`` (the asker's language, which
    the session sets before it uses the destination).

    ``working()`` surrounds the slow part (Discord's "thinking", Slack's hourglass); it may
    raise :class:`Undeliverable`. ``show(text)`` shows an answer still being written (a
    streamed LLM answer); ``send(reply, private=)`` sends the final answer (replacing what
    ``show`` showed) or a short text, and returns the keys of the messages it sent (for
    follow-ups); ``edit(text)`` replaces the last text the asker was shown (a refresh's
    report, a vote's note). ``threads()`` are the keys known once ``working()`` has begun
    (Slack's status message starts a thread before the answer is written).
    """

    lang: str

    def working(self) -> AbstractAsyncContextManager[None]: ...

    async def show(self, text: str) -> None: ...

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]: ...

    async def edit(self, text: str) -> None: ...

    def threads(self) -> Sequence[Hashable]: ...


class BaseDestination:
    """Defaults for a :class:`Destination`: no sign of work, no streaming, and ``edit``
    sends a new private note."""

    lang = "en"

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        yield

    async def show(self, text: str) -> None:
        raise NotImplementedError("this destination takes no streamed answer")

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        raise NotImplementedError

    async def edit(self, text: str) -> None:
        await self.send(text, private=True)

    def threads(self) -> Sequence[Hashable]:
        return ()


@contextlib.contextmanager
def reaching(what: str, url: str, setting: str) -> Iterator[None]:
    """At start-up, a platform API that does not answer is one sentence: ``PlatformUnreachable``."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError, OSError):
        raise PlatformUnreachable(prompts.render("setup_unreachable", what=what, url=url,
                                                 setting=setting)) from None


def language(locale: str | None) -> str | None:
    """A platform locale ("fr", "fr-FR", "en_US") as one of the prompt languages, or None."""
    code = (locale or "").replace("_", "-").split("-")[0].lower()
    return code if code in prompts.LANGS else None


def read(question: str) -> Question:
    """A chat message as the chat layer reads it, once: its words without chat markup,
    analysed (its language, and whether it asks anything; ``bot.question.analyse``)."""
    return analyse(plain(question), max(1, len(question)))


def worth_remembering(q: Question) -> bool:
    """Is this (``read``) a question a follow-up can lean on? Not when nothing is left of it
    once chat markup is gone (an image alone, "cc @alice"), nor small talk ("thanks!")."""
    return not q.empty and q.request != "smalltalk"


class ChatSession:
    """The chat policy of one bot process over one :class:`Core` (see the module docstring).

    State is in memory and bounded (:class:`bot.recent.Recent`): each replica keeps its own.
    """

    def __init__(self, core: Core, *, platform: str, admins: Iterable[str] = (),
                 rate: tuple[int, float] = (0, 0.0)):
        self.core, self.platform, self.admins = core, platform, frozenset(admins)
        self.limiter = RateLimiter(*rate)
        self.conversations = Recent(REMEMBERED)  # message, thread or DM key -> last question there
        self._seen = Recent(REMEMBERED)
        self._langs = Recent(REMEMBERED)  # user -> language of their last question
        self._refreshing = False

    # --- small policies --------------------------------------------------------------------

    def first_sighting(self, event_id: Hashable) -> bool:
        """True the first time ``event_id`` is seen: a platform may deliver an event twice
        (a Discord resume, a Slack retry); the copy must not be answered again."""
        if self._seen.add(event_id):
            return True
        log.info("%s: ignoring repeated event %s", self.platform, event_id)
        return False

    def lang(self, user: str, locale: str | None = None, question: str | Question | None = None) -> str:
        """The asker's language: that of ``question`` (remembered as theirs), else of their
        last question, else the platform ``locale``, else English. ``question`` is the
        message, or its reading (``read``) when there is one already."""
        if isinstance(question, Question):
            if not question.empty:
                self._langs.put(user, question.lang)
        elif question and (words := plain(question)):
            self._langs.put(user, detect_lang(words))
        return self._langs.get(user) or language(locale) or "en"

    @staticmethod
    def text(name: str, lang: str, **values: object) -> str:
        """The chat text ``prompts/<lang>/chat_<name>.txt``, filled in."""
        return prompts.render(f"chat_{name}", lang, **values)

    def context(self, keys: Iterable[Hashable | None]) -> str | None:
        """The question last answered under the first of ``keys`` that has one."""
        return next((q for key in keys if (q := self.conversations.get(key))), None)

    def failure(self, exc: BaseException, lang: str) -> str:
        """The text for a failed call into the core. Our own errors are expected conditions
        (index unavailable, ...) with safe messages, logged briefly; anything else is logged
        with its trace and answered with an apology."""
        if isinstance(exc, (StorybotError, StoryIndexError)):
            log.warning("%s: %s: %s", self.platform, type(exc).__name__, exc)
            return str(exc)
        log.error("%s: the answering core failed", self.platform, exc_info=exc)
        return self.text("apology", lang)

    def rate_note(self, user: str, lang: str) -> str | None:
        """None when ``user`` may ask now, else the polite note saying how long to wait."""
        try:
            self.limiter.check(user)
        except RateLimited as exc:
            return self.text("rate_limited", lang, seconds=max(1, round(exc.retry_after)))
        return None

    # --- flows -------------------------------------------------------------------------------

    async def ask(self, dest: Destination, question: str, *, user: str, locale: str | None = None,
                  keys: Sequence[Hashable] = (), context_keys: Sequence[Hashable | None] = (),
                  story: str | None = None) -> None:
        """Answer ``question`` from ``user`` in ``dest``.

        The previous question under the first of ``context_keys`` is the context (a
        follow-up). ``keys`` (a thread, a DM) and the messages sent are remembered with this
        question, before the answer shows, so a follow-up sent as soon as it does is known.
        """
        reading = read(question)  # its language and whether it is worth remembering, at once
        lang = dest.lang = self.lang(user, locale, reading)
        if note := self.rate_note(user, lang):
            await dest.send(note, private=True)
            return
        context = self.context(context_keys)
        # a picture with no text, "thanks!" or "cc @alice" answers nothing a follow-up can
        # lean on: the conversation keeps its last question
        remember = worth_remembering(reading)
        for key in keys if remember else ():
            self.conversations.put(key, question)
        try:
            async with dest.working():
                # A follow-up in a thread the work started (Slack's /ask status) may come
                # before the answer does.
                for key in dest.threads() if remember else ():
                    self.conversations.put(key, question)
                try:
                    answer = await self._answer(dest, question, context, user, story)
                except Exception as exc:  # noqa: BLE001 (any failure gets a message, never silence)
                    await dest.send(self.failure(exc, lang))
                    return
                sent = await dest.send(answer)
        except Undeliverable:
            return
        for key in sent if remember else ():
            self.conversations.put(key, question)

    async def _answer(self, dest: Destination, question: str, context: str | None, user: str,
                      story: str | None) -> Answer:
        """The core's answer, from a worker thread; a streamed LLM answer is shown in ``dest``
        as it grows, and every such edit lands before this returns."""
        loop, order = asyncio.get_running_loop(), asyncio.Lock()  # edits land in the order the text grew
        shown: list[concurrent.futures.Future[None]] = []

        async def show(text: str) -> None:
            async with order:
                await dest.show(text)

        def on_text(text: str) -> None:  # in the worker thread, at most about once a second
            shown.append(asyncio.run_coroutine_threadsafe(show(text), loop))

        try:
            return await asyncio.to_thread(self.core.answer, question, context=context, source=self.platform,
                                           user=user, story=story, on_text=on_text)
        finally:
            for outcome in await asyncio.gather(*map(asyncio.wrap_future, shown), return_exceptions=True):
                if isinstance(outcome, Exception):  # only a glimpse is lost: the answer follows
                    log.warning("%s: could not show the answer being written: %s", self.platform, outcome)

    async def refresh(self, dest: Destination, *, user: str, locale: str | None = None,
                      platform_admin: Callable[[], Awaitable[bool]]) -> None:
        """``/refresh``: for admins (listed, or ``platform_admin()``), one at a time; every
        reply is private, and the report replaces the "started" note."""
        lang = dest.lang = self.lang(user, locale)
        try:
            allowed = user in self.admins or await platform_admin()
        except Exception as exc:  # noqa: BLE001 (a failed permission lookup is told, not swallowed)
            await dest.send(self.failure(exc, lang), private=True)
            return
        if not allowed:
            await dest.send(self.text("refresh_refused", lang), private=True)
            return
        if self._refreshing or self.core.refreshing:
            await dest.send(self.text("refresh_running", lang), private=True)
            return
        self._refreshing = True  # set before the first await: a second /refresh sees it
        try:
            await dest.send(self.text("refresh_started", lang), private=True)
            try:
                report = await asyncio.to_thread(self.core.refresh)
            except RefreshInProgress as exc:  # another process (or replica) is refreshing
                # its report goes to whoever asked there: say when to try again instead
                minutes = None if exc.retry_after is None else max(1, math.ceil(exc.retry_after / 60))
                await dest.edit(self.text("refresh_running", lang) if minutes is None else
                                self.text("refresh_elsewhere", lang, minutes=minutes))
            except Exception as exc:  # noqa: BLE001 (the admin is told what went wrong)
                await dest.edit(self.failure(exc, lang))
            else:
                await dest.edit(report.summary())
        finally:
            self._refreshing = False

    async def vote(self, dest: Destination, *, user: str, answer_id: int, value: int,
                   locale: str | None = None) -> None:
        """A 👍 (+1) or 👎 (-1) on an answer: one per user, changeable. A recorded vote is
        confirmed with ``edit``; an unknown answer or a failure is told privately."""
        lang = dest.lang = self.lang(user, locale)
        try:
            known = await asyncio.to_thread(self.core.vote, answer_id, user, value)
        except Exception as exc:  # noqa: BLE001
            await dest.send(self.failure(exc, lang), private=True)
            return
        if known:
            await dest.edit(self.text("voted", lang, vote="👍" if value > 0 else "👎"))
        else:
            await dest.send(self.text("vote_lost", lang), private=True)

    async def story_choices(self, typed: str) -> list[str]:
        """Story ids containing ``typed`` (case-insensitive), for autocomplete; none when the
        index cannot be read (autocomplete must never fail loudly)."""
        try:
            ids = await asyncio.to_thread(self.core.story_ids)
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: story ids unavailable for autocomplete: %s", self.platform, exc)
            return []
        typed = typed.strip().lower()
        return [i for i in ids if typed in i.lower()][:MAX_CHOICES]
