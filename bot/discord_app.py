"""The Discord adapter: ``/ask``, ``/refresh``, @mentions, DMs and follow-ups over one ``Answerer``.

Thin by design: each handler parses the event, runs the blocking core in a worker thread
(``asyncio.to_thread``) so heartbeats keep going, and renders the ``Answer`` for Discord. Every
interaction is acknowledged at once (a deferred "thinking" response or an immediate
ephemeral reply) and answered by follow-up, so Discord's 3-second deadline never matters.

The CLI imports this module lazily (``storybot discord`` calls :func:`run_discord`), so
``discord`` is only loaded by the command that needs it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.recent import Recent
from bot.errors import (
    APOLOGY,
    ConfigError,
    RateLimited,
    RefreshInProgress,
    StorybotError,
    StoryIndexError,
    user_message,
)
from bot.ratelimit import RateLimiter
from bot.render import citation_label, split_text
from bot.types import Answer, Citation

if TYPE_CHECKING:  # the real Answerer pulls in the index; only its type is needed here
    from bot.answer import Answerer
    from bot.config import Settings

log = logging.getLogger(__name__)

DISCORD_API_BASE = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

# Discord's message limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000  # all embeds of one message together
EMBEDS_PER_MESSAGE = 10
LABEL_CHARS = 256  # a citation's story and section heading, at most

QUESTION_ECHO_CHARS = 200
WRITING = "\n-# writing…"  # marks a streamed LLM answer whose text is not checked yet
CONVERSATIONS_KEPT = 10_000
INTERACTIONS_KEPT = 1_000

NOT_ALLOWED = "Only members with Manage Server (or a storybot admin) can refresh the story index."
ALREADY_REFRESHING = "A refresh is already running; its report will appear when it finishes."
REFRESHING = "Refreshing the story index… questions are still answered from the current index meanwhile."
VOTED = {1: "Thanks, your 👍 is recorded.", -1: "Thanks, your 👎 is recorded."}
UNKNOWN_ANSWER = "That answer is no longer in the log, so the vote was not recorded."

# Answers quote news text: it must never ping @everyone, a role or a user it happens to contain.
# Only the author of a question is pinged, by the reply that answers it.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)

_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")


# --- rendering: Answer -> Discord messages --------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One Discord message of an answer: text content and citation embeds, within limits."""

    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()


Outgoing = list[tuple[Reply, discord.ui.View | None]]  # replies to send, each with its buttons or none


def render(answer: Answer, *, echo_question: bool = False) -> list[Reply]:
    """The messages that show ``answer`` on Discord, in order.

    The text (with its ``[n]`` markers) is the content, split at paragraph, line or word
    boundaries into messages of at most 2,000 characters. The citations follow as embeds
    (quote, story title, section): at most 4,096 characters of description per embed, 10
    embeds and 6,000 characters per message; a quote too long for one embed continues in the
    next, cut between words. An abstention is its text alone. ``echo_question`` starts with
    the question quoted (a slash command's reply does not otherwise show it).
    """
    text = answer.text
    if answer.note:
        text = f"{text}\n-# {answer.note}"
    if echo_question:
        text = _echo(answer.question) + text
    contents = split_text(text, CONTENT_LIMIT)
    if answer.abstained or not answer.citations:
        return [Reply(content=c) for c in contents or [APOLOGY]]  # never send nothing
    groups = _embed_groups(_source_embeds(answer.citations))
    # The sources come after the text: the first group rides with the last text message.
    replies = [Reply(content=c) for c in contents[:-1]]
    replies.append(Reply(content=contents[-1] if contents else None, embeds=groups[0]))
    replies.extend(Reply(embeds=group) for group in groups[1:])
    return replies


def provisional(text: str, question: str | None = None) -> str:
    """One message's content for the text of an LLM answer still being written (streamed, not
    checked yet): cut at a word to fit, marked as in progress, after the ``question`` if given."""
    head = _echo(question) if question is not None else ""
    return head + _shorten(text, CONTENT_LIMIT - len(head) - len(WRITING)) + WRITING


def _echo(question: str) -> str:
    return f"> {discord.utils.escape_markdown(_one_line(_shorten(question, QUESTION_ECHO_CHARS)))}\n"


