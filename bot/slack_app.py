"""The Slack adapter: ``/ask``, ``/refresh``, mentions, DMs, thread follow-ups and votes.

Each listener acks at once (Slack's 3-second deadline), then calls the shared
:class:`bot.chat.ChatSession` with a destination saying how Slack shows, sends and edits.
One Bolt ``AsyncApp`` serves Socket Mode (Bolt's ``AsyncSocketModeHandler``) and HTTP mode
(``bot.slack_http``); Block Kit is ``bot.slack_blocks``.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import slack_blocks as blocks
from bot.chat import BaseDestination, ChatSession, Core, Undeliverable, reaching
from bot.config import Settings, refused
from bot.recent import Recent
from bot.slack_http import serve
from bot.types import Answer

log = logging.getLogger(__name__)
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}  # edits, joins, bot posts: no questions
Respond = Callable[..., Awaitable[Any]]
RATE_LIMIT_RETRIES = 3  # Web API calls refused with a 429, retried after Slack's Retry-After


class _Reply(BaseDestination):
    """Where replies go. A message (``asked``: its ts) is answered in its thread, with an
    hourglass on it meanwhile; an ``/ask`` by a status message in the channel, which the answer
    replaces. A streamed answer is one message updated in place, then replaced. Private notes
    go through ``respond`` (a command's or a button's ``response_url``) when given. A vote's
    note goes on the message it ``judges``."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str, *, thread: str = "", asked: str = "",
                 question: str = "", respond: Respond | None = None, judges: dict | None = None):
        self.client, self.channel, self.user = client, channel, user
        self.thread, self.asked, self.question, self.respond = thread, asked, question, respond
        self.judges = judges
        self.ts = ""  # the message to replace: the status, or the streamed answer
        self.asked_by = None if asked else user  # /ask: the answer says who asked

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        if not self.asked:
            try:
                status = blocks.render_status(self.user, self.question, self.lang)
                self.ts = self.thread = await self._post(status)
            except SlackApiError as exc:
                log.warning("Slack: cannot post in %s: %s", self.channel, error := exc.response.get("error"))
                await self.send(ChatSession.text("cannot_post", self.lang, error=error), private=True)
                raise Undeliverable from exc
            yield
            return
        await self._react("reactions_add")
        try:
            yield
        finally:
            await self._react("reactions_remove")

    async def _react(self, method: str) -> None:
        try:
            await getattr(self.client, method)(channel=self.channel, timestamp=self.asked,
                                               name=blocks.WORKING_EMOJI)
        except SlackApiError as exc:  # a missing scope or a reaction gone must not cost the answer
            log.warning("Slack: %s failed: %s", method, exc.response.get("error"))

    async def _post(self, message: dict) -> str:
        return (await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread or None,
                                                   **message))["ts"]

    async def _put(self, message: dict) -> None:
        """Post ``message``, or put it in place of the one shown so far (an update keeps the
        blocks it is not given: a text-only message clears them)."""
        if not self.ts:
            self.ts = await self._post(message)
        else:
            await self.client.chat_update(channel=self.channel, ts=self.ts, **({"blocks": []} | message))

    async def show(self, text: str) -> None:
        await self._put(blocks.render_provisional(text, self.lang, asked_by=self.asked_by,
                                                  question=self.question))

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        # a note's text is mrkdwn, and may name a story, a file or an error: "<!channel>" in it
        # would ping the channel, "R&D <draft>" lose its words, unless escaped
        if private and self.respond:
            await self._respond(blocks.escape(reply))
        elif private:
            await self.client.chat_postEphemeral(channel=self.channel, user=self.user,
                                                 text=blocks.escape(reply), thread_ts=self.thread)
        else:
            messages = (blocks.render_answer(reply, asked_by=self.asked_by, question=self.question)
                        if isinstance(reply, Answer)
                        else [{"text": blocks.escape(reply)}])  # a short text the bot wrote
            await self._put(messages[0])
            for message in messages[1:]:
                await self._post(message)
        return self.threads()

    async def _respond(self, text: str) -> None:
        """``text`` as an ephemeral note through ``respond``. A failure is logged, not raised (the
        note is lost either way), by its type and HTTP status: never the error's text, which can
        quote the response_url, whose path is a secret that posts in the channel."""
        try:
            response = await self.respond(text=text, response_type="ephemeral")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack: a note to a response_url failed: %s", type(exc).__name__)
            return
        if response.status_code != 200:  # expired (after 30 minutes) or used up: slack_sdk raises nothing
            # only Slack's error code ("expired_url", bare or as JSON): a proxy's page may quote the URL
            code = re.fullmatch(r'\s*(\w{1,40})\s*|\{.*"error": ?"(\w{1,40})".*\}', response.body or "", re.S)
            error = code[1] or code[2] if code else "refused"
            log.warning("Slack: a note to a response_url failed: %s (HTTP %d)", error, response.status_code)

    def threads(self) -> Sequence[Hashable]:
        return [(self.channel, self.thread)] if self.thread else []

    async def edit(self, text: str) -> None:
        if self.judges is None:
            return await super().edit(text)
        note = blocks.with_vote_note(self.judges.get("blocks", []), self.user, text)
        try:
            await self.client.chat_update(channel=self.channel, ts=self.judges["ts"],
                                          text=self.judges.get("text", ""), blocks=note)
        except SlackApiError as exc:  # the message deleted, say: the vote is recorded all the same
            log.warning("Slack: the vote note in %s failed: %s %s (HTTP %d)", self.channel,
                        type(exc).__name__, exc.response.get("error"), exc.response.status_code)


