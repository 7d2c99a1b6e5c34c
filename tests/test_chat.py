"""The chat layer's policy, told the same through both platforms.

One table of scenarios (rate limit, follow-up, repeated event, a second refresh while one
runs, vote, core error, a French asker) runs through the real Discord client against the
fake Discord AND the real Bolt app against the fake Slack, and expects the same outcomes.
A driver per platform says how a person asks, follows up, refreshes and votes there, and
reads back what that person saw. Then, with the real ``Answerer``: someone else's mention,
a channel link, a role mention or a custom emoji in a question change nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fake_slack import BOT_TOKEN, FakeSlack, block_action, mention, message
from pydantic import SecretStr

from bot.chat import ChatSession
from bot.config import load_settings
from bot.discord_app import StoryBotClient
from bot.errors import StoreUnavailable
from bot.slack_app import build_app
from tests.conftest import STORIES
from tests.fake_discord import CHANNEL_ID, MEMBER, THREAD_ID, FakeDiscord, user
from tests.fakes import TEXT, FakeCore, cited
from tests.test_discord_app import TOKEN, callback_of, original_edit_of, reply_in, sent_message, stop
from tests.test_slack_app import APP_TOKEN, SIGNING_SECRET, push_command, push_event, socket_mode

PEOPLE = {"ann": 1000000000000000011, "ben": 1000000000000000012, "admin": 1000000000000000013}


def text(name: str, lang: str = "en", **values: Any) -> str:
    return ChatSession.text(name, lang, **values)


# --- drivers: how a person uses each platform --------------------------------------------------


class DiscordDriver:
    """People talk to the bot in a thread: a mention starts a conversation, a plain message in
    the thread follows up; /refresh is a slash command; votes are button clicks."""

    def __init__(self, fake: FakeDiscord):
        self.fake, self.last = fake, None
        self.channel: int | None = THREAD_ID  # None: each question is a mention in the main channel
        self.answers: list[dict] = []  # the bot's answer messages, as the fake stored them

    async def _say(self, question: str, who: str, mention_bot: bool) -> str:
        author = user(PEOPLE[who], who)
        channel = self.channel or CHANNEL_ID
        self.last = self.fake.user_message(question, author=author, channel_id=channel, mention_bot=mention_bot)
        await self.fake.dispatch("MESSAGE_CREATE", self.last)
        reply = await self.fake.wait_for(reply_in(channel, self.last), timeout=60)
        if reply.custom_ids:
            self.answers.append(sent_message(self.fake, reply))
        return reply.content

    async def ask(self, question: str, who: str = "ann") -> str:
        return await self._say(question, who, mention_bot=True)

    async def follow_up(self, question: str, who: str = "ben") -> str:
        return await self._say(question, who, mention_bot=False)

    async def repeat_last(self) -> None:
        assert self.last is not None
        await self.fake.dispatch("MESSAGE_CREATE", self.last)

    async def start_refresh(self, who: str = "admin") -> Callable[[], Any]:
        payload = self.fake.slash("refresh", user=user(PEOPLE[who], who), permissions=MEMBER)
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        first = (await self.fake.wait_for(callback_of(payload))).content

        async def outcome() -> list[str]:
            if first != text("refresh_started"):
                return [first]
            return [first, (await self.fake.wait_for(original_edit_of(payload))).content]
        return outcome

    async def vote(self, up: bool, who: str = "ben") -> str:
        answer = self.answers[-1]
        custom_id = next(c["custom_id"] for row in answer["components"] for c in row["components"]
                         if c["custom_id"].startswith(f"storybot:vote:{'up' if up else 'down'}:"))
        payload = self.fake.click(answer, custom_id, user=user(PEOPLE[who], who))
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        return (await self.fake.wait_for(original_edit_of(payload))).content


class SlackDriver:
    """People talk to the bot in a channel thread: a mention starts it, a plain reply in the
    thread follows up; /refresh is a slash command; votes are button clicks. (The fake Slack
    is threaded: its waits run in worker threads, off the test's loop.)"""

    def __init__(self, fake: FakeSlack):
        self.fake, self.last, self.thread = fake, None, ""
        self._ts = itertools.count(1)
        self.answers: list[Any] = []
        self.read: set[int] = set()  # indices of the fake's calls already read as replies

    async def _say(self, event: dict) -> str:
        self.last = event
        await asyncio.to_thread(push_event, self.fake, event)

        def reply() -> Any:  # the first message in the thread, or note to the asker, not read yet
            return next((c for i, c in enumerate(self.fake.calls) if i not in self.read
                         and c.params.get("thread_ts") == self.thread
                         and c.method in ("chat.postMessage", "chat.postEphemeral")
                         and c.params.get("user", event["user"]) == event["user"]), None)

        call = await asyncio.to_thread(self.fake.wait_for, reply, f"a reply to {event['text']!r}")
        self.read.add(self.fake.calls.index(call))
        if any(b["type"] == "actions" for b in call.blocks):
            self.answers.append(call)
        return " ".join(call.texts("section")) or call.text

    async def ask(self, question: str, who: str = "ann") -> str:
        self.thread = f"500.{next(self._ts):06d}"
        return await self._say(mention(question, user=who.upper(), ts=self.thread))

    async def follow_up(self, question: str, who: str = "ben") -> str:
        ts = f"500.{next(self._ts):06d}"
        return await self._say(message(question, user=who.upper(), ts=ts, thread_ts=self.thread))

    async def repeat_last(self) -> None:
        assert self.last is not None
        await asyncio.to_thread(push_event, self.fake, self.last, retry_attempt=1, retry_reason="timeout")

    async def start_refresh(self, who: str = "admin") -> Callable[[], Any]:
        name = f"refresh{next(self._ts)}"
        await asyncio.to_thread(push_command, self.fake, "/refresh", "", user=who.upper(), reply_to=name)
        [first] = await asyncio.to_thread(self.fake.wait_responses, name)

        async def outcome() -> list[str]:
            if first.params["text"] != text("refresh_started"):
                return [first.params["text"]]
            return [c.params["text"] for c in await asyncio.to_thread(self.fake.wait_responses, name, 2)]
        return outcome

    async def vote(self, up: bool, who: str = "ben") -> str:
        name, post = f"vote{next(self._ts)}", self.answers[-1]
        updates = len(self.fake.calls_to("chat.update", ts=post.response["ts"]))
        payload = block_action("vote_up" if up else "vote_down", user=who.upper(), posted=post,
                               response_url=self.fake.response_url(name))
        await asyncio.to_thread(self.fake.wait_ack, self.fake.push("interactive", payload))

        def note() -> str | None:
            if responses := self.fake.responses(name):
                return responses[-1].params["text"]
            calls = self.fake.calls_to("chat.update", ts=post.response["ts"])
            return calls[-1].texts("context")[-1] if len(calls) > updates else None
        return await asyncio.to_thread(self.fake.wait_for, note, "the vote's note")


@contextlib.asynccontextmanager
async def discord_bot(core: Any, tmp_path, **overrides: Any) -> AsyncIterator[DiscordDriver]:
    fake = FakeDiscord(token=TOKEN)
    await fake.start()
    settings = load_settings(data_dir=tmp_path / "data", stories_dir=STORIES, discord_api_base=fake.api_base,
                             discord_gateway_url=fake.gateway_url, admins=[str(PEOPLE["admin"])],
                             **{"rate": "0", **overrides})
    client = StoryBotClient(core, settings)
    try:
        async with client:
            running = asyncio.create_task(client.start(TOKEN))
            await fake.wait_for_session(1)
            yield DiscordDriver(fake)
            await stop(client, running)
    finally:
        await fake.close()


@contextlib.asynccontextmanager
async def slack_bot(core: Any, tmp_path, **overrides: Any) -> AsyncIterator[SlackDriver]:
    with FakeSlack(users={"ANN": {}, "BEN": {}}) as fake:
        settings = load_settings(data_dir=tmp_path / "data", stories_dir=STORIES, slack_api_url=fake.api_url,
                                 slack_admins=["ADMIN"], **{"rate": "0", **overrides})
        settings = settings.model_copy(update={"slack_bot_token": SecretStr(BOT_TOKEN),
                                               "slack_app_token": SecretStr(APP_TOKEN),
                                               "slack_signing_secret": SecretStr(SIGNING_SECRET)})
        manager = socket_mode(build_app(core, settings), fake)
        await asyncio.to_thread(manager.__enter__)
        try:
            yield SlackDriver(fake)
        finally:
            await asyncio.to_thread(manager.__exit__, None, None, None)


BOTS = {"discord": discord_bot, "slack": slack_bot}


# --- the scenarios -----------------------------------------------------------------------------


async def rate_limit(bot, core):
    seen = [await bot.ask("why not Baidu?"), await bot.ask("and Tencent?"), await bot.ask("why Alibaba?", "ben")]
    return {"seen": seen, "asked": [a.question for a in core.asked]}


async def follow_up(bot, core):
    await bot.ask("why not Baidu?")
    await bot.follow_up("and Tencent?")
    return {"asked": [(a.question, a.context) for a in core.asked]}


async def repeated_event(bot, core):
    await bot.ask("why not Baidu?")
    await bot.repeat_last()
    await bot.follow_up("sentinel?")  # handled after any wrongly repeated work would have started
    return {"asked": [a.question for a in core.asked]}


async def second_refresh(bot, core):
    core.refresh_gate = threading.Event()
    first = await bot.start_refresh()
    second = await (await bot.start_refresh())()
    answered = await bot.ask("why not Baidu?")  # questions are still answered meanwhile
    core.refresh_gate.set()
    return {"first": await first(), "second": second, "answered": answered, "refreshes": core.refreshes}


async def vote(bot, core):
    await bot.ask("why not Baidu?")
    notes = [await bot.vote(True), await bot.vote(False)]
    core.replies["gone?"] = cited("gone?", answer_id=404)  # an answer the log no longer has
    await bot.ask("gone?")
    notes.append(await bot.vote(True))
    return {"notes": notes, "votes": [(answer_id, value) for answer_id, _, value in core.votes]}


async def core_error(bot, core):
    core.replies.update({"boom?": RuntimeError("kaput"), "down?": StoreUnavailable("The index is down.")})
    return {"seen": [await bot.ask("boom?"), await bot.ask("down?"), await bot.ask("why not Baidu?")]}


async def french_asker(bot, core):
    seen = [await bot.ask("Pourquoi Apple a-t-elle choisi Alibaba ?"), await bot.vote(True, "ann"),
            await bot.ask("Et Tencent ?")]
    return {"seen": seen}


SCENARIOS = [
    ("rate limit", {"rate": "2/3600"}, rate_limit,
     {"seen": [TEXT, TEXT, TEXT], "asked": ["why not Baidu?", "and Tencent?", "why Alibaba?"]}),
    ("rate limit hit", {"rate": "1/3600"}, rate_limit,
     {"seen": [TEXT, text("rate_limited", seconds=3600), TEXT], "asked": ["why not Baidu?", "why Alibaba?"]}),
    ("follow-up", {}, follow_up, {"asked": [("why not Baidu?", None), ("and Tencent?", "why not Baidu?")]}),
    ("repeated event", {}, repeated_event, {"asked": ["why not Baidu?", "sentinel?"]}),
    ("second refresh", {}, second_refresh,
     {"first": [text("refresh_started"), FakeCore.REPORT.summary()], "second": [text("refresh_running")],
      "answered": TEXT, "refreshes": 1}),
    ("vote", {}, vote, {"notes": [text("voted", vote="👍"), text("voted", vote="👎"), text("vote_lost")],
                        "votes": [(1, 1), (1, -1), (404, 1)]}),
    ("core error", {}, core_error, {"seen": [text("apology"), "The index is down.", TEXT]}),
    ("French asker", {"rate": "1/3600"}, french_asker,
     {"seen": [TEXT, text("voted", "fr", vote="👍"), text("rate_limited", "fr", seconds=3600)]}),
]


@pytest.mark.parametrize("platform", BOTS)
@pytest.mark.parametrize("overrides, scenario, expected", [row[1:] for row in SCENARIOS],
                         ids=[row[0] for row in SCENARIOS])
async def test_the_same_scenario_has_the_same_outcome_on_both_platforms(platform, overrides, scenario, expected,
                                                                         tmp_path):
    core = FakeCore()
    async with BOTS[platform](core, tmp_path, **overrides) as bot:
        assert await scenario(bot, core) == expected


# --- chat markup is not question text (the real core) -------------------------------------------

# Someone else's mention, a channel link, a role (or user group) mention, a custom emoji.
MARKUP = {"discord": ["cc <@123456789012345678>", "see <#1200000000000000002>", "<@&1234567890123456789> fyi",
                      "<:hmm:1234567890123456789>"],
          "slack": ["cc <@U0ALICE>", "see <#C024BE91L|general>", "<!subteam^S0READERS|@readers> fyi",
                    ":thinking_face:"]}


@pytest.mark.parametrize("platform", BOTS)
async def test_markup_in_a_question_changes_nothing_in_the_answer(platform, shared_answerer, tmp_path):
    async with BOTS[platform](shared_answerer, tmp_path) as bot:
        bot.channel = None  # a new conversation each time: no follow-up context
        plain = await bot.ask("why not Baidu?")
        with_markup = [await bot.ask(f"why not Baidu? {extra}") for extra in MARKUP[platform]]
    assert "[1]" in plain
    assert with_markup == [plain] * len(MARKUP[platform])


# --- the session's own rules ---------------------------------------------------------------------


def test_the_language_is_the_last_questions_else_the_locale_else_english():
    chat = ChatSession(FakeCore(), platform="test")
    assert chat.lang("u1") == "en"
    assert chat.lang("u1", locale="fr") == chat.lang("u2", locale="fr-FR") == "fr"
    assert chat.lang("u3", locale="de-DE") == "en"  # no prompts in German: English
    assert chat.lang("u1", locale="fr", question="why not Baidu?") == "en"  # the question wins
    assert chat.lang("u1", locale="fr") == "en"  # ... and is remembered as the asker's
    assert chat.lang("u1", question="Pourquoi pas Baidu ?") == "fr"
    assert chat.lang("u1", question="<@123> :hmm:") == "fr"  # markup alone says nothing


async def test_the_session_reads_each_question_once(monkeypatch):
    """One reading of a question gives both its language and whether a follow-up may lean on
    it (worth_remembering analysed it a second time, after the language was detected)."""
    import bot.chat
    from bot.chat import BaseDestination

    readings: list[str] = []

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def reading(*args: Any, **kwargs: Any) -> Any:
            readings.append(real.__name__)
            return real(*args, **kwargs)
        return reading

    monkeypatch.setattr(bot.chat, "analyse", counting(bot.chat.analyse))
    monkeypatch.setattr(bot.chat, "detect_lang", counting(bot.chat.detect_lang))

    class Outbox(BaseDestination):
        def __init__(self) -> None:
            self.sent: list[Any] = []

        async def send(self, reply: Any, *, private: bool = False) -> list[str]:
            self.sent.append(reply)
            return []

    chat, dest = ChatSession(FakeCore(), platform="test"), Outbox()
    await chat.ask(dest, "Pourquoi pas Baidu ?", user="u1", keys=["thread"])
    assert readings == ["analyse"] and dest.lang == "fr"
    assert chat.context(["thread"]) == "Pourquoi pas Baidu ?" and dest.sent[0].citations
    await chat.ask(dest, "merci !", user="u1", keys=["thread"])  # small talk: not remembered
    assert readings == ["analyse", "analyse"] and chat.context(["thread"]) == "Pourquoi pas Baidu ?"


def test_every_chat_text_exists_in_every_language_with_the_same_blanks():
    import re
    from pathlib import Path

    import prompts

    names = {p.stem for p in Path(prompts.HERE, "en").glob("chat_*.txt")}
    assert names and names == {p.stem for p in Path(prompts.HERE, "fr").glob("chat_*.txt")}
    for name in names:
        blanks = {lang: set(re.findall(r"\$\{(\w+)\}", Path(prompts.HERE, lang, f"{name}.txt").read_text()))
                  for lang in prompts.LANGS}
        assert blanks["en"] == blanks["fr"], name
