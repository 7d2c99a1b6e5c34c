"""Cleaning: split a story body into blocks (title, headings, paragraphs) and drop page
furniture, keeping every kept block's character offsets in ``Story.text``.

Nothing is rewritten: a block's text is always ``story.text[start:end]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.sources import Story, front_matter

# Lines that belong to the web page, not the article. Each pattern must match the whole
# (stripped) line, and only short lines are considered, so an article sentence that merely
# mentions an advertisement is never dropped.
_FURNITURE = [
    r"[-–—•*\s]*(advertisement|publicit[ée]|annonce|sponsored|sponsoris[ée]|ad)[-–—•*\s]*",
    r"(partager|partagez) (cet|l['’])\s*article.*",
    r"share (this|the) (article|story|post).*",
    r"(partager|share)( sur| on)? (facebook|twitter|x|linkedin|whatsapp|email).*",
    r"\d+\s*(minutes?|mins?|mn)( de lecture| read| reading)?",
    r"(temps de )?lecture\s*:?\s*\d+\s*(minutes?|mins?|mn)",
    r"(©|\(c\)|copyright\b).*",
    r"(cr[ée]dits?( photo)?|photo|image|illustration|source)\s*:.*",
    r"(lire aussi|à lire aussi|a lire aussi|read more|related|voir aussi|see also)\b.*",
    r"(suivez[- ]nous|follow us|abonnez[- ]vous|subscribe|inscrivez[- ]vous).*",
    r"(newsletter|tags?\s*:|mots[- ]cl[ée]s\s*:).*",
    # a markdown rule between sections ("---", "* * *") or a heading's underline ("====="):
    # read as text, it became a section named "---", and the quote of a reply
    r"([-*_=~•]\s*){3,}",
]
_FURNITURE_RE = re.compile("|".join(f"(?:{p})" for p in _FURNITURE), re.I)
FURNITURE_MAX_CHARS = 120
HEADING_MAX_CHARS = 160
HEADING_MAX_WORDS = 22


@dataclass(frozen=True)
class Block:
    """A run of kept lines: ``kind`` is "title", "heading" or "para"."""

    kind: str
    start: int
    end: int
    text: str


def is_furniture(line: str) -> bool:
    """True for a line of page furniture ("- Advertisement -", "9 Minutes de lecture", ...)."""
    s = line.strip()
    return bool(s) and len(s) <= FURNITURE_MAX_CHARS and bool(_FURNITURE_RE.fullmatch(s))


def _looks_like_heading(text: str) -> bool:
    s = text.strip()
    if "\n" in s or len(s) > HEADING_MAX_CHARS or len(s.split()) > HEADING_MAX_WORDS:
        return False
    if s.startswith("#"):
        return True
    # A sentence ends with a full stop (or a closing quote after one); a heading does not.
    # A question mark is allowed: news sections are often titled as questions.
    return not re.search(r"[.:;,…»\"”]\s*$", s)


def blocks(story: Story) -> list[Block]:
    """The kept blocks of ``story`` in order. The first block is the title when the story
    has no front-matter title; short unpunctuated single lines are headings."""
    text = story.text
    raw: list[tuple[int, int]] = []  # (start, end) of runs of kept, non-blank lines
    run_start = run_end = None
    pos = story.body_start
    for line in text[story.body_start:].splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        content = line.rstrip("\r\n")
        if not content.strip() or is_furniture(content):
            if run_start is not None:
                raw.append((run_start, run_end))
                run_start = None
            continue
        # trim leading/trailing spaces of the line so offsets point at real characters
        lead = len(content) - len(content.lstrip())
        if run_start is None:
            run_start = line_start + lead
        run_end = line_start + len(content.rstrip())
    if run_start is not None:
        raw.append((run_start, run_end))

    out: list[Block] = []
    for i, (start, end) in enumerate(raw):
        chunk = text[start:end]
        if i == 0 and not _has_front_title(story):
            # The title is the first line; the rest of that run (if any) is a paragraph.
            nl = chunk.find("\n")
            first_end = start + (nl if nl >= 0 else len(chunk))
            out.append(Block("title", start, first_end, text[start:first_end]))
            rest = text[first_end:end]
            if rest.strip():
                rs = first_end + (len(rest) - len(rest.lstrip()))
                out.append(Block("para", rs, end, text[rs:end]))
            continue
        kind = "heading" if _looks_like_heading(chunk) else "para"
        if kind == "heading" and chunk.startswith("#"):
            lead = len(chunk) - len(chunk.lstrip("#").lstrip())
            start += lead
            chunk = text[start:end]
        out.append(Block(kind, start, end, chunk))
    # A "heading" with no paragraph after it (e.g. the last line of a story) is a paragraph.
    for i, b in enumerate(out):
        if b.kind == "heading" and (i + 1 == len(out) or out[i + 1].kind != "para"):
            out[i] = Block("para", b.start, b.end, b.text)
    return out


def _has_front_title(story: Story) -> bool:
    # the title as the front matter was read: not a "title:" nested under another key
    return story.body_start > 0 and bool(front_matter(story.text)[0].get("title"))
