"""The Slack adapter, end to end: the real Bolt app against the local fake Slack.

Socket Mode tests push envelopes through the fake's websocket; HTTP mode tests send signed
requests to the adapter's own HTTP server. Every assertion is on what the fake recorded (Web
API calls, response_url posts, acks) or on what the fake answerer was asked.

Work happens on Bolt's worker threads after the ack, so tests wait on conditions with a
timeout. To show that something did *not* happen, a test sends a later "sentinel" question
and waits for its answer. The pool takes jobs in order, so work wrongly started by an earlier
event would be under way before the sentinel's, and would reach the core first. A correct bot
passes these tests every time, whatever the timing.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    WAIT,
    Call,
    FakeSlack,
    block_action,
    event_callback,
    http_body,
    mention,
    message,
    signed_headers,
    slash_command,
)
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.chat import ChatSession
from bot.config import load_settings
from bot.errors import ConfigError, NoStories, StoreUnavailable
from bot.slack_app import build_app, run_slack
from bot.slack_blocks import escape
from bot.slack_http import serve
from bot.types import Answer
from tests.conftest import STORIES, Asked
from tests.fakes import QUOTE, SECTION, TITLE, FakeCore, LoopThread, cited, closed_port, run_cli

GENERAL = "C0GENERAL"


def text(name: str, lang: str = "en", **values: object) -> str:
    return ChatSession.text(name, lang, **values)


APOLOGY = text("apology")
LOOKING = text("looking") + " :mag:"
USAGE = text("usage")
VOTE_LOST = text("vote_lost")
REFRESH_REFUSED = text("refresh_refused")
REFRESH_RUNNING = text("refresh_running")
REFRESH_STARTED = text("refresh_started")
WRITING = "_" + text("writing") + "_"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users={"UOWNER": {"is_owner": True}, "UMEMBER": {}}) as fake:
        yield fake


@pytest.fixture
def answerer() -> FakeCore:
    return FakeCore()


@pytest.fixture
def slack_settings(settings, fake):
    """The conftest settings plus Slack tokens, SLACK_API_URL at the fake, no rate limit."""
    return settings.model_copy(update={
        "slack_bot_token": SecretStr(BOT_TOKEN), "slack_app_token": SecretStr(APP_TOKEN),
        "slack_signing_secret": SecretStr(SIGNING_SECRET), "slack_admins": ["UADMIN"],
        "slack_api_url": fake.api_url, "rate": "0"})


@contextmanager
def socket_mode(app: AsyncApp, fake: FakeSlack) -> Iterator[None]:
    """Run ``app`` with Bolt's async Socket Mode handler on a loop of its own (its client
    finds the fake's websocket through apps.connections.open on SLACK_API_URL)."""
    with LoopThread() as loop:
        async def connect() -> AsyncSocketModeHandler:
            handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
            await handler.connect_async()
            return handler

        handler = loop.run(connect())
        try:
            yield
        finally:
            loop.run(handler.close_async())


@pytest.fixture
def bot(fake, answerer, slack_settings) -> Iterator[FakeSlack]:
    """The real Bolt app in Socket Mode, connected to the fake; yields the fake."""
    with socket_mode(build_app(answerer, slack_settings), fake):
        yield fake


def push_event(fake: FakeSlack, event: dict, **retry: Any) -> None:
    """Deliver one event (its id derived from its ts) and wait for its ack."""
    fake.wait_ack(fake.push("events_api", event_callback(event, event_id=f"Ev{event['ts']}"), **retry))


def push_command(fake: FakeSlack, command: str, text: str, *, user: str, reply_to: str) -> dict:
    """Run a slash command; returns its ack."""
    payload = slash_command(command, text, user=user, response_url=fake.response_url(reply_to))
    return fake.wait_ack(fake.push("slash_commands", payload))


def answered_in(fake: FakeSlack, thread: str, count: int = 1, channel: str = GENERAL) -> list[Call]:
    return fake.wait_calls("chat.postMessage", count, channel=channel, thread_ts=thread)


def sentinel(fake: FakeSlack) -> None:
    """Ask one more question in a DM and wait for its answer (see the module docstring)."""
    push_event(fake, message("sentinel?", user="USENTINEL", ts="999.000001", channel="D0SENTINEL",
                             channel_type="im"))
    answered_in(fake, "999.000001", channel="D0SENTINEL")


def logged(caplog: pytest.LogCaptureFixture, logger: str, count: int) -> list[logging.LogRecord]:
    """``logger``'s records, once there are ``count`` (a line logged after the bot's last call
    to the fake: the fake cannot wait for it)."""
    deadline = time.monotonic() + WAIT
    while len(records := [r for r in caplog.records if r.name == logger]) < count:
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.01)
    return records


def assert_rendered(post: Call, answer_id: int) -> None:
    """The default cited answer, rendered: text section, citation context, vote buttons."""
    assert post.texts("section") == ["Baidu's models fell short [1]."]
    assert ["*[1]*", f"“{QUOTE}”\n{TITLE} — {SECTION}"] == post.texts("context")[-2:]
    [actions] = [b for b in post.blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("vote_up", str(answer_id)), ("vote_down", str(answer_id))]
    assert "Baidu's models fell short [1]." in post.text  # the notification fallback


# --- Socket Mode: the entry points -------------------------------------------------------------


def test_ask_is_acked_with_a_note_then_answered_in_place(bot, answerer):
    ack = push_command(bot, "/ask", "why not Baidu?", user="U1", reply_to="ask")

    assert ack["payload"]["text"] == LOOKING
    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL)
    assert status.text == "<@U1> asked: why not Baidu? :hourglass_flowing_sand:" and status.token == "bot"
    [update] = bot.wait_calls("chat.update", ts=status.response["ts"])
    assert update.texts("context")[:2] == ["<@U1> asked:", "why not Baidu?"]
    assert_rendered(update, answer_id=1)
    assert answerer.asked == [Asked("why not Baidu?", None, "slack", "U1")]
    assert [c.token for c in bot.calls_to("apps.connections.open")] == ["app"]


def test_empty_ask_gets_the_usage(bot, answerer):
    ack = push_command(bot, "/ask", "   ", user="U1", reply_to="ask")

    assert ack["payload"]["text"] == USAGE
    sentinel(bot)
    assert [a.question for a in answerer.asked] == ["sentinel?"]


