"""Prompt and reply templates, as data. ``render(name, lang, **values)`` fills a
``string.Template`` strictly: a missing value is an error, never a silent blank."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
LANGS = ("en", "fr")


@lru_cache(maxsize=None)
def template(name: str, lang: str = "en") -> Template:
    """The template ``<lang>/<name>.txt`` (falling back to English), or ``<name>.txt``."""
    for path in (HERE / lang / f"{name}.txt", HERE / "en" / f"{name}.txt", HERE / f"{name}.txt"):
        if path.is_file():
            return Template(path.read_text(encoding="utf-8").rstrip("\n"))
    raise FileNotFoundError(f"no prompt template named {name!r}")


def render(name: str, lang: str = "en", **values: object) -> str:
    """Render a template strictly (``KeyError`` for a missing value)."""
    return template(name, lang if lang in LANGS else "en").substitute(**values)
