"""The answer log as personal data: owner-only file, the asker's id on each row, retention,
forgetting one person, reports over a period, and schema migrations applied once."""
import json
import sqlite3
import stat
import time

import pytest

from bot.answerlog import DAY, MIGRATIONS, AnswerLog, migrate, parse_since

# The schema as the code before migrations created it (bot/answerlog.py at 03fe40a).
OLD_SCHEMA = """
create table if not exists answers (
    id integer primary key autoincrement, ts real not null, question text not null,
    abstained integer not null, citations text not null, took_ms real not null,
    index_version text not null, mode text not null, source text not null
);
create table if not exists votes (
    answer_id integer not null references answers(id), user text not null, vote integer not null,
    ts real not null, primary key (answer_id, user)
);
"""


def add(log, question, *, source="discord", user=None, abstained=False):
    return log.record(question=question, abstained=abstained, citations=["c/1"], took_ms=5.0,
                      index_version="v1", mode="extractive", source=source, user=user)


def test_the_file_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "data" / "answers.sqlite3"
    log = AnswerLog(path)
    add(log, "why not Baidu?")
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for side in path.parent.glob("answers.sqlite3-*"):  # the WAL and shm files too
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side.name


def test_an_old_world_readable_log_is_tightened_and_migrated_in_place(tmp_path):
    path = tmp_path / "answers.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("insert into answers (ts, question, abstained, citations, took_ms, index_version, mode, source)"
               " values (?, 'old question', 1, '[]', 3.0, 'v0', 'extractive', 'slack')", (time.time(),))
    db.execute("insert into votes values (1, 'U9', 1, ?)", (time.time(),))
    db.commit()
    db.close()
    path.chmod(0o644)

    log = AnswerLog(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    new = add(log, "new question", source="slack", user="U1")
    rep = log.report()
    assert rep["answers"] == 2 and rep["votes_up"] == 1  # nothing lost
    assert rep["top_abstained"][0]["question"] == "old question"
    log.close()
    db = sqlite3.connect(path)
    rows = db.execute("select id, question, user from answers order by id").fetchall()
    assert rows == [(1, "old question", None), (new, "new question", "slack:U1")]
    applied = [r[0] for r in db.execute("select name from _migrations order by rowid")]
    assert applied == [fn.__name__ for fn in MIGRATIONS]
    assert migrate(db) == []  # applied once: a second run does nothing
    db.close()
    AnswerLog(path).close()  # and reopening does not try to add the column again


def test_a_failing_migration_leaves_no_trace_and_is_retried(tmp_path, monkeypatch):
    db = sqlite3.connect(tmp_path / "x.sqlite3")

    def m999_broken(conn):
        conn.execute("create table half (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr("bot.answerlog.MIGRATIONS", [*MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError):
        migrate(db)
    names = {r[0] for r in db.execute("select name from _migrations")}
    assert "m999_broken" not in names and len(names) == len(MIGRATIONS)
    assert not db.execute("select 1 from sqlite_master where name = 'half'").fetchone()


def test_rows_carry_the_platform_user_and_forget_deletes_one_person(tmp_path):
    path = tmp_path / "answers.sqlite3"
    log = AnswerLog(path)
    mine = [add(log, f"my secret question {i}", user="111") for i in range(3)]
    theirs = add(log, "someone else's question", user="222")
    slack = add(log, "a slack question", source="slack", user="U111")
    cli = add(log, "a terminal question", source="cli")
    log.vote(theirs, "111", 1)  # my vote on their answer
    log.vote(mine[0], "222", -1)  # their vote on my answer
    log.vote(theirs, "222", 1)

    assert log.forget("discord:111") == (3, 2)
    rep = log.report()
    assert rep["answers"] == 3 and (rep["votes_up"], rep["votes_down"]) == (1, 0)
    assert log.forget("U111") == (1, 0)  # a bare id matches on any platform
    assert log.forget("nobody") == (0, 0)
    log.close()
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("answers.sqlite3-*"))
    assert b"my secret question" not in raw and b"a slack question" not in raw  # gone from the file
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("select id from answers order by id")] == [theirs, cli]
    db.close()


