"""An ``Answer`` as Discord messages: text content plus citation embeds, within Discord's
limits, with everything from a user or a story file escaped for Discord's markdown."""
from __future__ import annotations

import re
from typing import Any

import discord

import prompts
from bot.markup import readable
from bot.render import citation_label, one_line, pack, shorten, split_text
from bot.types import Answer, Citation

# Discord's message limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000  # all embeds of one message together
EMBEDS_PER_MESSAGE = 10
LABEL_CHARS = 256  # a citation's story and section heading, at most
QUESTION_ECHO_CHARS = 200


# an ordered-list item's number ("1. ", "12) "), which escape_markdown leaves alone: Discord
# would number the list itself (a quote's "3. ... 7. ..." shown as 3. and 4.)
_NUMBERED = r"\d+(?=[.)][ \t])"
_NUMBERED_LINE = re.compile(rf"^([ \t]*{_NUMBERED})", re.MULTILINE)
# a quote, heading or list marker (or a numbered item's) that a cut between words put at the
# start of a piece
_MARKER_FIRST = re.compile(rf"^(?:(?=>|#|-(?!# ))|{_NUMBERED})")


def escape(text: str) -> str:
    """``text`` shown as typed: markdown, masked links (``[x](url)``), headings, quotes and
    list markers (``- ``; ``1. `` and ``1) `` by their dot or parenthesis) escaped. (Mentions
    cannot ping anyway: the client's allowed mentions forbid it; the asker's own words are
    echoed ``readable``, so none shows as a mention either.)"""
    text = _NUMBERED_LINE.sub(r"\1\\", discord.utils.escape_markdown(text))
    return re.sub(r"\]\(", r"\\](", text)


def render(answer: Answer, *, question: str = "") -> list[dict[str, Any]]:
    """The messages that show ``answer`` on Discord, in order, as ``content`` and ``embeds``:
    the text with its ``[n]`` markers (after a hedge line when unsure, confidence "low"; after
    ``question`` quoted as typed when given, which a slash command's reply does not show),
    split at paragraph, line or word boundaries within the content limit; then the citations
    as embeds within Discord's embed limits, a quote too long for one embed continuing in the
    next, cut between words. An abstention is its text alone."""
    head = _echo(question) if question else ""
    if answer.confidence == "low":
        head += f"⚠️ **{prompts.render('chat_hedge', answer.lang)}**\n"
    text = escape(answer.text)
    if answer.note:
        text = f"{text}\n-# {escape(answer.note)}"
    # the head goes over the text's first piece, never alone: cut after the echo's line end
    # (a first paragraph longer than a message), it left the question alone in a message
    start, *rest = _split(text, CONTENT_LIMIT, first=CONTENT_LIMIT - len(head)) or [""]
    contents = [(head + start).strip() or "…", *rest]
    messages: list[dict[str, Any]] = [{"content": c} for c in contents]
    if answer.abstained or not answer.citations:
        return messages
    first, *more = pack(_source_embeds(answer), EMBED_TOTAL_LIMIT, most=EMBEDS_PER_MESSAGE)
    messages[-1]["embeds"] = first  # the sources follow the text, the first ones in its last message
    return messages + [{"embeds": group} for group in more]


def render_text(text: str) -> list[dict[str, Any]]:
    """A text the bot wrote (a note, a refresh report naming many files) as messages' ``content``,
    split within the content limit like an answer's text."""
    return [{"content": c} for c in split_text(text, CONTENT_LIMIT) or [text]]


def provisional(text: str, lang: str = "en", question: str | None = None) -> str:
    """One message's content for the text of an LLM answer still being written (streamed, not
    checked yet): cut at a word to fit, marked as in progress, after the ``question`` if given."""
    head = _echo(question) if question is not None else ""
    mark = f"\n-# {prompts.render('chat_writing', lang)}"
    return head + shorten(escape(text), CONTENT_LIMIT - len(head) - len(mark)) + mark


def _echo(question: str) -> str:
    # the asker's words: a <@id> or <#id> there would show as a live mention, a <t:…> as a clock
    return f"> {escape(one_line(shorten(readable(question), QUESTION_ECHO_CHARS)))}\n"


def _source_embeds(answer: Answer) -> list[discord.Embed]:
    more = prompts.render("chat_continued", answer.lang)
    blocks = [block for c in answer.citations for block in _citation_blocks(c, more)]
    unsure = answer.confidence == "low"
    title = prompts.render("chat_closest" if unsure else "chat_sources", answer.lang)
    colour = discord.Colour.orange() if unsure else discord.Colour.blurple()
    return [discord.Embed(title=title if i == 0 else None, description="\n\n".join(d), colour=colour)
            for i, d in enumerate(pack(blocks, EMBED_DESCRIPTION_LIMIT, sep="\n\n"))]


def _citation_blocks(c: Citation, more: str) -> list[str]:
    """One citation as description blocks: a heading (number, story and section) over the
    quote, on one line (one "> " block quote), continued in further blocks when too long."""
    label = escape(shorten(citation_label(c), LABEL_CHARS))
    heading = f"**[{c.n}]** " + (f"[{label}](<{c.url}>)" if c.url else f"*{label}*")
    pieces = _split(escape(one_line(c.quote)), EMBED_DESCRIPTION_LIMIT - len(heading) - len(more) - 6)
    return [f"{heading}{' ' + more if i else ''}\n> {piece}{'…' if i < len(pieces) - 1 else ''}"
            for i, piece in enumerate(pieces)]


def _split(text: str, limit: int, first: int | None = None) -> list[str]:
    """``split_text`` for escaped text: a piece after the first that begins with a marker (cut
    mid-line, where escaping left it alone) has it escaped too. The first piece keeps its start,
    and a note's "-# " line its mark."""
    pieces = split_text(text, limit - 1, first=None if first is None else first - 1)
    return pieces[:1] + [_MARKER_FIRST.sub(r"\g<0>\\", piece) for piece in pieces[1:]]
