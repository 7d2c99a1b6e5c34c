"""The answer log: one SQLite row per answer, so unanswered questions can be reviewed and
chat users' 👍/👎 votes attach to the answer they judge. Never stores tokens or secrets."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
create table if not exists answers (
    id integer primary key autoincrement,
    ts real not null,
    question text not null,
    abstained integer not null,
    citations text not null,      -- JSON list of chunk ids, in citation order
    took_ms real not null,
    index_version text not null,
    mode text not null,
    source text not null          -- where it was asked: cli, discord, slack, ...
);
create table if not exists votes (
    answer_id integer not null references answers(id),
    user text not null,
    vote integer not null,        -- +1 or -1
    ts real not null,
    primary key (answer_id, user)
);
"""


class AnswerLog:
    """Append-only log of answers plus one changeable vote per (answer, user)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared across threads, serialized by our lock; WAL lets readers
        # (storybot report) look while a bot writes.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._db.execute("pragma journal_mode=wal")
        self._db.executescript(_SCHEMA)
        # "high" | "low" | "none" (core issue 14); to fold into the log's migrations
        if "confidence" not in {r[1] for r in self._db.execute("pragma table_info(answers)")}:
            self._db.execute("alter table answers add column confidence text not null default 'high'")

    def record(self, *, question: str, abstained: bool, citations: list[str], took_ms: float,
               index_version: str, mode: str, source: str, confidence: str | None = None) -> int:
        """Append one answer; returns its id (the handle votes refer to)."""
        confidence = confidence or ("none" if abstained else "high")
        with self._lock, self._db:
            cur = self._db.execute(
                "insert into answers (ts, question, abstained, citations, took_ms, index_version, mode, source,"
                " confidence) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), question, int(abstained), json.dumps(citations), took_ms,
                 index_version, mode, source, confidence),
            )
            return int(cur.lastrowid)

    def vote(self, answer_id: int, user: str, vote: int) -> bool:
        """Record ``user``'s vote (+1/-1) on an answer, replacing their earlier vote.
        Returns False when the answer id is unknown."""
        if vote not in (1, -1):
            raise ValueError("vote must be +1 or -1")
        with self._lock, self._db:
            if not self._db.execute("select 1 from answers where id = ?", (answer_id,)).fetchone():
                return False
            self._db.execute(
                "insert into votes (answer_id, user, vote, ts) values (?, ?, ?, ?)"
                " on conflict(answer_id, user) do update set vote = excluded.vote, ts = excluded.ts",
                (answer_id, str(user), vote, time.time()),
            )
            return True

    def votes(self, answer_id: int) -> tuple[int, int]:
        """(up, down) vote counts of an answer."""
        with self._lock:
            row = self._db.execute(
                "select coalesce(sum(vote > 0), 0), coalesce(sum(vote < 0), 0) from votes where answer_id = ?",
                (answer_id,),
            ).fetchone()
        return int(row[0]), int(row[1])

    def report(self, limit: int = 20) -> dict:
        """Counts, the most frequent abstained questions and the most frequent ones answered
        only with the closest passages ("low"), case- and space-folded."""
        with self._lock:
            total, abstained = self._db.execute(
                "select count(*), coalesce(sum(abstained), 0) from answers").fetchone()
            top = self._db.execute(
                "select lower(trim(question)) q, count(*) c, max(ts) from answers where abstained = 1"
                " group by q order by c desc, max(ts) desc limit ?", (limit,)).fetchall()
            low = self._db.execute(
                "select lower(trim(question)) q, count(*) c, max(ts) from answers where confidence = 'low'"
                " group by q order by c desc, max(ts) desc limit ?", (limit,)).fetchall()
            up, down = self._db.execute(
                "select coalesce(sum(vote > 0), 0), coalesce(sum(vote < 0), 0) from votes").fetchone()
            by_source = self._db.execute(
                "select source, count(*) from answers group by source order by 2 desc").fetchall()
        return {
            "answers": int(total),
            "abstained": int(abstained),
            "votes_up": int(up),
            "votes_down": int(down),
            "by_source": {s: int(c) for s, c in by_source},
            "top_abstained": [{"question": q, "count": int(c)} for q, c, _ in top],
            "top_low": [{"question": q, "count": int(c)} for q, c, _ in low],
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
