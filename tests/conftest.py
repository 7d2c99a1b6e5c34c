"""Shared test fixtures. Tests are sealed: the data directory is a temp dir, tokens and
provider keys are removed from the environment, the working directory holds no ``.env``,
and pytest-socket (see pyproject) refuses connections beyond 127.0.0.1."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STORIES = REPO / "stories"
SECRET_PREFIXES = ("DISCORD_", "SLACK_", "LLM_", "EMBED_", "CHROMA_", "STORYBOT_", "OPENAI_")


@pytest.fixture(autouse=True)
def sealed_env(tmp_path, monkeypatch):
    """Every test starts from defaults: temp data dir, no tokens, no .env in the cwd."""
    for name in list(os.environ):
        if name.startswith(SECRET_PREFIXES) and name != "STORYBOT_TEST_CHROMA":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("STORYBOT_DATA_DIR", str(tmp_path / "data"))
    # subprocesses run this checkout's code, whichever checkout pip last installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(autouse=True)
def restored_logging():
    """Tests that call ``bot.logs.setup_logging`` (at DEBUG, on pytest's captured stderr)
    leave the root logger as they found it: otherwise its handler outlives the captured
    stream, and a later test's background threads (Slack's Socket Mode client) log into a
    closed file ("--- Logging error ---" in the run's output) at DEBUG."""
    # the loggers themselves, not getLogger(name): that would turn placeholders into loggers
    loggers = [logging.getLogger()] + [lg for lg in list(logging.root.manager.loggerDict.values())
                                       if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        for h in [h for h in lg.handlers if h not in handlers]:
            lg.removeHandler(h)


@pytest.fixture
def settings(tmp_path):
    """Default settings over the shipped story, data in a temp dir."""
    from bot.config import load_settings

    return load_settings(data_dir=tmp_path / "data", stories_dir=STORIES)


@pytest.fixture(scope="session")
def shared_answerer(tmp_path_factory):
    """One real Answerer (Chroma + e5) over the shipped story, built once for the session.
    Tests that change the index build their own."""
    from bot.answer import Answerer
    from bot.config import load_settings

    data = tmp_path_factory.mktemp("shared-index")
    answerer = Answerer.from_settings(load_settings(data_dir=data, stories_dir=STORIES, _env_file=None))
    answerer.ensure_index()
    yield answerer
    answerer.close()


def copy_stories(dest: Path) -> Path:
    """A writable copy of the shipped stories folder."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for f in STORIES.iterdir():
        shutil.copy(f, dest / f.name)
    return dest


def small_stories(folder, n):
    """``n`` short made-up stories (two paragraphs each), to grow a corpus past
    ``title_min_stories`` cheaply."""
    for i in range(n):
        (folder / f"filler-{i:02d}.md").write_text(
            f"---\ntitle: Council {i} approves new cycle lane on Market Street\n---\n\n"
            f"Councillors in town {i} voted on Tuesday to build a cycle lane along Market Street.\n\n"
            f"Work will start in spring and cost about {i + 2} million pounds, the council said.\n",
            encoding="utf-8")


@dataclass(frozen=True)
class Asked:
    """One call a chat adapter's fake core received: what the adapter passed to answer()."""

    question: str
    context: str | None
    source: str
    user: str | None
