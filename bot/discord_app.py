"""The Discord adapter: ``/ask``, ``/refresh``, @mentions, DMs, follow-ups and 👍/👎 buttons.

Each handler turns an event into a call on the shared :class:`bot.chat.ChatSession`, with a
destination saying how Discord shows, sends and edits. Interactions are acknowledged at once
(deferred, or an ephemeral reply), so Discord's 3-second deadline never matters.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Any, cast

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

import prompts
from bot.chat import BaseDestination, ChatSession, Core, reaching
from bot.config import Settings, refused
from bot.discord_render import provisional, render, render_text
from bot.errors import ConfigError
from bot.types import Answer

log = logging.getLogger(__name__)

# Answers quote news text: it must never ping @everyone, a role or a user it happens to contain.
# Only the author of a question is pinged, by the reply that answers it.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


def _messages(reply: Answer | str, echo: str = "") -> list[dict[str, Any]]:
    """Send/edit arguments for an answer or a text, after the question ``echo`` (as typed)
    when given; the 👍/👎 buttons go under the last message of a logged answer (and only
    there: a webhook's send() fails on view=None)."""
    if isinstance(reply, str):
        return render_text(reply)
    out = render(reply, question=echo)
    if reply.answer_id is not None:
        out[-1]["view"] = view = discord.ui.View(timeout=None)  # persistent: the buttons never expire
        for way in ("up", "down"):
            view.add_item(VoteButton(reply.answer_id, way))
    return out


class _Interaction(BaseDestination):
    """A slash command or a button. Notes only the user sees answer it, or replace its deferred
    response; ``edit`` replaces the first reply (a text over one message's limit goes on in
    follow-ups). An /ask defers, then follows up (ephemeral when ``private``); a streamed answer
    edits the deferred response, which the answer replaces."""

    def __init__(self, interaction: discord.Interaction, question: str = "", private: bool = True):
        self.interaction, self.question, self.private = interaction, question, private
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
        first, *rest = _messages(reply, echo=self.question)
        follow_up = functools.partial(self.interaction.followup.send, ephemeral=self.private, wait=True)
        replace = self._edited or private  # a streamed answer or a private note replaces "thinking"
        sent = [await (self.interaction.edit_original_response if replace else follow_up)(**first)]
        sent += [await follow_up(**kwargs) for kwargs in rest]
        return [] if self.private else [m.id for m in sent]  # nobody can reply to an ephemeral answer

    async def edit(self, text: str) -> None:
        first, *rest = render_text(text)
        await self.interaction.edit_original_response(**first)
        self._edited = True
        for kwargs in rest:  # a long refresh report goes on where the first reply was seen
            await self.interaction.followup.send(ephemeral=self.private, **kwargs)


class _Replies(BaseDestination):
    """A message: answered by a reply (shown as it streams, then edited), then messages in its channel."""

    def __init__(self, message: discord.Message):
        self.message = message
        self._first: discord.Message | None = None

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.message.channel.typing()

    async def show(self, text: str) -> None:
        shown = provisional(text, self.lang)
        self._first = await (self._first.edit(content=shown) if self._first else self.message.reply(shown))

    async def send(self, reply: Answer | str, *, private: bool = False) -> Sequence[Hashable]:
        first, *rest = _messages(reply)
        sent = [await (self._first.edit if self._first else self.message.reply)(**first)]
        sent += [await self.message.channel.send(**kwargs) for kwargs in rest]
        return [m.id for m in sent]


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"storybot:vote:(up|down):(\d+)"):
    """A 👍 or 👎 button under an answer. The custom id carries the answer id, so a click is
    understood from the id alone, including on answers sent before the bot restarted."""

    def __init__(self, answer_id: int, way: str):
        super().__init__(discord.ui.Button(emoji="👍" if way == "up" else "👎",
                                           custom_id=f"storybot:vote:{way}:{answer_id}"))
        self.answer_id, self.value = answer_id, 1 if way == "up" else -1

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> VoteButton:
        return cls(int(match[2]), match[1])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return _bot(interaction).chat.first_sighting(interaction.id)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await _bot(interaction).chat.vote(_Interaction(interaction), user=str(interaction.user.id),
                                          answer_id=self.answer_id, value=self.value,
                                          locale=str(interaction.locale))


def _bot(interaction: discord.Interaction) -> StoryBotClient:
    return cast(StoryBotClient, interaction.client)  # only StoryBotClient registers these handlers


class _Tree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return _bot(interaction).chat.first_sighting(interaction.id)


