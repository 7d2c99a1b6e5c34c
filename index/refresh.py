"""The indexing pipeline: read -> clean -> chunk -> embed -> store, as a refresh that
applies only the difference and swaps the new state in at once.

Unchanged text is never embedded again: sentence vectors are reused by content hash from
the live version (and from an interrupted refresh, which is how a refresh resumes).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.calibrate import calibrate
from index.chunk import Chunk, chunk_story, content_hash
from index.errors import NoStories, RefreshInProgress
from index.language import story_languages
from index.sources import Problem, Story, read_stories
from index.store import BATCH, Store, Version, new_version_id

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (sentences done, sentences total)
LEASE_SECONDS = 120.0
KEEP_PREVIOUS = 1  # versions kept behind the live one, for questions still running on them


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
        if self.problems:
            line += f" Skipped {len(self.problems)} file(s): " + "; ".join(self.problems)
        return line

    def to_json(self) -> dict:
        return asdict(self)


def load_corpus(stories_dir: Path, max_chars: int) -> tuple[list[Story], list[Chunk], list[Problem]]:
    """Read and chunk every story; ``NoStories`` when none is usable."""
    stories, problems = read_stories(stories_dir)
    for p in problems:
        log.warning("skipped story file %s", p)
    if not stories:
        detail = "; ".join(str(p) for p in problems)
        raise NoStories(
            f"No story to index in {Path(stories_dir).name}/ (.txt or .md files)." + (f" {detail}" if detail else "")
        )
    chunks = [c for s in stories for c in chunk_story(s, max_chars)]
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


class Refresher:
    """Runs refreshes against one store, one at a time per process (and, on a Chroma
    server, one at a time across processes through a lease record)."""

    def __init__(self, store: Store, stories_dir: Path, max_chars: int = 1500, batch: int = 64):
        self.store = store
        self.stories_dir = Path(stories_dir)
        self.max_chars = max_chars
        self.batch = batch
        self._lock = threading.Lock()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def refresh(self, *, full: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Re-read the stories and make the index match them. Raises ``RefreshInProgress``
        if another refresh runs, ``NoStories`` if there is nothing to index."""
        if not self._lock.acquire(blocking=False):
            raise RefreshInProgress("A refresh is already running; its report will follow when it ends.")
        try:
            self._take_lease()
            try:
                return self._refresh(full, progress)
            finally:
                self._drop_lease()
        finally:
            self._lock.release()

    # -- lease (cross-process, matters on a shared server) --------------------------------
    def _take_lease(self) -> None:
        """Own the ``lease`` record or raise ``RefreshInProgress``.

        Taking it is a compare-and-set (``Store.add_meta``), so of two refreshes starting at
        the same moment on one server exactly one wins. An expired lease (its owner died) is
        removed only if it is still that same expired lease, then taken the same way.
        """
        now = time.time()
        mine = {"owner": self._owner, "until": now + LEASE_SECONDS}
        lease = self.store.get_meta("lease")
        if lease and lease.get("owner") != self._owner and float(lease.get("until", 0)) <= now:
            log.warning("taking over the refresh lease of %s (expired)", lease.get("owner"))
            self.store.delete_meta("lease", where={"owner": lease["owner"], "until": lease["until"]})
            lease = None
        if lease and lease.get("owner") == self._owner:
            self.store.set_meta("lease", mine)
            return
        if lease is None and self.store.add_meta("lease", mine):
            return
        raise RefreshInProgress("A refresh is already running in another process; try again when it ends.")

    def _renew_lease(self) -> None:
        lease = self.store.get_meta("lease")
        if lease and lease.get("owner") != self._owner:  # we stalled past expiry and lost it
            raise RefreshInProgress("Another process took over this refresh; its report will follow.")
        self.store.set_meta("lease", {"owner": self._owner, "until": time.time() + LEASE_SECONDS})

    def _drop_lease(self) -> None:
        self.store.delete_meta("lease", where={"owner": self._owner})

    # -- the pipeline ---------------------------------------------------------------------
    def _refresh(self, full: bool, progress: Progress | None) -> RefreshReport:
        t0 = time.perf_counter()
        store = self.store
        stories, chunks, problems = load_corpus(self.stories_dir, self.max_chars)
        report = RefreshReport(stories=len(stories), problems=[str(p) for p in problems])

        active = store.active()
        # counts compare with the live index whatever it is; vectors are reused only from
        # one built by the same model, and never by a --full refresh
        usable = active if (active and not full and active.embedder == store.embedder.name) else None
        old_chunks, old_story_hashes = self._old_state(active)
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
        if usable and not full and story_hashes == old_story_hashes and new_hashes == old_chunks:
            report.index_version = usable.version
            report.seconds = time.perf_counter() - t0
            return report

        version, building_reuse = self._start_building()
        chunks_c, sents_c, stories_c = store.collections_for(version)
        vectors = self._reusable_vectors(usable, building_reuse)

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
            hashes = [content_hash(s.text) for _, _, s in sent_rows]
            missing = sorted({h for h in hashes if h not in vectors})
            if missing:
                texts = {content_hash(s.text): s.text for _, _, s in sent_rows}
                embs = store.embedder.embed_passages([texts[h] for h in missing])
                vectors.update(zip(missing, embs))
                report.embedded += len(missing)
            report.reused += len(hashes) - len(missing)
            self._upsert(sents_c, [f"{c.id}/{i}" for c, i, _ in sent_rows], [s.text for _, _, s in sent_rows],
                         [{"chunk": c.id, "story": c.story.id, "start": s.start, "end": s.end,
                           "kind": s.kind, "hash": h} for (c, _, s), h in zip(sent_rows, hashes)],
                         [vectors[h] for h in hashes])
            chunk_vecs = []
            for c in group:
                m = np.mean([vectors[content_hash(s.text)] for s in c.sentences], axis=0)
                chunk_vecs.append((m / (np.linalg.norm(m) or 1)).astype(np.float32))
            self._upsert(chunks_c, [c.id for c in group], [c.text for c in group],
                         [chunk_metadata(c) for c in group], chunk_vecs)
            done += len(sent_rows)
            if progress:
                progress(done, total_sents)
            self._renew_lease()

        # drop what a previous (interrupted) build or an old layout left behind
        self._delete_missing(chunks_c, set(new_hashes))
        self._delete_missing(sents_c, {f"{c.id}/{i}" for c in chunks for i in range(len(c.sentences))})
        self._delete_missing(stories_c, set(story_hashes))

        # the swap: one meta write makes the new version live for every reader. A process
        # that answers questions loads the new version first, so none of them waits for it.
        # the off-topic and answer bars of this version
        calibrate(store, version, total_sents, story_languages((c.story.id, c.text) for c in chunks))
        live = Version(version, store.embedder.name, len(chunks), total_sents, len(stories), time.time())
        store.activate(live, store.load_version(live) if store.has_snapshot else None)
        store.delete_meta("building")
        keep = {version} | ({active.version} if active and KEEP_PREVIOUS else set())
        for old in store.versions_on_disk() - keep:
            store.drop_version(old)
        report.index_version = version
        report.swapped = True
        report.seconds = time.perf_counter() - t0
        log.info("refresh: %s", report.summary())
        return report

    def _old_state(self, v: Version | None) -> tuple[dict[str, str], dict[str, str]]:
        if v is None:
            return {}, {}
        chunks_c, _, stories_c = self.store.collections_for(v.version)
        chunks = {i: m["hash"] for i, m in _all(chunks_c, ["metadatas"], lambda g, k: g["metadatas"][k])}
        stories = {i: m["hash"] for i, m in _all(stories_c, ["metadatas"], lambda g, k: g["metadatas"][k])}
        return chunks, stories

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

    def _reusable_vectors(self, usable: Version | None, building: str | None) -> dict[str, np.ndarray]:
        """Sentence vectors by content hash from the live version and an interrupted build."""
        out: dict[str, np.ndarray] = {}
        for v in filter(None, [usable.version if usable else None, building]):
            _, sents_c, _ = self.store.collections_for(v)
            for _, (meta, emb) in _all(sents_c, ["metadatas", "embeddings"],
                                       lambda g, k: (g["metadatas"][k], g["embeddings"][k])):
                out[meta["hash"]] = np.asarray(emb, dtype=np.float32)
        return out

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


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
