"""Rendering helpers shared by the adapters, and the terminal renderers (rich).

Platform renderers (Discord embeds, Slack blocks) live next to their adapters; what they
share is here: splitting long text at word boundaries and citation labels.
"""
from __future__ import annotations

import errno
from functools import cache

from bot.types import Answer, Citation


def citation_label(c: Citation) -> str:
    """"Title — Section" (with outlet and date when the story has them)."""
    label = c.title
    if c.section:
        label += f" — {c.section}"
    extra = ", ".join(x for x in (c.outlet, c.date) if x)
    return f"{label} ({extra})" if extra else label


def split_text(text: str, limit: int, *, first: int | None = None) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters (the first at most ``first``,
    when given: room for a heading over it), at a paragraph, line or word boundary; a single
    word longer than the limit is the only thing ever cut."""
    if limit <= 0 or (first is not None and first <= 0):
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > (size := limit if pieces or first is None else first):
        window = rest[: size + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > 0:
                break
        if cut <= 0:
            cut = size
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: cut at a word, with "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())


def pack(blocks: list, limit: int, *, size=len, sep: str = "", most: int = 10**9) -> list[list]:
    """Greedily group ``blocks`` in order: at most ``most`` per group, of total ``size``
    (plus ``sep`` between them) at most ``limit``; a block bigger than ``limit`` goes alone."""
    groups: list[list] = []
    total = 0
    for block in blocks:
        if groups and len(groups[-1]) < most and total + len(sep) + size(block) <= limit:
            groups[-1].append(block)
            total += len(sep) + size(block)
        else:
            groups.append([block])
            total = size(block)
    return groups


# -- terminal ------------------------------------------------------------------------------
@cache
def _stdout_console_type() -> type:
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits 1 at once
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "stdout's reader has stopped")

    return StdoutConsole


def stdout_console():
    """A rich Console on stdout whose output into a closed pipe (``storybot eval | head -1``)
    raises ``BrokenPipeError``, like any other write there: the CLI ends every such case
    the one way (``bot.cli``)."""
    return _stdout_console_type()()


def print_answer(answer: Answer, console=None) -> None:
    from rich.markup import escape
    from rich.text import Text

    console = console or stdout_console()
    style = "yellow" if answer.abstained else "bold"
    if answer.text:
        console.print(Text(answer.text, style=style))
    if answer.note:
        console.print(Text(answer.note, style="dim"))
    for c in answer.citations:
        console.print()
        console.print(f"[bold cyan][{c.n}][/bold cyan] [italic]“{escape(c.quote)}”[/italic]")
        console.print(f"    [dim]{escape(citation_label(c))} · chars {c.start}–{c.end}[/dim]")
    console.print()


def print_passages(passages) -> None:
    from rich.table import Table

    table = Table(title="Passages", show_lines=True)
    for col in ("#", "fused", "dense", "bm25", "where", "passage"):
        table.add_column(col, overflow="fold")
    for p in passages:
        where = p.section or p.title
        table.add_row(str(p.rank), f"{p.score:.3f}", f"{p.dense:.3f}", f"{p.keyword:.2f}", where,
                      p.text[:400] + ("…" if len(p.text) > 400 else ""))
    stdout_console().print(table)


def print_eval(result: dict, rows: bool = False) -> None:
    from rich.table import Table

    console = stdout_console()
    if rows:
        t = Table(title="Questions")
        for col in ("id", "question", "rank", "confidence", "why", "retrieval top-1", "ms"):
            t.add_column(col, overflow="fold")
        for r in result["rows"]:
            top = ("yes" if r.get("retrieval_rank1") else "no") if r["gold"] else ""
            t.add_row(str(r["id"]), r["q"], str(r["rank"] or "-"), r.get("confidence", ""), r.get("why") or "",
                      top, f"{r['ms']:.0f}")
        console.print(t)
    t = Table(title=f"Evaluation: {result['answerable']} answerable, {result['unanswerable']} unanswerable")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("answer: first citation right (hit@1)", f"{result['hit@1']:.2f}")
    if "quote_hit@1" in result:
        t.add_row("answer: first quote holds the answer", f"{result['quote_hit@1']:.2f}")
    if "retrieval_hit@1" in result:
        t.add_row("plain retrieval: top passage right", f"{result['retrieval_hit@1']:.2f}")
    for key in ("hit@3", "mrr"):
        t.add_row(key, f"{result[key]:.2f}")
    if "answerable_high" in result:
        t.add_row("answerable: high / low / none",
                  f"{result['answerable_high']} / {result['answerable_low']} / {result['answerable_none']}")
        t.add_row("unanswerable: high / low / none",
                  f"{result['unanswerable_high']} / {result['unanswerable_low']} / {result['unanswerable_none']}")
    t.add_row("correct abstentions", f"{result['correct_abstentions']} / {result['unanswerable']}")
    t.add_row("wrong abstentions", f"{result['wrong_abstentions']} / {result['answerable']}")
    t.add_row("p50 latency", f"{result['p50_ms']:.0f} ms")
    t.add_row("p95 latency", f"{result['p95_ms']:.0f} ms")
    console.print(t)
    if result.get("why"):
        t = Table(title="Hedged (low) and refused (none), by the rule that decided")
        for col in ("rule", "answerable", "of those, right passage first", "unanswerable"):
            t.add_column(col, justify="left" if col == "rule" else "right")
        for rule, c in result["why"].items():
            t.add_row(rule, str(c["answerable"]), str(c["right_first"]), str(c["unanswerable"]))
        console.print(t)


def print_report(data: dict) -> None:
    from rich.table import Table

    console = stdout_console()
    console.print(f"{data['answers']} answers, {data['abstained']} abstained; "
                  f"votes 👍 {data['votes_up']} 👎 {data['votes_down']}; by source: "
                  + ", ".join(f"{k} {v}" for k, v in data["by_source"].items()))
    def counts(title: str, rows: list[dict]) -> Table:
        t = Table(title=title)
        t.add_column("count", justify="right")
        t.add_column("question")
        t.add_column("why (latest)")
        for row in rows:
            t.add_row(str(row["count"]), row["question"], row.get("why") or "")
        return t

    console.print(counts("Most frequent unanswered questions", data["top_abstained"]))
    if data.get("top_low"):
        console.print(counts("Most frequent questions answered only with the closest passages (low confidence)",
                             data["top_low"]))
