"""The Slack adapter: ``/ask``, ``/refresh``, mentions, DMs, thread follow-ups and votes.

Thin by design: each listener acknowledges at once (Slack's 3-second deadline), then turns
the payload into a call on the shared :class:`bot.chat.ChatSession` with a destination that
knows how Slack shows, sends and edits (``_Reply`` for questions, ``_Notes`` for /refresh
and votes). One Bolt ``AsyncApp`` serves Socket Mode (Bolt's ``AsyncSocketModeHandler``)
and HTTP mode (``bot.slack_http``); Block Kit is ``bot.slack_blocks``.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import ChatSession, Core, PlatformUnreachable, Undeliverable
from bot.errors import ConfigError
from bot.recent import Recent
from bot.slack_blocks import (
    WORKING_EMOJI,
    render_answer,
    render_provisional,
    render_status,
    text_message,
    with_vote_note,
)
from bot.types import Answer

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
# Ordinary messages from people; edits, joins, bot posts and the like are not questions.
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}
# Where each setting is found in the app's settings at https://api.slack.com/apps.
TOKENS = {"SLACK_BOT_TOKEN": ("slack_bot_token", "xoxb-", "OAuth & Permissions > Bot User OAuth Token"),
          "SLACK_APP_TOKEN": ("slack_app_token", "xapp-",
                              "Basic Information > App-Level Tokens (scope connections:write)"),
          "SLACK_SIGNING_SECRET": ("slack_signing_secret", "", "Basic Information > App Credentials > Signing Secret")}


class _Reply:
    """Where the answer to a question goes. For a message: its thread, with an hourglass on
    the message meanwhile. For ``/ask`` (``thread`` None): a status message posted in the
    channel, which the answer then replaces (its thread takes follow-ups). A streamed answer
    is shown in one message, updated in place, which the final answer replaces."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str, lang: str, *, thread: str | None = None,
                 asked: str | None = None, question: str = "", respond: Callable[..., Awaitable[Any]] | None = None):
        self.client, self.channel, self.user, self.lang = client, channel, user, lang
        self.thread, self.asked, self.question, self.respond = thread, asked, question, respond
        self.ts: str | None = None  # the message to replace: the status, or the streamed answer
        self.asked_by = None if asked else user  # /ask: its message says who asked

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        if self.asked is None:
            try:
                posted = await self.client.chat_postMessage(channel=self.channel,
                                                            **render_status(self.user, self.question, self.lang))
            except SlackApiError as exc:
                error = exc.response.get("error")
                log.warning("Slack: cannot post in channel %s: %s", self.channel, error)
                await self.send(ChatSession.text("cannot_post", self.lang, error=error), private=True)
                raise Undeliverable from exc
            self.ts = self.thread = posted["ts"]
            yield
            return
        await self._react("reactions_add")
        try:
            yield
        finally:
            await self._react("reactions_remove")

    async def _react(self, method: str) -> None:
        try:
            await getattr(self.client, method)(channel=self.channel, timestamp=self.asked, name=WORKING_EMOJI)
        except SlackApiError as exc:  # a missing scope or a reaction gone must not cost the answer
            log.warning("Slack: %s failed: %s", method, exc.response.get("error"))

    async def show(self, text: str) -> None:
        message = render_provisional(text, self.lang, asked_by=self.asked_by, question=self.question)
        if self.ts is None:
            self.ts = (await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread,
                                                          **message))["ts"]
        else:
            await self.client.chat_update(channel=self.channel, ts=self.ts, **message)

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        if private and self.respond is not None:
            await self.respond(text=reply, response_type="ephemeral")
        elif private:
            await self.client.chat_postEphemeral(channel=self.channel, user=self.user, thread_ts=self.thread,
                                                 text=reply)
        else:
            first, *rest = ([text_message(reply)] if isinstance(reply, str)
                            else render_answer(reply, asked_by=self.asked_by))
            if self.ts is None:
                await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread, **first)
            else:  # an update keeps the blocks it is not given: a text-only message must clear them
                await self.client.chat_update(channel=self.channel, ts=self.ts, **({"blocks": []} | first))
            for message in rest:
                await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread, **message)
        return [(self.channel, self.thread)] if self.thread else []

    async def edit(self, text: str) -> None:
        raise NotImplementedError("a question's answer is never edited by a note")


class _Notes:
    """Replies only the user sees, through a command's or a button's ``response_url``;
    ``edit`` is ``on_edit`` when given (a vote's note on the message), else a new note."""

    def __init__(self, respond: Callable[..., Awaitable[Any]], on_edit: Callable[[str], Awaitable[Any]] | None = None):
        self.respond, self.on_edit = respond, on_edit

    async def send(self, reply: Answer | str, *, private: bool = True) -> Sequence[Hashable]:
        await self.respond(text=reply, response_type="ephemeral")
        return []

    async def edit(self, text: str) -> None:
        await (self.on_edit or self.send)(text)


