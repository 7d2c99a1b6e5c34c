"""Watcher benchmark: seconds from dropping a new story into the watched folder of a running
Answerer to the first answer that cites it, by story size (issue 13: a story of up to
20 KB within 10 s). Also how long the refresh itself took.

    python bench/bench_watch.py [--sizes 2000,10000,20000] [--runs 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bot.answer import Answerer  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.watch import StoryWatcher  # noqa: E402
from tests.new_story import QUESTION, festival_story  # noqa: E402  (one story generator for both)


def one_run(size: int, timeout: float = 120.0) -> tuple[float, float]:
    """(drop -> cited answer, refresh seconds) for a story of ``size`` bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        stories = Path(tmp) / "stories"
        shutil.copytree(ROOT / "stories", stories)
        answerer = Answerer.from_settings(load_settings(data_dir=Path(tmp) / "data", stories_dir=stories,
                                                        _env_file=None))
        try:
            answerer.ensure_index()
            with StoryWatcher(answerer, stories) as watcher:
                dropped = time.monotonic()
                (stories / "festival.md").write_text(festival_story(size), encoding="utf-8")
                while time.monotonic() - dropped < timeout:
                    answer = answerer.answer(QUESTION, source="bench")
                    if any(c.story == "festival" for c in answer.citations):
                        break
                    time.sleep(0.1)
                took = time.monotonic() - dropped
            return took, watcher.last_report.seconds if watcher.last_report else float("nan")
        finally:
            answerer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000,20000")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    table = Table(title=f"new story -> cited answer ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    for col in ("story size", "runs", "drop -> answer p50 s", "max s", "of which refresh p50 s", "target"):
        table.add_column(col, justify="right")
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [one_run(size) for _ in range(args.runs)]
        took = [t for t, _ in runs]
        table.add_row(f"{size // 1000} KB", str(len(runs)), f"{statistics.median(took):.1f}",
                      f"{max(took):.1f}",
                      f"{statistics.median(r for _, r in runs):.1f}", "≤ 10 s")
    Console().print(table)


if __name__ == "__main__":
    main()
