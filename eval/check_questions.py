"""Validate the question sets in eval/: run ``python eval/check_questions.py [files...]``.

Each line is ``{"id", "lang", "q", "gold", "keys"}`` (multi-story sets also carry
``"story"`` for answerable questions). ``gold`` is null or a short verbatim substring that
must occur exactly once in its story and lie inside one body paragraph (never in a heading,
never across paragraphs). Files under eval/multi/ use the four-story corpus: the shipped
stories/ folder plus eval/multi/stories/. Without arguments it also checks the off-topic
calibration banks in index/data/. Files under eval/holdout<n>/ (n = 3 to 39) use those four
stories plus eval/holdout3/stories/ up to eval/holdout<n>/stories/ (and, from round 8, the
earlier rounds' eval/dev<k>/stories/), except the rounds in FEW_STORIES (12 to 39), whose corpus is
the shipped story plus that round's own stories only: the shape of the hidden set; files under eval/dev<n>/
(round n's dev set) use the stories up to eval/holdout<n-1>/stories/ plus eval/dev<n>/stories/.
Exits non-zero on any problem.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.chunk import chunk_story
from index.sources import read_stories

SHIPPED = ROOT / "stories"
MULTI = ROOT / "eval" / "multi" / "stories"

def holdout_folders(n: int) -> list[Path]:
    """The story folders of held-out round ``n`` (3, 4, 5...): its own and every earlier
    round's, eval/holdout<k>/stories, and the earlier rounds' dev sets' (eval/dev<k>/stories,
    from round 7 on)."""
    held = [ROOT / "eval" / f"holdout{k}" / "stories" for k in range(3, n + 1)]
    devs = [ROOT / "eval" / f"dev{k}" / "stories" for k in range(7, n)]
    # not every round has a dev set (round 8 has none)
    return held + [d for d in devs if d.is_dir()]
DEFAULT_FILES = [
    "eval/dev_questions.jsonl", "eval/extra_questions.jsonl", "eval/fresh_questions.jsonl",
    "eval/test_questions.jsonl", "eval/multi/dev_questions.jsonl", "eval/multi/test_questions.jsonl",
    "eval/test2_questions.jsonl", "eval/multi/test2_questions.jsonl",
    "eval/test3_questions.jsonl", "eval/holdout3/test3_questions.jsonl",
    "eval/test4_questions.jsonl", "eval/holdout4/test4_questions.jsonl",
    "eval/test5_questions.jsonl", "eval/holdout5/test5_questions.jsonl",
    "eval/test6_questions.jsonl", "eval/holdout6/test6_questions.jsonl",
    "eval/test7_questions.jsonl", "eval/holdout7/test7_questions.jsonl", "eval/dev7/dev7_questions.jsonl",
    "eval/test8_questions.jsonl", "eval/holdout8/test8_questions.jsonl",
    "eval/dev9/dev9_questions.jsonl", "eval/test9_questions.jsonl", "eval/holdout9/test9_questions.jsonl",
    "eval/test10_questions.jsonl", "eval/holdout10/test10_questions.jsonl",
    "eval/test11_questions.jsonl", "eval/holdout11/test11_questions.jsonl",
    "eval/test12_questions.jsonl", "eval/holdout12/test12_questions.jsonl",
    "eval/test13_questions.jsonl", "eval/holdout13/test13_questions.jsonl",
    "eval/test14_questions.jsonl", "eval/holdout14/test14_questions.jsonl",
    "eval/test15_questions.jsonl", "eval/holdout15/test15_questions.jsonl",
    "eval/test16_questions.jsonl", "eval/holdout16/test16_questions.jsonl",
    "eval/test17_questions.jsonl", "eval/holdout17/test17_questions.jsonl",
    "eval/test18_questions.jsonl", "eval/holdout18/test18_questions.jsonl",
    "eval/test19_questions.jsonl", "eval/holdout19/test19_questions.jsonl",
    "eval/test20_questions.jsonl", "eval/holdout20/test20_questions.jsonl",
    "eval/test21_questions.jsonl", "eval/holdout21/test21_questions.jsonl",
    "eval/test22_questions.jsonl", "eval/holdout22/test22_questions.jsonl",
    "eval/test23_questions.jsonl", "eval/holdout23/test23_questions.jsonl",
    "eval/test24_questions.jsonl", "eval/holdout24/test24_questions.jsonl",
    "eval/test25_questions.jsonl", "eval/holdout25/test25_questions.jsonl",
    "eval/test26_questions.jsonl", "eval/holdout26/test26_questions.jsonl",
    "eval/test27_questions.jsonl", "eval/holdout27/test27_questions.jsonl",
    "eval/test28_questions.jsonl", "eval/holdout28/test28_questions.jsonl",
    "eval/test29_questions.jsonl", "eval/holdout29/test29_questions.jsonl",
    "eval/test30_questions.jsonl", "eval/holdout30/test30_questions.jsonl",
    "eval/test31_questions.jsonl", "eval/holdout31/test31_questions.jsonl",
    "eval/test32_questions.jsonl", "eval/holdout32/test32_questions.jsonl",
    "eval/test33_questions.jsonl", "eval/holdout33/test33_questions.jsonl",
    "eval/test34_questions.jsonl", "eval/holdout34/test34_questions.jsonl",
    "eval/test35_questions.jsonl", "eval/holdout35/test35_questions.jsonl",
    "eval/test36_questions.jsonl", "eval/holdout36/test36_questions.jsonl",
    "eval/test37_questions.jsonl", "eval/holdout37/test37_questions.jsonl",
    "eval/test38_questions.jsonl", "eval/holdout38/test38_questions.jsonl",
    "eval/test39_questions.jsonl", "eval/holdout39/test39_questions.jsonl",
]
GOLD_MIN, GOLD_MAX = 8, 60
# Sets written with the short-gold rule (the older tuning sets predate it): golds of
# 8-60 characters and keys that are part of the gold.
STRICT = {"eval/test_questions.jsonl", "eval/multi/dev_questions.jsonl", "eval/multi/test_questions.jsonl",
          "eval/test2_questions.jsonl", "eval/multi/test2_questions.jsonl",
          "eval/test3_questions.jsonl", "eval/holdout3/test3_questions.jsonl",
          "eval/test4_questions.jsonl", "eval/holdout4/test4_questions.jsonl",
          "eval/test5_questions.jsonl", "eval/holdout5/test5_questions.jsonl",
          "eval/test6_questions.jsonl", "eval/holdout6/test6_questions.jsonl",
          "eval/test7_questions.jsonl", "eval/holdout7/test7_questions.jsonl", "eval/dev7/dev7_questions.jsonl",
          "eval/test8_questions.jsonl", "eval/holdout8/test8_questions.jsonl",
          "eval/dev9/dev9_questions.jsonl", "eval/test9_questions.jsonl", "eval/holdout9/test9_questions.jsonl",
          "eval/test10_questions.jsonl", "eval/holdout10/test10_questions.jsonl",
          "eval/test11_questions.jsonl", "eval/holdout11/test11_questions.jsonl",
          "eval/test12_questions.jsonl", "eval/holdout12/test12_questions.jsonl",
          "eval/test13_questions.jsonl", "eval/holdout13/test13_questions.jsonl",
          "eval/test14_questions.jsonl", "eval/holdout14/test14_questions.jsonl",
          "eval/test15_questions.jsonl", "eval/holdout15/test15_questions.jsonl",
          "eval/test16_questions.jsonl", "eval/holdout16/test16_questions.jsonl",
          "eval/test17_questions.jsonl", "eval/holdout17/test17_questions.jsonl",
          "eval/test18_questions.jsonl", "eval/holdout18/test18_questions.jsonl",
          "eval/test19_questions.jsonl", "eval/holdout19/test19_questions.jsonl",
          "eval/test20_questions.jsonl", "eval/holdout20/test20_questions.jsonl",
          "eval/test21_questions.jsonl", "eval/holdout21/test21_questions.jsonl",
          "eval/test22_questions.jsonl", "eval/holdout22/test22_questions.jsonl",
          "eval/test23_questions.jsonl", "eval/holdout23/test23_questions.jsonl",
          "eval/test24_questions.jsonl", "eval/holdout24/test24_questions.jsonl",
          "eval/test25_questions.jsonl", "eval/holdout25/test25_questions.jsonl",
          "eval/test26_questions.jsonl", "eval/holdout26/test26_questions.jsonl",
          "eval/test27_questions.jsonl", "eval/holdout27/test27_questions.jsonl",
          "eval/test28_questions.jsonl", "eval/holdout28/test28_questions.jsonl",
          "eval/test29_questions.jsonl", "eval/holdout29/test29_questions.jsonl",
          "eval/test30_questions.jsonl", "eval/holdout30/test30_questions.jsonl",
          "eval/test31_questions.jsonl", "eval/holdout31/test31_questions.jsonl",
          "eval/test32_questions.jsonl", "eval/holdout32/test32_questions.jsonl",
          "eval/test33_questions.jsonl", "eval/holdout33/test33_questions.jsonl",
          "eval/test34_questions.jsonl", "eval/holdout34/test34_questions.jsonl",
          "eval/test35_questions.jsonl", "eval/holdout35/test35_questions.jsonl",
          "eval/test36_questions.jsonl", "eval/holdout36/test36_questions.jsonl",
          "eval/test37_questions.jsonl", "eval/holdout37/test37_questions.jsonl",
          "eval/test38_questions.jsonl", "eval/holdout38/test38_questions.jsonl",
          "eval/test39_questions.jsonl", "eval/holdout39/test39_questions.jsonl"}
# Held-out rounds whose corpus is the shipped story plus their own stories only (a few-story
# corpus, like the hidden set), not every earlier round's.
FEW_STORIES = {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def load(folder: Path) -> dict:
    stories, problems = read_stories(folder)
    if problems:
        raise SystemExit(f"unreadable stories in {folder}: {[str(p) for p in problems]}")
    return {s.id: s for s in stories}


def paragraph_spans(story) -> list[tuple[int, int]]:
    """(start, end) of each body paragraph (chunks of a split paragraph are joined)."""
    spans: dict[int, list[int]] = {}
    for c in chunk_story(story):
        body = [s for s in c.sentences if s.kind != "heading"]
        a, b = body[0].start, body[-1].end
        if c.paragraph in spans:
            spans[c.paragraph][1] = b
        else:
            spans[c.paragraph] = [a, b]
    return [tuple(v) for v in spans.values()]


def check_file(path: Path, corpus: dict, multi: bool) -> tuple[list[str], dict]:
    errors: list[str] = []
    ids: set[str] = set()
    stats: dict = {}
    default = next(iter(load(SHIPPED)))
    # files outside the repository are new sets: hold them to the short-gold rule
    strict = _name(path) in STRICT or not path.is_relative_to(ROOT)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{_name(path)}:{n}"
        if not line.strip():
            errors.append(f"{where}: blank line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: bad JSON ({exc})")
            continue
        missing = {"id", "lang", "q", "gold", "keys"} - row.keys()
        if missing:
            errors.append(f"{where}: missing {sorted(missing)}")
            continue
        if row["id"] in ids:
            errors.append(f"{where}: duplicate id {row['id']}")
        ids.add(row["id"])
        if row["lang"] not in ("en", "fr"):
            errors.append(f"{where}: lang {row['lang']!r}")
        if not isinstance(row["keys"], list) or not str(row["q"]).strip():
            errors.append(f"{where}: keys must be a list and q non-empty")
        gold = row["gold"]
        kind = "answerable" if gold is not None else "unanswerable"
        stats[(kind, row["lang"])] = stats.get((kind, row["lang"]), 0) + 1
        if gold is None:
            if multi and row.get("story"):
                errors.append(f"{where}: unanswerable question names a story")
            continue
        sid = row.get("story") if multi else row.get("story", default)
        if sid not in corpus:
            errors.append(f"{where}: unknown story {sid!r}")
            continue
        if not (GOLD_MIN <= len(gold) <= GOLD_MAX) and strict:
            errors.append(f"{where}: gold length {len(gold)} outside {GOLD_MIN}-{GOLD_MAX}")
        if strict and any(k not in gold for k in row["keys"]):
            errors.append(f"{where}: a key is not part of the gold")
        story = corpus[sid]
        count = story.text.count(gold)
        if count != 1:
            errors.append(f"{where}: gold occurs {count} times in {sid}: {gold!r}")
            continue
        a = story.text.index(gold)
        if not any(s <= a and a + len(gold) <= e for s, e in paragraph_spans(story)):
            errors.append(f"{where}: gold not inside one body paragraph: {gold!r}")
        for other_id, other in corpus.items():
            if other_id != sid and gold in other.text:
                errors.append(f"{where}: gold also occurs in {other_id}")
    return errors, stats


OFFTOPIC = ["index/data/offtopic_en.txt", "index/data/offtopic_fr.txt"]
OFFTOPIC_MIN = 110
# Words of the eval stories that an off-topic calibration line must never contain.
STORY_WORDS = re.compile(
    r"\b(apple|alibaba|chin[ae]|chinese|chinois\w*|iphones?|ai|ia|huawei|baidu|qwen|siri|"
    r"trams?|airport|aéroport|wind|éolien\w*|turbines?|stadium|stade|football|kelbridge|"
    r"skerry|norhavn|ardmore|vallon|garenne|tanneurs|corran|ferry|ferries|vignobles?|grêle|aubière)\b", re.IGNORECASE)


def check_offtopic(path: Path) -> list[str]:
    """A calibration bank: enough lines, no duplicates, nothing from the eval stories."""
    errors: list[str] = []
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(lines) < OFFTOPIC_MIN:
        errors.append(f"{path.name}: {len(lines)} lines, want at least {OFFTOPIC_MIN}")
    seen: set[str] = set()
    for ln in lines:
        if ln.lower() in seen:
            errors.append(f"{path.name}: duplicate line {ln!r}")
        seen.add(ln.lower())
        # "j'ai" is the French verb, not the acronym
        m = STORY_WORDS.search(re.sub(r"\b[jJ]['’]ai\b", "", ln))
        if m:
            errors.append(f"{path.name}: line mentions {m.group()!r}: {ln!r}")
    print(f"{_name(path)}: {len(lines)} lines"
          f"{'' if not errors else f' -- {len(errors)} problem(s)'}")
    return errors


def main(argv: list[str]) -> int:
    files = argv or [f for f in DEFAULT_FILES if (ROOT / f).exists()]
    shipped = load(SHIPPED)
    multi_corpus = {**shipped, **load(MULTI)}
    all_errors: list[str] = []
    for f in files:
        path = Path(f).resolve()
        rounds = [int(p[len("holdout"):]) for p in path.parts if re.fullmatch(r"holdout\d+", p)]
        devs = [int(p[len("dev"):]) for p in path.parts if re.fullmatch(r"dev\d+", p)]
        multi = bool(rounds or devs) or "multi" in path.parts
        corpus = multi_corpus if multi else shipped
        if rounds and rounds[0] in FEW_STORIES:
            corpus = {**shipped, **load(ROOT / "eval" / f"holdout{rounds[0]}" / "stories")}
        elif rounds or devs:
            corpus = dict(multi_corpus)
            for folder in holdout_folders(rounds[0] if rounds else devs[0] - 1):
                corpus.update(load(folder))
            if devs:
                corpus.update(load(ROOT / "eval" / f"dev{devs[0]}" / "stories"))
        errors, stats = check_file(path, corpus, multi)
        all_errors += errors
        summary = ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(stats.items()))
        print(f"{_name(path)}: {sum(stats.values())} questions ({summary})"
              f"{'' if not errors else f' -- {len(errors)} problem(s)'}")
    if not argv:
        for f in OFFTOPIC:
            if (ROOT / f).exists():
                all_errors += check_offtopic(ROOT / f)
    for e in all_errors:
        print("  " + e)
    return 1 if all_errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
