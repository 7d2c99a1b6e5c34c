"""The files storybot ships besides its code: the sample story and ``.env.example``.

Each has one source of truth at the top of the repository (``stories/``, ``.env.example``).
A wheel carries copies made at build time (``setup.py``) in ``bot/_data/``; an editable
install or a checkout reads them where they live.
"""
from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "_data"
SOURCE_TREE = Path(__file__).resolve().parent.parent


def sample_stories() -> Path:
    """The folder holding the sample story shipped with storybot."""
    packaged = PACKAGED / "stories"
    return packaged if packaged.is_dir() else SOURCE_TREE / "stories"


def env_example() -> Path:
    """The shipped ``.env.example`` (every setting, with its comment)."""
    packaged = PACKAGED / "env.example"
    return packaged if packaged.is_file() else SOURCE_TREE / ".env.example"


def default_stories_dir() -> Path:
    """``./stories`` when the working directory has one, otherwise the shipped sample."""
    here = Path("stories")
    return here if here.is_dir() else sample_stories()
