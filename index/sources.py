"""Read stories from a folder: ``.txt`` / ``.md`` files with optional front matter.

Front matter is a block of ``key: value`` lines between two ``---`` lines at the top, after
blank lines at most (keys: title, outlet, date, url, lang; ``#`` lines are comments, and a
block of ``key: value`` lines indented under a key is ignored). Without it, the title is the
first non-blank line.
Offsets everywhere in the index refer to ``Story.text``: the file decoded as UTF-8, a byte
order mark removed, line endings kept as they are.

A story file is data from whoever could write to the folder: the walk never leaves the
folder (a link whose target lies outside it is skipped and reported, never read), a file
larger than the size limit is reported, never read whole, and so is a file whose name (or
folder's name) is not UTF-8: its story id could not be stored or shown.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {".txt", ".md"}
FRONT_KEYS = {"title", "outlet", "date", "url", "lang"}
MAX_STORY_BYTES = 1_000_000  # default per-story limit (STORYBOT_MAX_STORY_BYTES)
_FRONT = re.compile(r"---[ \t]*\r?\n(?:(.*?)\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.S)  # matched at its start
_NESTED_KEY = re.compile(r"[\w.-]+[ \t]*:(?:[ \t]|$)")  # "name: Jane" indented under "author:"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
        return f"{shown_name(self.path.name)}: {self.message}"


class StoryFormatError(ValueError):
    """A story file is malformed; the message says how."""


def shown_name(name: str) -> str:
    """``name`` fit to print and log: the bytes of a file name that is not UTF-8 (which
    Python keeps as lone surrogates, unprintable) written as ``\\xe9``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def story_id(path: Path, root: Path) -> str:
    """A stable id: the path below the stories folder, without its suffix. Raises
    ``StoryFormatError`` (a ``ValueError``, as for a path not below ``root``) when that path
    is not UTF-8: no id can hold it."""
    sid = path.relative_to(root).with_suffix("").as_posix()
    if shown_name(sid) != sid:
        raise StoryFormatError("the file name (or a folder's name) is not UTF-8; skipped: rename it")
    return sid


def _size_text(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} kB"
    return f"{n} bytes"


def too_large(size: int, limit: int) -> str:
    """The problem line for a file of ``size`` bytes over ``limit``."""
    return (f"the file is {_size_text(size)}, larger than the {_size_text(limit)} limit per story "
            "(STORYBOT_MAX_STORY_BYTES); split it or raise the limit")