def test_mention_is_answered_in_its_thread_with_a_working_sign(bot, answerer):
    push_event(bot, mention("why  not Baidu? &lt;3", user="U1", ts="100.000001"))

    [post] = answered_in(bot, "100.000001")
    assert_rendered(post, answer_id=1)
    bot.wait_calls("reactions.remove", timestamp="100.000001")
    around = [(c.method, c.params.get("name")) for c in bot.calls
              if "100.000001" in (c.params.get("timestamp"), c.params.get("thread_ts"))]
    assert around == [("reactions.add", "hourglass_flowing_sand"), ("chat.postMessage", None),
                      ("reactions.remove", "hourglass_flowing_sand")]
    assert answerer.asked == [Asked("why not Baidu? <3", None, "slack", "U1")]


def test_direct_message_is_answered(bot, answerer):
    push_event(bot, message("why not Baidu?", user="U1", ts="200.000001", channel="D0DM", channel_type="im"))

    [post] = answered_in(bot, "200.000001", channel="D0DM")
    assert_rendered(post, answer_id=1)
    assert answerer.asked == [Asked("why not Baidu?", None, "slack", "U1")]


def test_thread_follow_ups_need_no_mention_and_carry_the_previous_question(bot, answerer):
    push_event(bot, mention("why not Baidu?", user="U1", ts="300.000001"))
    answered_in(bot, "300.000001")
    push_event(bot, message("and Tencent?", user="U2", ts="300.000002", thread_ts="300.000001"))
    answered_in(bot, "300.000001", count=2)

    push_command(bot, "/ask", "who is Alibaba?", user="U3", reply_to="ask")
    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL, text=(
        "<@U3> asked: who is Alibaba? :hourglass_flowing_sand:"))
    bot.wait_calls("chat.update", ts=status.response["ts"])
    push_event(bot, message("and DeepSeek?", user="U1", ts="300.000010", thread_ts=status.response["ts"]))
    answered_in(bot, status.response["ts"])

    assert [(a.question, a.context) for a in answerer.asked] == [
        ("why not Baidu?", None), ("and Tencent?", "why not Baidu?"),
        ("who is Alibaba?", None), ("and DeepSeek?", "who is Alibaba?")]


def test_a_picture_or_thanks_in_a_thread_keeps_its_question(bot, answerer):
    push_event(bot, mention("why not Baidu?", user="U1", ts="310.000001"))
    answered_in(bot, "310.000001")
    push_event(bot, message("", user="U2", ts="310.000002", thread_ts="310.000001", subtype="file_share",
                            files=[{"id": "F1", "name": "chart.png"}]))
    push_event(bot, message("thanks! cc <@U0ALICE>", user="U2", ts="310.000003", thread_ts="310.000001"))
    push_event(bot, message("and Tencent?", user="U2", ts="310.000004", thread_ts="310.000001"))
    answered_in(bot, "310.000001", count=4)
    # events are handled concurrently: in whatever order, each leans on the real question
    assert sorted((a.question, a.context or "") for a in answerer.asked) == [
        ("", "why not Baidu?"), ("and Tencent?", "why not Baidu?"), ("thanks! cc <@U0ALICE>", "why not Baidu?"),
        ("why not Baidu?", "")]


def test_chatter_edits_and_bots_are_acknowledged_and_ignored(bot, answerer):
    push_event(bot, mention("why not Baidu?", user="U1", ts="400.000001"))
    answered_in(bot, "400.000001")

    push_event(bot, message("lunch anyone?", user="U2", ts="400.000002"))
    push_event(bot, message("in another thread", user="U2", ts="400.000003", thread_ts="399.000001"))
    push_event(bot, message("a bot's follow-up", user=None, ts="400.000004", thread_ts="400.000001",
                            bot_id="BOTHER", subtype="bot_message"))
    push_event(bot, message("an app posting as a user", user="UAPP", ts="400.000005", thread_ts="400.000001",
                            bot_id="BAPP"))
    push_event(bot, message("edited", user="U2", ts="400.000006", thread_ts="400.000001",
                            subtype="message_changed"))
    # A mention in the thread also arrives as app_mention, which answers it: not twice.
    push_event(bot, message("<@UBOT> again?", user="U2", ts="400.000007", thread_ts="400.000001"))
    sentinel(bot)

    assert [a.question for a in answerer.asked] == ["why not Baidu?", "sentinel?"]


def test_vote_buttons_record_one_changeable_vote_and_update_the_message(bot, answerer):
    push_event(bot, mention("why not Baidu?", user="U1", ts="500.000001"))
    [post] = answered_in(bot, "500.000001")

    bot.wait_ack(bot.push("interactive", block_action("vote_up", user="U2", posted=post,
                                                      response_url=bot.response_url("vote"))))
    [first] = bot.wait_calls("chat.update", ts=post.response["ts"])
    bot.wait_ack(bot.push("interactive", block_action("vote_down", user="U2", posted=first,
                                                      response_url=bot.response_url("vote"))))
    _, second = bot.wait_calls("chat.update", 2, ts=post.response["ts"])

    assert answerer.votes == [(1, "U2", 1), (1, "U2", -1)]
    assert first.texts("context")[-2:] == ["<@U2>", "Thanks, your 👍 is recorded."]
    assert second.texts("context")[-2:] == ["<@U2>", "Thanks, your 👎 is recorded."]
    assert [b["type"] for b in second.blocks] == ["section", "context", "actions", "context"]
    assert second.texts("section") == post.texts("section")


def test_a_vote_on_an_answer_missing_from_the_log_says_so(bot, answerer):
    answerer.replies["why not Baidu?"] = cited("why not Baidu?", answer_id=404)
    push_event(bot, mention("why not Baidu?", user="U1", ts="510.000001"))
    [post] = answered_in(bot, "510.000001")

    bot.push("interactive", block_action("vote_up", user="U2", posted=post,
                                         response_url=bot.response_url("vote")))

    [note] = bot.wait_responses("vote")
    assert note.params["text"] == VOTE_LOST and note.params["response_type"] == "ephemeral"
    assert bot.calls_to("chat.update") == []


