"""The story index in Chroma: versioned collections behind one "active" pointer.

Layout (every collection gets the project's own embedding function, so Chroma's
downloading default can never run; all vectors are passed in explicitly anyway):

- ``storybot_meta``: small records: ``active`` (the live version, the embedder that built
  it, counts), ``building`` (a refresh under way, for resuming), ``lease`` (who refreshes).
- ``sb_<version>_chunks``: one record per chunk (document = the passage, metadata = story,
  title, section, paragraph, offsets, sentence offsets as JSON, content hash); its vector is
  the normalised mean of its sentence vectors.
- ``sb_<version>_sents``: one record per sentence (its e5 vector), so the answer step picks
  sentences without embedding anything at question time.
- ``sb_<version>_stories``: one record per story with its full text, to verify every quote.

A refresh writes a new version next to the live one and then moves the pointer: readers see
the old index or the new one, never a mix. The version before the live one is kept so a
question that started on it can finish.

Embedded mode (``PersistentClient`` in the data dir) is owned by exactly one process: an
exclusive lock file makes a second process fail with a message naming the owner. Several
processes share one index through a Chroma server (``HttpClient``). A Chroma collection
handle names its collection by id; when another process deletes and rebuilds the index on
the server, the ids change, so every handle the store keeps looks its collection up again
by name (``Reopening``) instead of failing until the process restarts.

An embedded index that cannot be opened or read is moved aside and rebuilt (``index.heal``);
a data folder that is read-only, full or locked gets one sentence instead (``DataDirUnusable``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from index import heal
from index.embed import Embedder
from index.errors import DataDirUnusable, EmbedderMismatch, StoreLocked, StoreUnavailable

log = logging.getLogger(__name__)

META = "storybot_meta"
PREFIX = "sb_"
BATCH = 500  # records per Chroma write / read call
# sentence vectors a version keeps once questions have read them (Snapshot.sentence_vectors):
# 384 floats each, so at most ~30 MB; past it the kept ones are dropped and read again
SENTENCE_CACHE = 20_000
CONNECT_TIMEOUT = 3.0  # seconds to reach a Chroma server before calling it unavailable
REQUEST_TIMEOUT = 30.0  # seconds any one server call may take (chromadb's own client waits forever)


def _chroma():
    """Import chromadb quietly (its telemetry is off: we pass anonymized_telemetry=False)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb, ChromaSettings


class _LazyEmbedder:
    """An embedder known by name only, loaded on first use (see ``build_from_config``)."""

    def __init__(self, name: str):
        self.name = name
        self._emb: Embedder | None = None

    def _get(self) -> Embedder:
        if self._emb is None:
            from index.embed import get_embedder

            self._emb = get_embedder(self.name)
        return self._emb

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._get().embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._get().embed_query(text)


def _make_embedding_function(embedder: Embedder):
    """Chroma's EmbeddingFunction wrapping our embedder (defined lazily: importing chromadb's
    embedding_functions module is slow, and only the store needs it)."""
    from chromadb.api.types import EmbeddingFunction

    class StorybotEmbeddingFunction(EmbeddingFunction):
        def __init__(self, emb: Embedder):
            self._emb = emb

        def __call__(self, input):  # noqa: A002 - Chroma's parameter name
            return [v for v in self._emb.embed_passages(list(input))]

        def embed_query(self, input):  # noqa: A002
            return [self._emb.embed_query(t) for t in input]

        @staticmethod
        def name() -> str:
            return "storybot"

        def get_config(self) -> dict[str, Any]:
            return {"embedder": self._emb.name}

        @staticmethod
        def build_from_config(config: dict[str, Any]):
            # Chroma calls this on every get_or_create_collection (to tell a "legacy"
            # function from a known one): loading the model each time cost ~0.2 s and its
            # memory per call, and failed outright for openai:... (no base URL in the config).
            return StorybotEmbeddingFunction(_LazyEmbedder(config.get("embedder", "e5")))

        def default_space(self):
            return "cosine"

        def supported_spaces(self):
            return ["cosine"]

    return StorybotEmbeddingFunction(embedder)


def trim_heap() -> None:
    """Hand freed heap memory back to the OS. glibc keeps what Chroma's large reads freed:
    after loading 10k chunks ~140 MB stayed in the process; at 100k, several hundred MB.
    A no-op where ``malloc_trim`` does not exist (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _probe(url: str, headers: dict[str, str] | None, timeout: float) -> None:
    """GET ``url`` within ``timeout`` seconds (connecting within ``CONNECT_TIMEOUT``); raises
    if the server does not answer 200."""
    import httpx

    resp = httpx.get(url, headers=headers or None,
                     timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)))
    resp.raise_for_status()


def _bound_timeouts(client, timeout: float) -> None:
    """Give chromadb's HTTP session (``timeout=None`` upstream) a bounded timeout."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    else:  # pragma: no cover - a chromadb upgrade moved it: say so instead of hanging silently
        log.warning("could not bound the Chroma client's timeouts (chromadb internals changed)")


