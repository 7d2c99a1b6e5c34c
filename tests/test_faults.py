"""Faults a new user runs into, tried the way they would: the real ``storybot`` command in a
subprocess, the real embedded Chroma and the real e5 model.

- a story linked from outside the folder is never quoted; an oversized story is skipped;
- garbage in the index file heals on the next ``storybot ask`` (one log line naming the
  ``broken-`` folder), and ``refresh --full`` recovers too;
- a read-only or full data folder gets one sentence, and nothing is moved aside;
- after ``kill -9`` of a refresh, the next refresh runs at once;
- a dead Chroma server at start-up is one line, no traceback, for every command;
- ``forget`` / ``report --since`` on the command line; a secret in a debug log line is redacted
  in the real log output.

Read-only and full folders are made with a private mount namespace (``unshare -m``): the
tests run as root, for whom file permissions are no barrier, but a read-only mount or a
full tmpfs is one for everybody.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import STORIES, copy_stories
from tests.test_cli import storybot

STORY = "apple-alibaba-ia-iphone-chine.fr"
BAIDU = "Les premières discussions avec Baidu ont échoué"


def trace_free(out) -> None:
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout


def error_line(out) -> str:
    """The only stderr line of a failed command (besides a "Building the story index…" line
    and a bot's INFO start-up line, which names the version)."""
    assert out.returncode == 1, (out.returncode, out.stderr)
    trace_free(out)
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.endswith("index…")
             and " INFO storybot: storybot " not in line]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# --- the stories folder ------------------------------------------------------------------------

def test_a_story_linked_from_outside_the_folder_is_never_quoted(tmp_path):
    secret = tmp_path / "private" / "vault.txt"
    secret.parent.mkdir()
    secret.write_text("Coffre\n\nLe code du coffre-fort de la banque est 4471 zèbre violet.\n", encoding="utf-8")
    stories = copy_stories(tmp_path / "stories")
    (stories / "vault.txt").symlink_to(secret)
    data = tmp_path / "d"

    out = storybot("refresh", data=data, stories=stories)
    assert out.returncode == 0, out.stderr
    assert "vault.txt: links outside the stories folder" in out.stdout  # reported by name
    for q in ("story:vault quel est le code du coffre-fort ?", "What is the code of the bank's safe?"):
        got = storybot("ask", "--json", q, data=data, stories=stories)
        assert got.returncode == 0, got.stderr
        assert "4471" not in got.stdout and "zèbre" not in got.stdout