def test_private_notes_escape_the_names_and_errors_they_show(bot, answerer, monkeypatch):
    # a note only the user sees is mrkdwn: an error naming a story file, as in "R&D <draft>.md",
    # lost its words, and a "<!channel>" in it pinged the channel
    failure = "No readable story in “R&D <draft>.md”; ask <!channel>."
    shown = "No readable story in “R&amp;D &lt;draft&gt;.md”; ask &lt;!channel&gt;."
    answerer.refresh_error = NoStories(failure)
    push_command(bot, "/refresh", "", user="UADMIN", reply_to="refresh")
    assert bot.wait_responses("refresh", 2)[-1].params["text"] == shown

    def vote(answer_id: int, user: str, value: int) -> bool:
        raise StoreUnavailable(failure)

    monkeypatch.setattr(answerer, "vote", vote)
    push_event(bot, mention("why not Baidu?", user="U1", ts="512.000001"))
    [post] = answered_in(bot, "512.000001")
    bot.push("interactive", block_action("vote_up", user="U2", posted=post,
                                         response_url=bot.response_url("vote")))
    [note] = bot.wait_responses("vote")
    assert note.params == {"text": shown, "response_type": "ephemeral", "replace_original": False}


def test_a_lost_vote_note_or_response_url_note_is_logged_without_the_url(bot, answerer, caplog):
    # a vote's note Slack refused (the message deleted) and a note a response_url refused
    # (expired, used up) or could not take were lost without a word in the log
    secret = "T0FAKE/1234/SeCrEtHoOkToKeN"  # a response_url's path posts in the channel for 30 minutes
    push_event(bot, mention("why not Baidu?", user="U1", ts="516.000001"))
    [post] = answered_in(bot, "516.000001")
    bot.fail("chat.update", "message_not_found")
    bot.fail("response_url", "expired_url")
    bot.push("interactive", block_action("vote_up", user="U2", posted=post,
                                         response_url=bot.response_url(secret)))
    push_command(bot, "/refresh", "", user="UMEMBER", reply_to=secret)  # refused, in a note
    unreachable = f"http://127.0.0.1:{closed_port()}/response/{secret}"
    bot.push("slash_commands", slash_command("/refresh", "", user="UMEMBER", response_url=unreachable))

    warned = logged(caplog, "bot.slack_app", 3)
    assert sorted(r.getMessage() for r in warned) == [
        "Slack: a note to a response_url failed: ClientConnectorError",
        "Slack: a note to a response_url failed: expired_url (HTTP 404)",
        f"Slack: the vote note in {GENERAL} failed: SlackApiError message_not_found (HTTP 200)"]
    assert all(r.levelno == logging.WARNING for r in warned)
    assert "SeCrEtHoOkToKeN" not in caplog.text
    assert answerer.votes == [(1, "U2", 1)] and len(bot.responses(secret)) == 1  # tried once, as before


def test_a_failing_working_sign_does_not_cost_the_answer(bot, answerer):
    bot.fail("reactions.add", "missing_scope")
    bot.fail("reactions.remove", "no_reaction")

    push_event(bot, mention("why not Baidu?", user="U1", ts="515.000001"))

    assert_rendered(answered_in(bot, "515.000001")[0], answer_id=1)


def test_abstention_is_short_and_cites_nothing(bot, answerer):
    answerer.replies["the weather?"] = Answer(question="the weather?", text="The story doesn't say.",
                                              abstained=True, answer_id=7)
    push_event(bot, mention("the weather?", user="U1", ts="520.000001"))

    [post] = answered_in(bot, "520.000001")
    assert [b["type"] for b in post.blocks] == ["section", "actions"]
    assert post.texts("section") == ["The story doesn't say."]


def test_ask_where_the_bot_cannot_post_tells_the_asker(bot, answerer):
    bot.fail("chat.postMessage", "not_in_channel")

    push_command(bot, "/ask", "why not Baidu?", user="U1", reply_to="ask")

    [note] = bot.wait_responses("ask")
    assert note.params == {"text": text("cannot_post", error="not_in_channel"), "response_type": "ephemeral"}
    assert answerer.asked == []


# --- Socket Mode: streamed LLM answers ----------------------------------------------------------

STREAMED = ("Baidu's models", "Baidu's models fell short", "Baidu's models fell short [1].")


def assert_provisional(call: Call, text: str, asked_by: str | None = None) -> None:
    """A message showing an answer still being written: its text so far, marked, no buttons."""
    assert call.texts("section") == [text]
    assert call.texts("context") == ([f"<@{asked_by}> asked:", "why not Baidu?"] if asked_by else []) + [WRITING]
    assert not any(b["type"] == "actions" for b in call.blocks)


def test_streamed_ask_updates_the_status_in_place_then_shows_the_cited_answer(bot, answerer):
    answerer.streams["why not Baidu?"] = STREAMED
    push_command(bot, "/ask", "why not Baidu?", user="U1", reply_to="ask")

    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL)
    *partials, final = bot.wait_calls("chat.update", 4, ts=status.response["ts"])

    for call, text in zip(partials, STREAMED, strict=True):
        assert_provisional(call, text, asked_by="U1")
    assert final.texts("context")[:2] == ["<@U1> asked:", "why not Baidu?"]
    assert_rendered(final, answer_id=1)
    chat = [c.method for c in bot.calls if c.method.startswith("chat.")]
    assert chat == ["chat.postMessage"] + ["chat.update"] * 4  # nothing posted beyond the status


@pytest.mark.parametrize("entry", ["mention", "dm", "follow-up"])
def test_streamed_answer_is_posted_in_the_thread_updated_in_place_then_finalized(bot, answerer, entry):
    channel, thread = (("D0DM", "210.000001") if entry == "dm" else (GENERAL, "210.000001"))
    asked = "210.000002" if entry == "follow-up" else thread  # the ts of the streamed answer's question
    answerer.streams["why not Baidu?"] = STREAMED
    if entry == "mention":
        push_event(bot, mention("why not Baidu?", user="U1", ts=thread))
    elif entry == "dm":
        push_event(bot, message("why not Baidu?", user="U1", ts=thread, channel=channel, channel_type="im"))
    else:  # the thread's first answer is not streamed, the follow-up's is
        push_event(bot, mention("who is Alibaba?", user="U1", ts=thread))
        answered_in(bot, thread)
        push_event(bot, message("why not Baidu?", user="U1", ts=asked, thread_ts=thread))

    *_, first = answered_in(bot, thread, 2 if entry == "follow-up" else 1, channel=channel)
    *partials, final = bot.wait_calls("chat.update", 3, ts=first.response["ts"])
    bot.wait_calls("reactions.remove", channel=channel, timestamp=asked)

    for call, text in zip([first, *partials], STREAMED, strict=True):
        assert_provisional(call, text)
    assert_rendered(final, answer_id=2 if entry == "follow-up" else 1)
    assert len(bot.calls_to("chat.postMessage", thread_ts=thread)) == (2 if entry == "follow-up" else 1)
    # The working sign stays on the question until the final answer is in place.
    assert bot.calls[-1].method == "reactions.remove" and bot.calls[-2] is final


