"""``storybot eval``: run a question file through the answerer and score it.

The file is JSON lines in the format of ``eval/dev_questions.jsonl``: ``{"id", "q", "gold"}``
where ``gold`` is a piece of the passage that must be cited, or null when the story has no
answer. A hit at rank k means the gold text is inside the passage of one of the first k
citations.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from bot.errors import StorybotError


def load_questions(path: Path) -> list[dict]:
    """Read and check a question file; raises ``StorybotError`` naming the bad line."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StorybotError(f"Cannot read {Path(path).name}: {exc.__class__.__name__}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("q"), str) or "gold" not in row:
                raise ValueError
        except ValueError:
            raise StorybotError(f"{Path(path).name}, line {n}: expected a JSON object with 'q' and 'gold'.") from None
        if row["gold"] is not None and not isinstance(row["gold"], str):
            # scoring looks for the gold text inside passages: a number or a list cannot be
            raise StorybotError(f"{Path(path).name}, line {n}: 'gold' must be a piece of the story's text "
                                f"(a string) or null, not {type(row['gold']).__name__} {row['gold']!r:.40}.")
        rows.append(row)
    return rows


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def evaluate(answerer, questions: list[dict]) -> dict:
    """Answer every question and return the metrics and one row per question.

    Besides the answer's own hit@k, each answerable question is also scored for plain
    retrieval over the same index (``retrieval_hit@1``: the top passage of ``search``
    holds the gold text), so the answer layer's effect is measured, not assumed; and
    ``quote_hit@1``, the first citation's quote itself (one sentence or two) holds the gold
    text: hit@1 counts the right passage even when the sentence quoted from it is another
    (a gold that runs across two sentences counts only when both are quoted). Outcomes
    are counted by confidence: "high" (answered), "low" (hedged, closest passages cited),
    "none" (refused), and hedges and refusals by the rule that decided (``Answer.why``).
    """
    from index.search import search

    rows = []
    for item in questions:
        t0 = time.perf_counter()
        ans = answerer.answer(item["q"], source="eval")
        ms = (time.perf_counter() - t0) * 1000
        gold = item.get("gold")
        rank = next((i + 1 for i, c in enumerate(ans.citations) if gold and gold in c.passage), None)
        top = search(answerer.store, item["q"], k=1) if gold else []
        rows.append({"id": item.get("id"), "q": item["q"], "gold": gold, "abstained": ans.abstained,
                     "confidence": ans.confidence, "why": ans.why, "rank": rank,
                     "retrieval_rank1": bool(top and gold in top[0].text),
                     # the passage can be right and its quoted sentence another one of it
                     "quote_right": bool(gold and ans.citations and gold in ans.citations[0].quote),
                     "ms": round(ms, 1), "answer": ans.text,
                     "stories": [c.story for c in ans.citations]})
    answerable = [r for r in rows if r["gold"]]
    unanswerable = [r for r in rows if not r["gold"]]
    n = len(answerable) or 1
    lat = [r["ms"] for r in rows]

    def count(rs: list[dict], level: str) -> int:
        return sum(r["confidence"] == level for r in rs)

    # which rule hedged or refused how many answerable questions (and of those, how many had
    # the right passage first) and how many unanswerable ones: what a rule costs and catches
    why: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["why"]:
            c = why.setdefault(r["why"], {"answerable": 0, "right_first": 0, "unanswerable": 0})
            c["answerable" if r["gold"] else "unanswerable"] += 1
            c["right_first"] += r["rank"] == 1

    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit@1": sum(r["rank"] == 1 for r in answerable) / n,
        "hit@3": sum(bool(r["rank"]) and r["rank"] <= 3 for r in answerable) / n,
        "mrr": sum(1 / r["rank"] for r in answerable if r["rank"]) / n,
        "retrieval_hit@1": sum(r["retrieval_rank1"] for r in answerable) / n,
        "quote_hit@1": sum(r["quote_right"] for r in answerable) / n,
        "answerable_high": count(answerable, "high"),
        "answerable_low": count(answerable, "low"),
        "answerable_none": count(answerable, "none"),
        "unanswerable_high": count(unanswerable, "high"),
        "unanswerable_low": count(unanswerable, "low"),
        "unanswerable_none": count(unanswerable, "none"),
        "correct_abstentions": sum(r["abstained"] for r in unanswerable),
        "missed_abstentions": sum(not r["abstained"] for r in unanswerable),
        "wrong_abstentions": sum(r["abstained"] for r in answerable),
        "why": dict(sorted(why.items(), key=lambda kv: (-kv[1]["answerable"] - kv[1]["unanswerable"], kv[0]))),
        "p50_ms": _pct(lat, 0.5),
        "p95_ms": _pct(lat, 0.95),
        "rows": rows,
    }


def combined_stories(base: Path, extra: list[Path], dest: Path) -> Path:
    """A stories folder holding the stories of ``base`` and of every folder in ``extra``
    (copied, keeping their paths below each folder, so story ids stay the same)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for folder in [Path(base), *map(Path, extra)]:
        if not folder.is_dir():
            raise StorybotError(f"No stories folder {folder}.")
        for f in folder.rglob("*"):
            if f.is_file() and f.suffix.lower() in (".txt", ".md"):
                target = dest / f.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, target)
    return dest
