"""An ``Answer`` as Slack messages, built from ``slack_sdk.models.blocks``.

Escaping: mrkdwn cannot escape ``*``, ``_``, ``~`` or backticks, so all text from a user or a
story file goes in ``plain_text`` objects, shown as typed: no formatting, links or mentions
(the asker's mention and channel tokens shown as read, ``@alice``, ``#general``).
Only what the bot writes itself (``<@user>``, ``*[1]*``, prompts) is mrkdwn. The notification
fallback (``text``) escapes ``& < >`` as Slack asks.
"""
from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

import prompts
from bot.markup import readable
from bot.render import citation_label, pack, shorten, split_text
from bot.types import Answer

TEXT_LIMIT, MAX_BLOCKS = 3000, 50  # characters in a text object, blocks in a message (Slack's limits)
WORKING_EMOJI = "hourglass_flowing_sand"
VOTE_NOTE = "vote_note"  # block id of the note a vote adds


def escape(text: str) -> str:
    """Slack's escaping of &, < and > (so no text can ping @channel or fake a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_answer(answer: Answer, *, asked_by: str | None = None, question: str = "") -> list[dict]:
    """``answer`` as Slack messages (``{"text": fallback, "blocks": [...]}``), in order: who
    asked (``asked_by``) and what (``question`` as typed, else as the core read it), a hedge
    line when unsure (confidence "low"), the text with its [n] markers, the note, each
    citation (number, quote, story and section), and the 👍/👎 buttons when the answer was
    logged. Texts split at words within 3,000 characters, messages within
    50 blocks. An abstention cites nothing."""
    blocks = [_asked(asked_by, question or answer.question, answer.lang)] if asked_by else []
    if answer.confidence == "low":
        blocks.append(_context(_mrkdwn(f":warning: *{prompts.render('chat_hedge', answer.lang)}*")))
    blocks += [SectionBlock(text=_plain(p)) for p in split_text(answer.text, TEXT_LIMIT)]
    blocks += [_context(_plain(p)) for p in split_text(answer.note or "", TEXT_LIMIT)]
    for c in () if answer.abstained else answer.citations:
        first, *more = split_text(f"“{c.quote}”\n{citation_label(c)}", TEXT_LIMIT)
        blocks += [_context(_mrkdwn(f"*[{c.n}]*"), _plain(first)), *(_context(_plain(p)) for p in more)]
    # at most 48 blocks a message: the buttons, and later a vote's note, close the last one
    groups = pack(blocks, MAX_BLOCKS - 2, size=lambda _: 1) or [[]]
    if answer.answer_id is not None:
        groups[-1].append(_buttons(answer.answer_id, answer.lang))
    return [_message(group) for group in groups]


def render_provisional(text: str, lang: str, *, asked_by: str | None = None, question: str = "") -> dict:
    """One message showing an LLM answer still being written (not checked yet), marked so."""
    blocks = [_asked(asked_by, question, lang)] if asked_by else []
    writing = _context(_mrkdwn(f"_{prompts.render('chat_writing', lang)}_"))
    return _message([*blocks, SectionBlock(text=_plain(shorten(text, TEXT_LIMIT))), writing])


def render_status(user: str, question: str, lang: str) -> dict:
    """The message an ``/ask`` puts in the channel at once: who asked what, an hourglass."""
    return _message([_asked(user, question, lang, _mrkdwn(f":{WORKING_EMOJI}:"))])


def with_vote_note(blocks: list[dict], user: str, text: str) -> list[dict]:
    """The message's blocks with ``user``'s vote note (the buttons stay: votes change, others vote)."""
    note = ContextBlock(block_id=VOTE_NOTE, elements=[_mrkdwn(f"<@{user}>"), _plain(text)]).to_dict()
    return [block for block in blocks if block.get("block_id") != VOTE_NOTE] + [note]


def _asked(user: str, question: str, lang: str, *more: MarkdownTextObject) -> ContextBlock:
    who = _mrkdwn(prompts.render("chat_asked", lang, who=f"<@{user}>"))
    # plain text shows a <@U…> or <#C…> of the question as code: show it as the asker saw it
    return _context(who, _plain(shorten(" ".join(readable(question).split()) or "…", TEXT_LIMIT)), *more)


def _buttons(answer_id: int, lang: str) -> ActionsBlock:
    ways = (("vote_up", "👍", "chat_helpful"), ("vote_down", "👎", "chat_not_helpful"))
    return ActionsBlock(block_id="feedback", elements=[
        ButtonElement(text=f"{emoji} {prompts.render(name, lang)}", action_id=action, value=str(answer_id))
        for action, emoji, name in ways])


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=False)


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text, verbatim=True)  # verbatim: no auto-linking of names


def _context(*elements: PlainTextObject | MarkdownTextObject) -> ContextBlock:
    return ContextBlock(elements=list(elements))


def _message(blocks: list[Block]) -> dict:
    """``{"text": fallback, "blocks": [...]}``; the fallback (notifications) joins the blocks'
    texts, escaped where plain, cut at a word."""
    def text(obj: dict) -> str:
        return obj["text"] if obj["type"] == "mrkdwn" else escape(obj["text"])

    dicts = [block.to_dict() for block in blocks]
    texts = [text(b["text"]) if b["type"] == "section" else " ".join(map(text, b["elements"]))
             for b in dicts if b["type"] in ("section", "context")]
    return {"text": shorten("\n".join(texts), TEXT_LIMIT), "blocks": dicts}
