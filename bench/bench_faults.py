"""Fault-path benchmark: what recovering costs, measured through the real ``storybot`` command.

    python bench/bench_faults.py [--rows 100000]

Prints two tables:

- recovery (shipped story, embedded Chroma, e5): a normal ``storybot ask``, the first ``ask``
  after garbage is written into the index file (heal + rebuild + answer), ``refresh --full``
  on a broken index, and the ``refresh`` right after a ``kill -9`` of a full refresh;
- the answer log with ``--rows`` answers: migrating an old-schema log in place, pruning by
  age, ``forget`` of one person, and ``report --since``.
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bot.answerlog import DAY, AnswerLog  # noqa: E402

STORIES = ROOT / "stories"
OLD_SCHEMA = """
create table answers (id integer primary key autoincrement, ts real not null, question text not null,
    abstained integer not null, citations text not null, took_ms real not null,
    index_version text not null, mode text not null, source text not null);
create table votes (answer_id integer not null references answers(id), user text not null,
    vote integer not null, ts real not null, primary key (answer_id, user));
"""


def cli(*args, data: Path, stories: Path = STORIES) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "LLM_", "CHROMA_"))}
    env.update(STORYBOT_DATA_DIR=str(data), STORYBOT_STORIES=str(stories),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env,
                         cwd=data.parent, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"storybot {' '.join(args)} failed:\n{out.stderr}")
    return time.perf_counter() - t0, out


def garble(data: Path) -> None:
    with open(data / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.write(os.urandom(4096))


def recovery(tmp: Path) -> list[tuple[str, float, str]]:
    rows = []
    data = tmp / "d"
    cli("refresh", data=data)
    secs, _ = cli("ask", "why not Baidu?", data=data)
    rows.append(("ask, sound index", secs, "baseline: process start + model + answer"))
    garble(data)
    secs, out = cli("ask", "why not Baidu?", data=data)
    healed = "broken-" in out.stderr
    rows.append(("ask after garbage in the index", secs, f"healed + rebuilt + answered: {healed}"))
    garble(data)
    secs, _ = cli("refresh", "--full", data=data)
    rows.append(("refresh --full on a broken index", secs, "moved aside + rebuilt"))

    stories = tmp / "many"
    stories.mkdir()
    text = (STORIES / "apple-alibaba-ia-iphone-chine.fr.txt").read_text(encoding="utf-8")
    for i in range(12):
        (stories / f"copy{i}.txt").write_text(
            "\n".join(f"Dossier {i}. {line}" if line.strip() else line for line in text.splitlines()),
            encoding="utf-8")
    data2 = tmp / "k"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "LLM_", "CHROMA_"))}
    env.update(STORYBOT_DATA_DIR=str(data2), STORYBOT_STORIES=str(stories),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "refresh", "--full"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp)
    line = proc.stderr.readline()
    while line and "index" not in line:
        line = proc.stderr.readline()
    time.sleep(4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    secs, out = cli("refresh", data=data2, stories=stories)
    rows.append(("refresh right after kill -9 of one", secs,
                 "lease taken over at once: " + str("taking over" in out.stderr)))
    return rows


def answer_log(tmp: Path, n: int) -> list[tuple[str, float, str]]:
    rows = []
    path = tmp / "answers.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    now = time.time()
    db.executemany("insert into answers (ts, question, abstained, citations, took_ms, index_version, mode, source)"
                   " values (?, ?, ?, '[]', 5, 'v', 'extractive', 'discord')",
                   ((now - (i % 180) * DAY, f"question number {i}", i % 5 == 0) for i in range(n)))
    db.executemany("insert into votes values (?, ?, 1, ?)", ((i + 1, f"u{i % 50}", now) for i in range(0, n, 3)))
    db.commit()
    db.close()
    t0 = time.perf_counter()
    log = AnswerLog(path)  # keep forever: migration only
    rows.append((f"open + migrate an old log ({n:,} rows)", time.perf_counter() - t0, "adds the user column"))
    log._db.execute("update answers set user = 'discord:' || (id % 1000)")
    log._db.commit()
    log.close()
    t0 = time.perf_counter()
    log = AnswerLog(path, keep_days=90)
    rows.append(("open + prune to 90 days", time.perf_counter() - t0, f"{log.report()['answers']:,} rows left"))
    t0 = time.perf_counter()
    got = log.forget("discord:7")
    rows.append(("forget one user (+ vacuum)", time.perf_counter() - t0, f"{got[0]} answers, {got[1]} votes"))
    t0 = time.perf_counter()
    log.report(since=time.time() - 7 * DAY)
    rows.append(("report --since 7d", time.perf_counter() - t0, ""))
    log.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as d:
        for title, rows in (("Recovery (real storybot processes)", recovery(Path(d))),
                            ("Answer log", answer_log(Path(d), args.rows))):
            t = Table(title=title)
            t.add_column("case")
            t.add_column("seconds", justify="right")
            t.add_column("note")
            for case, secs, note in rows:
                t.add_row(case, f"{secs:.2f}", note)
            console.print(t)


if __name__ == "__main__":
    main()