@pytest.mark.parametrize("entry", ["mention", "ask"])
def test_streamed_answer_that_fails_its_checks_is_replaced_by_the_extractive_fallback(bot, answerer, entry):
    answerer.streams["why not Baidu?"] = ("Baidu was", "Baidu was too slow [7].")
    note = ("(Written answer unavailable: citation [7] out of range (1 passages); "
            "showing the story's own words.)")
    fallback = Answer(question="why not Baidu?", text=f"{QUOTE} [1]", abstained=False, answer_id=5, note=note,
                      citations=cited("why not Baidu?").citations, mode="extractive (fallback: citation [7])")
    answerer.replies["why not Baidu?"] = fallback
    if entry == "mention":
        push_event(bot, mention("why not Baidu?", user="U1", ts="220.000001"))
        ts = answered_in(bot, "220.000001")[0].response["ts"]
    else:
        push_command(bot, "/ask", "why not Baidu?", user="U1", reply_to="ask")
        ts = bot.wait_calls("chat.postMessage", channel=GENERAL)[0].response["ts"]

    *_, final = bot.wait_calls("chat.update", 2 if entry == "mention" else 3, ts=ts)

    assert final.texts("section") == [f"{QUOTE} [1]"]
    assert note in final.texts("context") and WRITING not in final.texts("context")
    assert final.texts("context")[-2:] == ["*[1]*", f"“{QUOTE}”\n{TITLE} — {SECTION}"]
    assert "[7]" not in final.text.replace(escape(note), "")  # the unchecked text is gone
    assert [e["value"] for b in final.blocks if b["type"] == "actions" for e in b["elements"]] == ["5", "5"]


@pytest.mark.parametrize("entry", ["mention", "ask"])
def test_core_exception_after_streaming_replaces_the_streamed_text(bot, answerer, entry):
    answerer.streams["boom?"] = ("Baidu was",)
    answerer.replies["boom?"] = RuntimeError("kaput")
    if entry == "mention":
        push_event(bot, mention("boom?", user="U1", ts="230.000001"))
        ts = answered_in(bot, "230.000001")[0].response["ts"]
    else:
        push_command(bot, "/ask", "boom?", user="U1", reply_to="ask")
        ts = bot.wait_calls("chat.postMessage", channel=GENERAL)[0].response["ts"]

    *_, apology = bot.wait_for(lambda: [c for c in bot.calls_to("chat.update", ts=ts) if c.text == APOLOGY],
                               "the apology in place of the streamed text")
    assert apology.params["blocks"] == []  # the streamed blocks are cleared, not left under it
    assert len(bot.calls_to("chat.postMessage")) == 1


def test_a_follow_up_sent_while_the_answer_streams_is_recognised(bot, answerer):
    answerer.streams["why not Baidu?"] = STREAMED[:1]
    answerer.stream_gate = threading.Event()
    push_event(bot, mention("why not Baidu?", user="U1", ts="240.000001"))
    [streamed] = answered_in(bot, "240.000001")  # the text shows; the answer is not finished

    push_event(bot, message("and Tencent?", user="U2", ts="240.000002", thread_ts="240.000001"))
    answered_in(bot, "240.000001", 2)
    answerer.stream_gate.set()
    assert_rendered(bot.wait_calls("chat.update", ts=streamed.response["ts"])[0], answer_id=1)

    assert [(a.question, a.context) for a in answerer.asked] == [
        ("why not Baidu?", None), ("and Tencent?", "why not Baidu?")]


def test_a_follow_up_in_an_ask_status_thread_before_the_answer_is_recognised(bot, answerer):
    answerer.streams["who is Alibaba?"] = STREAMED[:1]
    answerer.stream_gate = threading.Event()
    push_command(bot, "/ask", "who is Alibaba?", user="U3", reply_to="ask")
    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL, text=(
        "<@U3> asked: who is Alibaba? :hourglass_flowing_sand:"))
    bot.wait_calls("chat.update", ts=status.response["ts"])  # the text shows; the answer is not finished

    push_event(bot, message("and DeepSeek?", user="U1", ts="245.000001", thread_ts=status.response["ts"]))
    answered_in(bot, status.response["ts"])
    answerer.stream_gate.set()
    bot.wait_calls("chat.update", 2, ts=status.response["ts"])

    assert [(a.question, a.context) for a in answerer.asked] == [
        ("who is Alibaba?", None), ("and DeepSeek?", "who is Alibaba?")]


# --- Socket Mode: /refresh -----------------------------------------------------------------------


@pytest.mark.parametrize("user", ["UADMIN", "UOWNER"])
def test_refresh_by_an_admin_reports_ephemerally(bot, answerer, user):
    ack = push_command(bot, "/refresh", "", user=user, reply_to="refresh")

    assert "payload" not in ack  # an empty ack: the messages follow
    started, report = bot.wait_responses("refresh", 2)
    assert started.params == {"text": REFRESH_STARTED, "response_type": "ephemeral"}
    assert report.params == {"text": FakeCore.REPORT.summary(), "response_type": "ephemeral"}
    assert answerer.refreshes == 1
    # Users in SLACK_ADMINS need no admin rights in the workspace (the fake does not even know
    # UADMIN); a workspace owner is recognised through users.info.
    assert {c.params["user"] for c in bot.calls_to("users.info")} == {user}


def test_refresh_failure_is_told_to_the_admin(bot, answerer):
    answerer.refresh_error = NoStories("The stories folder holds no readable story.")

    push_command(bot, "/refresh", "", user="UADMIN", reply_to="refresh")

    _, failed = bot.wait_responses("refresh", 2)
    assert failed.params == {"text": str(answerer.refresh_error), "response_type": "ephemeral"}


