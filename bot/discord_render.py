"""An ``Answer`` as Discord messages: text content plus citation embeds, within Discord's
limits, with everything from a user or a story file escaped for Discord's markdown."""
from __future__ import annotations

import re
from dataclasses import dataclass

import discord

import prompts
from bot.render import citation_label, split_text
from bot.types import Answer, Citation

# Discord's message limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000  # all embeds of one message together
EMBEDS_PER_MESSAGE = 10
LABEL_CHARS = 256  # a citation's story and section heading, at most
QUESTION_ECHO_CHARS = 200


@dataclass(frozen=True)
class Reply:
    """One Discord message of an answer: text content and citation embeds, within limits."""

    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()


def escape(text: str) -> str:
    """``text`` shown as typed: markdown, masked links (``[x](url)``), headings and quotes
    escaped. (Mentions cannot ping anyway: the client's allowed mentions forbid it.)"""
    return re.sub(r"\]\(", r"\\](", discord.utils.escape_markdown(text))


def render(answer: Answer, *, echo_question: bool = False) -> list[Reply]:
    """The messages that show ``answer`` on Discord, in order.

    The text (with its ``[n]`` markers) is the content, split at paragraph, line or word
    boundaries into messages of at most 2,000 characters; an unsure answer (confidence
    "low") starts with a visible hedge line. The citations follow as embeds (quote, story
    title, section): at most 4,096 characters of description per embed, 10 embeds and 6,000
    characters per message; a quote too long for one embed continues in the next, cut
    between words. An abstention is its text alone. ``echo_question`` starts with the
    question quoted (a slash command's reply does not otherwise show it).
    """
    text = escape(answer.text)
    if answer.confidence == "low":
        text = f"⚠️ **{prompts.render('chat_hedge', answer.lang)}**\n{text}"
    if answer.note:
        text = f"{text}\n-# {escape(answer.note)}"
    if echo_question:
        text = _echo(answer.question) + text
    contents = split_text(text, CONTENT_LIMIT) or [text or "…"]
    if answer.abstained or not answer.citations:
        return [Reply(content=c) for c in contents]
    groups = _embed_groups(_source_embeds(answer))
    # The sources come after the text: the first group rides with the last text message.
    replies = [Reply(content=c) for c in contents[:-1]]
    replies.append(Reply(content=contents[-1], embeds=groups[0]))
    replies.extend(Reply(embeds=group) for group in groups[1:])
    return replies


def provisional(text: str, lang: str = "en", question: str | None = None) -> str:
    """One message's content for the text of an LLM answer still being written (streamed, not
    checked yet): cut at a word to fit, marked as in progress, after the ``question`` if given."""
    head = _echo(question) if question is not None else ""
    mark = f"\n-# {prompts.render('chat_writing', lang)}"
    return head + _shorten(escape(text), CONTENT_LIMIT - len(head) - len(mark)) + mark


def _echo(question: str) -> str:
    return f"> {escape(_one_line(_shorten(question, QUESTION_ECHO_CHARS)))}\n"


def _source_embeds(answer: Answer) -> list[discord.Embed]:
    more = prompts.render("chat_continued", answer.lang)
    blocks = [block for c in answer.citations for block in _citation_blocks(c, more)]
    unsure = answer.confidence == "low"
    title = prompts.render("chat_closest" if unsure else "chat_sources", answer.lang)
    colour = discord.Colour.orange() if unsure else discord.Colour.blurple()
    return [discord.Embed(title=title if i == 0 else None, description=d, colour=colour)
            for i, d in enumerate(_pack(blocks, EMBED_DESCRIPTION_LIMIT))]


def _citation_blocks(c: Citation, more: str) -> list[str]:
    """One citation as description blocks: a heading (number, story and section) over the quote.
    A quote longer than one embed is continued in further blocks, cut between words."""
    label = escape(_shorten(citation_label(c), LABEL_CHARS))
    heading = f"**[{c.n}]** " + (f"[{label}](<{c.url}>)" if c.url else f"*{label}*")
    # Quotes are shown on one line so each piece is a single "> " block quote.
    room = EMBED_DESCRIPTION_LIMIT - len(heading) - len("\n> …") - len(more) - 1
    pieces = split_text(escape(_one_line(c.quote)), room)
    last = len(pieces) - 1
    return [f"{heading}{' ' + more if i else ''}\n> {piece}{'…' if i < last else ''}"
            for i, piece in enumerate(pieces)]


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
