"""The Discord adapter: ``/ask``, ``/refresh``, @mentions, DMs, follow-ups and 👍/👎 buttons.

Each handler turns an event into a call on the shared :class:`bot.chat.ChatSession`, with a
destination saying how Discord shows, sends and edits. Interactions are acknowledged at once
(deferred, or an ephemeral reply), so Discord's 3-second deadline never matters.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import TYPE_CHECKING, Any, cast

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

import prompts
from bot.chat import BaseDestination, ChatSession, Core, reaching
from bot.discord_render import provisional, render
from bot.errors import ConfigError
from bot.types import Answer

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

DISCORD_API_BASE = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"
# Answers quote news text: it must never ping @everyone, a role or a user it happens to contain.
# Only the author of a question is pinged, by the reply that answers it.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
PORTAL = "the Discord Developer Portal (your application)"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")


def _messages(reply: Answer | str, echo: bool) -> list[dict[str, Any]]:
    """Send/edit arguments for an answer or a text; the 👍/👎 buttons go under the last
    message of a logged answer (and only there: a webhook's send() fails on view=None)."""
    if isinstance(reply, str):
        return [{"content": reply}]
    out = render(reply, echo_question=echo)
    if reply.answer_id is not None:
        out[-1]["view"] = vote_view(reply.answer_id)
    return out


class _Interaction(BaseDestination):
    """A slash command or a button. Notes only the user sees answer it, or replace its deferred
    response; ``edit`` replaces the first reply. An /ask defers, then follows up (ephemeral when
    ``private``); a streamed answer edits the deferred response, which the answer replaces."""

    def __init__(self, interaction: discord.Interaction, question: str = "", private: bool = True,
                 lang: str = "en"):
        self.interaction, self.question, self.private, self.lang = interaction, question, private, lang
        self._edited = False

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        await self.interaction.response.defer(thinking=True, ephemeral=self.private)
        yield

    async def show(self, text: str) -> None:
        await self.edit(provisional(text, self.lang, self.question))

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        if not self.interaction.response.is_done():  # a note before any work
            await self.interaction.response.send_message(cast(str, reply), ephemeral=True)
            return []
        sent = []
        for i, kwargs in enumerate(_messages(reply, echo=bool(self.question))):
            if i == 0 and (self._edited or private):
                sent.append(await self.interaction.edit_original_response(**kwargs))
            else:
                sent.append(await self.interaction.followup.send(**kwargs, ephemeral=self.private, wait=True))
        return [] if self.private else [m.id for m in sent]  # nobody can reply to an ephemeral answer

    async def edit(self, text: str) -> None:
        await self.interaction.edit_original_response(content=text)
        self._edited = True


class _Replies(BaseDestination):
    """A message: answered by a reply (shown as it streams, then edited), then messages in its channel."""

    def __init__(self, message: discord.Message, lang: str):
        self.message, self.lang = message, lang
        self._first: discord.Message | None = None

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.message.channel.typing()

    async def show(self, text: str) -> None:
        if self._first is None:
            self._first = await self.message.reply(provisional(text, self.lang))
        else:
            self._first = await self._first.edit(content=provisional(text, self.lang))

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        sent = []
        for i, kwargs in enumerate(_messages(reply, echo=False)):
            if i > 0:
                sent.append(await self.message.channel.send(**kwargs))
            else:
                sent.append(await (self._first.edit if self._first else self.message.reply)(**kwargs))
        return [m.id for m in sent]


VOTE_ID = r"storybot:vote:(?P<way>up|down):(?P<id>\d+)"


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
    """A 👍 or 👎 button under an answer. The custom id carries the answer id, so a click is
    understood from the id alone, including on answers sent before the bot restarted."""

    def __init__(self, answer_id: int, way: str):
        super().__init__(discord.ui.Button(emoji="👍" if way == "up" else "👎",
                                           custom_id=f"storybot:vote:{way}:{answer_id}"))
        self.answer_id, self.value = answer_id, 1 if way == "up" else -1

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> VoteButton:
        return cls(int(match["id"]), match["way"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return _bot(interaction).chat.first_sighting(interaction.id)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await _bot(interaction).chat.vote(_Interaction(interaction), user=str(interaction.user.id),
                                          answer_id=self.answer_id, value=self.value,
                                          locale=str(interaction.locale))


def _bot(interaction: discord.Interaction) -> StoryBotClient:
    return cast(StoryBotClient, interaction.client)  # only StoryBotClient registers these handlers


def vote_view(answer_id: int) -> discord.ui.View:
    """The 👍/👎 buttons for one answer (persistent: no timeout)."""
    view = discord.ui.View(timeout=None)
    for way in ("up", "down"):
        view.add_item(VoteButton(answer_id, way))
    return view


class _Tree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return _bot(interaction).chat.first_sighting(interaction.id)


class StoryBotClient(discord.Client):
    """The storybot Discord bot over one core. ``settings`` gives the guild to sync commands
    to (``DISCORD_GUILD_ID``; global when unset), the admins, the rate limit, the endpoints."""

    def __init__(self, core: Core, settings: Settings):
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning at start
        intents = discord.Intents.none()
        intents.guilds = True  # channel and thread cache: is this message in a thread we answered in?
        intents.guild_messages = intents.dm_messages = True
        intents.message_content = True  # follow-ups in threads come without a mention
        super().__init__(intents=intents, allowed_mentions=SAFE_MENTIONS)
        # discord.py keeps the endpoints as class attributes: process-wide, one bot per process.
        discord.http.Route.BASE = (settings.discord_api_base or DISCORD_API_BASE).rstrip("/")
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url or DISCORD_GATEWAY_URL)
        self.chat = ChatSession(core, platform="discord", admins=settings.admins, rate=settings.rate_limit)
        self.guild_id, self.tree, self._synced = settings.discord_guild_id, _Tree(self), False
        _add_commands(self.tree, self.chat)
        self.add_dynamic_items(VoteButton)

    async def setup_hook(self) -> None:
        """Sync the slash commands once per client (``setup_hook`` runs at login, never on a
        reconnect; the flag keeps a second login from syncing: Discord rate-limits syncs hard)."""
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

    async def on_message(self, message: discord.Message) -> None:
        """Answer an @mention, a DM, or a follow-up (a reply to one of our answers, or a
        message in a thread or DM we answered in), replying to the message."""
        if message.author.bot or self.user is None or not self.chat.first_sighting(message.id):
            return
        context_keys = (message.reference.message_id if message.reference else None, message.channel.id)
        addressed = message.guild is None or self.user in message.mentions
        if not addressed and not self.chat.context(context_keys):
            return
        question, user = re.sub(rf"<@!?{self.user.id}>", "", message.content).strip(), str(message.author.id)
        await self.chat.ask(_Replies(message, self.chat.lang(user, question=question)), question, user=user,
                            keys=_conversation(message.channel), context_keys=context_keys)


def _conversation(channel: object) -> tuple[Hashable, ...]:
    # In a thread or a DM every later message continues the conversation; in a plain channel
    # only replies to our answers do.
    return (channel.id,) if isinstance(channel, (discord.Thread, discord.DMChannel)) else ()


def _add_commands(tree: app_commands.CommandTree, chat: ChatSession) -> None:
    # /refresh is not restricted with default_member_permissions: that would hide it from the
    # STORYBOT_ADMINS who lack Manage Server. The check happens when it runs.
    @tree.command(name="ask", description="Ask a question about the story; the answer quotes it.")
    @app_commands.describe(question="Your question about the story",
                           private="Only you see the answer (default: everyone in the channel)",
                           story="Only this story (its id; start typing to pick one)")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False,
                  story: str | None = None) -> None:
        # the core reads a leading "story:<id>" (the same syntax works typed in any message)
        question = f"story:{story} {question}" if story else question
        user, locale = str(interaction.user.id), str(interaction.locale)
        dest = _Interaction(interaction, question, private, chat.lang(user, locale, question))
        await chat.ask(dest, question, user=user, locale=locale, context_keys=(interaction.channel_id,),
                       keys=() if private else _conversation(interaction.channel))

    @ask.autocomplete("story")
    async def story_ids(interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=i[:100], value=i) for i in await chat.story_choices(typed)]

    @tree.command(name="refresh", description="Re-read the stories and rebuild the index (server managers).")
    async def refresh(interaction: discord.Interaction) -> None:
        async def manages_server() -> bool:
            return interaction.permissions.manage_guild

        await chat.refresh(_Interaction(interaction), user=str(interaction.user.id),
                           locale=str(interaction.locale), platform_admin=manages_server)