def test_refresh_by_a_non_admin_is_refused(bot, answerer):
    push_command(bot, "/refresh", "", user="UMEMBER", reply_to="refresh")

    [refusal] = bot.wait_responses("refresh")
    assert refusal.params == {"text": REFRESH_REFUSED, "response_type": "ephemeral"}
    assert bot.calls_to("users.info", user="UMEMBER")
    assert answerer.refreshes == 0


def test_a_second_refresh_while_one_runs_is_told_so(bot, answerer):
    answerer.refresh_gate = threading.Event()
    push_command(bot, "/refresh", "", user="UADMIN", reply_to="first")
    assert answerer.refresh_started.wait(10)

    push_command(bot, "/refresh", "", user="UADMIN", reply_to="second")
    [told] = bot.wait_responses("second")
    answerer.refresh_gate.set()

    assert told.params["text"] == REFRESH_RUNNING
    assert bot.wait_responses("first", 2)[-1].params["text"] == FakeCore.REPORT.summary()
    assert answerer.refreshes == 1


# --- Socket Mode: abuse and faults -------------------------------------------------------------


def test_retried_event_is_answered_once(bot, answerer):
    event = mention("why not Baidu?", user="U1", ts="600.000001")
    push_event(bot, event)
    answered_in(bot, "600.000001")

    push_event(bot, event, retry_attempt=1, retry_reason="timeout")
    sentinel(bot)

    assert len(bot.calls_to("chat.postMessage", thread_ts="600.000001")) == 1
    assert [a.question for a in answerer.asked] == ["why not Baidu?", "sentinel?"]


def test_rate_limit_answers_with_a_polite_note(fake, answerer, slack_settings):
    with socket_mode(build_app(answerer, slack_settings.model_copy(update={"rate": "1/3600"})), fake):
        push_event(fake, mention("why not Baidu?", user="U1", ts="700.000001"))
        answered_in(fake, "700.000001")
        push_event(fake, mention("and Tencent?", user="U1", ts="700.000002"))
        [note] = fake.wait_calls("chat.postEphemeral", user="U1")
        push_command(fake, "/ask", "and ByteDance?", user="U1", reply_to="ask")
        [ask_note] = fake.wait_responses("ask")
        push_event(fake, mention("why Alibaba?", user="U2", ts="700.000003"))
        answered_in(fake, "700.000003")

    assert note.params["thread_ts"] == "700.000002" and note.text.startswith("You're asking a lot")
    assert ask_note.params["response_type"] == "ephemeral"
    assert ask_note.params["text"].startswith("You're asking a lot")
    assert [a.question for a in answerer.asked] == ["why not Baidu?", "why Alibaba?"]


def test_a_rate_limited_web_api_call_is_retried_and_the_answer_arrives(bot, answerer):
    # Slack allows about one message a second per channel: a long answer's parts can meet a
    # 429 (Retry-After), which slack_sdk raises unless told to wait and retry
    bot.rate_limit("chat.postMessage")
    push_event(bot, mention("why not Baidu?", user="U1", ts="750.000001"))
    refused, post = answered_in(bot, "750.000001", count=2)
    assert refused.response["error"] == "ratelimited" and post.response["ok"]
    assert_rendered(post, answer_id=1)

    bot.rate_limit("chat.update")
    push_command(bot, "/ask", "and Tencent?", user="U1", reply_to="ask")
    status = bot.wait_calls("chat.postMessage", thread_ts=None)[0]
    refused, update = bot.wait_calls("chat.update", 2, ts=status.response["ts"])
    assert refused.response["error"] == "ratelimited" and update.texts("section") == post.texts("section")


INDEX_DOWN = "The story index is unavailable right now."


@pytest.mark.parametrize("error, shown", [(RuntimeError("vector store exploded"), APOLOGY),
                                          (StoreUnavailable(INDEX_DOWN), INDEX_DOWN)],
                         ids=["bug", "index-down"])
def test_core_exception_gets_a_visible_apology_and_a_logged_trace(bot, answerer, caplog, error, shown):
    answerer.replies["boom?"] = error
    push_event(bot, mention("boom?", user="U1", ts="800.000001"))

    [apology] = answered_in(bot, "800.000001")
    assert apology.text == shown and apology.blocks == []
    bot.wait_calls("reactions.remove", timestamp="800.000001")  # the working sign does not linger
    [record] = [r for r in caplog.records if r.name == "bot.chat" and str(error) in r.getMessage()
                or (r.exc_info and r.exc_info[1] is error)]
    if isinstance(error, StoreUnavailable):  # an expected condition: one warning line, no trace
        assert record.levelno == logging.WARNING and not record.exc_info
    else:
        assert record.levelno == logging.ERROR and record.exc_info[1] is error


def test_core_exception_on_ask_replaces_the_status_message(bot, answerer):
    answerer.replies["boom?"] = RuntimeError("kaput")
    push_command(bot, "/ask", "boom?", user="U1", reply_to="ask")

    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL)
    [update] = bot.wait_calls("chat.update", ts=status.response["ts"])
    assert update.text == APOLOGY


@pytest.mark.parametrize("entry", ["mention", "ask"])
def test_long_answer_is_split_within_slack_limits(bot, answerer, entry):
    words = [f"word{i}" for i in range(2500)]  # about 20,000 characters
    long_quote = " ".join(f"R&D<{i}>" for i in range(600))  # 4,000+ characters once escaped
    quotes = (long_quote, *(f"quote number {i}" for i in range(2, 61)))
    answerer.replies["long?"] = cited("long?", answer_id=9, text=" ".join(words) + " [1]", quotes=quotes)
    if entry == "mention":
        push_event(bot, mention("long?", user="U1", ts="850.000001"))
        thread, first = "850.000001", []
    else:  # the status message becomes the first part, the others go in its thread
        push_command(bot, "/ask", "long?", user="U1", reply_to="ask")
        thread = bot.wait_calls("chat.postMessage", thread_ts=None)[0].response["ts"]
        first = bot.wait_calls("chat.update", ts=thread)

    def has_buttons(post: Call) -> bool:
        return any(b["type"] == "actions" for b in post.blocks)

    bot.wait_for(lambda: any(map(has_buttons, bot.calls_to("chat.postMessage", thread_ts=thread))),
                 "the last part, with the buttons")
    posts = first + bot.calls_to("chat.postMessage", thread_ts=thread)

    assert len(posts) >= 2
    for post in posts:
        assert 0 < len(post.blocks) <= 50 and 0 < len(post.text) <= 3000
        assert all(len(text) <= 3000 for text in post.texts("section") + post.texts("context"))
    assert [has_buttons(post) for post in posts] == [False] * (len(posts) - 1) + [True]
    sections = " ".join(text for post in posts for text in post.texts("section"))
    assert sections.split() == [*words, "[1]"]  # every word whole, in order
    contexts = [text for post in posts for text in post.texts("context")]
    assert sum(text.startswith("*[") for text in contexts) == 60
    assert long_quote in " ".join(contexts)  # plain text, split between words only


