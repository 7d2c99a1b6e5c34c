"""Telling a broken index from an unusable data folder, and keeping the last broken copies."""
import errno
import logging
import sqlite3

import pytest
from chromadb.errors import DuplicateIDError, InternalError, InvalidArgumentError, NotFoundError

from index.errors import DataDirUnusable
from index.heal import KEEP_BROKEN, classify, quarantine, unusable


class ChromaLikeError(Exception):
    """What chromadb's Rust bindings raise: a message with SQLite's result code, no errno."""


ChromaLikeError.__module__ = "chromadb.errors"


@pytest.mark.parametrize("exc,kind", [
    (OSError(errno.EROFS, "Read-only file system"), "read-only"),
    (PermissionError(errno.EACCES, "Permission denied"), "read-only"),
    (OSError(errno.ENOSPC, "No space left on device"), "full"),
    (ChromaLikeError("error returned from database: (code: 26) file is not a database"), "corrupt"),
    (ChromaLikeError("error returned from database: (code: 11) database disk image is malformed"), "corrupt"),
    (ChromaLikeError("error returned from database: (code: 5) database is locked"), "busy"),
    (ChromaLikeError("error returned from database: (code: 1032) attempt to write a readonly database"),
     "read-only"),
    (ChromaLikeError("error returned from database: (code: 13) database or disk is full"), "full"),
    (sqlite3.DatabaseError("file is not a database"), "corrupt"),
    (InternalError("Inconsistent hash: db=x, source=8fbfe4ff"), "corrupt"),  # Chroma's own files: rebuildable
    (InternalError("Missing field: [Missing metadata segment]"), "corrupt"),
    (ChromaLikeError("something new inside chromadb"), "other"),  # says nothing about the files
    (ValueError("a bug of ours"), "other"),
    (ValueError("locked out: a malformed answer of ours"), "other"),  # our text is no store's message
])
def test_classify(exc, kind):
    assert classify(exc) == kind


@pytest.mark.parametrize("exc", [
    DuplicateIDError("Expected IDs to be unique, found duplicates of: corrupt-locked#1 in upsert."),
    InvalidArgumentError("Collection expecting embedding with dimension of 384, got 768"),
    NotFoundError("Collection [sb_v1_chunks] does not exist"),
])
def test_an_error_about_the_call_is_no_broken_store_whatever_its_message_says(exc):
    # a DuplicateIDError (a bug in the input) used to move a healthy index aside as corrupt
    assert classify(exc) == "other"
    try:
        raise RuntimeError("refresh failed") from exc
    except RuntimeError as outer:
        assert classify(outer) == "other"


def test_the_cause_is_looked_at_too():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as outer:
        assert classify(outer) == "full"


def test_unusable_folders_get_one_sentence_naming_the_folder_and_the_fix(tmp_path):
    for kind, words in (("read-only", "writable"), ("full", "free some space"), ("busy", "stop whatever")):
        err = unusable(kind, tmp_path)
        assert isinstance(err, DataDirUnusable)
        assert str(tmp_path) in str(err) and words in str(err) and "\n" not in str(err)


def test_quarantine_moves_only_the_index_and_keeps_the_last_three(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="index.heal")
    (tmp_path / "answers.sqlite3").write_text("log")
    (tmp_path / "owner.lock").write_text("lock")
    moved = []
    for i in range(KEEP_BROKEN + 2):
        (tmp_path / "chroma").mkdir()
        (tmp_path / "chroma" / "chroma.sqlite3").write_text(f"broken {i}")
        moved.append(quarantine(tmp_path, ValueError(f"bad {i}")))
    kept = sorted(p.name for p in tmp_path.glob("broken-*"))
    assert kept == sorted(p.name for p in moved[-KEEP_BROKEN:])
    assert (moved[-1] / "chroma.sqlite3").read_text() == f"broken {KEEP_BROKEN + 1}"
    assert (tmp_path / "answers.sqlite3").read_text() == "log" and (tmp_path / "owner.lock").exists()
    assert not (tmp_path / "chroma").exists()
    [line] = [r.getMessage() for r in caplog.records][-1:]
    assert str(moved[-1]) in line and "rebuilding" in line
