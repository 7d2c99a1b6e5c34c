"""The indexing pipeline: read -> clean -> chunk -> embed -> store, as a refresh that
applies only the difference and swaps the new state in at once.

Unchanged text is never embedded again: sentence vectors are reused by content hash from
the live version (and from an interrupted refresh, which is how a refresh resumes).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index import crosslang, heal
from index.calibrate import calibrate
from index.chunk import Chunk, chunk_story, content_hash
from index.embed import has_terms, recipe_for, sentence_key, sentence_vectors
from index.errors import NoStories, RefreshInProgress, StoreUnavailable, StoryIndexError
from index.language import story_languages
from index.sources import MAX_STORY_BYTES, Problem, Story, StoryFormatError, parse_story, read_stories, story_id
from index.store import BATCH, Store, Version, format_terms, new_version_id

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (sentences done, sentences total)
LEASE_SECONDS = 120.0


@dataclass
class RefreshReport:
    """What a refresh did. Counts are chunks unless named otherwise."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # sentences embedded (0 when nothing changed)
    reused: int = 0  # sentence vectors reused from the previous index
    stories: int = 0
    seconds: float = 0.0
    index_version: str = ""
    swapped: bool = False
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people: "Index v… ready: 1 added, 0 changed, … in 1.2 s"."""
        state = "rebuilt" if self.swapped else "already up to date"
        line = (f"Index {self.index_version} {state}: {self.added} added, {self.changed} changed, "
                f"{self.removed} removed, {self.unchanged} unchanged chunks from {self.stories} "
                f"stor{'y' if self.stories == 1 else 'ies'} in {self.seconds:.1f} s.")
        if self.embedded and not (self.added or self.changed):  # --full, or a new embedding recipe
            line = line[:-1] + f"; {self.embedded} sentences embedded again."
        if self.problems:
            line += f" Skipped {len(self.problems)} file(s): " + "; ".join(self.problems)
        return line

    def to_json(self) -> dict:
        return asdict(self)


def load_corpus(stories_dir: Path, max_chars: int,
                max_bytes: int = MAX_STORY_BYTES) -> tuple[list[Story], list[Chunk], list[Problem]]:
    """Read and chunk every story; ``NoStories`` when none is usable. A story with no
    paragraph to quote (a one-line file, whose line is its title) is a problem, not a story
    that the report counts and the index never shows."""
    read, problems = read_stories(stories_dir, max_bytes)
    stories, chunks = [], []
    for story in read:
        mine = chunk_story(story, max_chars)
        if mine:
            stories.append(story)
            chunks += mine
        else:
            problems.append(Problem(story.path, "has no paragraph to quote (without front matter, a file's first line "
                                                "is its title); add the story's text below it"))
    if not stories:  # the error names every problem: no separate log lines
        detail = "; ".join(str(p) for p in problems)
        raise NoStories(
            f"No story to index in {Path(stories_dir)} (.txt or .md files)." + (f" {detail}" if detail else "")
        )
    return stories, chunks, problems


def _meta_value(v) -> str | int | float | bool:
    return "" if v is None else v


def chunk_metadata(c: Chunk) -> dict:
    s = c.story
    return {
        "story": s.id, "title": s.title, "section": _meta_value(c.section), "paragraph": c.paragraph,
        "start": c.start, "end": c.end, "hash": c.hash,
        "outlet": _meta_value(s.outlet), "date": _meta_value(s.date), "url": _meta_value(s.url),
        "sentences": json.dumps([[x.start, x.end, x.kind] for x in c.sentences]),
    }


class Lease:
    """The right to refresh one index: a ``lease`` meta record naming its holder, when it
    started, and until when it holds (renewed after every batch).

    On a Chroma server it keeps refreshes in several processes one at a time: taking it is
    a compare-and-set (``Store.add_meta``), and a lease found there is taken over, removed
    only if it is still that same record, when its holder is gone: it expired, or it names
    a process of this host that no longer runs (a refresh killed with SIGKILL). Any other
    is refused with its holder, its age and when it lapses. In embedded mode the owner lock
    already makes this process the only one that can touch the index, so any lease found
    there was left by a dead process and is taken over at once.

    A ``Refresher`` keeps one ``Lease`` (one owner id) for all its refreshes, which it runs
    one at a time: a lease of that owner found by ``take`` is one its last refresh could not
    drop (the server died), and is taken over like a dead process's.
    """

    def __init__(self, store: Store, seconds: float = LEASE_SECONDS):
        self.store = store
        self.seconds = seconds
        self.holder = f"process {os.getpid()} on {socket.gethostname()}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.since = 0.0

    def _record(self) -> dict:
        return {"owner": self.owner, "holder": self.holder, "since": self.since,
                "until": time.time() + self.seconds}

    def take(self) -> None:
        """Hold the lease or raise ``RefreshInProgress`` naming who holds it, since when,
        and when it lapses if that process was stopped."""
        self.since = time.time()
        lease = self.store.get_meta("lease")
        if lease:
            why = ("left by this process's last refresh, which could not drop it"
                   if lease.get("owner") == self.owner
                   else _gone(lease) if self.store.server else "left by a process that is gone")
            if why:
                log.warning("taking over the refresh lease of %s (%s)", _holder(lease), why)
                self.store.delete_meta("lease", where={"owner": lease["owner"], "until": lease["until"]})
                lease = None
        if lease is None and self.store.add_meta("lease", self._record()):
            return
        lease = self.store.get_meta("lease") or {}
        left = max(1, int(float(lease.get("until") or 0) - time.time()))
        raise RefreshInProgress(
            f"A refresh is already running in another process ({_holder(lease)}, started "
            f"{_age(lease)} ago); try again when it ends. If that process was stopped before it "
            f"finished, its claim lapses in {_seconds(left)}: a refresh after that takes over and "
            "resumes its work.", retry_after=left)

    def renew(self) -> None:
        lease = self.store.get_meta("lease")
        if lease and lease.get("owner") != self.owner:  # we stalled past expiry and lost it
            raise RefreshInProgress("Another process took over this refresh; its report will follow.",
                                    retry_after=self.seconds)
        self.store.set_meta("lease", self._record())

    def drop(self) -> None:
        self.store.delete_meta("lease", where={"owner": self.owner})


def _gone(lease: dict) -> str:
    """Why the holder of ``lease`` (a record on a Chroma server) is gone, or "" when it may
    still be refreshing. Another host's process cannot be seen: its lease must expire."""
    if float(lease.get("until") or 0) <= time.time():
        return "expired"
    host, _, rest = str(lease.get("owner") or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return ""
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return "its process is gone: it was stopped before it finished"
    except OSError:  # it exists, as another user's
        return ""
    return ""


def _holder(lease: dict) -> str:
    return str(lease.get("holder") or lease.get("owner") or "an unknown process")


def _age(lease: dict) -> str:
    since = float(lease.get("since") or 0)
    if not since:
        return "an unknown time"
    return _seconds(max(0, int(time.time() - since)))


def _seconds(secs: int) -> str:
    return f"{secs} s" if secs < 120 else f"{secs // 60} min"


@dataclass
class Diff:
    """What the stories folder holds against the live index: the first step of a refresh."""

    stories: list[Story]
    chunks: list[Chunk]
    active: Version | None
    reuse_from: Version | None  # the live version whose sentence vectors may be reused
    chunk_hashes: dict[str, str]
    story_hashes: dict[str, str]
    up_to_date: bool
    report: RefreshReport
    terms: dict[str, str] = field(default_factory=dict)  # the live version's latent terms by chunk hash
    recipe: str = "plain"  # how the new version makes its sentence vectors (index.embed.recipe_for)


class Refresher:
    """Runs refreshes against one store, one at a time per process (and, on a Chroma
    server, one at a time across processes through a ``Lease``).

    A refresh is three steps: ``_diff`` (read the stories, compare with the live index),
    ``_write`` (build the new version next to the live one, embedding only new text) and
    ``_swap`` (one meta write makes it live; old versions are dropped)."""

    def __init__(self, store: Store, stories_dir: Path, max_chars: int = 1500, batch: int = 64,
                 max_story_bytes: int = MAX_STORY_BYTES):
        self.store = store
        self.stories_dir = Path(stories_dir)
        self.max_chars = max_chars
        self.batch = batch
        self.max_story_bytes = max_story_bytes
        self._lock = threading.Lock()
        self._lease = Lease(store)  # one owner for every refresh: see Lease

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def refresh(self, *, full: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Re-read the stories and make the index match them. Raises ``RefreshInProgress``
        if another refresh runs, ``NoStories`` if there is nothing to index,
        ``StoreUnavailable`` if the Chroma server stops answering on the way.

        An embedded index found broken on the way is moved aside and rebuilt from scratch
        (``Store.heal``), so a refresh (``--full`` or not) always ends with a usable index."""
        if not self._lock.acquire(blocking=False):
            raise RefreshInProgress("A refresh is already running; its report will follow when it ends.")
        try:
            generation = self.store.generation
            try:
                return self._leased(full, progress)
            except (StoryIndexError, OSError):
                raise
            except BaseException as exc:  # Rust panics are BaseExceptions
                if (gone := self.store.unavailable(exc)) is not None:
                    raise gone from exc  # the Chroma server died or hangs: its own sentence
                if heal.fatal(exc) or not self.store.heal(exc, generation):
                    raise
                return self._leased(True, progress)
        finally:
            self._lock.release()

    def _leased(self, full: bool, progress: Progress | None) -> RefreshReport:
        t0 = time.perf_counter()
        lease = self._lease
        lease.take()
        try:
            diff = self._diff(full)
            if not diff.up_to_date:
                version = self._write(diff, lease, progress)
                self._swap(diff, version)
            report = diff.report
            report.seconds = time.perf_counter() - t0
            if report.swapped:
                log.info("refresh: %s", report.summary())
        except BaseException:
            # the store may be what failed (a Chroma server gone): the lease cannot be
            # dropped then, and trying must not hide why the refresh failed
            with contextlib.suppress(Exception):
                lease.drop()
            raise
        lease.drop()
        return report

    # -- the three steps ------------------------------------------------------------------
    def _diff(self, full: bool) -> Diff:
        """Read and chunk the stories and count what changed against the live index."""
        stories, chunks, problems = load_corpus(self.stories_dir, self.max_chars, self.max_story_bytes)
        active = self.store.active()
        kept = self._last_good(problems, active, {s.id for s in stories})
        if kept:  # only the kept stories are chunked here: the others were by load_corpus
            stories = sorted([*stories, *kept.values()], key=lambda s: s.id)
            chunks = chunks + [c for st in kept.values() for c in chunk_story(st, self.max_chars)]
        report = RefreshReport(stories=len(stories), problems=[
            f"{p}; the index keeps its last good version" if p.path in kept
            else f"{p}; the index keeps its stories as they were" if any(k.is_relative_to(p.path) for k in kept)
            else str(p) for p in problems])
        for line in report.problems:  # a bot's log says it too (a refresh's caller prints the report)
            log.warning("skipped story file %s", line)
        # counts compare with the live index whatever it is; vectors are reused only from
        # one built by the same model, and never by a --full refresh
        recipe = recipe_for(len(stories))
        reuse = active if (active and not full and active.embedder == self.store.embedder.name
                           and active.recipe == recipe) else None
        old_chunks, old_story_hashes, old_terms = self._old_state(active)
        new_hashes = {c.id: c.hash for c in chunks}
        for cid, h in new_hashes.items():
            if cid not in old_chunks:
                report.added += 1
            elif old_chunks[cid] != h:
                report.changed += 1
            else:
                report.unchanged += 1
        report.removed = sum(1 for cid in old_chunks if cid not in new_hashes)
        story_hashes = {s.id: s.hash for s in stories}
        # an index built before chunks carried latent terms gets them (sentence vectors reused)
        terms_missing = (has_terms(self.store.embedder)
                         and any(h not in old_terms for h in old_chunks.values()))
        up_to_date = bool(reuse and story_hashes == old_story_hashes and new_hashes == old_chunks
                          and not terms_missing)
        if up_to_date:
            report.index_version = reuse.version
        return Diff(stories, chunks, active, reuse, new_hashes, story_hashes, up_to_date, report,
                    old_terms if reuse else {}, recipe)

    def _write(self, diff: Diff, lease: Lease, progress: Progress | None) -> str:
        """Build the new version's collections (resuming an interrupted build); returns its id."""
        store, report, chunks, stories = self.store, diff.report, diff.chunks, diff.stories
        version, building_reuse = self._start_building()
        chunks_c, sents_c, stories_c = store.collections_for(version, create=True)
        vectors = self._reusable_vectors(diff.reuse_from, building_reuse)
        recipe = diff.recipe
        terms = {**diff.terms, **self._stored_terms(building_reuse)}

        # stories first (small), then sentences and chunks story by story, so an interrupted
        # refresh leaves whole stories behind for the next one to reuse
        self._upsert(stories_c, [s.id for s in stories], [s.text for s in stories],
                     [{"title": s.title, "hash": s.hash, "outlet": _meta_value(s.outlet),
                       "date": _meta_value(s.date), "url": _meta_value(s.url)} for s in stories],
                     [np.zeros(store._dim(), dtype=np.float32)] * len(stories))
        total_sents = sum(len(c.sentences) for c in chunks)
        done = 0
        for group in _batches(chunks, max(1, self.batch // 4)):
            sent_rows = [(c, i, s) for c in group for i, s in enumerate(c.sentences)]
            hashes = [content_hash(sentence_key(recipe, c.story.title, s.text)) for c, _, s in sent_rows]
            missing = sorted({h for h in hashes if h not in vectors})
            if missing:
                # embedded story by story: a sentence's vector carries its story's title
                by_title: dict[str, dict[str, str]] = {}
                for (c, _, s), h in zip(sent_rows, hashes):
                    if h not in vectors:
                        by_title.setdefault(c.story.title, {})[h] = s.text
                for title, texts in by_title.items():
                    embs = sentence_vectors(store.embedder, recipe, title, list(texts.values()))
                    vectors.update(zip(texts, embs))
                report.embedded += len(missing)
            report.reused += len(hashes) - len(missing)
            self._upsert(sents_c, [f"{c.id}/{i}" for c, i, _ in sent_rows], [s.text for _, _, s in sent_rows],
                         [{"chunk": c.id, "story": c.story.id, "start": s.start, "end": s.end,
                           "kind": s.kind, "hash": h} for (c, _, s), h in zip(sent_rows, hashes)],
                         [vectors[h] for h in hashes])
            chunk_vecs = []
            for c in group:
                m = np.mean([vectors[content_hash(sentence_key(recipe, c.story.title, s.text))]
                             for s in c.sentences], axis=0)
                chunk_vecs.append((m / (np.linalg.norm(m) or 1)).astype(np.float32))
            metas = [chunk_metadata(c) for c in group]
            todo = [c for c in group if c.hash not in terms]
            got = (store.embedder.embed_terms([c.text for c in todo])
                   if todo and has_terms(store.embedder) else ())
            terms.update((c.hash, format_terms(t)) for c, t in zip(todo, got))
            for c, m in zip(group, metas):
                if c.hash in terms:
                    m["terms"] = terms[c.hash]
            self._upsert(chunks_c, [c.id for c in group], [c.text for c in group], metas, chunk_vecs)
            done += len(sent_rows)
            if progress:
                progress(done, total_sents)
            lease.renew()

        # drop what a previous (interrupted) build or an old layout left behind
        self._delete_missing(chunks_c, set(diff.chunk_hashes))
        self._delete_missing(sents_c, {f"{c.id}/{i}" for c in chunks for i in range(len(c.sentences))})
        self._delete_missing(stories_c, set(diff.story_hashes))
        return version

    def _swap(self, diff: Diff, version: str) -> None:
        """One meta write makes ``version`` live for every reader. A process that answers
        questions loads it first, so none of its questions waits for it. Then every version
        but the new one and the one before it is dropped."""
        store = self.store
        total_sents = sum(len(c.sentences) for c in diff.chunks)
        langs = story_languages((c.story.id, c.text) for c in diff.chunks)
        # the off-topic and answer bars of this version (index/calibrate.py)
        calibrate(store, version, total_sents, langs)
        # the words of stories in several languages, embedded before any question needs them
        texts: dict[str, list[str]] = {}
        for c in diff.chunks:
            texts.setdefault(langs.get(c.story.id, ""), []).append(c.text)
        crosslang.warm(store, texts)
        live = Version(version, store.embedder.name, len(diff.chunks), total_sents, len(diff.stories), time.time(),
                       diff.recipe)
        store.activate(live, store.load_version(live) if store.has_snapshot else None)
        store.delete_meta("building")
        # the version before stays: questions that started on it can finish
        keep = {version} | ({diff.active.version} if diff.active else set())
        for old in store.versions_on_disk() - keep:
            store.drop_version(old)
        diff.report.index_version = version
        diff.report.swapped = True

    def _last_good(self, problems: list[Problem], active: Version | None, have: set[str]) -> dict[Path, Story]:
        """The stories whose file is there but no longer reads (a front matter left open, a
        bad byte), or whose folder cannot be listed (its permissions changed), and whose last
        good version the live index holds, by file: kept, as the index has them, so a typo
        does not take a story offline. The problem is still reported; a file deleted from
        the folder is removed as before."""
        if active is None or not problems:
            return {}
        ids: dict[str, Path] = {}
        folders: list[Path] = []  # folders that could not be listed: every story below them
        for p in problems:
            if p.path.is_dir() and not p.path.is_symlink():
                folders.append(p.path)
                continue
            try:
                sid = story_id(p.path, self.stories_dir)
            except ValueError:  # not below the folder (a link out of it): never kept
                continue
            if p.path.is_file() and not p.path.is_symlink() and sid not in have:
                ids[sid] = p.path
        if not ids and not folders:
            return {}
        stored = self._stored(active.version)
        if stored is None:
            return {}
        stored_ids = stored[2].get(include=[])["ids"] if folders else []
        for folder in folders:
            try:
                prefix = folder.relative_to(self.stories_dir).as_posix() + "/"
            except ValueError:
                continue
            for sid in stored_ids:
                if sid.startswith(prefix) and sid not in have:
                    ids[sid] = folder / sid[len(prefix):]  # where it was; its suffix is not kept
        got = stored[2].get(ids=list(ids), include=["documents"])
        kept = {}
        for sid, text in zip(got["ids"], got["documents"]):
            data = text.encode("utf-8")
            try:  # the stored text is the file as it was read then: it parses as it did
                kept[ids[sid]] = parse_story(sid, ids[sid], data, max(len(data), self.max_story_bytes))
            except StoryFormatError:
                continue
        return kept

    def _old_state(self, v: Version | None) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """The live version's chunk hashes and story hashes by id, and its chunks' latent
        terms by chunk hash."""
        stored = self._stored(v.version if v else None)
        if stored is None:
            return {}, {}, {}
        chunks_c, _, stories_c = stored
        metas = dict(_all(chunks_c, ["metadatas"], lambda g, k: g["metadatas"][k]))
        stories = {i: m["hash"] for i, m in _all(stories_c, ["metadatas"], lambda g, k: g["metadatas"][k])}
        return {i: m["hash"] for i, m in metas.items()}, stories, _terms_by_hash(metas.values())

    def _start_building(self) -> tuple[str, str | None]:
        """The version to build: an interrupted build by the same embedder is resumed."""
        b = self.store.get_meta("building")
        if b and b.get("embedder") == self.store.embedder.name:
            log.info("resuming interrupted refresh %s", b["version"])
            return b["version"], b["version"]
        if b:
            self.store.drop_version(b["version"])
        version = new_version_id()
        self.store.set_meta("building", {"version": version, "embedder": self.store.embedder.name,
                                         "started": time.time()})
        return version, None

    def _reusable_vectors(self, live: Version | None, building: str | None) -> dict[str, np.ndarray]:
        """Sentence vectors by content hash from the live version and an interrupted build."""
        out: dict[str, np.ndarray] = {}
        for v in filter(None, [live.version if live else None, building]):
            stored = self._stored(v)
            if stored is None:
                continue
            for _, (meta, emb) in _all(stored[1], ["metadatas", "embeddings"],
                                       lambda g, k: (g["metadatas"][k], g["embeddings"][k])):
                out[meta["hash"]] = np.asarray(emb, dtype=np.float32)
        return out

    def _stored_terms(self, version: str | None) -> dict[str, str]:
        """The latent terms an interrupted build already stored, by chunk hash."""
        stored = self._stored(version)
        if stored is None:
            return {}
        return _terms_by_hash(m for _, m in _all(stored[0], ["metadatas"], lambda g, k: g["metadatas"][k]))

    def _stored(self, version: str | None) -> tuple | None:
        """A version's (chunks, sentences, stories) collections to read from, or None for no
        version or when part of it is gone (deleted by hand or by another process): it then reads as holding
        nothing, so this refresh rebuilds what it held instead of failing, and reading it
        never creates it empty."""
        try:
            return self.store.collections_for(version) if version else None
        except StoreUnavailable:
            return None

    @staticmethod
    def _upsert(coll, ids, docs, metas, embs) -> None:
        for i in range(0, len(ids), BATCH):
            coll.upsert(ids=ids[i:i + BATCH], documents=docs[i:i + BATCH], metadatas=metas[i:i + BATCH],
                        embeddings=[np.asarray(e, dtype=np.float32) for e in embs[i:i + BATCH]])

    @staticmethod
    def _delete_missing(coll, keep: set[str]) -> None:
        stale = [i for i, _ in _all(coll, [], lambda g, k: None) if i not in keep]
        for i in range(0, len(stale), BATCH):
            coll.delete(ids=stale[i:i + BATCH])


def _all(coll, include: list[str], pick) -> Iterable[tuple[str, object]]:
    """Every record of a collection, paged."""
    total = coll.count()
    for off in range(0, total, BATCH * 4):
        got = coll.get(include=include, limit=BATCH * 4, offset=off)
        for k, rid in enumerate(got["ids"]):
            yield rid, pick(got, k)


def _terms_by_hash(metas: Iterable[dict]) -> dict[str, str]:
    """Chunk metadatas' stored latent terms (``index.store.format_terms``) by chunk hash."""
    return {m["hash"]: m["terms"] for m in metas if m.get("terms")}


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
