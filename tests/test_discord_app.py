"""End-to-end tests of the Discord adapter: the real discord.py client (``StoryBotClient``)
runs against a fake Discord on 127.0.0.1 (``tests/fake_discord.py``) through the
``DISCORD_API_BASE`` / ``DISCORD_GATEWAY_URL`` settings. Assertions are on the REST calls the
fake recorded. The core is a scripted ``Answerer`` subclass, and once the real one."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest

from bot.answer import Answerer
from bot.chat import ChatSession
from bot.config import load_settings
from bot.discord_app import StoryBotClient, run_discord
from bot.discord_render import (
    CONTENT_LIMIT,
    EMBED_DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    escape,
    provisional,
    render,
)
from bot.errors import ConfigError, RefreshInProgress, StoreUnavailable
from bot.recent import Recent
from bot.types import Answer, Citation
from tests.conftest import STORIES, Asked
from tests.fake_discord import (
    APP_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    MANAGER,
    MEMBER,
    THREAD_ID,
    Call,
    FakeDiscord,
    user,
)
from tests.fakes import QUOTE, FakeCore, Report, cited, closed_port, run_cli

# Shaped like a real bot token: base64 of the bot's id, a timestamp part, a signature part.
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GxY2aB.fake-signature-for-tests-0123"
ALICE = user(1000000000000000001, "alice")  # a server manager
BOB = user(1000000000000000002, "bob")  # a plain member
CAROL = user(1000000000000000003, "carol")  # listed in STORYBOT_ADMINS
WAIT = 10.0  # seconds any one expected REST call may take to arrive

APOLOGY = ChatSession.text("apology", "en")
NOT_ALLOWED = ChatSession.text("refresh_refused", "en")
ALREADY_REFRESHING = ChatSession.text("refresh_running", "en")
REFRESHING = ChatSession.text("refresh_started", "en")
INDEX_DOWN = "The story index is unavailable right now; please try again later."


def long_answer(question: str, answer_id: int) -> Answer:
    """5,000+ characters of text and twelve citations, one of them longer than an embed."""
    text = " ".join(f"word{i:04d} [{i % 12 + 1}]" if i % 40 == 0 else f"word{i:04d}" for i in range(600))
    citations = tuple(
        Citation(n=n, quote=" ".join(f"q{n:02d}w{i:04d}" for i in range(900 if n == 1 else 90)), passage="…",
                 story="s", title=f"Story {n}", section=f"Section {n}", start=0, end=1, score=0.5)
        for n in range(1, 13)
    )
    return Answer(question, text, abstained=False, citations=citations, answer_id=answer_id)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
async def fake():
    server = FakeDiscord(token=TOKEN)
    await server.start()
    yield server
    await server.close()
    assert server.unhandled == [], "the bot called routes the fake does not know"


@pytest.fixture
def core():
    """The fake core, with the replies these tests use: an abstention for the weather, a long
    answer for "everything", a streamed answer for "stream", failures for "explode" and
    "index down"."""
    core = FakeCore()
    core.replies.update({
        "what is the weather?": Answer("what is the weather?", "The story does not say.", abstained=True,
                                       answer_id=99),
        "everything": long_answer("everything", 1), "explode": RuntimeError("the core exploded"),
        "index down": StoreUnavailable(INDEX_DOWN)})
    core.streams["stream"] = ("Apple's talks", "Apple's talks with Baidu")
    return core


@pytest.fixture
async def start_bot(fake, core, tmp_path):
    """Start a bot against the fake: ``await start_bot(**setting_overrides)``."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(answerer=None, **overrides) -> StoryBotClient:
            settings = load_settings(**{
                "data_dir": tmp_path / "data", "stories_dir": STORIES, "discord_api_base": fake.api_base,
                "discord_gateway_url": fake.gateway_url, "discord_guild_id": GUILD_ID,
                "admins": [CAROL["id"]], **overrides,
            })
            client = StoryBotClient(answerer or core, settings)
            await stack.enter_async_context(client)  # sets the client up on this loop
            session = fake.sessions + 1
            running = asyncio.create_task(client.start(TOKEN))
            stack.push_async_callback(stop, client, running)
            # Live once READY and GUILD_CREATE are sent: events pushed after them are handled.
            # (on_ready itself comes 2 s later: discord.py waits for more guilds.)
            live = asyncio.create_task(fake.wait_for_session(session))
            await asyncio.wait({running, live}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                live.cancel()
                running.result()  # raises what stopped the bot
                raise AssertionError("the bot stopped during start-up")
            await live
            return client

        yield start


async def stop(client: StoryBotClient, running: asyncio.Task) -> None:
    await client.close()
    await asyncio.wait_for(running, WAIT)


@pytest.fixture
async def bot(start_bot):
    return await start_bot()


async def ask(fake: FakeDiscord, question: str, *, who: dict = BOB, private: bool | None = None,
              channel_id: int = CHANNEL_ID) -> dict:
    """Send /ask and return its INTERACTION_CREATE payload."""
    options: dict = {"question": question}
    if private is not None:
        options["private"] = private
    payload = fake.slash("ask", options, user=who, channel_id=channel_id)
    await fake.dispatch("INTERACTION_CREATE", payload)
    return payload


def callback_of(payload: dict):
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    return lambda c: c.method == "POST" and c.path == path


def followup_of(payload: dict):
    return lambda c: c.method == "POST" and c.path == f"/webhooks/{APP_ID}/{payload['token']}"


def original_edit_of(payload: dict):
    path = f"/webhooks/{APP_ID}/{payload['token']}/messages/@original"
    return lambda c: c.method == "PATCH" and c.path == path


def reply_in(channel_id: int, message: dict | None = None):
    def match(c: Call) -> bool:
        if c.method != "POST" or c.path != f"/channels/{channel_id}/messages":
            return False
        # discord.py sends the referenced id as a JSON number
        reference = c.json.get("message_reference") or {}
        return message is None or str(reference.get("message_id")) == message["id"]
    return match


def sent_message(fake: FakeDiscord, call: Call) -> dict:
    """The message the fake created for ``call`` (the latest with that content)."""
    return next(m for m in reversed(fake.messages.values()) if m["content"] == (call.content or ""))


# --- start-up -----------------------------------------------------------------------------------


async def test_identifies_and_syncs_commands_to_the_guild(fake, bot):
    assert fake.connections[0]["v"] == "10" and fake.connections[0]["compress"] == "zlib-stream"
    [identify] = fake.identifies
    assert identify["token"] == TOKEN
    assert identify["intents"] & (1 << 15), "the Message Content intent is requested"
    [sync] = fake.find("PUT", rf"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    commands = {c["name"]: c for c in sync.json}
    assert set(commands) == {"ask", "refresh"}
    assert [(o["name"], o["type"], o.get("required", False)) for o in commands["ask"]["options"]] == [
        ("question", 3, True), ("private", 5, False), ("story", 3, False)]
    assert fake.find("PUT", rf"/applications/{APP_ID}/commands") == []


async def test_syncs_globally_without_a_guild(fake, start_bot):
    await start_bot(discord_guild_id=None)
    [sync] = fake.find("PUT", rf"/applications/{APP_ID}/commands")
    assert {c["name"] for c in sync.json} == {"ask", "refresh"}


async def test_a_reconnect_does_not_sync_commands_again(fake, bot):
    fake.refuse_resume = True  # the resume fails, so the bot identifies afresh and gets a new READY
    await fake.reconnect()
    await fake.wait_until_live(timeout=WAIT + 5)  # discord.py waits 5 s before re-identifying
    assert len(fake.resumes) == 1 and len(fake.identifies) == 2
    payload = await ask(fake, "why not Baidu?")
    await fake.wait_for(followup_of(payload))
    assert len(fake.find("PUT", r"/applications/.*/commands")) == 1


# --- /ask -----------------------------------------------------------------------------------------


async def test_ask_defers_then_follows_up_with_the_citation(fake, bot, core):
    payload = await ask(fake, "why not Baidu?")
    defer = await fake.wait_for(callback_of(payload))
    assert defer.json == {"type": 5}  # thinking, visible to the channel
    followup = await fake.wait_for(followup_of(payload))
    assert followup.query.get("wait") in {"1", "true"}  # the bot needs the message id back
    assert "why not Baidu?" in followup.content and "[1]" in followup.content
    [embed] = followup.embeds
    assert QUOTE in embed["description"] and "Alibaba" in embed["description"]
    assert followup.flags & EPHEMERAL == 0
    assert followup.json["allowed_mentions"] == {"parse": [], "replied_user": True}
    assert core.asked == [Asked("why not Baidu?", None, "discord", BOB["id"])]
    assert sorted(followup.custom_ids) == ["storybot:vote:down:1", "storybot:vote:up:1"]


async def test_ask_story_option_restricts_to_one_story(fake, bot, core):
    payload = fake.slash("ask", {"question": "why not Baidu?", "story": "apple-alibaba"}, user=BOB,
                         channel_id=CHANNEL_ID)
    await fake.dispatch("INTERACTION_CREATE", payload)
    await fake.wait_for(followup_of(payload))
    assert core.asked[-1].question == "story:apple-alibaba why not Baidu?"  # the core's filter syntax


async def test_private_ask_is_ephemeral(fake, bot):
    payload = await ask(fake, "why not Baidu?", private=True)
    defer = await fake.wait_for(callback_of(payload))
    assert defer.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    followup = await fake.wait_for(followup_of(payload))
    assert followup.flags & EPHEMERAL and "[1]" in followup.content


async def test_an_abstention_is_short_and_cites_nothing(fake, bot):
    payload = await ask(fake, "what is the weather?")
    followup = await fake.wait_for(followup_of(payload))
    assert "The story does not say." in followup.content
    assert followup.embeds == []


async def test_a_repeated_interaction_is_answered_once(fake, bot, core):
    payload = await ask(fake, "why not Baidu?")
    await fake.wait_for(followup_of(payload))
    await fake.dispatch("INTERACTION_CREATE", payload)  # Discord delivers the same interaction again
    later = await ask(fake, "and Tencent?")
    await fake.wait_for(followup_of(later))
    assert len([c for c in fake.calls if callback_of(payload)(c)]) == 1
    assert len([c for c in fake.calls if followup_of(payload)(c)]) == 1
    assert [a.question for a in core.asked] == ["why not Baidu?", "and Tencent?"]


async def test_a_long_answer_is_split_within_discord_limits(fake, bot):
    payload = await ask(fake, "everything")
    await fake.wait_for(callback_of(payload))
    first = await fake.wait_for(followup_of(payload))
    answer = long_answer("everything", 1)
    # Wait until every part has arrived: the buttons ride on the last one.
    await fake.wait_for(lambda c: followup_of(payload)(c) and bool(c.custom_ids))
    parts = [c for c in fake.calls if followup_of(payload)(c)]
    assert parts[0] is first and len(parts) > 2
    for part in parts:
        assert len(part.content) <= CONTENT_LIMIT
        assert len(part.embeds) <= EMBEDS_PER_MESSAGE
        embed_chars = sum(len(e.get("title") or "") + len(e["description"]) for e in part.embeds)
        assert embed_chars <= EMBED_TOTAL_LIMIT
        assert all(len(e["description"]) <= EMBED_DESCRIPTION_LIMIT for e in part.embeds)
    assert [bool(p.custom_ids) for p in parts] == [False] * (len(parts) - 1) + [True]
    # No word is ever cut: every word of the text and of each quote arrives whole, in order.
    text_words = re.findall(r"word\d+", " ".join(p.content for p in parts))
    assert text_words == re.findall(r"word\d+", answer.text)
    quote_words = re.findall(r"q\d\dw\d+", " ".join(e["description"] for p in parts for e in p.embeds))
    assert quote_words == [w for c in answer.citations for w in c.quote.split()]


async def test_a_long_answer_begins_in_the_message_that_echoes_the_question(fake, bot, core):
    # a first paragraph longer than a message was cut at the echoed question's line end: the
    # question (and an unsure answer's hedge line) went alone in the first message
    for question, confidence in (("everything?", "high"), ("everything, unsure?", "low")):
        core.replies[question] = replace(long_answer(question, 1), confidence=confidence)
        payload = await ask(fake, question)
        await fake.wait_for(lambda c, p=payload: followup_of(p)(c) and bool(c.custom_ids))
        first = next(c for c in fake.calls if followup_of(payload)(c))
        echo, *lines = first.content.splitlines()
        assert echo == f"> {escape(question)}" and len(lines) == (2 if confidence == "low" else 1)
        assert lines[-1].startswith("word0000 [1] word0001") and len(first.content) <= CONTENT_LIMIT


async def test_a_streamed_answer_is_shown_as_it_is_written_then_replaced(fake, bot):
    payload = await ask(fake, "stream")
    final = await fake.wait_for(lambda c: original_edit_of(payload)(c) and bool(c.embeds))
    edits = [c for c in fake.calls if original_edit_of(payload)(c)]
    assert [e.content for e in edits] == [provisional("Apple's talks", "en", "stream"),
                                          provisional("Apple's talks with Baidu", "en", "stream"), final.content]
    assert "[1]" in final.content and final.custom_ids
    assert not [c for c in fake.calls if followup_of(payload)(c)]  # the edited response is the answer



async def test_chat_tokens_of_the_question_are_echoed_readable_and_nothing_pings(fake, bot, core):
    # the question echoed over the answer (as it streams, and in the answer) showed its raw
    # <@id>, <@&id>, <#id> and <t:…> tokens: live mentions and a clock on Discord
    question = f"what did <@{BOB['id']}> tell <@&42> in <#{CHANNEL_ID}> at <t:1700000000:R> about Baidu?"
    core.streams[question] = ("Apple's talks",)
    # the core reads the question without its chat tokens; the answer still echoes it as typed
    core.replies[question] = cited("what did tell in at about Baidu?")
    payload = await ask(fake, question)
    await fake.wait_for(lambda c: original_edit_of(payload)(c) and bool(c.embeds))
    echo = "> " + escape("what did @user tell @role in #channel at 2023-11-14 22:13 UTC about Baidu?") + "\n"
    shown = [c for c in fake.calls if original_edit_of(payload)(c)]
    assert len(shown) == 2 and all(c.content.startswith(echo) for c in shown), [c.content for c in shown]
    for call in fake.calls:  # and whatever a reply holds, it pings nobody it names
        if isinstance(call.json, dict) and (call.content or call.embeds):
            mentions = (call.json.get("data") or call.json).get("allowed_mentions")
            assert mentions is not None and mentions["parse"] == [] and not mentions.get("users"), call

# --- messages -------------------------------------------------------------------------------------


async def test_a_mention_in_a_channel_is_answered_as_a_reply(fake, bot, core):
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("no mention, no answer", author=BOB))
    question = fake.user_message("why not Baidu?", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await fake.wait_for(reply_in(CHANNEL_ID, question))
    assert fake.find("POST", rf"/channels/{CHANNEL_ID}/typing")
    assert "[1]" in reply.content and QUOTE in reply.embeds[0]["description"]
    assert reply.custom_ids and reply.json["allowed_mentions"]["replied_user"] is True
    assert core.asked == [Asked("why not Baidu?", None, "discord", BOB["id"])]


async def test_a_mention_of_the_bots_role_is_answered_like_a_mention_of_the_bot(fake, bot, core):
    # typing "@storybot" offers the bot and its role of the same name; the role's <@&id> was ignored
    question = fake.user_message("why not Baidu?", author=BOB, mention_bot_role=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await fake.wait_for(reply_in(CHANNEL_ID, question))
    assert "[1]" in reply.content
    assert core.asked == [Asked("why not Baidu?", None, "discord", BOB["id"])]


async def test_a_streamed_answer_to_a_mention_is_one_reply_edited_in_place(fake, bot):
    question = fake.user_message("stream", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await fake.wait_for(reply_in(CHANNEL_ID, question))
    assert reply.content == provisional("Apple's talks")
    edits_of_reply = rf"/channels/{CHANNEL_ID}/messages/{sent_message(fake, reply)['id']}"
    final = await fake.wait_for(lambda c: c.method == "PATCH" and c.path == edits_of_reply and bool(c.embeds))
    assert [e.content for e in fake.find("PATCH", edits_of_reply)] == [
        provisional("Apple's talks with Baidu"), final.content]
    assert "[1]" in final.content and final.custom_ids
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1


async def test_a_dm_is_answered_without_a_mention(fake, bot, core):
    question = fake.user_message("why not Baidu?", author=BOB, channel_id=DM_CHANNEL_ID)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await fake.wait_for(reply_in(DM_CHANNEL_ID, question))
    assert "[1]" in reply.content
    assert core.asked == [Asked("why not Baidu?", None, "discord", BOB["id"])]


async def test_a_message_in_a_thread_the_bot_answered_in_is_a_follow_up(fake, bot, core):
    first = fake.user_message("why not Baidu?", author=BOB, channel_id=THREAD_ID, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", first)
    await fake.wait_for(reply_in(THREAD_ID, first))
    second = fake.user_message("and Tencent?", author=ALICE, channel_id=THREAD_ID)  # no mention
    await fake.dispatch("MESSAGE_CREATE", second)
    await fake.wait_for(reply_in(THREAD_ID, second))
    assert core.asked[1] == Asked("and Tencent?", "why not Baidu?", "discord", ALICE["id"])


async def test_system_messages_pictures_and_forwards_do_not_end_or_start_a_conversation(fake, bot, core):
    first = fake.user_message("why not Baidu?", author=BOB, channel_id=THREAD_ID, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", first)
    await fake.wait_for(reply_in(THREAD_ID, first))
    rename = fake.user_message("Baidu vs Alibaba", author=ALICE, channel_id=THREAD_ID)
    rename["type"] = 4  # CHANNEL_NAME_CHANGE: a system message, which cannot be replied to
    pin = fake.user_message("", author=ALICE, channel_id=THREAD_ID)
    pin["type"] = 6  # CHANNEL_PINNED_MESSAGE
    picture = fake.user_message("", author=ALICE, channel_id=THREAD_ID)  # an image, no text
    for message in (rename, pin, picture):
        await fake.dispatch("MESSAGE_CREATE", message)
    await fake.wait_for(reply_in(THREAD_ID, picture))  # "please ask a question"
    follow_up = fake.user_message("and Tencent?", author=ALICE, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    await fake.wait_for(reply_in(THREAD_ID, follow_up))
    # a forward of an answer elsewhere is not a reply to it: no follow-up
    answer_in_channel = fake.user_message("who is Alibaba?", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", answer_in_channel)
    answer = sent_message(fake, await fake.wait_for(reply_in(CHANNEL_ID, answer_in_channel)))
    forward = fake.user_message("", author=ALICE, reply_to=answer, ping=False)
    forward["type"], forward["message_reference"]["type"] = 0, 1  # FORWARD
    forward.pop("referenced_message")
    await fake.dispatch("MESSAGE_CREATE", forward)
    last = fake.user_message("thanks", author=ALICE, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", last)
    await fake.wait_for(reply_in(THREAD_ID, last))
    assert [(a.question, a.context) for a in core.asked] == [
        ("why not Baidu?", None), ("", "why not Baidu?"), ("and Tencent?", "why not Baidu?"),
        ("who is Alibaba?", None), ("thanks", "and Tencent?")]


async def test_a_reply_to_an_answer_is_a_follow_up(fake, bot, core):
    first = fake.user_message("why not Baidu?", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", first)
    answer = sent_message(fake, await fake.wait_for(reply_in(CHANNEL_ID, first)))
    # In a plain channel, only replies to the bot's answers continue the conversation.
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("and Tencent?", author=ALICE))
    second = fake.user_message("and Tencent?", author=ALICE, reply_to=answer, ping=False)
    await fake.dispatch("MESSAGE_CREATE", second)
    await fake.wait_for(reply_in(CHANNEL_ID, second))
    assert core.asked[1:] == [Asked("and Tencent?", "why not Baidu?", "discord", ALICE["id"])]


async def test_ask_in_a_thread_starts_a_conversation(fake, bot, core):
    payload = await ask(fake, "why not Baidu?", channel_id=THREAD_ID)
    await fake.wait_for(followup_of(payload))
    follow_up = fake.user_message("and Tencent?", author=BOB, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    await fake.wait_for(reply_in(THREAD_ID, follow_up))
    assert core.asked[1].context == "why not Baidu?"


# --- votes ----------------------------------------------------------------------------------------


async def click(fake: FakeDiscord, message: dict, way: str, who: dict) -> Call:
    custom_id = next(c["custom_id"] for row in message["components"] for c in row["components"]
                     if c["custom_id"].startswith(f"storybot:vote:{way}:"))
    payload = fake.click(message, custom_id, user=who)
    await fake.dispatch("INTERACTION_CREATE", payload)
    defer = await fake.wait_for(callback_of(payload))
    assert defer.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    return await fake.wait_for(original_edit_of(payload))  # the note replaces the private "thinking"


async def test_votes_are_recorded_one_per_user_and_changeable(fake, bot, core):
    payload = await ask(fake, "why not Baidu?")
    answer = sent_message(fake, await fake.wait_for(followup_of(payload)))
    note = await click(fake, answer, "up", BOB)
    assert "recorded" in note.content
    assert core.votes == [(1, BOB["id"], 1)]
    await click(fake, answer, "down", BOB)
    await click(fake, answer, "up", ALICE)
    assert core.votes == [(1, BOB["id"], 1), (1, BOB["id"], -1), (1, ALICE["id"], 1)]


async def test_vote_buttons_work_after_a_restart(fake, start_bot, core):
    first = await start_bot()
    payload = await ask(fake, "why not Baidu?")
    answer = sent_message(fake, await fake.wait_for(followup_of(payload)))
    await first.close()
    await start_bot()  # a new process: nothing in memory knows the answer's message
    await click(fake, answer, "up", BOB)
    assert core.votes == [(1, BOB["id"], 1)]


# --- /refresh -------------------------------------------------------------------------------------


async def refresh(fake: FakeDiscord, who: dict, permissions: int) -> tuple[dict, Call]:
    payload = fake.slash("refresh", user=who, permissions=permissions)
    await fake.dispatch("INTERACTION_CREATE", payload)
    return payload, await fake.wait_for(callback_of(payload))


@pytest.mark.parametrize("who, permissions", [(ALICE, MANAGER), (CAROL, MEMBER)],
                         ids=["manage-server", "listed-admin"])
async def test_refresh_by_an_admin_reports_in_the_ephemeral_reply(fake, bot, core, who, permissions):
    payload, first = await refresh(fake, who, permissions)
    assert first.json["type"] == 4 and first.flags & EPHEMERAL and first.content == REFRESHING
    edit = await fake.wait_for(original_edit_of(payload))
    assert edit.content == Report().summary()
    assert core.refreshes == 1


async def test_refresh_by_a_member_is_refused(fake, bot, core):
    payload, reply = await refresh(fake, BOB, MEMBER)
    assert reply.json["type"] == 4 and reply.flags & EPHEMERAL and reply.content == NOT_ALLOWED
    assert core.refreshes == 0
    assert not [c for c in fake.calls if original_edit_of(payload)(c)]


async def test_a_second_refresh_is_told_one_is_running_and_questions_still_get_answers(fake, bot, core):
    core.refresh_gate = threading.Event()
    try:
        first, _ = await refresh(fake, ALICE, MANAGER)
        question = await ask(fake, "why not Baidu?")
        assert "[1]" in (await fake.wait_for(followup_of(question))).content
        _, second = await refresh(fake, CAROL, MEMBER)
        assert second.flags & EPHEMERAL and second.content == ALREADY_REFRESHING
    finally:
        core.refresh_gate.set()
    assert (await fake.wait_for(original_edit_of(first))).content == Report().summary()
    assert core.refreshes == 1


async def test_a_refresh_running_elsewhere_is_reported(fake, bot, core):
    core.refresh_error = RefreshInProgress("A refresh is already running in another process.", retry_after=90)
    payload, _ = await refresh(fake, ALICE, MANAGER)
    told = (await fake.wait_for(original_edit_of(payload))).content
    assert told == ChatSession.text("refresh_elsewhere", "en", minutes=2) and "elsewhere" in told


async def test_a_refresh_report_longer_than_a_message_reaches_the_admin_whole(fake, bot, core):
    # a report naming many skipped files: Discord refuses a message over 2,000 characters
    # (400), and the admin was left with "Refreshing…"
    skipped = "; ".join(f"story-{i:02d}.md: is larger than the 2 MB limit; split it" for i in range(40))
    report = f"Index v2 rebuilt: 3 added. Skipped 40 file(s): {skipped}"
    core.REPORT = SimpleNamespace(summary=lambda: report)
    payload, _ = await refresh(fake, ALICE, MANAGER)
    last = "story-39.md: is larger than the 2 MB limit; split it"
    await fake.wait_for(lambda c: followup_of(payload)(c) and c.content.endswith(last))
    told = [c for c in fake.calls if original_edit_of(payload)(c) or followup_of(payload)(c)]
    assert told[0].method == "PATCH" and all(c.flags & EPHEMERAL for c in told[1:])
    assert all(len(c.content) <= CONTENT_LIMIT for c in told)
    assert " ".join(c.content for c in told).split() == report.split()


# --- abuse and faults -----------------------------------------------------------------------------


async def test_rate_limit_answers_with_a_polite_ephemeral_note(fake, start_bot, core):
    await start_bot(rate="2/60")
    for question in ("why not Baidu?", "and Tencent?"):
        await fake.wait_for(followup_of(await ask(fake, question)))
    payload = await ask(fake, "and ByteDance?")
    note = await fake.wait_for(callback_of(payload))
    assert note.json["type"] == 4 and note.flags & EPHEMERAL and "Please wait" in note.content
    mention = fake.user_message("and DeepSeek?", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", mention)
    assert "Please wait" in (await fake.wait_for(reply_in(CHANNEL_ID, mention))).content
    await fake.wait_for(followup_of(await ask(fake, "why not Baidu?", who=ALICE)))  # others still ask
    assert [a.question for a in core.asked] == ["why not Baidu?", "and Tencent?", "why not Baidu?"]


async def test_a_core_failure_gets_a_visible_apology_and_a_logged_trace(fake, bot, caplog):
    payload = await ask(fake, "explode")
    followup = await fake.wait_for(followup_of(payload))
    assert followup.content == APOLOGY and followup.flags & EPHEMERAL == 0
    [record] = [r for r in caplog.records if r.name == "bot.chat" and r.exc_info]
    assert "the core exploded" in str(record.exc_info[1])
    mention = fake.user_message("explode", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", mention)
    assert (await fake.wait_for(reply_in(CHANNEL_ID, mention))).content == APOLOGY


async def test_an_index_error_is_shown_as_is(fake, bot):
    payload = await ask(fake, "index down")
    followup = await fake.wait_for(followup_of(payload))
    assert followup.content == "The story index is unavailable right now; please try again later."


async def test_the_token_never_appears_in_logs(fake, start_bot, core, capsys):
    # the real log output: what the project's handler (with its redaction filter) writes to
    # stderr, not caplog's records, which are captured before any redaction
    from bot.logs import setup_logging

    setup_logging(load_settings(discord_token=TOKEN), "DEBUG")
    await start_bot()
    payload = await ask(fake, "why not Baidu?")
    await fake.wait_for(followup_of(payload))
    mention = fake.user_message("explode", author=BOB, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", mention)
    await fake.wait_for(reply_in(CHANNEL_ID, mention))
    # a failure whose message carries the token, as a library error echoing a request might
    core.refresh_error = RuntimeError(f"auth failed with Bot {TOKEN}")
    payload, _ = await refresh(fake, ALICE, MANAGER)
    await fake.wait_for(original_edit_of(payload))
    err = capsys.readouterr().err
    assert "DEBUG" in err and "auth failed with Bot ***" in err  # logged, redacted
    assert TOKEN not in err
    # nor an interaction's token (15 minutes to post as the bot), which discord.py logs in
    # the callback and webhook URLs at debug level
    assert "/interactions/" in err and payload["token"] not in err


# --- run_discord ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-a-token", "abc.def.ghi", f"Bot {TOKEN}", TOKEN + ".extra"])
def test_run_discord_rejects_a_missing_or_malformed_token(tmp_path, token):
    with pytest.raises(ConfigError) as err:  # a malformed token fails as the settings load
        settings = load_settings(needs=("chat", "discord"), discord_token=token, data_dir=tmp_path / "data",
                                 stories_dir=STORIES)
        run_discord(settings, FakeCore())
    assert "DISCORD_TOKEN" in str(err.value)
    assert "Discord Developer Portal (your application) > Bot > Reset Token" in str(err.value)  # where it is
    assert not token or token not in str(err.value)


# --- rendering ------------------------------------------------------------------------------------


def test_render_escapes_markdown_in_quotes():
    quote = "a *starred* _word_"
    answer = Answer("q", "x [1]", abstained=False, citations=(Citation(
        n=1, quote=quote, passage="", story="s", title="T", section=None, start=0, end=1, score=1.0),))
    [reply] = render(answer)
    assert r"\*starred\*" in reply["embeds"][0].description


def test_render_escapes_numbered_list_markers_at_line_starts_and_after_a_cut():
    # a line of the answer, a quote or the question starting "1. " or "12) " (or a message or
    # embed block starting so, cut between words) showed as a numbered list Discord renumbered
    quote = Citation(n=1, quote="7) seventh", passage="", story="s", title="2. T", section=None, start=0,
                     end=1, score=1.0)
    answer = Answer("q", "1. first\n12) second\n  3. third\n1.5 million", abstained=False, citations=(quote,))
    [reply] = render(answer, question="1. why?")
    assert reply["content"] == "> 1\\. why?\n1\\. first\n12\\) second\n  3\\. third\n1.5 million"
    assert reply["embeds"][0].description == "**[1]** *2\\. T*\n> 7\\) seventh"
    starts = []
    for pad in range(8):  # shifts the cuts, so some land just before a number
        quote = replace(quote, quote="y" * pad + " 12) x" * 1000)
        answer = Answer("q", "x" * pad + " 3. word" * 300, abstained=False, citations=(quote,))
        messages = render(answer)
        starts += [m["content"] for m in messages[1:] if "content" in m]
        lines = [line for m in messages for e in m.get("embeds", ()) for line in e.description.split("\n")]
        starts += [line[2:] for line in lines if line[:2] == "> "]
    assert [s[:6] for s in starts if re.match(r"\d+[.)] ", s)] == []
    assert any(s.startswith("3\\. word") for s in starts) and any(s.startswith("12\\) x") for s in starts)


def test_conversation_memory_forgets_the_oldest_first():
    recent = Recent(maxsize=2)
    for key, question in [(1, "a?"), (2, "b?"), (1, "c?"), (3, "d?")]:
        recent.put(key, question)
    assert (recent.get(1), recent.get(2), recent.get(3)) == ("c?", None, "d?")
    assert recent.add(4) and not recent.add(4)


# --- the real core --------------------------------------------------------------------------------


async def test_the_real_answerer_answers_through_discord(fake, start_bot, settings):
    answerer = Answerer.from_settings(settings)
    try:
        await asyncio.to_thread(answerer.refresh)  # build the index before the clock of any wait starts
        await start_bot(answerer)
        payload = await ask(fake, "why not Baidu?")
        followup = await fake.wait_for(followup_of(payload), timeout=60)
        assert "[1]" in followup.content
        assert followup.embeds and "Baidu" in followup.embeds[0]["description"]
        vote = await click(fake, sent_message(fake, followup), "up", BOB)  # the real answer log
        assert "recorded" in vote.content
    finally:
        answerer.close()


def test_a_dead_discord_api_at_start_up_is_one_sentence(tmp_path):
    base = f"http://127.0.0.1:{closed_port()}/api/v10"
    done = run_cli("discord", env={"DISCORD_TOKEN": TOKEN, "DISCORD_API_BASE": base, "STORYBOT_STORIES": str(STORIES)})
    assert done.returncode == 1 and "Traceback" not in done.stderr and "WARNING" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: Discord's API at {base} did not answer; check the network (or " \
                                  "DISCORD_API_BASE) and start again."


def clear_env(fake: FakeDiscord, token: str = TOKEN) -> dict[str, str]:
    return {"DISCORD_TOKEN": token, "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url,
            "STORYBOT_STORIES": str(STORIES)}


async def test_clear_guild_commands_empties_that_server_over_rest_only(fake, start_bot):
    first = await start_bot()  # DISCORD_GUILD_ID is set: the commands are synced to the guild
    await first.close()
    assert fake.registered == {GUILD_ID: ["ask", "refresh"]}
    # the CLI in a subprocess; this loop keeps serving the fake meanwhile
    done = await asyncio.to_thread(run_cli, "discord", "--clear-guild-commands", str(GUILD_ID), env=clear_env(fake))
    assert done.returncode == 0, done.stderr
    assert str(GUILD_ID) in done.stdout and "Traceback" not in done.stderr and "WARNING" not in done.stderr
    assert fake.registered == {GUILD_ID: []}
    _, clear = fake.find("PUT", rf"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    assert clear.json == []  # the empty bulk overwrite
    assert len(fake.connections) == 1  # the bot's own session: clearing opened no gateway connection


@pytest.mark.parametrize("guild, token, says", [
    (42, TOKEN, "Discord refused (Missing Access)"),
    (GUILD_ID, TOKEN.replace("fake", "evil"), "Discord refused DISCORD_TOKEN (401)"),
], ids=["server-without-the-bot", "refused-token"])
async def test_clear_guild_commands_failures_are_one_sentence(fake, guild, token, says):
    done = await asyncio.to_thread(run_cli, "discord", "--clear-guild-commands", str(guild),
                                   env=clear_env(fake, token))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"Error: {says}")
    assert fake.registered == {} and fake.connections == []
    assert token not in done.stderr


async def test_the_story_option_autocompletes_story_ids(fake, bot, core):
    # an id over Discord's 100 characters cannot be a choice (one would void the whole list)
    core.ids = ["apple-alibaba-ia-iphone-chine.fr", "baidu-ernie.en", "tencent-hunyuan.fr", "f" * 101 + ".fr"]
    payload = fake.autocomplete("ask", {"question": "why?", "story": "FR"}, "story", user=BOB)
    await fake.dispatch("INTERACTION_CREATE", payload)
    reply = await fake.wait_for(callback_of(payload))
    assert reply.json["type"] == 8
    assert reply.json["data"]["choices"] == [{"name": i, "value": i} for i in
                                             ("apple-alibaba-ia-iphone-chine.fr", "tencent-hunyuan.fr")]
    assert core.asked == []


async def test_text_from_a_user_or_a_story_cannot_render_a_masked_link(fake, bot, core):
    evil = "[Click](https://evil.example)"
    core.replies[f"story:{evil} q"] = Answer(f"story:{evil} q", f"There is no story “{evil}” in the index.",
                                              abstained=True)
    core.replies["quote"] = cited("quote", answer_id=7, quotes=(f"See {evil} **now**",))
    payload = fake.slash("ask", {"question": "q", "story": evil}, user=BOB, channel_id=CHANNEL_ID)
    await fake.dispatch("INTERACTION_CREATE", payload)
    shown = [(await fake.wait_for(followup_of(payload))).content]
    payload = await ask(fake, "quote")
    shown.append((await fake.wait_for(followup_of(payload))).embeds[0]["description"])
    for text in shown:
        assert "[Click](" not in text.replace("\\[Click\\](", "")  # the bracket is escaped: shown as typed
        assert "\\[Click\\](https://evil.example)" in text
    assert "\\*\\*now\\*\\*" in shown[1]


async def test_a_long_text_split_between_messages_never_starts_a_message_with_markdown(fake, start_bot, core):
    # a long paragraph (or quote) cut before " - " or " > " went on in a message (or embed
    # block) that began with the marker: shown as a list or a quote
    await start_bot(rate="0")
    texts, quotes = [], []
    for pad in range(6):  # shifts where the text and the quote are cut, so some cuts land on a marker
        question = f"long {pad}?"  # echoed over the text's first piece: "> long 0?\n", 10 characters
        core.replies[question] = cited(question, answer_id=pad + 1, quotes=("y" * pad + " - x > y" * 700,),
                                       text="x" * pad + "word " * 397 + "- item > and more [1]")
        payload = await ask(fake, question)
        await fake.wait_for(lambda c, p=payload: followup_of(p)(c) and bool(c.custom_ids))
        parts = [c for c in fake.calls if followup_of(payload)(c)]
        texts += [p.content for p in parts[1:] if p.content]
        lines = [line for p in parts for e in p.embeds for line in e["description"].split("\n")]
        quotes += [line[2:] for line in lines if line[:2] == "> "]
    assert [s[:6] for s in texts + quotes if s[0] in "-#>"] == []
    assert any(s.startswith("\\- item") for s in texts) and any(s.startswith("\\- x") for s in quotes)


async def test_an_unsure_answer_shows_a_hedge_line_and_closest_passages(fake, bot, core):
    for question, lang in (("why not Baidu?", "en"), ("Pourquoi pas Baidu ?", "fr")):
        core.replies[question] = cited(question, answer_id=3, confidence="low")
        payload = await ask(fake, question)
        reply = await fake.wait_for(followup_of(payload))
        hedge = ChatSession.text("hedge", lang)
        assert reply.content.splitlines()[1] == f"⚠️ **{hedge}**"  # after the echoed question
        assert reply.embeds[0]["title"] == ChatSession.text("closest", lang)
    confident = await ask(fake, "and Tencent?")
    reply = await fake.wait_for(followup_of(confident))
    assert "⚠️" not in reply.content and reply.embeds[0]["title"] == ChatSession.text("sources", "en")
