"""The project's own result types: what the core returns and every adapter renders."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    """One numbered citation: a verbatim quote from a story and the passage it sits in.

    ``quote`` is always ``story_text[start:end]`` of the stored story (checked before replying).
    """

    n: int
    quote: str
    passage: str
    story: str
    title: str
    section: str | None
    start: int
    end: int
    score: float
    dense: float = 0.0
    keyword: float = 0.0
    chunk_id: str = ""
    outlet: str | None = None
    date: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Answer:
    """The answer to one question.

    ``text`` carries ``[n]`` markers that refer to ``citations`` (numbered from 1). When
    ``abstained`` is true the story does not answer the question: ``text`` says so and
    ``citations`` is empty and ``confidence`` is "none".
    """

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    mode: str = "extractive"
    index_version: str = ""
    took_ms: float = 0.0
    lang: str = "en"
    note: str | None = None
    answer_id: int | None = None
    closest_topic: str | None = None
    # "high": answered; "low": on topic but below the answer bar, the closest passages are
    # cited with a hedge; "none": refused (abstained). ``abstained`` is true only for "none".
    confidence: str = "high"
    # why a reply is hedged ("low") or refused ("none"), in a few words: the rule that decided
    # ("below the answer bar", "a count of another kind", "not mentioned"); None when answered
    why: str | None = None

    def __post_init__(self):
        if self.abstained and self.confidence != "none":  # a refusal is never "high" or "low"
            object.__setattr__(self, "confidence", "none")

    def to_json(self) -> dict:
        """The stable JSON contract of ``storybot ask --json``."""
        out = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "citations": [
                {
                    "n": c.n,
                    "quote": c.quote,
                    "passage": c.passage,
                    "story": c.story,
                    "title": c.title,
                    "section": c.section,
                    "start": c.start,
                    "end": c.end,
                    "score": round(c.score, 4),
                }
                for c in self.citations
            ],
            "mode": self.mode,
            "index_version": self.index_version,
            "took_ms": round(self.took_ms, 1),
        }
        if self.why:
            out["why"] = self.why
        if self.note:
            out["note"] = self.note
        if self.answer_id is not None:
            out["answer_id"] = self.answer_id
        return out
