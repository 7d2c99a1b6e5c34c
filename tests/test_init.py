"""``storybot init``: a folder where ``ask`` and ``refresh`` work with no other step, and
where ``storybot discord`` / ``storybot slack``, given tokens, connect (to the local fakes),
answer, and pick up a story dropped into the folder while they run."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack, event_callback, mention

from bot import __version__
from bot.config import Settings, env_name
from tests.fake_discord import APP_ID, FakeDiscord, user
from tests.new_story import QUESTION, festival_story

DISCORD_TOKEN = (base64.b64encode(str(APP_ID).encode()).decode().rstrip("=")
                 + ".GxY2aB.fake-signature-init-0123")
FIRST_ANSWER = 180.0  # seconds: a bot builds the index of a new folder before its first answer


def storybot(*args: str, cwd: Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=clean_env(env),
                          capture_output=True, text=True, timeout=300, **kw)


def clean_env(extra: dict | None = None) -> dict:
    """The environment of a new operator: no storybot setting at all (the .env decides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYBOT_", "DISCORD_", "SLACK_"))}
    return {**env, **(extra or {})}


@pytest.fixture
def folder(tmp_path) -> Path:
    out = storybot("init", "bot-folder", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "storybot refresh" in out.stdout and "DISCORD_TOKEN" in out.stdout and "stories/" in out.stdout
    return tmp_path / "bot-folder"


def test_init_writes_the_sample_story_and_a_fully_commented_env(folder):
    assert [p.name for p in (folder / "stories").iterdir()] == ["apple-alibaba-ia-iphone-chine.fr.txt"]
    env = (folder / ".env").read_text(encoding="utf-8")
    assert not re.search(r"^[A-Z_]+=", env, re.M), "every key must be commented"
    for name in Settings.model_fields:
        assert f"# {env_name(name)}=" in env
    # the chat tokens go in .env: its owner alone may read it
    assert (folder / ".env").stat().st_mode & 0o777 == 0o600


def test_init_refuses_to_overwrite_unless_forced(folder):
    (folder / ".env").write_text("DISCORD_TOKEN=mine\n", encoding="utf-8")
    out = storybot("init", str(folder), cwd=folder.parent)
    assert out.returncode == 1 and "--force" in out.stderr and "Traceback" not in out.stderr
    assert (folder / ".env").read_text(encoding="utf-8") == "DISCORD_TOKEN=mine\n"
    out = storybot("init", "--force", str(folder), cwd=folder.parent)
    assert out.returncode == 0 and "DISCORD_TOKEN=mine" not in (folder / ".env").read_text(encoding="utf-8")


def test_ask_and_refresh_work_in_an_init_folder(folder):
    out = storybot("ask", "--json", "why not Baidu?", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert "Baidu" in json.loads(out.stdout)["citations"][0]["quote"]
    assert (folder / ".storybot").is_dir()  # the index lives in the folder
    (folder / "stories" / "festival.md").write_text(festival_story(3000), encoding="utf-8")
    out = storybot("refresh", "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["stories"] == 2
    listed = json.loads(storybot("stories", "--json", cwd=folder).stdout)
    assert [s["id"] for s in listed] == ["apple-alibaba-ia-iphone-chine.fr", "festival"]
    assert listed[1]["title"] == "A river festival on recycled barges" and listed[1]["chunks"] > 1


class Bot:
    """``storybot <platform>`` as a real process in a folder; its log goes to a file."""

    def __init__(self, platform: str, folder: Path, env: dict):
        self.log = folder / f"{platform}.log"
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", platform], cwd=folder,
                                     env=clean_env(env), stdout=self._out, stderr=subprocess.STDOUT)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # as a service manager stops it (the same clean stop as Ctrl-C)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return self.log.read_text(encoding="utf-8")


def assert_started_well(log: str, platform: str) -> None:
    assert f"storybot {__version__} starting the {platform} bot" in log, log
    assert "watching" in log and "Traceback" not in log, log


def test_slack_bot_in_an_init_folder_connects_answers_and_picks_up_a_new_story(folder):
    with FakeSlack() as fake:
        bot = Bot("slack", folder, {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                                    "SLACK_API_URL": fake.api_url, "STORYBOT_RATE": "0"})
        try:
            fake.wait_calls("apps.connections.open", timeout=60)
            fake.wait_for(lambda: fake._sockets, "the Socket Mode connection", timeout=30)
            fake.wait_ack(fake.push("events_api", event_callback(
                mention("why not Baidu?", user="U1", ts="100.000001"), event_id="Ev1")))
            [post] = fake.wait_calls("chat.postMessage", thread_ts="100.000001", timeout=FIRST_ANSWER)
            assert any("Baidu" in text for text in post.texts("context"))

            (folder / "stories" / "festival.md").write_text(festival_story(6000), encoding="utf-8")
            dropped, n, cited = time.monotonic(), 0, None
            # a deadline, not a speed bar: the watcher's refresh took over 10 s on two busy cores
            while cited is None and time.monotonic() - dropped < 30:
                n += 1
                ts = f"200.{n:06d}"
                fake.wait_ack(fake.push("events_api", event_callback(mention(QUESTION, user="U2", ts=ts),
                                                                     event_id=f"Ev2-{n}")))
                [reply] = fake.wait_calls("chat.postMessage", thread_ts=ts, timeout=30)
                cited = reply if any("Mireille Okonjo" in t for t in reply.texts("context")) else None
                time.sleep(0.3)
            assert cited is not None, "the new story was not answered from within 30 s"
        finally:
            log = bot.stop()
    assert_started_well(log, "Slack")
    assert "refresh after a change" in log


async def test_discord_bot_in_an_init_folder_connects_and_answers(folder):
    fake = FakeDiscord(token=DISCORD_TOKEN)
    await fake.start()
    bot = Bot("discord", folder, {"DISCORD_TOKEN": DISCORD_TOKEN, "DISCORD_API_BASE": fake.api_base,
                                  "DISCORD_GATEWAY_URL": fake.gateway_url})
    try:
        await fake.wait_for_session(1, timeout=60)
        await fake.wait_for(lambda c: c.method == "PUT" and c.path.endswith("/commands"), timeout=30)
        payload = fake.slash("ask", {"question": "why not Baidu?"}, user=user(1000000000000000002, "bob"))
        await fake.dispatch("INTERACTION_CREATE", payload)
        followup = await fake.wait_for(
            lambda c: c.method == "POST" and c.path == f"/webhooks/{APP_ID}/{payload['token']}",
            timeout=FIRST_ANSWER)
        assert "[1]" in followup.content and "Baidu" in followup.embeds[0]["description"]
    finally:
        log = await asyncio.to_thread(bot.stop)
        await fake.close()
    assert_started_well(log, "Discord")
    assert fake.unhandled == []