class Reopening:
    """A Chroma collection handle that looks its collection up again, once, when the server
    says the collection it points at does not exist: another process deleted and rebuilt the
    index (the names are the same, the ids behind them new). Every other attribute is the
    collection's own. ``reopen()`` returns the collection now of that name, or raises
    Chroma's ``NotFoundError`` when there is none (which then propagates)."""

    def __init__(self, coll: Any, reopen: Callable[[], Any]):
        from chromadb.errors import NotFoundError

        self._coll = coll
        self._reopen = reopen
        self._gone = NotFoundError

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return getattr(self._coll, name)(*args, **kwargs)
            except self._gone:
                log.info("the Chroma server no longer knows a collection's id (deleted by another "
                         "process): looking it up again by name")
                self._coll = self._reopen()
                return getattr(self._coll, name)(*args, **kwargs)

        return call


# How long a process waits for the embedded store's owner to let go before saying who
# holds it: one-shot commands (`storybot ask`, a script's loop of them) hold it about a
# second, so several started at once take turns instead of failing; a running bot holds it
# for good, and the wait ends in the message that says what to do.
LOCK_WAIT = 5.0


class OwnerLock:
    """An exclusive, advisory lock on the embedded store, held for the process's life."""

    def __init__(self, path: Path, wait: float = LOCK_WAIT):
        import fcntl

        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a+")
        except OSError as exc:
            kind = heal.classify(exc)
            raise heal.unusable("read-only" if kind == "other" else kind, path.parent) from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    self._locked_out(path)
                time.sleep(0.1)
        self._fh.seek(0)
        self._fh.truncate()
        cmd = " ".join(os.path.basename(a) for a in sys.argv[:2]) or "python"
        self._fh.write(f"process {os.getpid()} ({cmd}) on {socket.gethostname()}")
        self._fh.flush()

    def _locked_out(self, path: Path) -> None:
        self._fh.seek(0)
        owner = self._fh.read().strip() or "another process"
        self._fh.close()
        raise StoreLocked(
            f"The story index in {path.parent} is in use by {owner}. Only one process may use an "
            "embedded index: stop that process, or run a Chroma server and set CHROMA_HOST so "
            "several processes can share it. A running bot picks up new or changed stories by itself "
            "(STORYBOT_WATCH, on by default), or ask it with /refresh in chat."
        )

    def release(self) -> None:
        if not self._fh.closed:
            self._fh.close()


@dataclass
class Version:
    """The live index version as the meta record describes it."""

    version: str
    embedder: str
    chunks: int = 0
    sentences: int = 0
    stories: int = 0
    built_at: float = 0.0
    # how its sentence vectors were made (index.embed.recipe_for); "plain" for an index
    # built before the recipe was recorded
    recipe: str = "plain"


Span = tuple[int, int, str]  # a sentence of a chunk: (start, end, kind) in the story text