class SlackBot:
    """The Slack side of one core: the listeners, over one :class:`ChatSession`."""

    def __init__(self, core: Core, settings: Settings):
        self.chat = ChatSession(core, platform="slack", admins=settings.slack_admins, rate=settings.rate_limit)
        self._locales = Recent(1000)  # user -> Slack locale ("" when unknown)

    def register(self, app: AsyncApp) -> None:
        """Attach the middleware and listeners to ``app``."""
        app.middleware(self.skip_repeats_and_bots)
        app.command("/ask")(self.on_ask)
        app.command("/refresh")(self.on_refresh)
        app.event("app_mention")(self.on_message)
        app.event("message", matchers=[self.is_question_message])(self.on_message)
        app.event("message")(_ack)  # every other message the bot sees: chatter, edits, joins
        app.action(re.compile(r"^vote_(up|down)$"))(self.on_vote)

    async def skip_repeats_and_bots(self, body: dict, ack: Callable, next_: Callable) -> Any:
        """Middleware: acknowledge, and go no further for, events from bots and events seen
        before (Slack redelivers an event it thinks failed: ``X-Slack-Retry-Num`` over HTTP,
        ``retry_attempt`` in Socket Mode; the event id tells)."""
        if body.get("type") == "event_callback":
            event, event_id = body.get("event") or {}, body.get("event_id")
            if (event.get("bot_id") or event.get("subtype") == "bot_message"
                    or (event_id and not self.chat.first_sighting(event_id))):
                return await ack()
        return await next_()

    async def is_question_message(self, event: dict, context: Any) -> bool:
        """A DM to the bot, or a reply in a thread the bot answered in that does not mention it
        (the ``app_mention`` event answers those)."""
        if event.get("subtype") not in PERSON_SUBTYPES or not event.get("user"):
            return False
        if event.get("channel_type") == "im":
            return True
        thread = event.get("thread_ts")
        return (bool(thread) and f"<@{context.bot_user_id}>" not in event.get("text", "")
                and self.chat.context([(event["channel"], thread)]) is not None)

    async def on_message(self, ack: Callable, event: dict, client: AsyncWebClient, context: Any) -> None:
        """A mention, a DM or a thread follow-up: answered in the thread of the asking message."""
        await ack()
        channel, user, ts = event["channel"], event["user"], event["ts"]
        question = _question(event.get("text", ""), context.bot_user_id)
        thread = (channel, event.get("thread_ts") or ts)
        reply = _Reply(client, channel, user, self.chat.lang(user, question=question), thread=thread[1], asked=ts)
        await self.chat.ask(reply, question, user=user, keys=[thread], context_keys=[thread])

    async def on_ask(self, ack: Callable, command: dict, client: AsyncWebClient, respond: Callable) -> None:
        """``/ask``: the question goes into the channel at once, and its message becomes the answer."""
        question, user = _question(command.get("text", "")), command["user_id"]
        lang = self.chat.lang(user, question=question)
        await ack(text=ChatSession.text("looking", lang) + " :mag:" if question else ChatSession.text("usage", lang))
        if question:
            await self.chat.ask(_Reply(client, command["channel_id"], user, lang, question=question, respond=respond),
                                question, user=user)

    async def on_refresh(self, ack: Callable, command: dict, client: AsyncWebClient, respond: Callable) -> None:
        """``/refresh``, for workspace admins and owners and the users in SLACK_ADMINS."""
        await ack()
        user = command["user_id"]

        async def workspace_admin() -> bool:
            profile = (await client.users_info(user=user))["user"]
            return bool(profile.get("is_admin") or profile.get("is_owner"))

        await self.chat.refresh(_Notes(respond), user=user, locale=await self._locale(client, user),
                                platform_admin=workspace_admin)

    async def on_vote(self, ack: Callable, body: dict, action: dict, client: AsyncWebClient, respond: Callable) -> None:
        """A 👍/👎 click: the vote is recorded and noted on the message."""
        await ack()
        user, message = body["user"]["id"], body["message"]

        async def note(text: str) -> None:
            await client.chat_update(channel=body["channel"]["id"], ts=message["ts"], text=message.get("text", ""),
                                     blocks=with_vote_note(message.get("blocks", []), user, text))

        await self.chat.vote(_Notes(functools.partial(respond, replace_original=False), note), user=user, answer_id=int(action["value"]),
                             value=1 if action["action_id"] == "vote_up" else -1,
                             locale=await self._locale(client, user))

    async def _locale(self, client: AsyncWebClient, user: str) -> str | None:
        """The user's Slack locale ("fr-FR"), looked up once (None when Slack won't say)."""
        if (locale := self._locales.get(user)) is None:
            try:
                locale = (await client.users_info(user=user, include_locale=True))["user"].get("locale") or ""
            except SlackApiError:
                locale = ""
            self._locales.put(user, locale)
        return locale or None


