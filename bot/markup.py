"""Chat markup is not question text: ``plain(text)`` turns what Discord and Slack put in a
message (mentions, channel links, custom emoji, ``<url|label>`` links, code fences, quoted
earlier messages, emphasis markers, HTML entities) into the plain words a person asked.

Every question goes through it in the core (``Answerer.answer``), so the CLI, Discord and
Slack read a message the same way, and someone else's mention can never be taken for a name
the story lacks. Hand-written: neither discord.py nor slack-sdk offers a parser from message
markup to plain text (discord.py's ``clean_content`` needs a live guild cache and only swaps
mentions for names; it does not drop them).
"""
from __future__ import annotations

import html
import re
import time
import unicodedata

# <@123>, <@!123>, <@&123> (Discord users / roles); <@U024BE7LH>, <@U024BE7LH|alice>, <!here>,
# <!subteam^S123|@team>, <!date^1392734382^{date_short}|Feb 18, 2014> (Slack); <#123> and
# <#C024BE91L|general> (channels); <t:1700000000:R>. A label may hold spaces.
_MENTION = re.compile(r"<(?:@[!&]?|#|!|t:)[^<>\n]*>")
_CUSTOM_EMOJI = re.compile(r"<a?:[\w~-]{1,64}:\d{1,25}>")  # Discord <:hmm:123...>, <a:dance:123...>
_LABELLED_LINK = re.compile(r"<(?:https?|mailto|tel):[^<>|\s]+\|([^<>]*)>")  # Slack <url|label>
_BARE_LINK = re.compile(r"<(?:https?|mailto|tel):[^<>\s]+>|\bhttps?://[^\s<>]+")
_MD_LINK = re.compile(r"\[([^\]\n]{1,200})\]\(\s*<?https?://[^)\s]+>?\s*\)")  # [label](url)
_SHORTCODE = re.compile(r"(?<![\w:]):[a-z0-9_+-]{1,40}:(?::skin-tone-\d:)?(?![\w:])", re.I)  # :thinking:
_FENCE = re.compile(r"```(?:[\w+-]+\n)?(.*?)```", re.S)
_EMPHASIS = re.compile(r"(\*\*|__|~~|\|\||`)")
_QUOTE_LINE = re.compile(r"^\s*(?:>>>|>)\s?(.*)$")
_AT_NAME = re.compile(r"(?<![\w.])@[\w.-]+")  # "@alice" typed by hand, "@here"
_SPACE = re.compile(r"[ \t]+")


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # symbols (So: 🤔 ✅), emoji modifiers (Sk: skin tones), and joiners/variation selectors
    return cat == "So" or (cat == "Sk" and ord(ch) > 0x2000) or ch in "\u200d\ufe0f\ufe0e" or \
        0x1F1E6 <= ord(ch) <= 0x1F1FF


