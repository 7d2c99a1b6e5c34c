"""``FakeCore``: a small deterministic implementation of ``bot.chat.Core`` for the chat
adapters' tests (the real ``Answerer`` has its own end-to-end tests through both adapters)."""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from bot.errors import RefreshInProgress
from bot.question import detect_lang
from bot.types import Answer, Citation
from tests.conftest import Asked

TITLE = "Apple s’associe à Alibaba pour développer l’IA sur iPhone en Chine"
SECTION = "Pourquoi Apple s’est-elle tournée vers Alibaba après les déboires de Baidu ?"
QUOTE = "Les premières discussions avec Baidu ont échoué"
TEXT = "Baidu's models fell short [1]."
WAIT = 10.0  # seconds a gate may stay closed before the fake gives up
T = TypeVar("T")


def cited(question: str, *, answer_id: int | None = None, text: str = TEXT, quotes: tuple[str, ...] = (QUOTE,),
          confidence: str = "high") -> Answer:
    """An answer citing ``quotes`` from the shipped story, in the question's language."""
    citations = tuple(Citation(n=n, quote=q, passage=q, story="apple-alibaba-ia-iphone-chine.fr", title=TITLE,
                               section=SECTION, start=0, end=len(q), score=0.9)
                      for n, q in enumerate(quotes, 1))
    return Answer(question=question, text=text, abstained=False, citations=citations, answer_id=answer_id,
                  lang=detect_lang(question), confidence=confidence)


@dataclass(frozen=True)
class Report:
    added: int = 2

    def summary(self) -> str:
        return f"Refreshed: {self.added} chunks added, 0 changed, 0 removed."


class FakeCore:
    """A deterministic core.

    ``answer``: the reply set in ``replies`` for the question (an Answer, or an exception to
    raise), else a cited answer; every call is recorded in ``asked`` and gets the next
    answer id. A question in ``streams`` first streams those texts through ``on_text`` (then
    waits on ``stream_gate`` when set), as the LLM writer does.
    ``refresh``: counts, raises ``refresh_error`` when set, waits on ``refresh_gate`` when
    set, raises ``RefreshInProgress`` when one is already running.
    ``vote``: recorded in ``votes``; False for an answer id never issued.
    """

    REPORT = Report()

    def __init__(self, story_ids: tuple[str, ...] = ("apple-alibaba-ia-iphone-chine.fr",)):
        self.replies: dict[str, Answer | Exception] = {}
        self.streams: dict[str, tuple[str, ...]] = {}
        self.stream_gate: threading.Event | None = None
        self.asked: list[Asked] = []
        self.votes: list[tuple[int, str, int]] = []
        self.refreshes = 0
        self.refresh_gate: threading.Event | None = None
        self.refresh_error: Exception | None = None
        self.refresh_started = threading.Event()
        self.ids = list(story_ids)
        self._running = False
        self._issued: set[int] = set()
        self._next_id = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def refreshing(self) -> bool:
        return self._running

    def answer(self, question: str, *, context: str | None = None, source: str = "cli", user: str | None = None,
               story: str | None = None, on_text: Callable[[str], None] | None = None) -> Answer:
        with self._lock:
            self.asked.append(Asked(question, context, source, user))
            answer_id = next(self._next_id)
            self._issued.add(answer_id)
        for text in self.streams.get(question, ()):
            assert on_text is not None, "the adapter must pass on_text"
            on_text(text)
        if question in self.streams and self.stream_gate is not None:
            assert self.stream_gate.wait(WAIT), "the test never let the answer finish"
        reply = self.replies.get(question) or cited(question, answer_id=answer_id)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def refresh(self) -> Report:
        with self._lock:
            if self._running:
                raise RefreshInProgress("A refresh is already running.")
            self._running = True
            self.refreshes += 1
        self.refresh_started.set()
        try:
            if self.refresh_error is not None:
                raise self.refresh_error
            if self.refresh_gate is not None:
                assert self.refresh_gate.wait(WAIT), "the test never let the refresh finish"
            return self.REPORT
        finally:
            self._running = False

    def vote(self, answer_id: int, user: str, value: int) -> bool:
        self.votes.append((answer_id, user, value))
        return answer_id in self._issued

    def story_ids(self) -> list[str]:
        return sorted(self.ids)


class LoopThread:
    """An asyncio event loop on its own thread, for running an async bot under synchronous
    tests (which wait on a threaded fake): ``with LoopThread() as loop: loop.run(coro)``."""

    def __enter__(self) -> Self:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        async def cancel_the_rest() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``storybot ARGS`` in a subprocess of this checkout, with ``env`` added to the environment."""
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)