@dataclass
class Snapshot:
    """One version's read side, loaded once and shared by all questions on that version.

    Everything derived from a version's text is a typed field computed once (on first use,
    or at load for the sentence spans) and shared by every question on that version.
    """

    version: Version
    chunks: Any
    sents: Any
    stories: Any
    ids: list[str]
    docs: list[str]
    metas: list[dict]
    pos: dict[str, int] = field(default_factory=dict)
    keyword: Any = None  # index.keyword.KeywordIndex
    # per-version data a caller computes with its own model (e.g. vectors of the stories'
    # names); ``derived(key, make)`` computes each entry once
    _derived: dict = field(default_factory=dict)
    _texts: dict[str, str] = field(default_factory=dict)
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.spans  # noqa: B018 - parsed at load, never per question

    @cached_property
    def spans(self) -> list[tuple[Span, ...]]:
        """The sentence spans of every chunk row, parsed from the stored JSON once."""
        return [tuple((int(s), int(e), str(k)) for s, e, k in json.loads(m.get("sentences") or "[]"))
                for m in self.metas]

    @cached_property
    def story_ids(self) -> frozenset[str]:
        return frozenset(m["story"] for m in self.metas)

    @cached_property
    def story_langs(self) -> dict[str, str]:
        """The language of every story (``index.language.story_languages``)."""
        from index.language import story_languages

        return story_languages((m["story"], d) for m, d in zip(self.metas, self.docs))

    def story_field(self, key: str) -> dict[str, str]:
        """One front-matter field ("url", "outlet") of every story whose front matter gives
        it. Not cached: its callers keep what they derive from it (``derived``)."""
        return {m["story"]: str(m[key]) for m in self.metas if m.get(key)}

    @cached_property
    def story_sizes(self) -> dict[str, int]:
        """How many chunks each story has."""
        sizes: dict[str, int] = {}
        for m in self.metas:
            sizes[m["story"]] = sizes.get(m["story"], 0) + 1
        return sizes

    @cached_property
    def story_rows(self) -> np.ndarray:
        """The story id of every chunk row, as an array (to mask keyword scores by story)."""
        return np.array([m["story"] for m in self.metas], dtype=object)

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every folded word of the chunks and titles."""
        from index.keyword import words

        vocab: set[str] = set()
        for doc, meta in zip(self.docs, self.metas):
            vocab.update(words(doc))
            vocab.update(words(meta.get("title", "")))
        return frozenset(vocab)

    @cached_property
    def prefixes(self) -> frozenset[str]:
        """The keyword-length prefixes of the vocabulary (so cognates meet)."""
        from index.keyword import PREFIX

        return frozenset(w[:PREFIX] for w in self.vocabulary if len(w) >= PREFIX)

    @cached_property
    def digits(self) -> frozenset[str]:
        """Every run of digits in the chunks ("20 000" gives "20" and "000"), and of their
        numbers written in words, read in their story's language ("cinquante" gives "50":
        ``index.language.digit_groups``)."""
        from index.language import digit_groups

        langs = self.story_langs
        return frozenset(g for m, doc in zip(self.metas, self.docs)
                         for g in digit_groups(doc, langs.get(m["story"])))

    @cached_property
    def capitals(self) -> tuple[str, ...]:
        """The capitalised words of the stories that are not sentence-initial (their names,
        in the stories' own spelling), sorted."""
        found: set[str] = set()
        for doc in self.docs:
            for m in _CAPITAL.finditer(doc):
                found.add(m.group(1))
        return tuple(sorted(found))

    @cached_property
    def acronyms(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """The initials the stories' names could be written with (accents folded), to the
        folded words they stand for: "CNES" -> ("centre", "national", "etudes", "spatiales")
        from "le Centre national d'études spatiales". A name is a run of words from a
        capitalised word that is not sentence-initial, stop words ("d'", "of") skipped, up to
        ``ACRONYM_MAX`` words (no library spells out acronyms of arbitrary text; this is the
        plain reading). Computed on the first question with an unknown acronym."""
        from index.keyword import fold, stopwords

        stop = stopwords()
        out: dict[str, set[tuple[str, ...]]] = {}
        for doc in self.docs:
            for sentence in re.split(r"[.!?;:()\n«»“”\"]", doc):
                tokens = re.findall(r"[^\W\d_]+", sentence)
                for i, first in enumerate(tokens):
                    if i == 0 or not first[0].isupper() or fold(first) in stop:
                        continue
                    content: list[str] = []
                    for tok in tokens[i:]:
                        if len(tok) < 2 or fold(tok) in stop:  # "d'", "of": not in initials
                            continue
                        content.append(tok)
                        if len(content) >= 2:
                            out.setdefault(fold("".join(w[0] for w in content)).upper(), set()).add(
                                tuple(fold(w) for w in content))
                        if len(content) >= ACRONYM_MAX:
                            break
        return {k: tuple(sorted(v)) for k, v in out.items()}

    @cached_property
    def story_centroids(self) -> dict[str, np.ndarray]:
        """Each story's unit-length mean sentence vector, from the stored chunk vectors (a
        chunk's vector is the mean of its sentences', so weighting by sentence count gives
        the story's mean): what the story as a whole is about (``index.search``)."""
        sums: dict[str, np.ndarray] = {}
        for off in range(0, len(self.ids), BATCH * 10):
            got = self.chunks.get(ids=self.ids[off:off + BATCH * 10], include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"]):
                i = self.pos[cid]
                weighted = np.asarray(vec, dtype=np.float32) * max(1, len(self.spans[i]))
                story = self.metas[i]["story"]
                sums[story] = sums[story] + weighted if story in sums else weighted
        return {sid: v / (float(np.linalg.norm(v)) or 1.0) for sid, v in sums.items()}

    @cached_property
    def terms(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Each chunk row's latent terms (``index.embed.E5Embedder.embed_terms``), parsed
        from its ``terms`` metadata once; None for a chunk stored without them (an embedder
        with no sparse head)."""
        return [parse_terms(m.get("terms")) for m in self.metas]

    @cached_property
    def capital_forms(self) -> dict[str, str]:
        """The stories' capitalised words by their folded, lower-case form ("alibaba" ->
        "Alibaba"): a name typed without capitals is found here. The capitalised parts of a
        hyphenated name stand for it too: "montferrat" is the name of the town the stories
        write "Montferrat-les-Combes", as "Montferrat" is."""
        from index.keyword import fold

        out = {fold(w): w for w in self.capitals}
        parts = (p for w in self.capitals if "-" in w for p in w.split("-"))
        out.update((fold(p), p) for p in parts if p[:1].isupper() and p.isalpha() and fold(p) not in out)
        return out

    def sentence_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the sentences ``ids`` (an id the version lacks is left out).

        A version's vectors never change, and the chunks a question retrieves come back for
        the next question on the same topic, so each vector is read from Chroma once per
        version and kept (up to ``SENTENCE_CACHE``): a Chroma read per question cost ~4 ms
        of a warm answer on the shipped story, half what the rest of retrieval takes.
        """
        kept = self._vectors
        out = {i: v for i in ids if (v := kept.get(i)) is not None}
        missing = [i for i in ids if i not in out]
        if missing:
            got = self.sents.get(ids=missing, include=["embeddings"])
            fresh = {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])}
            out.update(fresh)
            with self._lock:
                if len(kept) + len(fresh) > SENTENCE_CACHE:
                    kept.clear()
                kept.update(fresh)
        return out

    def doc_freq(self, token: str) -> int:
        """How many chunks hold a keyword token (from the keyword index)."""
        return self.keyword.doc_freq(token) if self.keyword is not None else 0

    def idf(self, token: str) -> float:
        """A keyword token's IDF, as the keyword index (bm25s) computes it."""
        return self.keyword.idf(token) if self.keyword is not None else 0.0

    def derived(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` computed once for this version under ``key`` (thread-safe)."""
        with self._lock:
            if key in self._derived:
                return self._derived[key]
        value = make()
        with self._lock:
            return self._derived.setdefault(key, value)

    def story_text(self, story_id: str) -> str | None:
        """The full text of a story (for quote verification), fetched once."""
        with self._lock:
            if story_id in self._texts:
                return self._texts[story_id]
        got = self.stories.get(ids=[story_id], include=["documents"])
        text = got["documents"][0] if got["ids"] else None
        if text is not None:
            with self._lock:
                self._texts[story_id] = text
        return text


ACRONYM_MAX = 6  # words an acronym of the stories' names spells out at most
# a capitalised word after a lower-case word (not the first word of a sentence)
_CAPITAL = re.compile(r"(?:(?<=[a-zà-ÿ0-9,;:»«)] )|(?<=[’']))([A-ZÀ-Ý][\w-]*\w)")


def format_terms(terms: tuple[np.ndarray, np.ndarray]) -> str:
    """Latent terms as chunk metadata (Chroma metadata holds scalars): JSON ``[ids, weights]``,
    weights to 3 decimals."""
    ids, weights = terms
    return json.dumps([[int(i) for i in ids], [round(float(w), 3) for w in weights]], separators=(",", ":"))


def parse_terms(text: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``format_terms`` read back; None for no terms or a value that does not parse."""
    if not text:
        return None
    try:
        ids, weights = json.loads(text)
        out = np.asarray(ids, dtype=np.int32), np.asarray(weights, dtype=np.float32)
    except (ValueError, TypeError):
        return None
    return out if out[0].shape == out[1].shape and out[0].ndim == 1 else None


def _close_client(client) -> None:
    """Release an embedded client's files (its shared "system" in chromadb), so the folder
    can be moved and opened again within this process."""
    try:
        client.close()
    except Exception:  # already closed, or a chromadb without close(): nothing to release
        log.debug("closing the Chroma client failed", exc_info=True)


def _drop_failed_system(path: Path) -> None:
    """Forget the chromadb "system" a failed ``PersistentClient`` left cached for ``path``.

    chromadb caches one system per folder and adds it to its cache before starting it; when
    starting fails (a corrupt file), the half-started system stays cached and every later
    client on that folder reuses it and fails. Nothing public removes it, hence this."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        for ident in [i for i in SharedSystemClient._identifier_to_system if Path(i) == path]:
            system = SharedSystemClient._identifier_to_system.pop(ident)
            SharedSystemClient._identifier_to_refcount.pop(ident, None)
            try:
                system.stop()
            except Exception:  # it never started: nothing to stop
                pass
    except Exception:  # pragma: no cover - chromadb internals moved: a retry will say why
        log.debug("could not drop chromadb's cached system", exc_info=True)


def _open_embedded(chromadb, data_dir: Path, csettings, probe) -> tuple[Any, Path | None]:
    """A ``PersistentClient`` on ``data_dir/chroma`` that passed ``probe``; a broken index
    is moved aside once and a fresh one opened. Returns (client, broken folder or None)."""
    path = data_dir / heal.CHROMA_DIR
    healed = None
    for attempt in (1, 2):
        client = None
        try:
            client = chromadb.PersistentClient(path=str(path), settings=csettings)
            probe(client)
            return client, healed
        except BaseException as exc:  # Rust panics are BaseExceptions
            if heal.fatal(exc):
                raise
            if client is not None:
                _close_client(client)
            _drop_failed_system(path)
            kind = heal.classify(exc)
            if kind in ("busy", "read-only", "full"):
                raise heal.unusable(kind, data_dir) from exc
            if kind != "corrupt" or attempt == 2 or not path.exists():
                raise
            healed = heal.quarantine(data_dir, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _unavailable(location: str) -> StoreUnavailable:
    return StoreUnavailable(f"The story index is unavailable (the Chroma server at {location} did not "
                            "answer); check CHROMA_HOST / CHROMA_PORT, or try again shortly.")


def new_version_id() -> str:
    return time.strftime("v%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


_VERSION_COLLECTION = re.compile(rf"{PREFIX}(v\d{{8}}T\d{{6}}-[0-9a-f]{{6}})_(?:chunks|sents|stories)")


class Store:
    """A Chroma client plus the versioning rules above. Thread-safe for readers; one writer
    per process (the refresh pipeline serialises itself)."""

    def __init__(self, client, embedder: Embedder, *, server: bool, lock: OwnerLock | None = None,
                 data_dir: Path | None = None, location: str = ""):
        self.client = client
        self.embedder = embedder
        self.server = server
        self.location = location  # server mode: scheme://host:port, without credentials
        self.data_dir = data_dir  # embedded mode: where ``chroma/`` lives (healing moves it aside)
        self._lock = lock
        self.healed: Path | None = None  # the broken-<time> folder, once this process healed
        self.generation = 0  # +1 at each heal: a failure seen on an older client is not healed twice
        self._ef = _make_embedding_function(embedder)
        self._snap: Snapshot | None = None
        self._snap_lock = threading.Lock()
        self._loading: str | None = None  # version being loaded in the background
        self._pending: Snapshot | None = None  # loaded by this process's refresh, going live
        self._meta = Reopening(self._open_meta(), self._open_meta)

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, embedder: Embedder, *, data_dir: Path, chroma_host: str | None = None,
             chroma_port: int = 8000, chroma_ssl: bool = False,
             chroma_headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT) -> "Store":
        """Open the embedded store in ``data_dir`` or, with ``chroma_host``, a Chroma server.

        Raises ``StoreLocked`` (embedded store owned by another process),
        ``DataDirUnusable`` (data folder read-only, full, or locked by another program) or
        ``StoreUnavailable`` (server unreachable, or silent for ``timeout`` seconds). In
        server mode every later call is bounded by ``timeout`` too, so a hung server turns
        into ``StoreUnavailable`` for the asker instead of a question that never returns.
        An embedded index that cannot be opened is moved aside and opened empty (``heal``).
        """
        chromadb, ChromaSettings = _chroma()
        csettings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if chroma_host:
            scheme = "https" if chroma_ssl else "http"
            # a host given as user:pass@host must not carry its credentials into a message
            location = f"{scheme}://{chroma_host.rpartition('@')[2]}:{chroma_port}"
            try:
                # chromadb's HttpClient talks to the server while it is built, with no
                # timeout at all: a bounded heartbeat first makes a dead or hung server fail fast.
                _probe(f"{scheme}://{chroma_host}:{chroma_port}/api/v2/heartbeat", chroma_headers, timeout)
                client = chromadb.HttpClient(host=chroma_host, port=chroma_port, ssl=chroma_ssl,
                                             headers=chroma_headers or None, settings=csettings)
                _bound_timeouts(client, timeout)
                return cls(client, embedder, server=True, location=location)
            except Exception as exc:
                # the caller reports the one sentence below; the cause is for -v
                log.debug("Chroma server %s unavailable", location, exc_info=True)
                raise _unavailable(location) from exc
        data_dir = Path(data_dir)
        lock = OwnerLock(data_dir / "owner.lock")
        try:
            client, healed = _open_embedded(chromadb, data_dir, csettings, lambda c: cls._probe_meta(c, embedder))
            store = cls(client, embedder, server=False, lock=lock, data_dir=data_dir)
            store.healed = healed
            return store
        except BaseException:
            lock.release()
            raise

    @staticmethod
    def _probe_meta(client, embedder: Embedder) -> None:
        """Read what every question reads first (the meta records), so a broken file shows
        up at open time, where it can be healed before anything else uses the client."""
        coll = client.get_or_create_collection(name=META, embedding_function=_make_embedding_function(embedder),
                                               configuration={"hnsw": {"space": "cosine"}})
        coll.get(ids=["active", "building", "lease"], include=["metadatas"])

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """The error to report for ``exc`` when it says the Chroma server could not be
        reached or did not answer in time (server mode), else None."""
        import httpx

        return _unavailable(self.location) if self.server and isinstance(exc, httpx.TransportError) else None

    def close(self) -> None:
        if not self.server:
            _close_client(self.client)
        if self._lock:
            self._lock.release()

    def heal(self, exc: BaseException, generation: int | None = None) -> bool:
        """After ``exc`` while reading the embedded index: when it is corruption, move the
        index aside and continue on a fresh, empty one (True: the caller rebuilds). Raises
        ``DataDirUnusable`` for a read-only / full / locked folder; False for anything else
        (server mode included: a server's data is not ours to move). ``generation`` is
        ``self.generation`` as it was before the failing call: when several threads hit the
        same broken index, the first heals it and the others only see it healed."""
        if self.server or self.data_dir is None:
            return False
        kind = heal.classify(exc)
        if kind in ("busy", "read-only", "full"):
            raise heal.unusable(kind, self.data_dir) from exc
        if kind != "corrupt":
            return False
        with self._snap_lock:
            if generation is not None and generation != self.generation:
                return True  # another thread healed it meanwhile
            self.generation += 1
            _close_client(self.client)
            _drop_failed_system(self.data_dir / heal.CHROMA_DIR)
            self.healed = heal.quarantine(self.data_dir, exc)
            chromadb, ChromaSettings = _chroma()
            self.client = chromadb.PersistentClient(
                path=str(self.data_dir / heal.CHROMA_DIR),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))
            self._snap = self._pending = None
            self._meta = Reopening(self._open_meta(), self._open_meta)
        return True

    # -- collections ----------------------------------------------------------------------
    def _collection(self, name: str):
        return self.client.get_or_create_collection(
            name=name, embedding_function=self._ef, configuration={"hnsw": {"space": "cosine"}}
        )

    def _open_meta(self):
        # a meta collection made anew (healed, or rebuilt by another process) sets its own size
        self.__dict__.pop("_meta_dim_cache", None)
        return self._collection(META)

    def collections_for(self, version: str, *, create: bool = False):
        """(chunks, sentences, stories) collections of one version. Only a refresh passes
        ``create`` (made if missing): a reader that created them would leave empty copies
        behind and answer from an empty index as if it were whole. Without it, a missing one
        raises ``StoreUnavailable`` saying to refresh. Opened again by name if another
        process deletes and rebuilds them (``Reopening``), never created again that way."""
        return tuple(self._version_collection(f"{PREFIX}{version}_{kind}", create)
                     for kind in ("chunks", "sents", "stories"))

    def _version_collection(self, name: str, create: bool) -> Reopening:
        from chromadb.errors import NotFoundError

        def reopen():
            return self.client.get_collection(name=name, embedding_function=self._ef)

        if create:
            return Reopening(self._collection(name), reopen)
        try:
            return Reopening(reopen(), reopen)
        except NotFoundError:
            raise StoreUnavailable("The story index is missing or incomplete (part of its live version is "
                                   "gone); run `storybot refresh`.") from None

    def has_version(self, version: str) -> bool:
        """Whether the server still holds ``version``'s collections (another process may
        have deleted them)."""
        try:
            self.client.get_collection(name=f"{PREFIX}{version}_chunks", embedding_function=self._ef)
        except Exception:  # NotFoundError, or any failure: not a version to serve from
            return False
        return True

    def cached_vectors(self, kind: str, texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``embed(texts)``, row for row, for vectors that depend only on the embedder (the
        off-topic bank's messages, the stories' words): each text is embedded once per
        embedder and kept in the collection ``storybot_<kind>_<hash of the embedder's
        name>``, so a refresh does not embed it again. Stories' text only, never a user's:
        what is kept here outlives the index."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        name = f"storybot_{kind}_" + hashlib.sha256(self.embedder.name.encode()).hexdigest()[:16]
        coll = self._collection(name)
        ids = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in texts]
        have: dict[str, np.ndarray] = {}
        for i in range(0, len(ids), BATCH * 10):
            got = coll.get(ids=ids[i:i + BATCH * 10], include=["embeddings"])
            have.update((k, np.asarray(e, dtype=np.float32)) for k, e in zip(got["ids"], got["embeddings"]))
        missing = list({k: t for k, t in zip(ids, texts) if k not in have}.items())
        for i in range(0, len(missing), BATCH):
            part = missing[i:i + BATCH]
            vecs = [np.asarray(v, dtype=np.float32) for v in embed([t for _, t in part])]
            coll.upsert(ids=[k for k, _ in part], documents=[t for _, t in part], embeddings=vecs)
            have.update((k, v) for (k, _), v in zip(part, vecs))
        return np.stack([have[k] for k in ids])

    # -- meta records ---------------------------------------------------------------------
    def get_meta(self, key: str) -> dict | None:
        got = self._meta.get(ids=[key], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else None

    def set_meta(self, key: str, values: dict) -> None:
        self._meta.upsert(ids=[key], documents=[key], metadatas=[values],
                          embeddings=[np.zeros(self._meta_dim(), dtype=np.float32)])

    def add_meta(self, key: str, values: dict) -> bool:
        """Create the record ``key`` unless it exists; True when this call created it.

        Chroma ignores an ``add`` whose id exists and applies writes one at a time, so of
        several processes adding the same key exactly one sees its own values afterwards:
        a compare-and-set, used for the refresh lease. ``values`` must differ between
        callers (carry an owner id).
        """
        self._meta.add(ids=[key], documents=[key], metadatas=[values],
                       embeddings=[np.zeros(self._meta_dim(), dtype=np.float32)])
        # compare owners, not whole dicts: a float read back need not equal the one written
        return (self.get_meta(key) or {}).get("owner") == values.get("owner")

    def delete_meta(self, key: str, where: dict | None = None) -> None:
        """Delete ``key`` (only if its metadata matches ``where``, when given)."""
        if where:
            clauses = [{k: v} for k, v in where.items()]
            self._meta.delete(ids=[key], where=clauses[0] if len(clauses) == 1 else {"$and": clauses})
        else:
            self._meta.delete(ids=[key])

    def _meta_dim(self) -> int:
        """The meta collection's vector size: fixed by its first record, whatever embedder
        wrote it, so switching to a model of another size can still move the pointer."""
        if not hasattr(self, "_meta_dim_cache"):
            got = self._meta.get(limit=1, include=["embeddings"])
            emb = got.get("embeddings")
            self._meta_dim_cache = len(emb[0]) if emb is not None and len(emb) else self._dim()
        return self._meta_dim_cache

    def _dim(self) -> int:
        if not hasattr(self, "_dim_cache"):
            self._dim_cache = int(self.embedder.embed_query("dimension probe").shape[0])
        return self._dim_cache

    def active(self) -> Version | None:
        """The live version, or None before the first refresh (or after healing a broken
        embedded index, see ``heal``)."""
        generation = self.generation
        try:
            m = self.get_meta("active")
        except BaseException as exc:  # Rust panics are BaseExceptions
            if not heal.fatal(exc) and self.heal(exc, generation):
                return None
            raise
        if not m:
            return None
        return Version(m["version"], m["embedder"], int(m.get("chunks", 0)), int(m.get("sentences", 0)),
                       int(m.get("stories", 0)), float(m.get("built_at", 0)), str(m.get("recipe") or "plain"))

    def check_embedder(self, v: Version) -> None:
        if v.embedder != self.embedder.name:
            raise EmbedderMismatch(
                f"This index was built with the embedding model '{v.embedder}', but the configured one is "
                f"'{self.embedder.name}'. Run `storybot refresh --full` to rebuild it."
            )

    # -- read side ------------------------------------------------------------------------
    def snapshot(self, *, check: bool = True) -> Snapshot | None:
        """The read side of the live version (None before the first refresh).

        In server mode the pointer is re-read on every call so a refresh made by another
        process becomes visible; embedded, only this process writes, so the cached pointer
        is checked against the meta record cheaply all the same.

        Loading a version (its chunks, and the keyword index built from them) takes ~1 s
        per 10k chunks. In server mode, when another process moved the pointer, the new
        version loads in a background thread and questions keep using the version they had
        (still complete: a refresh keeps the one before the live one) until it is ready, so
        no replica stalls after a refresh. A refresh in this process installs its version
        before returning (``Refresher``), so it is visible at once.
        """
        generation = self.generation
        try:
            return self._snapshot(check)
        except (EmbedderMismatch, StoreUnavailable, DataDirUnusable):
            raise
        except BaseException as exc:  # Rust panics are BaseExceptions
            if not heal.fatal(exc) and self.heal(exc, generation):
                return None  # healed: no index any more; the caller builds one
            raise

    def _snapshot(self, check: bool) -> Snapshot | None:
        v = self.active() if (check or self._snap is None) else self._snap.version
        if v is None:
            return None
        self.check_embedder(v)
        snap = self._snap
        if snap is not None and snap.version.version == v.version:
            return snap
        pending = self._pending
        if pending is not None and pending.version.version == v.version:
            return pending  # this process's refresh is installing it right now
        # the version this process has can serve while the new one loads, unless another
        # process deleted it (the index rebuilt from scratch): then the load is waited for
        if snap is not None and self.server and self.has_version(snap.version.version):
            self._load_in_background(v)
            return snap
        with self._snap_lock:
            if self._snap is None or self._snap.version.version != v.version:
                self._snap = self._load(v)
            return self._snap

    def load_version(self, v: Version) -> Snapshot:
        """A snapshot of version ``v`` (live or about to be), not installed."""
        return self._load(v)

    def activate(self, v: Version, warm: Snapshot | None = None) -> None:
        """Make ``v`` the live version: one meta write, seen by every reader at once. With
        ``warm`` (a ``load_version(v)``), this process's questions switch to it without
        loading anything, from the moment the pointer moves."""
        self._pending = warm
        try:
            self.set_meta("active", {"version": v.version, "embedder": v.embedder, "chunks": v.chunks,
                                     "sentences": v.sentences, "stories": v.stories, "built_at": v.built_at,
                                     "recipe": v.recipe})
            if warm is not None:
                with self._snap_lock:
                    self._snap = warm
        finally:
            self._pending = None

    @property
    def has_snapshot(self) -> bool:
        """Whether this process has loaded the index for questions (it serves them)."""
        return self._snap is not None

    def _load_in_background(self, v: Version) -> None:
        with self._snap_lock:
            if self._loading is not None:
                return  # one load at a time; a newer version is picked up when it ends
            self._loading = v.version

        def run() -> None:
            try:
                snap = self._load(v)
                with self._snap_lock:
                    self._snap = snap
            except Exception:  # the next question tries again
                log.warning("could not load index version %s in the background", v.version, exc_info=True)
            finally:
                with self._snap_lock:
                    self._loading = None

        threading.Thread(target=run, name=f"storybot-load-{v.version}", daemon=True).start()

    def _load(self, v: Version) -> Snapshot:
        from index.keyword import KeywordIndex

        chunks, sents, stories = self.collections_for(v.version)
        ids: list[str] = []
        docs: list[str] = []
        metas: list[dict] = []
        total = chunks.count()
        for off in range(0, total, BATCH * 10):
            got = chunks.get(include=["documents", "metadatas"], limit=BATCH * 10, offset=off)
            ids += got["ids"]
            docs += got["documents"]
            metas += [dict(m) for m in got["metadatas"]]
            got = None
        order = sorted(range(len(ids)), key=lambda i: (metas[i]["story"], metas[i]["paragraph"], ids[i]))
        ids, docs, metas = [ids[i] for i in order], [docs[i] for i in order], [metas[i] for i in order]
        snap = Snapshot(v, chunks, sents, stories, ids, docs, metas, {cid: i for i, cid in enumerate(ids)})
        snap.keyword = KeywordIndex(docs)
        trim_heap()
        log.info("loaded index %s: %d chunks", v.version, len(ids))
        return snap

    def invalidate(self) -> None:
        with self._snap_lock:
            self._snap = None

    # -- housekeeping ---------------------------------------------------------------------
    def versions_on_disk(self) -> set[str]:
        """The index versions this project made (``new_version_id``) that the store holds.
        Only names of that exact shape: a shared Chroma server may hold another project's
        "sb_notes_chunks", which a refresh must never drop as an old version."""
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        return {m.group(1) for n in names if (m := _VERSION_COLLECTION.fullmatch(n))}

    def drop_version(self, version: str) -> None:
        """Delete a version's collections and the records stored beside it (its calibration)."""
        from index.calibrate import META_KEY

        for kind in ("chunks", "sents", "stories"):
            try:
                self.client.delete_collection(f"{PREFIX}{version}_{kind}")
            except Exception:  # already gone: nothing to do
                pass
        try:
            self.delete_meta(META_KEY.format(version=version))
        except Exception:  # no record (an interrupted build): nothing to do
            log.debug("no calibration record to drop for %s", version, exc_info=True)