def discord_token(settings: Settings) -> str:
    """``DISCORD_TOKEN``, checked for shape before anything connects (a ``ConfigError`` names
    it, never its value, and says where to find it)."""
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    problem = ("DISCORD_TOKEN is not set" if not token else "DISCORD_TOKEN has a 'Bot ' prefix"
               if token.lower().startswith("bot ") else None if _TOKEN_SHAPE.fullmatch(token)
               else "DISCORD_TOKEN does not look like a bot token (three dot-separated parts)")
    if problem:
        raise ConfigError(prompts.render("setup_discord_token", problem=problem))
    return token


def run_discord(settings: Settings, core: Core) -> None:
    """Run the Discord bot over ``core`` until interrupted (the CLI opens and closes the core).
    ``ConfigError`` for a missing, malformed or rejected token or a refused Message Content
    intent; ``PlatformUnreachable`` when Discord's API does not answer. Logging is the CLI's
    (it redacts secrets): discord.py installs none."""
    token = discord_token(settings)
    client = StoryBotClient(core, settings)
    try:
        with reaching("Discord's API", discord.http.Route.BASE, "DISCORD_API_BASE"):
            client.run(token, log_handler=None)
    except discord.LoginFailure:
        raise ConfigError(prompts.render("setup_refused", platform="Discord", token="DISCORD_TOKEN",
                                         error="401", where=PORTAL + " > Bot > Reset Token")) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(prompts.render("setup_discord_intent")) from None
