"""Stories you can name: what the index holds (``storybot stories``) and the closest ids
to a mistyped one."""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass

import prompts

MAX_SUGGESTIONS = 3
SIMILARITY = 0.5  # difflib ratio below which an id is not offered as "did you mean"


@dataclass(frozen=True)
class StoryInfo:
    """One story of the live index."""

    id: str
    title: str
    outlet: str
    date: str
    url: str
    chunks: int
    refreshed_at: float  # when the index holding this version of it was built (epoch seconds)

    def to_json(self) -> dict:
        return asdict(self)


def list_stories(snapshot) -> list[StoryInfo]:
    """The stories of an index snapshot (``index.store.Snapshot``), sorted by id."""
    counts: dict[str, int] = {}
    first: dict[str, dict] = {}
    for meta in snapshot.metas:
        sid = meta["story"]
        counts[sid] = counts.get(sid, 0) + 1
        first.setdefault(sid, meta)
    built = float(snapshot.version.built_at)
    return [StoryInfo(id=sid, title=str(m.get("title") or ""), outlet=str(m.get("outlet") or ""),
                      date=str(m.get("date") or ""), url=str(m.get("url") or ""), chunks=counts[sid],
                      refreshed_at=built)
            for sid, m in sorted(first.items())]


def closest_ids(story: str, ids: list[str] | set[str], n: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to ``n`` known ids closest to ``story``: case-insensitive spelling first, then the
    ids that contain it or that its last path part matches, then difflib's nearest."""
    known = sorted(ids)
    wanted = story.strip().lower()
    by_lower = {i.lower(): i for i in known}
    out: list[str] = []
    if wanted in by_lower:
        out.append(by_lower[wanted])
    out += [i for i in known if wanted and (wanted in i.lower() or i.lower().rsplit("/", 1)[-1] == wanted)]
    out += [by_lower[m] for m in difflib.get_close_matches(wanted, list(by_lower), n=n, cutoff=SIMILARITY)]
    return list(dict.fromkeys(out))[:n]


def unknown_story_text(story: str, ids: list[str] | set[str], lang: str = "en", *, terminal: bool = True) -> str:
    """The reply to a question restricted to a story id the index does not hold: what is
    wrong, the closest ids, and, in a ``terminal``, the command that lists them all (a chat
    user cannot run it)."""
    text = prompts.render("unknown_story", lang, story=story)
    close = closest_ids(story, ids)
    if close:
        text += " " + prompts.render("did_you_mean", lang, ids=", ".join(close))
    return text + (" " + prompts.render("list_stories", lang) if terminal else "")
