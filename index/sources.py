"""Read stories from a folder: ``.txt`` / ``.md`` files with optional front matter.

Front matter is a block of ``key: value`` lines between two ``---`` lines at the very top
(keys: title, outlet, date, url, lang). Without it, the title is the first non-blank line.
Offsets everywhere in the index refer to ``Story.text``: the file decoded as UTF-8, a byte
order mark removed, line endings kept as they are.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {".txt", ".md"}
FRONT_KEYS = {"title", "outlet", "date", "url", "lang"}
MAX_STORY_BYTES = 5_000_000
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass(frozen=True)
class Story:
    """One story file, decoded. ``body_start`` is where the text after front matter begins."""

    id: str
    path: Path
    text: str
    title: str
    body_start: int = 0
    outlet: str | None = None
    date: str | None = None
    url: str | None = None
    lang: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Problem:
    """A story file that could not be used, and why (safe to show: names the file only)."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.message}"


class StoryFormatError(ValueError):
    """A story file is malformed; the message says how."""


def story_id(path: Path, root: Path) -> str:
    """A stable id: the path below the stories folder, without its suffix."""
    rel = path.relative_to(root).with_suffix("")
    return rel.as_posix()


def parse_story(sid: str, path: Path, data: bytes) -> Story:
    """Decode and parse one story file; raises ``StoryFormatError`` with a plain reason."""
    if not data.strip():
        raise StoryFormatError("the file is empty")
    if b"\x00" in data:
        raise StoryFormatError("the file is binary, not text")
    if len(data) > MAX_STORY_BYTES:
        raise StoryFormatError(f"the file is larger than {MAX_STORY_BYTES // 1_000_000} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoryFormatError(f"not valid UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    meta: dict[str, str] = {}
    body_start = 0
    if text.startswith("---"):
        m = _FRONT.match(text)
        if not m:
            raise StoryFormatError("front matter starts with '---' but is never closed")
        for n, line in enumerate(m.group(1).splitlines(), 2):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise StoryFormatError(f"front matter line {n} is not 'key: value'")
            meta[key.strip().lower()] = value.strip().strip("\"'")
        body_start = m.end()
    body = text[body_start:]
    if not body.strip():
        raise StoryFormatError("the story has no text after its front matter")
    title = meta.get("title") or _first_line(body)
    return Story(
        id=sid, path=path, text=text, title=title, body_start=body_start,
        outlet=meta.get("outlet") or None, date=meta.get("date") or None,
        url=meta.get("url") or None, lang=meta.get("lang") or None,
        extra={k: v for k, v in meta.items() if k not in FRONT_KEYS},
    )


def _first_line(body: str) -> str:
    for line in body.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()
    return ""


def read_stories(folder: Path) -> tuple[list[Story], list[Problem]]:
    """All readable stories below ``folder`` (sorted by id) and the files that were skipped.

    A missing folder is a ``Problem`` too; the caller decides whether "no stories" is fatal.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [], [Problem(folder, "the stories folder does not exist")]
    stories: list[Story] = []
    problems: list[Problem] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            data = path.read_bytes()
            stories.append(parse_story(story_id(path, folder), path, data))
        except OSError as exc:
            problems.append(Problem(path, f"cannot be read ({exc.strerror or exc.__class__.__name__})"))
        except StoryFormatError as exc:
            problems.append(Problem(path, str(exc)))
    return stories, problems