def test_a_story_over_the_size_limit_is_skipped_with_a_clear_line(tmp_path):
    stories = copy_stories(tmp_path / "stories")
    (stories / "huge.txt").write_text("Huge\n\n" + "Une phrase de remplissage. " * 2000, encoding="utf-8")
    out = storybot("refresh", "--json", data=tmp_path / "d", stories=stories,
                   env={"STORYBOT_MAX_STORY_BYTES": "20000"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["stories"] == 1 and report["added"] == 13
    [problem] = report["problems"]
    assert problem.startswith("huge.txt: the file is 54 kB, larger than the 20 kB limit per story")


# --- a broken index heals ---------------------------------------------------------------------

def garble(path) -> None:
    with open(path, "r+b") as fh:
        fh.write(os.urandom(4096))


def test_garbage_in_the_index_heals_on_the_next_ask(tmp_path):
    data = tmp_path / "d"
    assert storybot("ask", "why not Baidu?", data=data).returncode == 0
    garble(data / "chroma" / "chroma.sqlite3")

    out = storybot("ask", "--json", "why not Baidu?", data=data)
    assert out.returncode == 0, out.stderr
    trace_free(out)
    assert json.loads(out.stdout)["citations"][0]["quote"].startswith(BAIDU)
    healed = [line for line in out.stderr.splitlines() if "broken-" in line]
    assert len(healed) == 1, out.stderr
    [broken] = list(data.glob("broken-*"))
    assert str(broken) in healed[0] and "rebuilding" in healed[0]
    assert (broken / "chroma.sqlite3").exists()  # kept for a post-mortem
    # the answer log stayed where it was, with the first answer in it
    assert json.loads(storybot("report", "--json", data=data).stdout)["answers"] == 2
    # and the next question finds a sound index: nothing more to heal
    again = storybot("ask", "why not Baidu?", data=data)
    assert again.returncode == 0 and "broken-" not in again.stderr and "Building" not in again.stderr


def test_refresh_full_recovers_from_a_broken_index(tmp_path):
    data = tmp_path / "d"
    assert storybot("refresh", data=data).returncode == 0
    with open(data / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.seek(32768)
        fh.write(os.urandom(65536))  # pages in the middle: the header still reads
    out = storybot("refresh", "--full", "--json", data=data)
    assert out.returncode == 0, out.stderr
    trace_free(out)
    assert json.loads(out.stdout)["added"] == 13
    assert storybot("ask", "why not Baidu?", data=data).returncode == 0


# --- folders that cannot be used: one sentence, nothing moved ---------------------------------

def _can_mount() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_mounts = pytest.mark.skipif(not _can_mount(), reason="needs `unshare -m` (a private mount namespace)")


def in_namespace(setup: str, *args, data, stories=STORIES, env=None):
    """``storybot ARGS`` after ``setup`` (shell mount commands) in a private mount namespace."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "LLM_", "CHROMA_"))}
    e.update({"STORYBOT_DATA_DIR": str(data), "STORYBOT_STORIES": str(stories)}, **(env or {}))
    script = f'{setup} && exec "$0" -m bot.cli "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable, *args], capture_output=True,
                          text=True, env=e, timeout=300, cwd=data.parent)


@needs_mounts
@pytest.mark.parametrize("built", [False, True])
def test_a_read_only_data_folder_gets_one_sentence(tmp_path, built):
    data = tmp_path / "d"
    data.mkdir()
    if built:
        assert storybot("refresh", data=data).returncode == 0
    before = sorted(p.name for p in data.iterdir())
    ro = f"mount --bind {data} {data} && mount -o remount,ro,bind {data}"
    line = error_line(in_namespace(ro, "ask", "why not Baidu?", data=data))
    assert str(data) in line and "writable" in line
    assert sorted(p.name for p in data.iterdir()) == before  # nothing moved aside


@needs_mounts
def test_a_full_disk_gets_one_sentence_and_no_broken_copy(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    full = f"mount -t tmpfs -o size=300k tmpfs {data}"
    line = error_line(in_namespace(full, "ask", "why not Baidu?", data=data))
    assert str(data) in line and "full" in line and "free some space" in line


# --- a killed refresh --------------------------------------------------------------------------

def test_a_refresh_right_after_a_killed_one_succeeds_at_once(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    text = (STORIES / f"{STORY}.txt").read_text(encoding="utf-8")
    for i in range(12):  # distinct sentences, so the build takes a while
        body = "\n".join(f"Dossier {i}. {line}" if line.strip() else line for line in text.splitlines())
        (stories / f"copy{i}.txt").write_text(body, encoding="utf-8")
    data = tmp_path / "d"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "LLM_", "CHROMA_"))}
    env.update(STORYBOT_DATA_DIR=str(data), STORYBOT_STORIES=str(stories))
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "refresh", "--full"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stderr.readline()
        while line and "index" not in line:
            line = proc.stderr.readline()
        assert "Refreshing the story index" in line or "Building" in line, line
        time.sleep(4)  # inside the build: the lease is taken and some batches are written
        assert proc.poll() is None, "the refresh ended before it could be killed; give it more stories"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()

    out = storybot("refresh", "--json", data=data, stories=stories)
    assert out.returncode == 0, out.stderr
    trace_free(out)
    assert "already running" not in out.stderr
    assert "taking over the refresh lease of process" in out.stderr  # the dead one's, at once
    report = json.loads(out.stdout)
    assert report["swapped"] and report["stories"] == 12
    assert report["reused"] > 0  # the killed build's vectors were kept


# --- start-up failures -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("ask", "why not Baidu?"), ("refresh",), ("search", "Baidu"), ("discord",),
                                  ("slack",), ("slack", "--http")])
def test_a_dead_chroma_server_at_start_up_is_one_line(tmp_path, args):
    from tests.chroma_server import free_port

    port = free_port()
    env = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port),
           "DISCORD_TOKEN": "MTIzNDU2Nzg5MDEy.Gabcde.not-a-real-token-value",
           "SLACK_BOT_TOKEN": "xoxb-1-2-3", "SLACK_APP_TOKEN": "xapp-1-2-3", "SLACK_SIGNING_SECRET": "s" * 32}
    line = error_line(storybot(*args, data=tmp_path / "d", env=env))
    assert f"127.0.0.1:{port}" in line and "CHROMA_HOST" in line


def test_a_failure_is_one_line_and_its_trace_needs_v(tmp_path):
    missing = tmp_path / "no-stories"
    assert "No story to index" in error_line(storybot("ask", "why not Baidu?", data=tmp_path / "d", stories=missing))
    verbose = storybot("-v", "ask", "why not Baidu?", data=tmp_path / "d", stories=missing)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith("Error: No story to index")


# --- the answer log on the command line ----------------------------------------------------

def test_forget_and_report_since(tmp_path):
    from bot.answerlog import DAY, AnswerLog

    data = tmp_path / "d"
    log = AnswerLog(data / "answers.sqlite3")
    for user, source in (("111", "discord"), ("111", "discord"), ("U222", "slack")):
        log.record(question=f"question from {user}", abstained=True, citations=[], took_ms=1.0,
                   index_version="v", mode="extractive", source=source, user=user)
    log._db.execute("update answers set ts = ? where id = 3", (time.time() - 30 * DAY,))
    log._db.commit()
    log.close()

    week = json.loads(storybot("report", "--json", "--since", "7d", data=data).stdout)
    assert week["answers"] == 2 and week["by_source"] == {"discord": 2}
    bad = storybot("report", "--since", "last tuesday", data=data)
    assert bad.returncode == 2 and "7d" in bad.stderr
    trace_free(bad)

    out = storybot("forget", "--user", "discord:111", data=data)
    assert out.returncode == 0 and "Deleted 2 question(s) and 0 vote(s) of discord:111" in out.stdout
    left = json.loads(storybot("report", "--json", data=data).stdout)
    assert left["answers"] == 1 and left["by_source"] == {"slack": 1}
    assert storybot("forget", data=data).returncode == 2  # --user is required
    db = sqlite3.connect(data / "answers.sqlite3")
    assert [r[0] for r in db.execute("select user from answers")] == ["slack:U222"]
    db.close()


def test_cli_answers_carry_no_user_and_the_log_is_0600(tmp_path):
    data = tmp_path / "d"
    assert storybot("ask", "why not Baidu?", data=data).returncode == 0
    assert oct((data / "answers.sqlite3").stat().st_mode & 0o777) == "0o600"
    db = sqlite3.connect(data / "answers.sqlite3")
    assert db.execute("select source, user from answers").fetchall() == [("cli", None)]
    db.close()


# --- secrets in the real log output --------------------------------------------------------

def test_a_secret_in_a_debug_line_is_redacted_in_the_real_log(tmp_path):
    """The LLM server echoes the key in its 401 body and ``-v`` logs that body: the key must
    reach stderr as *** (read from the process's own log output, through the project's
    handler; a test on caplog would see records before redaction)."""
    from tests.fake_openai import FakeLLMServer, Reply

    key = "sk-test-" + "k3y" * 10
    token = "MTIzNDU2Nzg5MDEy.Gabcde.discord-token-in-an-error"  # a secret the LLM writer knows nothing of
    echo = f"Incorrect API key provided: {key}; also saw {token} from https://bob:hunter2@proxy.example"
    with FakeLLMServer(default=Reply.error(401, echo)) as server:
        out = storybot("-v", "ask", "why not Baidu?", data=tmp_path / "d",
                       env={"LLM_PROVIDER": "openai-like", "LLM_MODEL": "m", "LLM_API_KEY": key,
                            "LLM_BASE_URL": server.openai_base_url, "DISCORD_TOKEN": token})
    assert out.returncode == 0, out.stderr
    # the line was there, every secret in it redacted by the handler
    assert "Incorrect API key provided: ***; also saw *** from https://***@proxy.example" in out.stderr
    for secret in (key, token, "hunter2"):
        assert secret not in out.stderr and secret not in out.stdout


def test_escape_sequences_in_a_story_never_reach_the_terminal(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "hostile.txt").write_text(
        "Le phare\n\nLe phare de Gullhaven \x1b[31ma été\x1b[0m rénové en 2019 \x1b]0;pwned\x07par la ville.\n",
        encoding="utf-8")
    out = storybot("ask", "When was the Gullhaven lighthouse renovated?", data=tmp_path / "d", stories=stories)
    assert out.returncode == 0, out.stderr
    assert "rénové en 2019" in out.stdout
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "pwned" not in out.stdout
