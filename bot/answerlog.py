"""The answer log: one SQLite row per answer, so unanswered questions can be reviewed and
chat users' 👍/👎 votes attach to the answer they judge. Never stores tokens or secrets.

It holds what people asked, so it is kept as personal data: the file is created readable by
its owner only (0600); rows older than ``keep_days`` are deleted (STORYBOT_LOG_DAYS); one
person's questions and votes can be deleted on request (``forget``), found by the platform
user id stored with each answer ("discord:<id>", "slack:<id>").

The schema changes through named migrations applied once each, in order, and recorded in a
``_migrations`` table (the way simonw/llm's ``llm/migrations.py`` does): a new column is a new
function at the end of ``MIGRATIONS``, and an existing log upgrades in place when opened.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

DAY = 86400.0

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its name is its identity, so never rename one."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    # "if not exists": logs created before migrations existed already have these tables
    db.execute("""
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
        )""")
    db.execute("""
        create table if not exists votes (
            answer_id integer not null references answers(id),
            user text not null,
            vote integer not null,        -- +1 or -1
            ts real not null,
            primary key (answer_id, user)
        )""")


@migration
def m002_answer_user(db: sqlite3.Connection) -> None:
    # who asked (the platform's user id, "discord:123" / "slack:U123"), so that `storybot
    # forget` can find one person's questions; null for the CLI
    db.execute("alter table answers add column user text")
    db.execute("create index if not exists answers_user on answers(user)")
    db.execute("create index if not exists answers_ts on answers(ts)")
    db.execute("create index if not exists votes_user on votes(user)")


@migration
def m003_answer_confidence(db: sqlite3.Connection) -> None:
    # "high" (answered), "low" (the closest passages, hedged) or "none" (refused), so that
    # `storybot report` can list the questions answered only with a hedge
    db.execute("alter table answers add column confidence text")
    db.execute("update answers set confidence = case when abstained = 1 then 'none' else 'high' end")


@migration
def m004_answer_why(db: sqlite3.Connection) -> None:
    # why an answer was hedged or refused (``Answer.why``: the rule that decided), so that
    # `storybot report` can say it beside each question; null for answers logged before
    db.execute("alter table answers add column why text")


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; returns the
    names applied. A migration runs ``execute`` calls only (``executescript`` would commit
    half-way)."""
    db.execute("create table if not exists _migrations (name text primary key, applied real not null)")
    db.commit()
    done = {row[0] for row in db.execute("select name from _migrations")}
    applied = []
    level = db.isolation_level
    db.isolation_level = None  # explicit transactions: Python's own would not wrap DDL
    try:
        for fn in MIGRATIONS:
            if fn.__name__ in done:
                continue
            db.execute("begin immediate")  # the migration and its record commit together, or neither
            try:
                if db.execute("select 1 from _migrations where name = ?", (fn.__name__,)).fetchone():
                    db.execute("commit")  # another process applied it meanwhile
                    continue
                fn(db)
                db.execute("insert into _migrations (name, applied) values (?, ?)", (fn.__name__, time.time()))
            except BaseException:
                db.execute("rollback")
                raise
            db.execute("commit")
            applied.append(fn.__name__)
    finally:
        db.isolation_level = level
    return applied


def user_ids(user: str) -> list[str]:
    """The stored forms of a user id as a person gives it: "discord:123" is that exactly;
    a bare "123" matches it on any platform (and the bare id as older rows stored it)."""
    user = user.strip()
    platform, sep, bare = user.partition(":")
    if sep and platform in ("discord", "slack") and bare:
        return [user, bare]
    return [user, f"discord:{user}", f"slack:{user}"]


