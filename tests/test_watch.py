"""Stories that update themselves: a watcher on the stories folder of a running Answerer
refreshes the index after files settle, while questions keep being answered."""
from __future__ import annotations

import threading
import time

from bot.answer import Answerer
from bot.config import load_settings
from bot.watch import StoryWatcher
from index.errors import RefreshInProgress
from index.refresh import RefreshReport
from tests.conftest import copy_stories
from tests.new_story import QUESTION, festival_story

# A guard against a watcher that never refreshes, not a speed bar: how soon a story is
# answered (issue 13: within 10 s) is machine speed, measured by bench/bench_watch.py. As a
# bar here it failed on a machine half as fast again (14 s) with nothing broken.
DEADLINE = 120.0
STORY_BYTES = 6_000  # bench/bench_watch.py measures stories up to 20 KB on the machine at hand


def test_a_new_story_is_answered_within_seconds_while_questions_keep_coming(tmp_path):
    stories = copy_stories(tmp_path / "stories")
    answerer = Answerer.from_settings(load_settings(data_dir=tmp_path / "data", stories_dir=stories,
                                                    _env_file=None))
    answerer.ensure_index()
    before = answerer.answer(QUESTION)
    assert not any(c.story == "festival" for c in before.citations)
    served, stop = [], threading.Event()

    def keep_asking() -> None:  # questions are answered from the live index throughout
        while not stop.is_set():
            served.append(answerer.answer("why not Baidu?"))
            stop.wait(0.05)

    asker = threading.Thread(target=keep_asking)
    try:
        with StoryWatcher(answerer, stories) as watcher:
            asker.start()
            story = festival_story(STORY_BYTES)
            assert STORY_BYTES - 600 < len(story.encode()) <= STORY_BYTES
            dropped = time.monotonic()
            (stories / "festival.md").write_text(story, encoding="utf-8")
            answer = before
            while time.monotonic() - dropped < DEADLINE:
                answer = answerer.answer(QUESTION)
                if any(c.story == "festival" for c in answer.citations):
                    break
                time.sleep(0.2)
            assert answer.citations and answer.citations[0].story == "festival", answer
            assert "Mireille Okonjo" in answer.citations[0].quote
            assert watcher.refreshes == 1
    finally:
        stop.set()
        if asker.is_alive():
            asker.join(30)
        answerer.close()
    assert served and all(a.citations and "Baidu" in a.citations[0].quote for a in served)


def test_a_story_in_a_folder_added_after_the_start_is_indexed(tmp_path):
    """A folder moved into the stories folder reports only the folder, never its files (and
    the files of a folder just made may be written before it is watched): the story in it
    is indexed all the same."""
    stories = copy_stories(tmp_path / "stories")
    answerer = Answerer.from_settings(load_settings(data_dir=tmp_path / "data", stories_dir=stories,
                                                    _env_file=None))
    try:
        answerer.ensure_index()
        prepared = tmp_path / "2026"  # beside the stories folder: moving it in is one rename
        prepared.mkdir()
        (prepared / "festival.md").write_text(festival_story(STORY_BYTES), encoding="utf-8")
        with StoryWatcher(answerer, stories, quiet_ms=100, max_wait_ms=500) as watcher:
            prepared.rename(stories / "2026")
            deadline = time.monotonic() + 60  # a hang guard, not a measure
            while not watcher.refreshes and time.monotonic() < deadline:
                time.sleep(0.1)
        answer = answerer.answer(QUESTION)
        assert answer.citations and answer.citations[0].story == "2026/festival", answer
    finally:
        answerer.close()


class CountingAnswerer(Answerer):
    """An answerer with no index: records refreshes, and says "busy" as often as told."""

    def __init__(self, busy: int = 0):
        super().__init__()
        self.busy = busy
        self.calls = 0
        self.done = threading.Event()

    def refresh(self, *, full=False, progress=None) -> RefreshReport:
        self.calls += 1
        if self.busy:
            self.busy -= 1
            raise RefreshInProgress("busy")
        self.done.set()
        return RefreshReport(stories=1, swapped=True, index_version="v-test")


def test_a_refresh_already_running_is_waited_for_then_one_more_runs(tmp_path):
    answerer = CountingAnswerer(busy=2)
    with StoryWatcher(answerer, tmp_path, quiet_ms=100, max_wait_ms=500) as watcher:
        (tmp_path / "new.txt").write_text("A story.\n", encoding="utf-8")
        assert answerer.done.wait(10)
    assert answerer.calls == 3 and watcher.refreshes == 1


def test_only_story_files_trigger_a_refresh(tmp_path):
    answerer = CountingAnswerer()
    with StoryWatcher(answerer, tmp_path, quiet_ms=100, max_wait_ms=500) as watcher:
        (tmp_path / "notes.json").write_text("{}", encoding="utf-8")
        (tmp_path / ".hidden.md.swp").write_text("x", encoding="utf-8")
        (tmp_path / "later.md").write_text("A story.\n", encoding="utf-8")  # the sentinel
        assert answerer.done.wait(10)
        time.sleep(0.5)  # room for a wrong second refresh to show up
    assert answerer.calls == 1 and watcher.refreshes == 1


def test_a_missing_folder_is_not_watched(tmp_path, caplog):
    watcher = StoryWatcher(CountingAnswerer(), tmp_path / "nope").start()
    watcher.stop()
    assert "does not exist" in caplog.text


def test_refresh_while_a_bot_owns_the_index_explains_both_ways_out(tmp_path):
    from click.testing import CliRunner

    from bot.cli import cli
    from index.store import OwnerLock

    lock = OwnerLock(tmp_path / "data" / "owner.lock")  # as a running bot holds it
    try:
        out = CliRunner().invoke(cli, ["refresh", "--data-dir", str(tmp_path / "data")])
    finally:
        lock.release()
    assert out.exit_code == 1
    assert "in use by process" in out.output and "/refresh" in out.output and "STORYBOT_WATCH" in out.output
