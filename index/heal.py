"""Telling a broken embedded index from a data folder that cannot be used, and healing the
first by moving it aside.

The index is derived data: it can always be rebuilt from the stories. So when the embedded
Chroma files cannot be opened or read (a corrupt SQLite page, garbage written over the file,
a layout from an incompatible Chroma version), the ``chroma/`` folder alone is renamed to
``<data>/broken-<time>/`` and the caller rebuilds. The answer log and the lock file stay
where they are; the last ``KEEP_BROKEN`` broken copies are kept for a post-mortem.

A folder that is read-only, full, denied to this user, or locked by another program is
not broken: moving it aside would not help (or would not even work), and a rebuild would
fail the same way. Those get a ``DataDirUnusable`` whose sentence names the folder and the
fix. Classification is by errno for OS errors and by SQLite result code / message for what
Chroma's Rust bindings and ``sqlite3`` report (they carry no errno).

Only errors about the files count as corruption. Chroma's errors about a call (a duplicate
id, an invalid argument, a missing collection) say nothing about the files, whatever their
message holds: they pass through as the ordinary errors they are, and nothing is moved.
"""
from __future__ import annotations

import errno
import logging
import re
import shutil
import time
from pathlib import Path

from index.errors import DataDirUnusable

log = logging.getLogger(__name__)

KEEP_BROKEN = 3
CHROMA_DIR = "chroma"
BROKEN_PREFIX = "broken-"

# SQLite result codes (https://sqlite.org/rescode.html), as Chroma reports them: "(code: 11) ..."
_SQLITE_CODE = re.compile(r"\bcode: (\d+)\b")  # "(code: 11) ..." or "SqliteError { code: 11, ... }"
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READONLY = {8, 14, 23}  # SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_AUTH
_FULL = {13}  # SQLITE_FULL
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_ERRNO = {
    errno.EROFS: "read-only", errno.EACCES: "read-only", errno.EPERM: "read-only",
    errno.ENOSPC: "full", errno.EDQUOT: "full",
}
_TEXT = [  # message fragments, for errors that carry neither an errno nor a code
    ("locked", "busy"), ("database is locked", "busy"), ("readonly database", "read-only"),
    ("read-only file system", "read-only"), ("permission denied", "read-only"),
    ("unable to open database", "read-only"), ("disk is full", "full"), ("no space left", "full"),
    ("malformed", "corrupt"), ("not a database", "corrupt"), ("file is encrypted", "corrupt"),
    ("no such table", "corrupt"), ("no such column", "corrupt"), ("corrupt", "corrupt"),
]
# What Chroma and SQLite raise when their own files cannot be used as they are (the Rust side
# failing on its SQLite or segment files: "no such table", "Inconsistent hash: ...", "Missing
# field: [Missing metadata segment]", or panicking), when no code or fragment above says more.
_BROKEN = {"InternalError", "PanicException", "DatabaseError"}


def _from_store(e: BaseException) -> bool:
    """Raised by Chroma (its Rust bindings included) or SQLite, not by the caller's code."""
    return (type(e).__module__ or "").startswith(("chromadb", "sqlite3", "pyo3_runtime")) or \
        type(e).__name__ in _BROKEN


def _about_the_call(e: BaseException) -> bool:
    """One of Chroma's errors about what it was asked (``DuplicateIDError``,
    ``InvalidArgumentError``, ``NotFoundError`` ...): every ``ChromaError`` but ``InternalError``."""
    return type(e).__name__ != "InternalError" and any(t.__name__ == "ChromaError" for t in type(e).__mro__)


def classify(exc: BaseException) -> str:
    """``"busy"``, ``"read-only"``, ``"full"``, ``"corrupt"`` or ``"other"`` for an error
    raised while opening or reading the embedded store (its causes are looked at too).
    ``"corrupt"`` only for an error that says the store's files cannot be read; an error
    about the call (a duplicate id: a bug in the input) is ``"other"``."""
    seen: set[int] = set()
    e: BaseException | None = exc
    broken = False
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _ERRNO:
            return _ERRNO[e.errno]
        if _about_the_call(e):
            return "other"  # its message names ids and values, which may hold any word
        if _from_store(e) or isinstance(e, OSError):
            text = str(e)
            m = _SQLITE_CODE.search(text)
            if m:
                code = int(m.group(1)) & 0xFF  # extended codes keep the primary one in the low byte
                for codes, kind in ((_BUSY, "busy"), (_READONLY, "read-only"), (_FULL, "full"),
                                    (_CORRUPT, "corrupt")):
                    if code in codes:
                        return kind
            low = text.lower()
            for fragment, kind in _TEXT:
                if fragment in low:
                    return kind
            broken = broken or type(e).__name__ in _BROKEN
        e = e.__cause__ or e.__context__
    # Since the index is rebuildable, files Chroma itself cannot read count as broken.
    return "corrupt" if broken else "other"


def fatal(exc: BaseException) -> bool:
    """Whether ``exc`` must pass through untouched: an interrupt or exit, not a failure.
    (Chroma's Rust panics arrive as ``pyo3_runtime.PanicException``, a ``BaseException``,
    so the callers that heal catch ``BaseException`` and let these through.)"""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def unusable(kind: str, folder: Path, exc: BaseException | None = None) -> DataDirUnusable:
    """The one-sentence error for a data folder that is read-only, full or locked."""
    folder = Path(folder)
    if kind == "full":
        text = (f"The disk holding the data folder {folder} is full; free some space there "
                "(or set STORYBOT_DATA_DIR to a folder on another disk) and try again.")
    elif kind == "busy":
        text = (f"The story index in {folder} is locked by another program; stop whatever else uses "
                "that folder (only storybot should) and try again.")
    else:
        text = (f"storybot cannot write to its data folder {folder} (read-only or no permission); "
                "make it writable for this user, or set STORYBOT_DATA_DIR to a writable folder.")
    return DataDirUnusable(text)


def quarantine(data_dir: Path, exc: BaseException) -> Path:
    """Move ``<data_dir>/chroma`` aside to ``<data_dir>/broken-<time>`` (one log line), and
    keep only the newest ``KEEP_BROKEN`` broken copies. Returns the new folder."""
    data_dir = Path(data_dir)
    src = data_dir / CHROMA_DIR
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    # copies made within one second are numbered -2, -3 ... after the highest one there
    same = [_age_key(p)[1] for p in data_dir.glob(f"{BROKEN_PREFIX}{stamp}*")]
    n = max(same, default=0) + 1
    dest = data_dir / (f"{BROKEN_PREFIX}{stamp}" + (f"-{n}" if n > 1 else ""))
    try:
        src.rename(dest)
    except OSError as err:  # cannot even rename: the folder is not writable after all
        raise unusable(classify(err) if classify(err) != "other" else "read-only", data_dir) from err
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    log.warning("The story index in %s could not be read (%s); moved it aside to %s and rebuilding it "
                "from the stories.", src, reason, dest)
    log.debug("what the index failed with", exc_info=exc)
    broken = sorted((p for p in data_dir.glob(f"{BROKEN_PREFIX}*") if p.is_dir()), key=_age_key)
    for old in broken[:-KEEP_BROKEN]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _age_key(path: Path) -> tuple[str, int]:
    """Oldest first: by the time in the name, then the -2, -3 ... of copies made within a second."""
    _, _, rest = path.name.partition(BROKEN_PREFIX)
    stamp, _, n = rest.partition("-")
    return stamp, int(n) if n.isdigit() else 1