def test_tokens_never_reach_the_logs(fake, answerer, slack_settings, capsys):
    # the real log output: what the project's handler (with its redaction filter) writes to
    # stderr, not caplog's records, which are captured before any redaction
    from bot.logs import setup_logging

    setup_logging(slack_settings, "DEBUG")
    # a failure whose message carries the secrets, as a library error echoing a request might
    answerer.replies["boom?"] = RuntimeError(f"auth failed for {BOT_TOKEN} via wss://x:{APP_TOKEN}@h {SIGNING_SECRET}")
    with socket_mode(build_app(answerer, slack_settings), fake):
        push_event(fake, mention("why not Baidu?", user="U1", ts="870.000001"))
        answered_in(fake, "870.000001")
        push_event(fake, mention("boom?", user="U1", ts="870.000002"))
        answered_in(fake, "870.000002")
        # a response_url (30 minutes to post in the channel), logged by slack_sdk at debug level
        push_command(fake, "/refresh", "", user="UADMIN", reply_to="T0FAKE/1234/SeCrEtHoOkToKeN")
        fake.wait_responses("T0FAKE/1234/SeCrEtHoOkToKeN", 2)

    err = capsys.readouterr().err
    assert "DEBUG" in err, "the test should have seen debug logs"
    assert "RuntimeError: auth failed for *** via wss://***@h ***" in err  # logged, redacted
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, "SeCrEtHoOkToKeN"):
        assert secret not in err
    assert "T0FAKE/1234/***" in err


# --- HTTP mode -----------------------------------------------------------------------------------


