"""An ``Answer`` as Slack messages, built from ``slack_sdk.models.blocks``.

Escaping: Slack's mrkdwn has no escape for ``*``, ``_``, ``~`` or backticks, so everything
that comes from a user or a story file (the question, quotes, story titles, notes, the answer
text) goes in ``plain_text`` objects, which Slack shows as typed: no formatting, no links, no
mentions. Only texts the bot writes itself (``<@user>``, ``*[1]*``, prompts) are mrkdwn. The
notification fallback (``text``) escapes ``& < >`` as Slack asks.
"""
from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

import prompts
from bot.render import citation_label, split_text
from bot.types import Answer

TEXT_LIMIT = 3000  # characters in one text object (Slack's limit)
MAX_BLOCKS = 50  # blocks in one message (Slack's limit)
WORKING_EMOJI = "hourglass_flowing_sand"
FEEDBACK_BLOCK = "feedback"
VOTE_NOTE_BLOCK = "vote_note"


def escape(text: str) -> str:
    """Slack's escaping of &, < and > (so no text can ping @channel or fake a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_answer(answer: Answer, *, asked_by: str | None = None) -> list[dict]:
    """``answer`` as Slack messages, in order, each ``{"text": fallback, "blocks": [...]}``.

    An "asked by" line when ``asked_by`` is a user id; a hedge line when the answer is unsure
    (confidence "low"); the text with its [n] markers in section blocks; the note; each
    citation in context blocks (number, quote, story title and section). Every text stays
    within 3,000 characters and every message within 50 blocks, split at word boundaries;
    the 👍/👎 buttons close the last message when the answer was logged. An abstention is
    its short text alone: it cites nothing.
    """
    blocks = [_asked(asked_by, answer.question, answer.lang)] if asked_by else []
    if answer.confidence == "low":
        blocks.append(_context(_mrkdwn(f":warning: *{prompts.render('chat_hedge', answer.lang)}*")))
    blocks += [SectionBlock(text=_plain(p)) for p in _pieces(answer.text)]
    blocks += [_context(_plain(p)) for p in _pieces(answer.note or "")]
    for c in () if answer.abstained else answer.citations:
        pieces = _pieces(f"“{c.quote}”\n{citation_label(c)}")
        blocks += [_context(_mrkdwn(f"*[{c.n}]*"), _plain(pieces[0]))] + [_context(_plain(p)) for p in pieces[1:]]
    return _pack([b.to_dict() for b in blocks], _feedback(answer))


def render_provisional(text: str, lang: str, *, asked_by: str | None = None, question: str = "") -> dict:
    """One message showing the text of an LLM answer still being written (streamed, not
    checked yet): cut at a word to fit, marked as in progress, after an "asked by" line
    when ``asked_by`` is a user id."""
    blocks = [_asked(asked_by, question, lang)] if asked_by else []
    blocks += [SectionBlock(text=_plain(_cut(text))), _context(_mrkdwn(f"_{prompts.render('chat_writing', lang)}_"))]
    return _message([b.to_dict() for b in blocks])


def render_status(user: str, question: str, lang: str) -> dict:
    """The message an ``/ask`` puts in the channel at once: who asked what, an hourglass."""
    return _message([_asked(user, question, lang, _mrkdwn(f":{WORKING_EMOJI}:")).to_dict()])


def with_vote_note(blocks: list[dict], user: str, text: str) -> list[dict]:
    """The message's blocks with ``user``'s vote note (the buttons stay: a vote can be
    changed, and others can vote)."""
    note = ContextBlock(block_id=VOTE_NOTE_BLOCK, elements=[_mrkdwn(f"<@{user}>"), _plain(text)]).to_dict()
    return [block for block in blocks if block.get("block_id") != VOTE_NOTE_BLOCK] + [note]


def _asked(user: str, question: str, lang: str, *more: MarkdownTextObject) -> ContextBlock:
    who = _mrkdwn(prompts.render("chat_asked", lang, who=f"<@{user}>"))
    return _context(who, _plain(_cut(" ".join(question.split()) or "…")), *more)


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=False)


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text, verbatim=True)  # verbatim: no auto-linking of names


def _context(*elements: PlainTextObject | MarkdownTextObject) -> ContextBlock:
    return ContextBlock(elements=list(elements))


def _pieces(text: str) -> list[str]:
    return split_text(text, TEXT_LIMIT)


def _feedback(answer: Answer) -> dict | None:
    if answer.answer_id is None:  # the answer was not logged: there is nothing to vote on
        return None
    buttons = [ButtonElement(text=PlainTextObject(text=f"{emoji} {prompts.render(name, answer.lang)}", emoji=True),
                             action_id=action, value=str(answer.answer_id))
               for action, emoji, name in (("vote_up", "👍", "chat_helpful"), ("vote_down", "👎", "chat_not_helpful"))]
    return ActionsBlock(block_id=FEEDBACK_BLOCK, elements=buttons).to_dict()


def _pack(blocks: list[dict], feedback: dict | None) -> list[dict]:
    groups = [blocks[i:i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)] or [[]]
    if feedback:
        # The last message also carries the buttons and, once someone votes, the vote note.
        last, room = groups.pop(), MAX_BLOCKS - 2
        groups += [last[:room]] + ([last[room:]] if len(last) > room else [])
        groups[-1].append(feedback)
    return [_message(group) for group in groups]


def _message(blocks: list[dict]) -> dict:
    """``{"text": fallback, "blocks": blocks}``: the fallback (for notifications) is the
    blocks' texts, escaped where they are plain text, cut short at a word."""
    def text(obj: dict) -> str:
        return obj["text"] if obj["type"] == "mrkdwn" else escape(obj["text"])

    texts = [text(b["text"]) if b["type"] == "section" else " ".join(map(text, b["elements"]))
             for b in blocks if b["type"] in ("section", "context")]
    return {"text": _cut("\n".join(texts)), "blocks": blocks}


def text_message(text: str) -> dict:
    """A message that is only a short text the bot wrote (an apology, an error message)."""
    return {"text": escape(text)}


def _cut(text: str) -> str:
    """``text`` within one text object's limit: cut at a word, with "…" when cut."""
    pieces = split_text(text, TEXT_LIMIT - 1) or [""]
    return pieces[0] + ("…" if len(pieces) > 1 else "")

