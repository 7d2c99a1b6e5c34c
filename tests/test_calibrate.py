"""Calibration at refresh: the off-topic banks scored against each new version, the bars
stored with the version, the banks' vectors embedded once per embedder."""
from __future__ import annotations

import shutil

from index.calibrate import bank_languages, bars, load_bank
from index.embed import get_embedder
from index.refresh import Refresher
from index.store import Store

from tests.conftest import REPO, copy_stories


class CountingEmbedder:
    """The real e5 embedder, counting the query texts it embeds."""

    def __init__(self):
        self.inner = get_embedder("e5")
        self.name = self.inner.name
        self.queries: list[str] = []

    def embed_query(self, text):
        self.queries.append(text)
        return self.inner.embed_query(text)

    def embed_queries(self, texts):
        self.queries.extend(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)


def test_banks_are_shipped_for_english_and_french_with_enough_lines():
    assert {"en", "fr"} <= set(bank_languages())
    for lang in ("en", "fr"):
        lines = load_bank(lang)
        assert len(lines) >= 100 and not any(line.startswith("#") for line in lines)


def test_each_version_is_calibrated_and_the_bank_is_embedded_once(tmp_path):
    stories = copy_stories(tmp_path / "stories")
    emb = CountingEmbedder()
    store = Store.open(emb, data_dir=tmp_path / "data")
    try:
        refresher = Refresher(store, stories)
        first = refresher.refresh()
        record = bars(store, first.index_version)
        # French story only: a bar per question language against French stories
        for lang in ("en", "fr"):
            assert 0.5 < record[f"offtopic:{lang}:fr"] <= record[f"answer:{lang}:fr"] <= 1.0
        bank = {line for lang in ("en", "fr") for line in load_bank(lang) if any(c.isalnum() for c in line)}
        assert bank <= set(emb.queries)

        # a new English story: a new version, calibrated for English stories too, no re-embedding
        emb.queries.clear()
        shutil.copy(REPO / "eval" / "multi" / "stories" / "kelbridge-tram-airport.md", stories)
        second = refresher.refresh()
        assert second.swapped and second.index_version != first.index_version
        record = bars(store, second.index_version)
        assert "offtopic:en:en" in record and "offtopic:fr:fr" in record
        assert not bank & set(emb.queries)
    finally:
        store.close()