def _source_embeds(citations: tuple[Citation, ...]) -> list[discord.Embed]:
    blocks = [block for c in citations for block in _citation_blocks(c)]
    descriptions = _pack(blocks, EMBED_DESCRIPTION_LIMIT)
    return [
        discord.Embed(title="Sources" if i == 0 else None, description=d, colour=discord.Colour.blurple())
        for i, d in enumerate(descriptions)
    ]


def _citation_blocks(c: Citation) -> list[str]:
    """One citation as description blocks: a heading (number, story and section) over the quote.
    A quote longer than one embed is continued in further blocks, cut between words."""
    label = discord.utils.escape_markdown(_shorten(citation_label(c), LABEL_CHARS))
    heading = f"**[{c.n}]** " + (f"[{label}]({c.url})" if c.url else f"*{label}*")
    # Quotes are shown on one line so each piece is a single "> " block quote.
    quote = discord.utils.escape_markdown(_one_line(c.quote))
    room = EMBED_DESCRIPTION_LIMIT - len(heading) - len("\n> …") - len(" (continued)")
    pieces = split_text(quote, room)
    last = len(pieces) - 1
    return [
        f"{heading}{' (continued)' if i else ''}\n> {piece}{'…' if i < last else ''}"
        for i, piece in enumerate(pieces)
    ]


def _pack(blocks: list[str], limit: int, sep: str = "\n\n") -> list[str]:
    """Greedily join ``blocks`` (each at most ``limit`` long) into texts of at most ``limit``."""
    packed: list[str] = []
    for block in blocks:
        if packed and len(packed[-1]) + len(sep) + len(block) <= limit:
            packed[-1] += sep + block
        else:
            packed.append(block)
    return packed


def _embed_groups(embeds: list[discord.Embed]) -> list[tuple[discord.Embed, ...]]:
    """Embeds grouped per message: at most 10 and 6,000 characters (``len(embed)``) each."""
    groups: list[list[discord.Embed]] = [[]]
    total = 0
    for embed in embeds:
        if groups[-1] and (total + len(embed) > EMBED_TOTAL_LIMIT or len(groups[-1]) == EMBEDS_PER_MESSAGE):
            groups.append([])
            total = 0
        groups[-1].append(embed)
        total += len(embed)
    return [tuple(g) for g in groups]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _message_kwargs(reply: Reply, view: discord.ui.View | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"content": reply.content, "embeds": list(reply.embeds)}
    if view is not None:  # a webhook follow-up's send() fails on view=None, so leave it out
        kwargs["view"] = view
    return kwargs


def _with_votes(replies: list[Reply], answer: Answer | None) -> Outgoing:
    """Pairs each reply with the view to send it with: the 👍/👎 buttons go under the last one."""
    view = vote_view(answer.answer_id) if answer is not None and answer.answer_id is not None else None
    last = len(replies) - 1
    return [(reply, view if i == last else None) for i, reply in enumerate(replies)]


# --- where an answer goes ---------------------------------------------------------------------


class _Destination(Protocol):
    async def show(self, text: str) -> None:
        """Show the text of an answer still being written (an LLM answer, streamed)."""

    async def send(self, replies: Outgoing) -> list[discord.Message]:
        """Send the final answer, replacing any text shown so far; returns the messages."""


class _FollowUps:
    """Where an /ask answer goes: the deferred response, then follow-up messages. A streamed
    answer is shown by editing the deferred response, which the final answer then replaces."""

    def __init__(self, interaction: discord.Interaction, question: str, private: bool):
        self.interaction, self.question, self.private = interaction, question, private
        self._edited = False
        self._order = asyncio.Lock()  # edits land in the order the text grew

    async def show(self, text: str) -> None:
        async with self._order:
            await self.interaction.edit_original_response(content=provisional(text, self.question))
            self._edited = True

    async def send(self, replies: Outgoing) -> list[discord.Message]:
        sent: list[discord.Message] = []
        for i, (reply, view) in enumerate(replies):
            kwargs = _message_kwargs(reply, view)
            # The first follow-up takes the place of the "thinking" response, unless that
            # response was already edited (then a follow-up would be a new message).
            if i == 0 and self._edited:
                sent.append(await self.interaction.edit_original_response(**kwargs))
            else:
                sent.append(await self.interaction.followup.send(**kwargs, ephemeral=self.private, wait=True))
        return sent


