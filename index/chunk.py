"""Chunking: one chunk per paragraph, each section heading merged into the paragraph that
follows it, long paragraphs split on sentence boundaries. Every chunk carries its
sentences with their offsets in ``Story.text``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from index.clean import Block, blocks
from index.sources import Story


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str
    kind: str = "body"  # "heading" sentences are context, never quoted as an answer


@dataclass(frozen=True)
class Chunk:
    id: str
    story: Story
    section: str | None
    paragraph: int
    start: int
    end: int
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        """The passage as shown to users: heading and paragraph, each verbatim."""
        return passage_text([(s.text, s.kind) for s in self.sentences])

    @property
    def hash(self) -> str:
        return content_hash(self.text)


def passage_text(sentences: list[tuple[str, str]]) -> str:
    """Join (text, kind) sentences into a passage: a blank line after a heading, a space
    between sentences. The one rule both chunking and quote verification use."""
    parts: list[str] = []
    prev_kind = None
    for text, kind in sentences:
        if parts:
            parts.append("\n\n" if prev_kind == "heading" else " ")
        parts.append(text)
        prev_kind = kind
    return "".join(parts)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# Sentence boundaries. Written by hand: we need exact character offsets into the original
# text (pysbd, the usual library, is unmaintained and its char spans drift on repeated
# sentences). A boundary is end punctuation, optional closing quote, white space, then
# something that starts a sentence.
_END = re.compile(r"[.!?…]+(?:\s?[»”\"’)\]])?(?=\s+[«“\"(\[A-ZÀ-ÖØ-Þ0-9])")
_ABBREV = {"m", "mm", "mme", "mmes", "mlle", "dr", "pr", "st", "ste", "etc", "vs", "inc", "corp",
           "jr", "sr", "no", "n°", "mr", "mrs", "ms", "prof", "av", "j.-c", "cf", "p", "ex"}


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentences of ``text`` with offsets shifted by ``offset``; spaces around are trimmed."""
    out: list[Sentence] = []
    start = 0
    for m in _END.finditer(text):
        before = text[start:m.start()].split()
        last = before[-1].lower().strip("(«“\"") if before else ""
        if "." in m.group() and (last in _ABBREV or (len(last) == 1 and last.isalpha())):
            continue
        out.append(_sentence(text, start, m.end(), offset))
        start = m.end()
    if text[start:].strip():
        out.append(_sentence(text, start, len(text), offset))
    return [s for s in out if s.text]


def _sentence(text: str, a: int, b: int, offset: int) -> Sentence:
    seg = text[a:b]
    lead = len(seg) - len(seg.lstrip())
    a2, b2 = a + lead, a + len(seg.rstrip())
    return Sentence(offset + a2, offset + b2, text[a2:b2])


def chunk_story(story: Story, max_chars: int = 1500) -> list[Chunk]:
    """The chunks of one story, in order. Chunk ids are ``<story id>#<paragraph>`` (plus
    ``.<part>`` for a split paragraph): stable across refreshes while the structure holds."""
    chunks: list[Chunk] = []
    heading: Block | None = None
    section: str | None = None
    para_no = 0
    for block in blocks(story):
        if block.kind == "title":
            continue
        if block.kind == "heading":
            heading, section = block, block.text.strip()
            continue
        para_no += 1
        sentences = split_sentences(block.text, block.start)
        pieces = _split_long(sentences, max_chars)
        for part, piece in enumerate(pieces, 1):
            head: tuple[Sentence, ...] = ()
            if heading is not None and part == 1:
                head = (Sentence(heading.start, heading.end, heading.text, "heading"),)
            sents = head + tuple(piece)
            cid = f"{story.id}#{para_no}" + (f".{part}" if len(pieces) > 1 else "")
            chunks.append(Chunk(cid, story, section, para_no, sents[0].start, sents[-1].end, sents))
        heading = None
    return chunks


def _split_long(sentences: list[Sentence], max_chars: int) -> list[list[Sentence]]:
    pieces: list[list[Sentence]] = [[]]
    size = 0
    for s in sentences:
        if pieces[-1] and size + len(s.text) > max_chars:
            pieces.append([])
            size = 0
        pieces[-1].append(s)
        size += len(s.text) + 1
    return [p for p in pieces if p]