def test_rows_older_than_the_retention_are_pruned(tmp_path):
    path = tmp_path / "answers.sqlite3"
    log = AnswerLog(path)
    old = add(log, "an old question", user="1")
    add(log, "a recent question", user="2")
    log.vote(old, "2", 1)
    log._db.execute("update answers set ts = ? where id = ?", (time.time() - 91 * DAY, old))
    log._db.execute("update votes set ts = ?", (time.time() - 91 * DAY,))
    log._db.commit()
    log.close()
    forever = AnswerLog(path, keep_days=0)
    assert forever.report()["answers"] == 2
    forever.close()
    log = AnswerLog(path, keep_days=90)  # pruned when opened
    rep = log.report()
    assert rep["answers"] == 1 and rep["votes_up"] == 0
    log.close()


def test_report_since_counts_only_the_period(tmp_path):
    log = AnswerLog(tmp_path / "answers.sqlite3")
    a = add(log, "Old unanswered", abstained=True)
    add(log, "new unanswered", abstained=True)
    add(log, "answered")
    log.vote(a, "u", -1)
    log._db.execute("update answers set ts = ? where id = ?", (time.time() - 10 * DAY, a))
    log._db.execute("update votes set ts = ?", (time.time() - 10 * DAY,))
    log._db.commit()
    week = log.report(since=parse_since("7d"))
    assert (week["answers"], week["abstained"], week["votes_down"]) == (2, 1, 0)
    assert [r["question"] for r in week["top_abstained"]] == ["new unanswered"]
    everything = log.report()
    assert (everything["answers"], everything["abstained"], everything["votes_down"]) == (3, 2, 1)
    json.dumps(week)
    log.close()


def test_the_report_says_why_each_question_was_refused_or_hedged(tmp_path):
    log = AnswerLog(tmp_path / "answers.sqlite3")
    common = dict(citations=[], took_ms=5.0, index_version="v1", mode="extractive", source="slack")
    log.record(question="What did Tim Cook say?", abstained=True, confidence="none", why="not mentioned", **common)
    log.record(question="what did tim cook say?", abstained=True, confidence="none", why="off topic", **common)
    log.record(question="How many engineers?", abstained=False, confidence="low", why="a count of another kind",
               **common)
    rep = log.report()
    # one row per question, folded, with the reason of its latest answer
    assert rep["top_abstained"] == [{"question": "what did tim cook say?", "count": 2, "why": "off topic"}]
    assert rep["top_low"] == [{"question": "how many engineers?", "count": 1, "why": "a count of another kind"}]
    log.close()


def test_parse_since_takes_durations_and_dates():
    now = 1_800_000_000.0
    assert parse_since("7d", now) == now - 7 * DAY
    assert parse_since("12h", now) == now - 12 * 3600
    assert parse_since("2w", now) == now - 14 * DAY
    assert parse_since("1970-01-02") == DAY
    assert parse_since("1970-01-01T01:00:00+01:00") == 0
    for bad in ("yesterday", "7", "d", "-3d"):
        with pytest.raises(ValueError, match="7d"):
            parse_since(bad, now)


def test_a_vote_racing_forget_in_another_process_is_recorded_then_forgotten(tmp_path):
    # vote() checked the answer, then wrote the vote: another process's forget() deleting the
    # answer in between made the vote fail on the foreign key (sqlite3.IntegrityError)
    import threading

    path = tmp_path / "answers.sqlite3"
    voter, other = AnswerLog(path), AnswerLog(path)  # two connections, as two processes have
    answer_id = add(voter, "why not Baidu?", user="U1")
    at_insert, forgotten = threading.Event(), threading.Event()

    def pause_before_the_vote(sql: str) -> None:
        if sql.lstrip().lower().startswith("insert into votes"):
            at_insert.set()
            forgotten.wait(2)  # forget() runs here, unless the vote's transaction keeps it out

    def forget() -> None:
        assert at_insert.wait(10)
        other.forget("discord:U1")
        forgotten.set()

    voter._db.set_trace_callback(pause_before_the_vote)
    racer = threading.Thread(target=forget)
    racer.start()
    try:
        assert voter.vote(answer_id, "U2", 1) is True
    finally:
        racer.join(30)
    assert forgotten.is_set() and other.votes(answer_id) == (0, 0)  # forget came after, and took the vote
    voter.close()
    other.close()