def plain(text: str) -> str:
    """The words of a chat message, without its markup. Never raises; may return ""."""
    if not text:
        return ""
    text = html.unescape(text) if "&" in text else text  # Slack escapes & < > as entities
    french = _french_space(_MENTION.sub("", text))
    text = _FENCE.sub(lambda m: " " + m.group(1) + " ", text)
    lines = text.splitlines()
    # A quoted earlier message ("> what they said") is context, not the question; if the
    # whole message is a quote, the quote is the question.
    quoted = [bool(_QUOTE_LINE.match(ln)) for ln in lines]
    if any(quoted) and not all(q or not ln.strip() for q, ln in zip(quoted, lines)):
        lines = [ln for q, ln in zip(quoted, lines) if not q]
    else:
        lines = [(_QUOTE_LINE.match(ln).group(1) if q else ln) for q, ln in zip(quoted, lines)]
    text = "\n".join(lines)
    text = _CUSTOM_EMOJI.sub(" ", text)
    text = _LABELLED_LINK.sub(lambda m: " " + m.group(1) + " ", text)
    text = _MENTION.sub(" ", text)
    text = _AT_NAME.sub(" ", text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _BARE_LINK.sub(" ", text)
    text = _SHORTCODE.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    text = "".join(" " if _is_emoji(ch) else ch for ch in text)
    text = _SPACE.sub(" ", text)
    # "cc" / "ping" left dangling after the mentions they introduced went
    text = re.sub(r"(?:^|\s)(?:cc|cc:|ping|/cc)\s*[,.;:]*\s*$", "", text.strip(), flags=re.I)
    return re.sub(r"\s+([?!.,;:])(?=\s|$)", lambda m: (" " if m.group(1) in "?!:;" and french else "") + m.group(1), text).strip()


# the address of a link in any of the shapes above: Slack's <url|label> and <url>,
# Markdown's [label](url), a bare http(s) address
_LINK_URL = re.compile(r"<((?:https?):[^<>|\s]+)(?:\|[^<>]*)?>|\[[^\]\n]{1,200}\]\(\s*<?(https?://[^)\s>]+)>?\s*\)"
                       r"|\b(https?://[^\s<>|]+)")


def links(text: str) -> list[str]:
    """The web addresses a chat message links to, in order, each once. ``plain`` drops them
    from the question; the answer core reads them for the story they point at
    (``bot.decide.linked_story``)."""
    if not text:
        return []
    text = html.unescape(text) if "&" in text else text
    found = (_trimmed(next(g for g in m.groups() if g)) for m in _LINK_URL.finditer(text))
    return list(dict.fromkeys(u for u in found if u))


_TRAILING = ".,;:!?»”’'\"…*_~`]}"  # the sentence's or the markup's, not the link's


def _trimmed(url: str) -> str:
    """A bare link less the punctuation and emphasis markers after it; a closing
    parenthesis only when the link opened none ("…/wiki/Foo_(bar)" keeps its own)."""
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def readable(text: str) -> str:
    """``text`` with its chat tokens as a person reads them, for a reply that shows someone's
    own words: ``<@U1|alice>`` "@alice", ``<@123>`` "@user", ``<@&123>`` "@role",
    ``<#C1|general>`` "#general", ``<#123>`` "#channel", ``<!here>`` "@here", a labelled
    ``<!…|label>`` its label, ``<t:1700000000:R>`` its time (UTC). Raw, a token shows as code
    in Slack's plain text and as a live mention on Discord."""
    return _MENTION.sub(_readable_token, text) if "<" in text else text


def _readable_token(m: re.Match) -> str:
    head, _, label = m.group(0)[1:-1].partition("|")
    if head.startswith("t:"):
        try:
            return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(head[2:].partition(":")[0])))
        except (ValueError, OverflowError, OSError):  # not a time, or not one this machine can show
            return ""
    if head.startswith("#"):
        return "#" + (label or "channel")
    if head.startswith("@"):
        return "@" + (label.lstrip("@") or ("role" if head.startswith("@&") else "user"))
    return label or "@" + head[1:].partition("^")[0]  # <!here>, <!channel>, <!everyone>


def quoted(text: str) -> str:
    """The quoted earlier message(s) of a chat message that also asks something of its own
    ("> Sans IA locale, ils continueront..." then "who said that?"), as plain words; "" when
    there is no quote, or when the whole message is a quote (then the quote is the question,
    see ``plain``). The answer core uses it as retrieval context, like a previous question."""
    if not text:
        return ""
    text = html.unescape(text) if "&" in text else text
    lines = _FENCE.sub(lambda m: " " + m.group(1) + " ", text).splitlines()
    marks = [_QUOTE_LINE.match(ln) for ln in lines]
    if not any(marks) or all(m or not ln.strip() for m, ln in zip(marks, lines)):
        return ""
    return " ".join(plain("\n".join(m.group(1) for m in marks if m)).split())


def _french_space(text: str) -> bool:
    """Keep French typography (a space before ? ! : ;) when the writer used it."""
    return bool(re.search(r"\w [?!:;]", text))