class _Replies:
    """Where the answer to a message goes: a reply to it, then further messages in its
    channel. A streamed answer is shown in the reply, which the final answer then edits."""

    def __init__(self, message: discord.Message):
        self.message = message
        self._first: discord.Message | None = None
        self._order = asyncio.Lock()  # one reply, edits in the order the text grew

    async def show(self, text: str) -> None:
        async with self._order:
            if self._first is None:
                self._first = await self.message.reply(provisional(text))
            else:
                self._first = await self._first.edit(content=provisional(text))

    async def send(self, replies: Outgoing) -> list[discord.Message]:
        sent: list[discord.Message] = []
        for i, (reply, view) in enumerate(replies):
            kwargs = _message_kwargs(reply, view)
            if i > 0:
                sent.append(await self.message.channel.send(**kwargs))
            elif self._first is not None:
                sent.append(await self._first.edit(**kwargs))
            else:
                sent.append(await self.message.reply(**kwargs))
        return sent


# --- feedback buttons -------------------------------------------------------------------------


VOTE_ID = r"storybot:vote:(?P<way>up|down):(?P<answer_id>\d+)"


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
    """A 👍 or 👎 button under an answer. The custom id carries the answer id, so a click is
    understood from the id alone, including on answers sent before the bot restarted."""

    def __init__(self, answer_id: int, way: str):
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if way == "up" else "👎",
                custom_id=f"storybot:vote:{way}:{answer_id}",
            )
        )
        self.answer_id = answer_id
        self.value = 1 if way == "up" else -1

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> VoteButton:
        return cls(int(match["answer_id"]), match["way"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return _bot(interaction).first_sighting(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        await _bot(interaction).record_vote(interaction, self.answer_id, self.value)


def _bot(interaction: discord.Interaction) -> StoryBotClient:
    # Only StoryBotClient registers these handlers, so the interaction's client is one.
    return cast(StoryBotClient, interaction.client)


def vote_view(answer_id: int) -> discord.ui.View:
    """The 👍/👎 buttons for one answer (persistent: no timeout)."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


# --- the client -------------------------------------------------------------------------------


class _Tree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return _bot(interaction).first_sighting(interaction)


def use_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py at this REST base and gateway (Discord's own when ``None``).

    discord.py keeps both as class attributes (``Route.BASE``, which the interaction webhooks
    use too, and ``DiscordWebSocket.DEFAULT_GATEWAY``), so this is process-wide: one bot per
    process. Resumes go to the ``resume_gateway_url`` the gateway itself hands out.
    """
    discord.http.Route.BASE = (api_base or DISCORD_API_BASE).rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url or DISCORD_GATEWAY_URL)


class StoryBotClient(discord.Client):
    """The storybot Discord bot, over one ``Answerer`` (see the contract in ``bot.answer``).

    ``settings`` gives the guild to sync commands to (``discord_guild_id``; global when
    unset), the admins who may /refresh, the per-user rate limit and the Discord endpoints.
    Handlers never let an exception pass silently: the user gets a short message and
    unexpected errors are logged with their trace.
    """

    def __init__(self, answerer: Answerer, settings: Settings):
        intents = discord.Intents.none()
        intents.guilds = True  # channel and thread cache: is this message in a thread we answered in?
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = True  # follow-ups in threads come without a mention
        super().__init__(intents=intents, allowed_mentions=SAFE_MENTIONS)
        use_endpoints(settings.discord_api_base, settings.discord_gateway_url)
        self.answerer = answerer
        self.guild_id = settings.discord_guild_id
        self.admins = frozenset(settings.admins)
        self.limiter = RateLimiter(*settings.rate_limit)
        self.tree = _Tree(self)
        _add_commands(self.tree, self)
        self.add_dynamic_items(VoteButton)
        # Message, thread or DM id -> the last question answered there (follow-up context).
        self.conversations = Recent(CONVERSATIONS_KEPT)
        self._seen_interactions = Recent(INTERACTIONS_KEPT)
        self._synced = False
        self._refreshing = False

    async def setup_hook(self) -> None:
        """Sync the slash commands, once per client. ``setup_hook`` runs at login, never on a
        gateway reconnect, and the flag keeps a second login from syncing again: Discord
        rate-limits command syncs hard."""
        if self._synced:
            return
        guild = discord.Object(self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)  # guild commands appear at once
        synced = await self.tree.sync(guild=guild)
        self._synced = True
        log.info("Synced %d commands %s", len(synced), f"to guild {self.guild_id}" if guild else "globally")

    async def on_ready(self) -> None:
        log.info("Connected to Discord as %s (%d guilds)", self.user, len(self.guilds))

    def first_sighting(self, interaction: discord.Interaction) -> bool:
        """True the first time this interaction id is seen. Discord may deliver one twice
        (around a resume); the copy must not be answered (or logged) again."""
        if self._seen_interactions.add(interaction.id):
            return True
        log.info("Ignoring repeated interaction %s", interaction.id)
        return False

    # --- questions ------------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        """/ask: rate-check, defer (ephemeral when ``private``), answer, follow up."""
        try:
            self.limiter.check(str(interaction.user.id))
        except RateLimited as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        out = _FollowUps(interaction, question, private)
        context = self.conversations.get(interaction.channel_id)
        replies, answer = await self._answer(question, context, interaction.user.id, out, echo_question=True)
        sent = await out.send(_with_votes(replies, answer))
        if not private:  # nobody can reply to an ephemeral answer, and a thread must not pick it up
            self._remember(question, sent, interaction.channel)

    async def on_message(self, message: discord.Message) -> None:
        """Answer an @mention, a DM, or a follow-up (a reply to one of our answers, or a
        message in a thread or DM we answered in), replying to the message."""
        if message.author.bot or self.user is None:
            return
        context = self._previous_question(message)
        if context is None and not self._addressed(message):
            return
        try:
            self.limiter.check(str(message.author.id))
        except RateLimited as exc:
            await message.reply(str(exc))
            return
        question = re.sub(rf"<@!?{self.user.id}>", "", message.content).strip()
        out = _Replies(message)
        async with message.channel.typing():
            replies, answer = await self._answer(question, context, message.author.id, out)
        sent = await out.send(_with_votes(replies, answer))
        self._remember(question, sent, message.channel)

    def _addressed(self, message: discord.Message) -> bool:
        return message.guild is None or self.user in message.mentions

    def _previous_question(self, message: discord.Message) -> str | None:
        reference = message.reference.message_id if message.reference else None
        return self.conversations.get(reference) or self.conversations.get(message.channel.id)

    def _remember(self, question: str, sent: Sequence[discord.Message], channel: object) -> None:
        for message in sent:
            self.conversations.put(message.id, question)
        # In a thread or a DM every later message continues the conversation; in a plain
        # channel only replies to our answers do.
        if isinstance(channel, (discord.Thread, discord.DMChannel)):
            self.conversations.put(channel.id, question)

    async def _answer(self, question: str, context: str | None, user_id: int, out: _Destination, *,
                      echo_question: bool = False) -> tuple[list[Reply], Answer | None]:
        """The core's answer rendered for Discord, or a short apology when the core fails.
        The text of an LLM answer is shown in ``out`` while it is being written."""
        loop = asyncio.get_running_loop()
        shown: list[concurrent.futures.Future[None]] = []

        def on_text(text: str) -> None:  # in the worker thread, at most about once a second
            shown.append(asyncio.run_coroutine_threadsafe(out.show(text), loop))

        try:
            answer = await asyncio.to_thread(self.answerer.answer, question, context=context,
                                             source="discord", user=str(user_id), on_text=on_text)
        except Exception as exc:  # noqa: BLE001 (any failure gets an apology, never silence)
            return [Reply(content=_failure(exc))], None
        finally:
            # The final answer replaces the provisional text: it must land after every edit.
            for outcome in await asyncio.gather(*map(asyncio.wrap_future, shown), return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.warning("Could not show the answer being written: %s", outcome)
        return render(answer, echo_question=echo_question), answer

    # --- votes ----------------------------------------------------------------------------

    async def record_vote(self, interaction: discord.Interaction, answer_id: int, value: int) -> None:
        """A 👍/👎 click: record the user's vote (one per user, changeable), tell them privately."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        try:
            known = await asyncio.to_thread(self.answerer.vote, answer_id, str(interaction.user.id), value)
        except Exception as exc:  # noqa: BLE001 (as for answers)
            text = _failure(exc)
        else:
            text = VOTED[value] if known else UNKNOWN_ANSWER
        await interaction.followup.send(text, ephemeral=True)

    # --- /refresh -------------------------------------------------------------------------

    def may_refresh(self, interaction: discord.Interaction) -> bool:
        """Members with Manage Server, or users listed in ``STORYBOT_ADMINS``."""
        return interaction.permissions.manage_guild or str(interaction.user.id) in self.admins

    async def refresh(self, interaction: discord.Interaction) -> None:
        """/refresh: answer ephemerally at once, reindex in a thread, then edit in the report."""
        if not self.may_refresh(interaction):
            await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
            return
        if self._refreshing or self.answerer.refreshing:
            await interaction.response.send_message(ALREADY_REFRESHING, ephemeral=True)
            return
        self._refreshing = True  # set before the first await: a second /refresh sees it
        try:
            await interaction.response.send_message(REFRESHING, ephemeral=True)
            await interaction.edit_original_response(content=await self._refresh_report())
        finally:
            self._refreshing = False

    async def _refresh_report(self) -> str:
        try:
            report = await asyncio.to_thread(self.answerer.refresh)
        except RefreshInProgress:
            return ALREADY_REFRESHING
        except Exception as exc:  # noqa: BLE001 (the report tells the admin what went wrong)
            return _failure(exc)
        return report.summary()


def _add_commands(tree: app_commands.CommandTree, client: StoryBotClient) -> None:
    # Not restricted with default_member_permissions: that would hide /refresh from the
    # STORYBOT_ADMINS who lack Manage Server. The check happens when it runs.
    @tree.command(name="ask", description="Ask a question about the story; the answer quotes it.")
    @app_commands.describe(question="Your question about the story",
                           private="Only you see the answer (default: everyone in the channel)",
                           story="Only this story (its id, e.g. apple-alibaba-ia-iphone-chine.fr)")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False,
                  story: str | None = None) -> None:
        # the core reads a leading "story:<id>" (the same syntax works typed in any message)
        await client.ask(interaction, f"story:{story} {question}" if story else question, private)

    @tree.command(name="refresh", description="Re-read the stories and rebuild the index (server managers).")
    async def refresh(interaction: discord.Interaction) -> None:
        await client.refresh(interaction)


def _failure(exc: BaseException) -> str:
    """The text to show for a failed call into the core. Our own errors are expected
    conditions (index unavailable, ...) and logged briefly; anything else with its trace."""
    if isinstance(exc, (StorybotError, StoryIndexError)):
        log.warning("%s: %s", type(exc).__name__, exc)
    else:
        log.exception("The answering core failed")  # called from an except block: logs the trace
    return user_message(exc)


# --- running it -------------------------------------------------------------------------------


def discord_token(settings: Settings) -> str:
    """The bot token of ``settings``, checked for shape before anything connects.

    Raises ``ConfigError`` naming ``DISCORD_TOKEN`` (never showing its value) when it is
    missing or is not three dot-separated base64 parts.
    """
    secret = settings.discord_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        raise ConfigError(
            "DISCORD_TOKEN is not set: copy the bot token from the Discord Developer Portal "
            "(your application > Bot > Reset Token) into DISCORD_TOKEN."
        )
    if token.lower().startswith("bot "):
        raise ConfigError("DISCORD_TOKEN must be the bare token, without the 'Bot ' prefix.")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ConfigError(
            "DISCORD_TOKEN does not look like a bot token (three dot-separated parts); "
            "copy it again from the Developer Portal (Bot > Reset Token)."
        )
    return token


def run_discord(settings: Settings, answerer: "Answerer | None" = None) -> None:
    """Run the Discord bot until interrupted (``storybot discord``).

    Validates ``DISCORD_TOKEN`` first, then builds the real ``Answerer`` from ``settings``.
    Raises ``ConfigError`` for a missing, malformed or rejected token and for a Message
    Content intent that is not enabled in the Developer Portal. Logging is the caller's: the
    CLI's ``bot.logs.setup_logging`` redacts every secret, so discord.py's own handler (which
    would log each line twice) is not installed.
    """
    token = discord_token(settings)
    from bot.answer import Answerer  # opens the index and its model: only once the token looks right

    own = answerer is None  # an answerer passed in is the caller's to close
    answerer = Answerer.from_settings(settings) if own else answerer
    try:
        StoryBotClient(answerer, settings).run(token, log_handler=None)
    except discord.LoginFailure:
        raise ConfigError(
            "Discord rejected DISCORD_TOKEN (401 Unauthorized): reset the token in the Developer "
            "Portal and update DISCORD_TOKEN."
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the Message Content intent: enable it in the Developer Portal "
            "(your application > Bot > Privileged Gateway Intents), then start again."
        ) from None
    finally:
        if own:
            answerer.close()
