"""``storybot init [DIR]``: a working folder for a new operator, ready for ``storybot ask``
and ``storybot refresh`` with no other step."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from bot.data import env_example, sample_stories
from bot.errors import StorybotError
from index.sources import SUFFIXES

_SETTING = re.compile(r"^([A-Z][A-Z0-9_]*=)", re.M)


def commented(env_text: str) -> str:
    """``.env.example`` with every ``KEY=value`` line commented out (``# KEY=value``)."""
    return _SETTING.sub(r"# \1", env_text)


def planned_files(folder: Path) -> dict[Path, Path | None]:
    """What ``init`` writes: target -> source file (None: the commented ``.env``)."""
    files: dict[Path, Path | None] = {}
    for story in sorted(sample_stories().iterdir()):
        if story.suffix.lower() in SUFFIXES:
            files[folder / "stories" / story.name] = story
    files[folder / ".env"] = None
    return files


def init_folder(folder: Path, *, force: bool = False) -> list[Path]:
    """Write ``stories/`` (the sample story) and ``.env`` (every setting, commented) into
    ``folder``; returns the files written. Raises ``StorybotError`` naming the files that
    exist already, unless ``force``: then they are overwritten. Nothing else is touched."""
    folder = Path(folder)
    files = planned_files(folder)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise StorybotError(f"Not overwriting {names}; nothing was changed. Add --force to overwrite.")
    for target, source in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is None:
            target.write_text(commented(env_example().read_text(encoding="utf-8")), encoding="utf-8")
            # .env is where the chat tokens go: readable by its owner only, like the answer log
            target.chmod(0o600)
        else:
            shutil.copyfile(source, target)
    return list(files)


def next_steps(folder: Path) -> str:
    """The three things to do after ``init``, for the terminal."""
    go = "" if Path(folder).resolve() == Path.cwd().resolve() else f"cd {folder} && "
    return "\n".join([
        f"Created a storybot folder in {Path(folder).resolve()}. Next:",
        f"  1. Add your stories (.txt or .md, optional front matter) to {Path(folder) / 'stories'}/.",
        f"  2. Index them: {go}storybot refresh   (then try: storybot ask \"Why not Baidu?\")",
        "  3. Set a chat token in .env: DISCORD_TOKEN, then `storybot discord`; or SLACK_BOT_TOKEN and "
        "SLACK_APP_TOKEN, then `storybot slack`.",
    ])