class SlackBot:
    """The Slack side of one core: the listeners it registers on ``app``, over one :class:`ChatSession`."""

    def __init__(self, core: Core, settings: Settings, app: AsyncApp):
        self.chat = ChatSession(core, platform="slack", admins=settings.slack_admins,
                                rate=settings.rate_limit)
        self._locales = Recent(1000)  # user -> Slack locale ("" when Slack won't say)
        app.middleware(self.skip_repeats_and_bots)
        app.command("/ask")(self.on_ask)
        app.command("/refresh")(self.on_refresh)
        app.event("app_mention")(self.on_message)
        app.event("message", matchers=[self.is_question])(self.on_message)
        app.event("message")(_ack)  # every other message the bot sees: chatter, edits, joins
        app.action(re.compile(r"^vote_(up|down)$"))(self.on_vote)

    async def skip_repeats_and_bots(self, body: dict, ack: Callable, next_: Callable) -> Any:
        """Middleware: ack, and go no further for, bots' events and events seen before (Slack
        redelivers what it thinks failed: ``X-Slack-Retry-Num``, ``retry_attempt``)."""
        event, event_id = body.get("event") or {}, body.get("event_id")
        repeat = event_id and not self.chat.first_sighting(event_id)
        if body.get("type") == "event_callback" and (event.get("bot_id") or repeat
                                                     or event.get("subtype") == "bot_message"):
            return await ack()
        return await next_()

    async def is_question(self, event: dict, context: Any) -> bool:
        """A DM, or a reply without the bot's mention (``app_mention`` takes those) in a thread
        the bot answered in."""
        if event.get("subtype") not in PERSON_SUBTYPES or not event.get("user"):
            return False
        thread = (event["channel"], event.get("thread_ts"))
        return event.get("channel_type") == "im" or (
            bool(thread[1]) and f"<@{context.bot_user_id}>" not in event.get("text", "")
            and bool(self.chat.context([thread])))

    async def on_message(self, ack: Callable, event: dict, client: AsyncWebClient, context: Any) -> None:
        await ack()
        channel, user, ts = event["channel"], event["user"], event["ts"]
        question, thread = _question(event.get("text", ""), context.bot_user_id), event.get("thread_ts") or ts
        reply, key = _Reply(client, channel, user, thread=thread, asked=ts), (channel, thread)
        await self.chat.ask(reply, question, user=user, keys=[key], context_keys=[key])

    async def on_ask(self, ack: Callable, command: dict, client: AsyncWebClient, respond: Respond) -> None:
        question, user = _question(command.get("text", "")), command["user_id"]
        lang = self.chat.lang(user, question=question)
        await ack(text=self.chat.text("looking", lang) + " :mag:" if question
                  else self.chat.text("usage", lang))
        if question:
            reply = _Reply(client, command["channel_id"], user, question=question, respond=respond)
            await self.chat.ask(reply, question, user=user)

    async def on_refresh(self, ack: Callable, command: dict, client: AsyncWebClient,
                         respond: Respond) -> None:
        """For workspace admins and owners, and the users in SLACK_ADMINS."""
        await ack()
        user = command["user_id"]

        async def workspace_admin() -> bool:
            profile = (await client.users_info(user=user))["user"]
            return bool(profile.get("is_admin") or profile.get("is_owner"))

        notes = _Reply(client, command["channel_id"], user, respond=respond)
        await self.chat.refresh(notes, user=user, locale=await self._locale(client, user),
                                platform_admin=workspace_admin)

    async def on_vote(self, ack: Callable, body: dict, action: dict, client: AsyncWebClient,
                      respond: Respond) -> None:
        await ack()
        user = body["user"]["id"]
        notes = _Reply(client, body["channel"]["id"], user, judges=body["message"],
                       respond=functools.partial(respond, replace_original=False))
        await self.chat.vote(notes, user=user, answer_id=int(action["value"]),
                             value=1 if action["action_id"] == "vote_up" else -1,
                             locale=await self._locale(client, user))

    async def _locale(self, client: AsyncWebClient, user: str) -> str | None:
        """The user's Slack locale ("fr-FR"), looked up once."""
        if (locale := self._locales.get(user)) is None:
            with contextlib.suppress(SlackApiError):
                locale = (await client.users_info(user=user, include_locale=True))["user"].get("locale")
            self._locales.put(user, locale := locale or "")
        return locale or None