class SlackOverHttp:
    """Sends requests to the adapter's HTTP server the way Slack does."""

    def __init__(self, url: str):
        self.url = url

    def send(self, kind: str, payload: dict, timeout: float = 10, **headers: str) -> tuple[int, str]:
        body, content_type = http_body(kind, payload)
        return self.post(body, {"Content-Type": content_type, **signed_headers(body), **headers}, timeout=timeout)

    def post(self, body: str, headers: dict[str, str], url: str | None = None,
             timeout: float = 10) -> tuple[int, str]:
        request = urllib.request.Request(url or self.url, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


@pytest.fixture
def http(fake, answerer, slack_settings) -> Iterator[SlackOverHttp]:
    """The real Bolt app in HTTP mode (``bot.slack_http``) on a free port."""
    with LoopThread() as loop:
        runner = loop.run(serve(build_app(answerer, slack_settings), SIGNING_SECRET, host="127.0.0.1", port=0))
        yield SlackOverHttp(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
        loop.run(runner.cleanup())


def test_http_signed_requests_are_acked_and_answered(http, fake, answerer):
    status, body = http.send("events_api", {"type": "url_verification", "challenge": "c-123", "token": "t"})
    assert status == 200 and json.loads(body) == {"challenge": "c-123"}

    status, body = http.send("slash_commands", slash_command("/ask", "why not Baidu?", user="U1",
                                                             response_url=fake.response_url("ask")))
    assert (status, body) == (200, LOOKING)  # Slack shows a plain-text reply to the asker only
    [ask_status] = fake.wait_calls("chat.postMessage", channel=GENERAL)
    assert_rendered(fake.wait_calls("chat.update", ts=ask_status.response["ts"])[0], answer_id=1)

    status, _ = http.send("events_api", event_callback(mention("and Tencent?", user="U2", ts="900.000001"),
                                                       event_id="EvH1"))
    assert status == 200
    [post] = answered_in(fake, "900.000001")

    status, _ = http.send("interactive", block_action("vote_up", user="U2", posted=post,
                                                      response_url=fake.response_url("vote")))
    assert status == 200
    [update] = fake.wait_calls("chat.update", ts=post.response["ts"])
    assert update.texts("context")[-2:] == ["<@U2>", "Thanks, your 👍 is recorded."]
    assert answerer.votes == [(2, "U2", 1)]


@pytest.mark.parametrize("forge", ["bad-signature", "tampered-body", "stale-timestamp", "unsigned"])
def test_http_rejects_forged_and_stale_requests(http, fake, answerer, forge):
    body, content_type = http_body("slash_commands", slash_command(
        "/ask", "why not Baidu?", user="U1", response_url=fake.response_url("ask")))
    headers = {"bad-signature": signed_headers(body, secret="not-the-secret"),
               "tampered-body": signed_headers(body),
               "stale-timestamp": signed_headers(body, timestamp=int(time.time()) - 600),
               "unsigned": {}}[forge]
    if forge == "tampered-body":
        body = body.replace("U1", "UADMIN")

    status, _ = http.post(body, {"Content-Type": content_type, **headers})

    assert status == 401
    # Verification runs before any listener: nothing was started, nothing will be.
    assert answerer.asked == [] and fake.calls_to("chat.postMessage") == []


def test_http_retried_event_is_acked_without_redoing_the_work(http, fake, answerer):
    payload = event_callback(mention("why not Baidu?", user="U1", ts="910.000001"), event_id="EvRetry")
    assert http.send("events_api", payload)[0] == 200
    answered_in(fake, "910.000001")

    assert http.send("events_api", payload, **{"X-Slack-Retry-Num": "1",
                                               "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    assert http.send("events_api", event_callback(
        message("sentinel?", user="U9", ts="999.000001", channel="D0SENTINEL", channel_type="im"),
        event_id="EvSentinel"))[0] == 200
    answered_in(fake, "999.000001", channel="D0SENTINEL")

    assert len(fake.calls_to("chat.postMessage", thread_ts="910.000001")) == 1
    assert [a.question for a in answerer.asked] == ["why not Baidu?", "sentinel?"]


def test_http_server_only_serves_its_path_and_refuses_garbage(http):
    elsewhere = http.url.replace("/slack/events", "/elsewhere")
    assert http.post("{}", {"Content-Type": "application/json"}, url=elsewhere)[0] == 404
    garbage = "{not json"
    assert http.post(garbage, {"Content-Type": "application/json", **signed_headers(garbage)})[0] == 400


# --- run_slack -----------------------------------------------------------------------------------


@pytest.mark.parametrize("http_mode, tokens, named, unnamed", [
    (False, {}, ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"], ["SLACK_SIGNING_SECRET"]),
    (False, {"slack_bot_token": BOT_TOKEN}, ["missing SLACK_APP_TOKEN"], ["SLACK_BOT_TOKEN"]),
    (True, {"slack_bot_token": BOT_TOKEN, "slack_app_token": APP_TOKEN}, ["missing SLACK_SIGNING_SECRET"],
     ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"]),
    (False, {"slack_bot_token": BOT_TOKEN, "slack_app_token": BOT_TOKEN},
     ["SLACK_APP_TOKEN: got a value (hidden", "it should start with xapp-", "Basic Information > App-Level Tokens"],
     ["missing", BOT_TOKEN]),
], ids=["socket-nothing", "socket-no-app-token", "http-no-secret", "socket-wrong-app-token"])
def test_run_slack_names_what_is_missing(tmp_path, http_mode, tokens, named, unnamed):
    with pytest.raises(ConfigError) as err:  # a malformed token fails as the settings load
        settings = load_settings(needs=("chat", "slack"), data_dir=tmp_path / "data", stories_dir=STORIES, **tokens)
        run_slack(settings, FakeCore(), http=http_mode)

    for text in named:
        assert text in str(err.value)
    for text in unnamed:
        assert text not in str(err.value)
    if "missing" in named[0]:  # each missing token: where it is found in the app's settings
        assert "https://api.slack.com/apps" in str(err.value)


# --- the real core -------------------------------------------------------------------------------


def test_real_answerer_answers_why_not_baidu_through_slack(fake, shared_answerer, slack_settings):
    with socket_mode(build_app(shared_answerer, slack_settings), fake):
        push_event(fake, mention("why not Baidu?", user="U1", ts="950.000001"))
        [post] = fake.wait_calls("chat.postMessage", thread_ts="950.000001", timeout=120)

    assert post.text not in (APOLOGY, "") and "[1]" in " ".join(post.texts("section"))
    contexts = post.texts("context")
    quotes = [contexts[i + 1] for i, text in enumerate(contexts[:-1]) if text.startswith("*[")]
    assert quotes and any("Baidu" in quote for quote in quotes)


def test_chat_tokens_in_a_question_are_shown_readable_and_never_taken_for_names(fake, shared_answerer,
                                                                             slack_settings):
    # a labelled token with a space (<#C…|general chat>, <!subteam^…|@design team>) survived
    # the markup cleaning: the answer said "the story does not mention C024BE91L", and the
    # question was echoed with its raw tokens
    question = "What did <!subteam^S0DESIGN|@design team> tell <#C024BE91L|general chat> about Baidu?"
    with socket_mode(build_app(shared_answerer, slack_settings), fake):
        push_command(fake, "/ask", question, user="U1", reply_to="ask")
        [status] = fake.wait_calls("chat.postMessage", channel=GENERAL, timeout=120)
        [update] = fake.wait_calls("chat.update", ts=status.response["ts"], timeout=120)

    # the status and the answer show the words as typed (the answer showed the question as
    # the core read it: "What did tell about Baidu?")
    assert status.texts("context")[:2] == ["<@U1> asked:", "What did @design team tell #general chat about Baidu?"]
    assert update.texts("context")[:2] == ["<@U1> asked:", "What did @design team tell #general chat about Baidu?"]
    shown = " ".join(update.texts("section") + update.texts("context")) + update.text
    assert not any(raw in shown for raw in ("S0DESIGN", "C024BE91L", "<!", "<#", "&lt;"))
    assert "Baidu" in " ".join(update.texts("context"))  # answered from the story


@pytest.mark.parametrize("token", ["slack_bot_token", "slack_app_token"])
def test_run_slack_names_a_token_slack_refuses(slack_settings, token):
    prefix = {"slack_bot_token": "xoxb-", "slack_app_token": "xapp-"}[token]
    revoked = slack_settings.model_copy(update={token: SecretStr(prefix + "revoked-42")})

    with pytest.raises(ConfigError) as err:
        run_slack(revoked, FakeCore())

    assert token.upper() in str(err.value) and "revoked-42" not in str(err.value)


def test_http_malformed_bodies_get_400_not_a_dropped_connection(http, answerer):
    from http.client import HTTPConnection
    from urllib.parse import urlparse

    url = urlparse(http.url)
    for headers, body in (({"Content-Length": "abc"}, b""), ({}, b"\xff\xfe not utf-8")):
        conn = HTTPConnection(url.hostname, url.port, timeout=10)
        conn.putrequest("POST", url.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", headers.get("Content-Length", str(len(body))))
        conn.endheaders()
        if body:
            conn.send(body)
        assert conn.getresponse().status == 400
        conn.close()
    assert answerer.asked == []


# --- HTTP mode under abuse -------------------------------------------------------------------------


def _half_sent(url: str, *, body: bool) -> socket.socket:
    """A connection that sends part of a request and then nothing: half a head, or a whole
    head and half of the body it announces."""
    parts = urlparse(url)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
    conn.sendall((head + "Content-Length: 100\r\n\r\n{\"type\":" if body else head).encode())
    return conn


def test_http_answers_a_signed_request_while_50_half_sent_requests_hang(http, fake, answerer):
    hanging = [_half_sent(http.url, body=i % 2 == 0) for i in range(50)]
    try:
        status, _ = http.send("slash_commands", slash_command("/ask", "why not Baidu?", user="U1",
                                                              response_url=fake.response_url("ask")), timeout=5)
        assert status == 200
        fake.wait_calls("chat.update")
    finally:
        for conn in hanging:
            conn.close()
    assert [a.question for a in answerer.asked] == ["why not Baidu?"]


@pytest.mark.parametrize("body", [False, True], ids=["half-a-head", "half-a-body"])
def test_http_drops_an_idle_half_sent_request(http, body):
    conn = _half_sent(http.url, body=body)
    conn.settimeout(20)
    try:
        reply = conn.recv(1024)  # a timeout here (socket.timeout) fails the test
    finally:
        conn.close()
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("body, headers", [
    ("[1, 2, 3]", None),  # signed, but a JSON array
    ('{"type": "event_callback"}', {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}),
    ("payload=%5B%5D", None),  # an interactivity form whose payload is a JSON array
], ids=["json-array", "non-numeric-timestamp", "form-payload-array"])
def test_http_malformed_requests_get_400(http, answerer, body, headers):
    content_type = "application/x-www-form-urlencoded" if body.startswith("payload") else "application/json"
    status, _ = http.post(body, {"Content-Type": content_type, **(headers or signed_headers(body))})
    assert status == 400 and answerer.asked == []


def test_http_a_replayed_signed_request_is_answered_once(http, fake, answerer):
    body, content_type = http_body("slash_commands", slash_command("/ask", "why not Baidu?", user="U1",
                                                                   response_url=fake.response_url("ask")))
    headers = {"Content-Type": content_type, **signed_headers(body)}
    assert http.post(body, headers) == (200, LOOKING)
    assert http.post(body, headers) == (200, "")  # acknowledged, not handled again
    assert http.send("events_api", event_callback(
        message("sentinel?", user="U9", ts="999.000001", channel="D0SENTINEL", channel_type="im"),
        event_id="EvSentinel"))[0] == 200
    answered_in(fake, "999.000001", channel="D0SENTINEL")
    assert [a.question for a in answerer.asked] == ["why not Baidu?", "sentinel?"]


@pytest.mark.parametrize("mode", [[], ["--http"]], ids=["socket-mode", "http"])
def test_a_dead_slack_web_api_at_start_up_is_one_sentence(mode):
    url = f"http://127.0.0.1:{closed_port()}/api/"
    done = run_cli("slack", *mode, "--port", "0", env={
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": url, "STORYBOT_STORIES": str(STORIES)})
    assert done.returncode == 1 and "Traceback" not in done.stderr and "WARNING" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: Slack's Web API at {url} did not answer; check the network (or " \
                                  "SLACK_API_URL) and start again."


def test_user_and_story_text_is_plain_text_and_an_unsure_answer_is_hedged(bot, answerer):
    question = "*why* not <!channel> <https://evil.example|Baidu>?"
    answerer.replies[question] = cited(question, answer_id=5, quotes=("R&D *matters* <@U0BOSS>",),
                                       confidence="low")
    push_command(bot, "/ask", question, user="U1", reply_to="ask")

    [status] = bot.wait_calls("chat.postMessage", channel=GENERAL)
    [update] = bot.wait_calls("chat.update", ts=status.response["ts"])
    shown = "*why* not @channel <https://evil.example|Baidu>?"  # a mention as read, no formatting
    for call in (status, update):  # the question, shown as typed: no formatting, no ping, no link
        elements = [e for b in call.blocks if b["type"] == "context" for e in b["elements"]]
        assert {"type": "plain_text", "text": shown, "emoji": False} in elements
        assert "<!channel>" not in call.text and "&lt;https://evil.example|Baidu&gt;" in call.text
    [quote] = [e for b in update.blocks if b["type"] == "context" for e in b["elements"] if "R&D" in e["text"]]
    assert quote["type"] == "plain_text"
    assert [b["type"] for b in update.blocks][:3] == ["context", "context", "section"]
    assert update.blocks[1]["elements"][0]["text"] == f":warning: *{text('hedge')}*"
    assert update.blocks[2]["text"]["type"] == "plain_text"


def test_the_manifest_asks_for_the_scopes_the_bot_uses_and_no_more():
    manifest = (Path(__file__).parent.parent / "docs" / "slack-manifest.yml").read_text()

    def listed(key: str) -> set[str]:  # the "- item" lines under "key:" (no YAML parser needed)
        lines = [ln.split("#")[0].strip() for ln in manifest.split(f"{key}:", 1)[1].splitlines()[1:]]
        return {ln[2:] for ln in itertools.takewhile(lambda ln: ln.startswith("- "), lines)}

    # Web API method -> scope, for every method the bot calls (see the fake's method table).
    used = {"chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.postEphemeral": "chat:write",
            "reactions.add": "reactions:write", "reactions.remove": "reactions:write", "users.info": "users:read"}
    events = {"app_mention": "app_mentions:read", "message.im": "im:history", "message.channels": "channels:history"}
    assert listed("bot_events") == set(events)
    assert listed("bot") == set(used.values()) | set(events.values()) | {"commands"}
    assert "command: /ask" in manifest and "command: /refresh" in manifest


def _sigint_as_a_terminal_sends_it():
    # a process started in the background by a script inherits SIGINT ignored (the shell's
    # rule for background jobs), and then no Ctrl-C reaches it: the test's parent may be one
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_storybot_slack_connects_without_bolt_warnings_and_stops_cleanly(fake, stop):
    # SIGTERM (systemd, docker stop) ended the process at once, its index left open
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": fake.api_url,
           "STORYBOT_STORIES": str(STORIES)}
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "slack"], env=env, stderr=subprocess.PIPE, text=True,
                           preexec_fn=_sigint_as_a_terminal_sends_it)
    try:
        fake.wait_for(lambda: fake.acks or fake._sockets, "the bot's Socket Mode connection", timeout=60)
    finally:
        bot.send_signal(stop)
        try:
            _, stderr = bot.communicate(timeout=30)
        finally:
            bot.kill()  # never left running after a failure
    assert "storybot stopped the Slack bot" in stderr, stderr
    assert "unused" not in stderr and "Traceback" not in stderr and "WARNING" not in stderr
    assert [c.token for c in fake.calls_to("apps.connections.open")][:1] == ["app"]


def test_http_refuses_a_body_over_a_megabyte_with_413(http, answerer):
    body = json.dumps({"type": "event_callback", "padding": "x" * (1 << 20)})
    assert http.post(body, {"Content-Type": "application/json", **signed_headers(body)})[0] == 413
    assert answerer.asked == []