def parse_since(text: str, now: float | None = None) -> float:
    """A ``--since`` value as a Unix time: "7d", "12h", "30m", "2w", or a date "2026-01-31"
    (midnight UTC) / ISO date-time. Raises ValueError with a plain message."""
    import datetime as dt

    now = time.time() if now is None else now
    t = text.strip().lower()
    units = {"m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
    if t[:-1].replace(".", "", 1).isdigit() and t[-1:] in units:
        return now - float(t[:-1]) * units[t[-1]]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is neither a duration like 7d, 12h, 2w nor a date like 2026-01-31") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


class AnswerLog:
    """Append-only log of answers plus one changeable vote per (answer, user)."""

    def __init__(self, path: Path, keep_days: float = 0):
        """Open (creating it 0600, migrating an older one) the log at ``path``; with
        ``keep_days`` > 0, rows older than that are deleted now and at each new answer.
        Raises ``AnswerLogDamaged`` when the file is not a readable SQLite database."""
        self.path = Path(path)
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._pruned = 0.0
        try:
            self._db = self._open()
        except (OSError, sqlite3.Error) as exc:
            from index.heal import classify, unusable

            kind = classify(exc)
            if kind in ("read-only", "full", "busy"):
                raise unusable(kind, self.path.parent) from exc
            if kind == "corrupt":
                from bot.errors import AnswerLogDamaged

                # not moved aside like the index: it is personal data, not derived data, and
                # a copy would escape `forget` and STORYBOT_LOG_DAYS
                raise AnswerLogDamaged(
                    f"The answer log {self.path} is damaged (not a readable SQLite database). Move it "
                    "away or delete it; a new one is started at the next answer.") from exc
            raise
        self.prune()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created before SQLite opens it, with owner-only permissions; the WAL and shm side
        # files SQLite creates later copy the main file's mode.
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        if self.path.stat().st_mode & 0o077:  # an older log created world-readable
            os.chmod(self.path, 0o600)
        # One connection shared across threads, serialized by our lock; WAL lets readers
        # (storybot report) look while a bot writes.
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        db.execute("pragma journal_mode=wal")
        db.execute("pragma foreign_keys=on")
        migrate(db)
        return db

    def record(self, *, question: str, abstained: bool, citations: list[str], took_ms: float,
               index_version: str, mode: str, source: str, user: str | None = None,
               confidence: str | None = None, why: str | None = None) -> int:
        """Append one answer; returns its id (the handle votes refer to). ``user`` is the
        asker's id as the platform gives it (None for the terminal); it is stored prefixed
        with the source ("discord:123"), so ids of two platforms never mix."""
        if user is not None and ":" not in str(user):
            user = f"{source}:{user}"
        with self._lock, self._db:
            cur = self._db.execute(
                "insert into answers (ts, question, abstained, citations, took_ms, index_version, mode, source, user,"
                " confidence, why) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), question, int(abstained), json.dumps(citations), took_ms,
                 index_version, mode, source, user, confidence or ("none" if abstained else "high"), why),
            )
            rid = int(cur.lastrowid)
        if time.time() - self._pruned > 3600:  # a bot runs for weeks: prune hourly, not per answer
            self.prune()
        return rid

    def vote(self, answer_id: int, user: str, vote: int) -> bool:
        """Record ``user``'s vote (+1/-1) on an answer, replacing their earlier vote.
        Returns False when the answer id is unknown."""
        if vote not in (1, -1):
            raise ValueError("vote must be +1 or -1")
        with self._lock, self._db:
            # the write lock from the start: another process's forget() cannot delete the
            # answer between the check and the vote (the vote then failed on the foreign key)
            self._db.execute("begin immediate")
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

    def prune(self) -> int:
        """Delete answers (and their votes) older than ``keep_days``; returns how many."""
        self._pruned = time.time()
        if not self.keep_days or self.keep_days <= 0:
            return 0
        cutoff = time.time() - self.keep_days * DAY
        with self._lock, self._db:
            self._db.execute("delete from votes where answer_id in (select id from answers where ts < ?)"
                             " or ts < ?", (cutoff, cutoff))
            return self._db.execute("delete from answers where ts < ?", (cutoff,)).rowcount

    def forget(self, user: str) -> tuple[int, int]:
        """Delete every question asked by ``user`` and every vote they cast (on anyone's
        answer), and the votes others cast on their answers. ``user`` is the id as the
        platform gives it, optionally prefixed "discord:" or "slack:". Returns (answers,
        votes) deleted. The space they took is reclaimed, so the text is gone from the file."""
        ids = user_ids(user)
        marks = ",".join("?" * len(ids))
        with self._lock:
            with self._db:
                votes = self._db.execute(
                    f"delete from votes where user in ({marks})"
                    f" or answer_id in (select id from answers where user in ({marks}))", ids + ids).rowcount
                answers = self._db.execute(f"delete from answers where user in ({marks})", ids).rowcount
            if answers or votes:
                # deleted rows stay readable in free pages and the WAL until overwritten
                self._db.execute("pragma wal_checkpoint(truncate)")
                self._db.execute("vacuum")
        return answers, votes

    def report(self, limit: int = 20, since: float | None = None) -> dict:
        """Counts, the most frequent abstained questions and the most frequent ones answered
        only with the closest passages ("low"), case- and space-folded, each with why its
        latest answer was refused or hedged, over every answer or those from ``since`` (a
        Unix time) on."""
        where, args = ("where ts >= ?", (since,)) if since is not None else ("", ())
        also = "and" if where else "where"
        with self._lock:
            total, abstained = self._db.execute(
                f"select count(*), coalesce(sum(abstained), 0) from answers {where}", args).fetchone()
            # with max(ts), SQLite takes the bare column ``why`` from the latest answer of the group
            top = self._db.execute(
                f"select lower(trim(question)) q, count(*) c, max(ts), why from answers {where} {also} abstained = 1"
                " group by q order by c desc, max(ts) desc limit ?", (*args, limit)).fetchall()
            low = self._db.execute(
                f"select lower(trim(question)) q, count(*) c, max(ts), why from answers {where} {also}"
                " confidence = 'low' group by q order by c desc, max(ts) desc limit ?", (*args, limit)).fetchall()
            up, down = self._db.execute(
                "select coalesce(sum(vote > 0), 0), coalesce(sum(vote < 0), 0) from votes"
                + (" where ts >= ?" if since is not None else ""), args).fetchone()
            by_source = self._db.execute(
                f"select source, count(*) from answers {where} group by source order by 2 desc", args).fetchall()
        out = {
            "answers": int(total),
            "abstained": int(abstained),
            "votes_up": int(up),
            "votes_down": int(down),
            "by_source": {s: int(c) for s, c in by_source},
            "top_abstained": [{"question": q, "count": int(c), "why": why} for q, c, _, why in top],
            "top_low": [{"question": q, "count": int(c), "why": why} for q, c, _, why in low],
        }
        if since is not None:
            out["since"] = since
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