async def _ack(ack: Callable) -> None:
    await ack()


def _question(text: str, bot_user_id: str | None = None) -> str:
    """A Slack text without the bot's mention and Slack's escaping (the core reads the rest)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


def build_app(core: Core, settings: Settings) -> AsyncApp:
    """The Bolt app answering with ``core``, its Web API client at ``SLACK_API_URL``."""
    # A token, not a client: given both, Bolt warns "`token` will be unused" at every start
    # when SLACK_BOT_TOKEN is set. The secret is "" rather than None: Bolt would read the env.
    app = AsyncApp(token=settings.secret("slack_bot_token"), name="storybot",
                   signing_secret=settings.secret("slack_signing_secret"))
    app.client.base_url = settings.slack_api_url.rstrip("/") + "/"
    # Slack posts about one message a second per channel: a long answer's parts can get a 429,
    # which slack_sdk raises (losing the answer) unless told to wait Retry-After and try again.
    # Each request's client copies these handlers.
    app.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    SlackBot(core, settings, app)
    return app


def run_slack(settings: Settings, core: Core, *, http: bool = False, port: int = 3000,
              host: str = "127.0.0.1") -> None:
    """Run the Slack bot over ``core`` until interrupted (the CLI opens and closes the core):
    Socket Mode, or HTTP mode on ``host:port``. Tokens are checked first; a token Slack
    refuses is a ``ConfigError`` naming it, a Web API that does not answer a ``PlatformUnreachable``."""
    settings.require("Slack HTTP mode" if http else "Slack Socket Mode")
    asyncio.run(_serve(build_app(core, settings), settings, http=http, host=host, port=port))


async def _serve(app: AsyncApp, settings: Settings, *, http: bool, host: str, port: int) -> None:
    await _contact(app.client.auth_test(), "slack_bot_token", app.client.base_url)
    if http:
        runner = await serve(app, settings.secret("slack_signing_secret"), host=host, port=port)
        log.info("Slack HTTP mode: listening on http://%s:%d/slack/events", host, port)
        running, stop = asyncio.Event().wait(), runner.cleanup  # the server runs until Ctrl-C
    else:
        token = settings.secret("slack_app_token")  # checked first: the handler retries a refusal for ever
        await _contact(app.client.apps_connections_open(app_token=token), "slack_app_token",
                       app.client.base_url)
        handler = AsyncSocketModeHandler(app, app_token=token)
        running, stop = handler.start_async(), handler.close_async
    try:
        await running
    finally:
        await stop()


async def _contact(call: Awaitable[Any], token: str, url: str) -> None:
    """One Web API call at start-up; a refusal is a ``ConfigError`` naming the ``token`` setting."""
    try:
        with reaching("Slack's Web API", url, "SLACK_API_URL"):
            await call
    except SlackApiError as exc:
        raise refused(token, exc.response.get("error")) from None
