"""Few-story views of the earlier rounds' sets: ``python eval/few_story_views.py OUT_DIR``.

The hidden set the bot is judged on has the shape of a few-story corpus: the shipped story
and three new ones. Most multi-story tuning sets here are cumulative (round n's corpus holds
every earlier round's stories), so this writes, for each earlier round, a view with that
shape: the round's held-out (or dev) questions about the shipped story or the round's own
new stories, plus all of its unanswerable questions (nothing in the larger corpus answers
them, so nothing in a smaller one does), over the shipped story plus the round's own stories
only. Each view is tuning data like the set it comes from. It prints the command that
evaluates each view.

Round 12 used them first (610 questions, 416 answerable, over three or four stories).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from check_questions import ROOT, SHIPPED, load  # eval/ is this script's folder

from bot.evaluate import load_questions  # check_questions put the repository on the path

# (view, the round's own stories, its questions): held-out rounds with a few-story corpus of
# their own are left out (round 12's is held out until it has been measured)
ROUNDS = [(f"h{n}", f"eval/holdout{n}/stories", f"eval/holdout{n}/test{n}_questions.jsonl") for n in range(3, 12)]
ROUNDS += [(f"dev{n}", f"eval/dev{n}/stories", f"eval/dev{n}/dev{n}_questions.jsonl") for n in (7, 9)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    shipped = set(load(SHIPPED))
    for name, folder, questions in ROUNDS:
        ids = shipped | set(load(ROOT / folder))
        kept = [r for r in load_questions(ROOT / questions) if r["gold"] is None or r.get("story") in ids]
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
                                           encoding="utf-8")
        answerable = sum(1 for r in kept if r["gold"] is not None)
        print(f"# {name}: {len(ids)} stories, {answerable} + {len(kept) - answerable} questions")
        print(f"storybot eval {out / name}.jsonl --add-stories {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
