"""Text from a story file made safe to print on a terminal.

A story is data from whoever could write to the stories folder. Printed raw, an escape
sequence in it could recolour the screen, rewrite the window title, hide text, or (on some
terminals) do worse. Rich escapes its own markup but passes ESC through, so every string
from the index that the CLI prints goes through ``strip_controls`` first. Offsets in the
index still refer to the file as it is: only what is printed changes.
"""
from __future__ import annotations

import dataclasses
import re

# ESC-introduced sequences (CSI ... final byte; OSC/DCS/APC/PM ... BEL or ST; two-byte ESC x),
# then any other C0 control but tab and newline, DEL, and the C1 controls (8-bit CSI etc.)
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def strip_controls(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline kept)."""
    return _SEQUENCES.sub("", text) if text else text


def clean_answer(answer):
    """A copy of an ``Answer`` whose printed fields carry no control sequence."""
    cites = [dataclasses.replace(c, **_cleaned(c, ("quote", "title", "section", "outlet", "date")))
             for c in answer.citations]
    return dataclasses.replace(answer, citations=cites, **_cleaned(answer, ("text", "note", "question")))


def clean_passage(p):
    """A copy of a search ``Passage`` with its printed fields cleaned and their square
    brackets escaped (the passages table renders its cells as rich markup)."""
    return _table_cells(p, ("text", "title", "section"))


def clean_story(info):
    """A copy of a ``StoryInfo`` whose fields print as plain text in the stories table: a
    title such as "Budget [/b]" is not rich markup (rich raised MarkupError on it)."""
    return _table_cells(info, ("id", "title", "outlet", "date"))


def clean_report(data: dict) -> dict:
    """A copy of ``AnswerLog.report()`` whose questions (typed by chat users) print as
    plain text: no control sequence, no rich markup."""
    from rich.markup import escape

    def rows(key: str) -> list[dict]:
        return [{**row, "question": escape(strip_controls(row["question"]))} for row in data.get(key, [])]

    return {**data, "top_abstained": rows("top_abstained"), "top_low": rows("top_low"),
            "by_source": {escape(strip_controls(k)): v for k, v in data["by_source"].items()}}


def _table_cells(obj, names):
    from rich.markup import escape

    return dataclasses.replace(obj, **{k: escape(v) for k, v in _cleaned(obj, names).items()})


def _cleaned(obj, names) -> dict:
    return {n: strip_controls(getattr(obj, n)) for n in names
            if hasattr(obj, n) and isinstance(getattr(obj, n), str)}