class StoryBotClient(discord.Client):
    """The storybot Discord bot over one core. ``settings`` gives the guild to sync commands
    to (``DISCORD_GUILD_ID``; global when unset), the admins, the rate limit, the endpoints."""

    def __init__(self, core: Core, settings: Settings):
        # guilds: the channel and thread cache (is this message in a thread we answered in?);
        # message_content: follow-ups in threads come without a mention
        intents = discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)
        super().__init__(intents=intents, allowed_mentions=SAFE_MENTIONS)
        _use_endpoints(settings)
        self.chat = ChatSession(core, platform="discord", admins=settings.admins, rate=settings.rate_limit)
        self.guild_id, self.tree = settings.discord_guild_id, _Tree(self)
        _add_commands(self.tree, self.chat)
        self.add_dynamic_items(VoteButton)

    async def setup_hook(self) -> None:
        """Sync the slash commands, once: ``setup_hook`` runs at login, never on a reconnect
        (Discord rate-limits syncs hard)."""
        guild = discord.Object(self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)  # guild commands appear at once
        synced = await self.tree.sync(guild=guild)
        log.info("Synced %d commands %s", len(synced), f"to guild {self.guild_id}" if guild else "globally")

    async def on_ready(self) -> None:
        log.info("Connected to Discord as %s (%d guilds)", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """Answer an @mention, a DM, or a follow-up (a reply to one of our answers, or a
        message in a thread or DM we answered in), replying to the message."""
        # only what people write: not a thread renamed, a pin or a member joining (system
        # messages, which cannot be replied to)
        if message.author.bot or self.user is None or message.type not in _WRITTEN \
                or not self.chat.first_sighting(message.id):
            return
        # a reply continues the conversation of the message it answers; a forward does not
        replied = message.reference if message.reference and message.reference.type is not _FORWARD else None
        context_keys = (replied.message_id if replied else None, message.channel.id)
        # typing "@storybot" offers the bot and its role of the same name: either addresses it
        role = message.guild.self_role if message.guild else None
        addressed = message.guild is None or self.user in message.mentions or role in message.role_mentions
        if not addressed and not self.chat.context(context_keys):
            return
        me = rf"<@!?{self.user.id}>" + (f"|<@&{role.id}>" if role else "")
        question = re.sub(me, "", message.content).strip()
        await self.chat.ask(_Replies(message), question, user=str(message.author.id),
                            keys=_conversation(message.channel), context_keys=context_keys)


_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)
_FORWARD = discord.MessageReferenceType.forward


def _use_endpoints(settings: Settings) -> None:
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning at start
    # discord.py keeps the endpoints as class attributes: process-wide, one bot per process.
    discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


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
        await chat.ask(_Interaction(interaction, question, private), question, user=str(interaction.user.id),
                       locale=str(interaction.locale), context_keys=(interaction.channel_id,),
                       keys=() if private else _conversation(interaction.channel))

    @ask.autocomplete("story")
    async def story_ids(interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        # Discord takes at most 100 characters for a choice and rejects the whole list for
        # one longer: such an id is typed in full instead ("story:<id>" works anywhere)
        return [app_commands.Choice(name=i, value=i) for i in await chat.story_choices(typed) if len(i) <= 100]

    @tree.command(name="refresh", description="Re-read the stories and rebuild the index (server managers).")
    async def refresh(interaction: discord.Interaction) -> None:
        async def manages_server() -> bool:
            return interaction.permissions.manage_guild

        await chat.refresh(_Interaction(interaction), user=str(interaction.user.id),
                           locale=str(interaction.locale), platform_admin=manages_server)


def run_discord(settings: Settings, core: Core) -> None:
    """Run the Discord bot over ``core`` until interrupted (the CLI opens and closes the core;
    its logging redacts secrets: discord.py installs none). Failures: see ``_connect``."""
    _connect(settings, lambda token: StoryBotClient(core, settings).run(token, log_handler=None))


def clear_guild_commands(settings: Settings, guild_id: int) -> None:
    """Remove this bot's slash commands from one server, over REST only (no gateway): the
    copies a DISCORD_GUILD_ID sync left there, which show beside the global ones."""
    async def clear(token: str) -> None:
        async with discord.Client(intents=discord.Intents(guilds=True)) as client:  # none: a warning
            await client.login(token)  # also fetches the application id the commands belong to
            tree, guild = app_commands.CommandTree(client), discord.Object(guild_id)
            tree.clear_commands(guild=guild)
            await tree.sync(guild=guild)  # an empty bulk overwrite

    _connect(settings, lambda token: asyncio.run(clear(token)))


def _connect(settings: Settings, run: Callable[[str], None]) -> None:
    """``run(token)``, its failures as one sentence: ``ConfigError`` for a refused token, intent
    or server, ``PlatformUnreachable`` when Discord's API does not answer."""
    [token] = settings.require("Discord")
    _use_endpoints(settings)
    try:
        with reaching("Discord's API", discord.http.Route.BASE, "DISCORD_API_BASE"):
            run(token)
    except discord.LoginFailure:
        raise refused("discord_token", "401") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(prompts.render("setup_discord_intent")) from None
    except discord.Forbidden as exc:
        raise ConfigError(prompts.render("setup_discord_forbidden", error=exc.text or exc.status)) from None