async def _ack(ack: Callable) -> None:
    await ack()


def _question(text: str, bot_user_id: str | None = None) -> str:
    """The question in a Slack text: the bot's own mention removed, Slack's escaping undone
    (the core turns the rest of the markup into plain text)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


# --- running it ------------------------------------------------------------------------------


def build_app(core: Core, settings: Settings) -> AsyncApp:
    """The Bolt app answering with ``core``, its Web API client at ``SLACK_API_URL`` (when
    set). Slack is not contacted until the app serves (see :func:`check_web_api`)."""
    # The token is given, not a client: with both, Bolt warns "`token` will be unused" at
    # every start when SLACK_BOT_TOKEN is in the environment. "" for the signing secret
    # rather than None: given None, Bolt would read it from the environment itself.
    app = AsyncApp(token=_secret(settings.slack_bot_token), signing_secret=_secret(settings.slack_signing_secret) or "",
                   name="storybot")
    app.client.base_url = (settings.slack_api_url or SLACK_API_URL).rstrip("/") + "/"
    SlackBot(core, settings).register(app)
    return app


def check_tokens(settings: Settings, *, http: bool) -> None:
    """Raise ``ConfigError`` naming each missing or malformed Slack setting (never a value)
    and where in the app's settings it is found. Socket Mode needs SLACK_BOT_TOKEN and
    SLACK_APP_TOKEN; HTTP mode SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET."""
    needed = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN"]
    values = {name: _secret(getattr(settings, TOKENS[name][0])) for name in needed}
    missing = [name for name in needed if not values[name]]
    malformed = [name for name in needed if values[name] and not values[name].startswith(TOKENS[name][1])]
    problems = (["missing " + ", ".join(missing)] if missing else []) + (
        ["malformed " + ", ".join(f"{n} (should start with {TOKENS[n][1]})" for n in malformed)] if malformed else [])
    if problems:
        where = "; ".join(f"{name}: {TOKENS[name][2]}" for name in missing + malformed)
        raise ConfigError(f"Slack {'HTTP mode' if http else 'Socket Mode'}: {'; '.join(problems)}. "
                          f"In your app's settings at https://api.slack.com/apps: {where}.")


async def check_web_api(client: AsyncWebClient) -> None:
    """``auth.test`` once at start-up: a refused token is a ``ConfigError``, a Web API that
    does not answer a ``PlatformUnreachable``, each one sentence."""
    try:
        await client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}); copy it again from "
                          f"your app's settings: {TOKENS['SLACK_BOT_TOKEN'][2]}.") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        raise PlatformUnreachable(f"Slack's Web API at {client.base_url} did not answer; check the network "
                                  "(or SLACK_API_URL) and start again.") from None


def run_slack(settings: Settings, *, http: bool = False, port: int = 3000, host: str = "127.0.0.1") -> None:
    """Run the Slack bot until interrupted: Socket Mode, or HTTP mode on ``host:port``.

    The tokens are checked first (``ConfigError`` naming what is missing); only then is the
    index opened and Slack contacted. A token Slack refuses is a ``ConfigError`` naming it too.
    """
    check_tokens(settings, http=http)
    from bot.answer import Answerer  # the index backends: imported only once the tokens look right

    answerer = Answerer.from_settings(settings)
    try:
        asyncio.run(_serve(build_app(answerer, settings), settings, http=http, host=host, port=port))
    finally:
        answerer.close()


async def _serve(app: AsyncApp, settings: Settings, *, http: bool, host: str, port: int) -> None:
    await check_web_api(app.client)
    if http:
        from bot.slack_http import serve

        runner = await serve(app, _secret(settings.slack_signing_secret) or "", host=host, port=port)
        log.info("Slack HTTP mode: listening on http://%s:%d/slack/events", host, port)
        try:
            await asyncio.Event().wait()  # until Ctrl-C
        finally:
            await runner.cleanup()
        return
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    app_token = _secret(settings.slack_app_token)
    try:  # the handler itself would retry a refused token for ever
        await app.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise ConfigError(f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}); create one in your "
                          f"app's settings: {TOKENS['SLACK_APP_TOKEN'][2]}.") from None
    handler = AsyncSocketModeHandler(app, app_token=app_token)
    try:
        await handler.start_async()
    finally:
        await handler.close_async()