def parse_story(sid: str, path: Path, data: bytes, max_bytes: int = MAX_STORY_BYTES) -> Story:
    """Decode and parse one story file; raises ``StoryFormatError`` with a plain reason."""
    if len(data) > max_bytes:
        raise StoryFormatError(too_large(len(data), max_bytes))
    if not data.strip():
        raise StoryFormatError("the file is empty")
    if data.startswith(_UTF16_BOMS):  # Notepad's "Unicode": its zero bytes are not a binary file's
        raise StoryFormatError("the file is UTF-16 text; save it as UTF-8")
    if b"\x00" in data:
        raise StoryFormatError("the file is binary, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoryFormatError(f"not valid UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    meta, body_start = front_matter(text)
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


def front_matter(text: str) -> tuple[dict[str, str], int]:
    """The front matter of a decoded story file and where its body starts: ``({}, 0)``
    without one. Blank lines an editor left above the opening ``---`` belong to it. Raises
    ``StoryFormatError`` for one left open or holding a line that is not ``key: value``."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("---", start):
        return {}, 0
    m = _FRONT.match(text, start)
    if not m:
        raise StoryFormatError("front matter starts with '---' but is never closed")
    return _front_matter(m.group(1) or ""), m.end()


def _front_matter(block: str) -> dict[str, str]:
    """``key: value`` lines as editors write them for static-site generators: a value in
    quotes loses exactly its pair (``title: Macron: "Non"`` keeps its closing quote), and
    the indented or ``- item`` lines under a key (a YAML list, a folded value) continue it.
    Indented ``key: value`` lines under a key with no value (a nested mapping: ``author:``
    then ``name: Jane``) are skipped, and that key is left empty: no known key is read
    from them."""
    meta: dict[str, str] = {}
    key = None
    nested = block_scalar = False
    for n, line in enumerate(block.splitlines(), 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = line.strip()
        listed = item.startswith("- ")
        if key is not None and (listed or line[0] in " \t"):
            # a block scalar ("title: >") holds any text; a plain value cannot hold "name: x"
            nested = nested or not (meta[key] or listed or block_scalar) and bool(_NESTED_KEY.match(item))
            if nested:
                continue
            joint = ", " if listed and meta[key] else " "
            meta[key] = (meta[key] + joint + _unquote(item[2:].strip() if listed else item)).strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise StoryFormatError(f"front matter line {n} is not 'key: value'")
        key = name.strip().lower()
        value = value.strip()
        block_scalar, nested = value in ("|", ">", "|-", ">-", "|+", ">+"), False
        meta[key] = "" if block_scalar else _unquote(value)
    return meta


def _unquote(value: str) -> str:
    """A YAML scalar's text: ``"a \\"b\\""`` and ``'it''s'`` unquoted, anything else as is."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value


def _first_line(body: str) -> str:
    for line in body.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()
    return ""


def _walk(folder: Path) -> tuple[list[tuple[Path, bool]], list[OSError]]:
    """(path, is a linked directory) below ``folder``, sorted, skipping hidden entries, and
    the errors of the folders that could not be listed (``os.walk`` drops them silently).

    ``os.walk`` with ``followlinks=False`` (not ``Path.rglob``): a linked directory is never
    entered, only reported as itself, so ``read_stories`` can judge it by where it leads."""
    out = []
    errors: list[OSError] = []
    for top, dirs, files in os.walk(folder, followlinks=False, onerror=errors.append):
        base = Path(top)
        out += [(base / d, True) for d in dirs if not d.startswith(".") and (base / d).is_symlink()]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [(base / f, False) for f in files
                if not f.startswith(".") and Path(f).suffix.lower() in SUFFIXES]
    return sorted(out), errors


def read_stories(folder: Path, max_bytes: int = MAX_STORY_BYTES) -> tuple[list[Story], list[Problem]]:
    """All readable stories below ``folder`` (sorted by id) and the files that were skipped.

    A file (or link) whose real path lies outside ``folder`` is skipped and reported: the
    folder is the boundary of what may be quoted. A file over ``max_bytes`` is reported
    without being read. Two files with one id (``a.md`` and ``a.txt``): the first in sorted
    order that reads is the story, the other is reported. A file reached by several names (a
    link beside its target, two links to one file) is one story, under the name that is not
    a link if there is one; the others are reported. A missing folder is a ``Problem`` too;
    the caller decides whether "no stories" is fatal.
    """
    folder = Path(folder)
    if not folder.is_dir():
        why = "is a file: the stories setting names a folder of stories" if folder.exists() else \
            "the stories folder does not exist"
        return [], [Problem(folder, why)]
    root = folder.resolve()
    stories: list[Story] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}  # story id -> the file that holds it
    files: list[tuple[Path, Path]] = []  # (path, real path) of the files to read
    walked, unreadable = _walk(folder)
    for exc in unreadable:  # a folder that cannot be listed: its stories are not read this time
        where = Path(exc.filename) if exc.filename else folder
        problems.append(Problem(where, f"is a folder that cannot be read ({exc.strerror or exc.__class__.__name__})"))
    for path, linked_dir in walked:
        try:  # first: a name that is no id is not read, nor the file any link to it leads to
            story_id(path, folder)
        except StoryFormatError as exc:
            problems.append(Problem(path, str(exc)))
            continue
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling link, or a link loop
            problems.append(Problem(path, "is a link to nothing (its target does not exist)"))
            continue
        if not real.is_relative_to(root):
            problems.append(Problem(path, "links outside the stories folder; skipped (copy the file in instead)"))
            continue
        if linked_dir or not real.is_file():  # a link within the folder: its files are walked already
            continue
        files.append((path, real))
    # one story per file, or a link beside its target would put the story in the index twice
    named: dict[Path, Path] = {}  # real path -> the one name it is read under
    for path, real in sorted(files, key=lambda f: (f[0].is_symlink(), f[0])):
        named.setdefault(real, path)
    for path, real in files:
        if named[real] != path:
            read = named[real].relative_to(folder).as_posix()
            problems.append(Problem(path, f"is a link to the same file as {read}, which is read; skipped"))
            continue
        sid = story_id(path, folder)
        if sid in seen:  # "a.md" beside "a.txt": one id, and the index needs ids to be unique
            problems.append(Problem(path, f"has the same story id '{sid}' as {seen[sid].name} (an id is the "
                                          "path without its suffix); skipped: rename one of them"))
            continue
        try:
            size = real.stat().st_size
            if size > max_bytes:
                problems.append(Problem(path, too_large(size, max_bytes)))
                continue
            with open(real, "rb") as fh:  # read at most one byte past the limit: the file may grow
                data = fh.read(max_bytes + 1)
            stories.append(parse_story(sid, path, data, max_bytes))
            seen[sid] = path
        except OSError as exc:
            problems.append(Problem(path, f"cannot be read ({exc.strerror or exc.__class__.__name__})"))
        except StoryFormatError as exc:
            problems.append(Problem(path, str(exc)))
    return stories, problems
