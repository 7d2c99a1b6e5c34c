"""Calibration at refresh: the off-topic banks scored against each new version, the bars
stored with the version, the banks' vectors embedded once per embedder."""
from __future__ import annotations

import shutil

import numpy as np

from index.calibrate import META_KEY, bank_languages, bank_neighbour_bar, bars, load_bank, story_answer_bars
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
            assert 0.5 < record[f"refuse:{lang}:fr"] <= record[f"offtopic:{lang}:fr"] <= record[f"answer:{lang}:fr"] <= 1.0
        assert 0.5 < record["bank_neighbour"] < 1.0
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

        # a third version drops the first, and its calibration record with it
        shutil.copy(REPO / "eval" / "multi" / "stories" / "skerry-bank-wind-farm.md", stories)
        third = refresher.refresh()
        assert third.swapped and bars(store, first.index_version) == {}
        assert bars(store, second.index_version) and bars(store, third.index_version)
        # two English stories: each story's own answer bar, below the language's where
        # off-topic messages come closer to the other story than to it
        record = bars(store, third.index_version)
        for lang in ("en", "fr"):
            own = story_answer_bars(record, lang)
            assert own and set(own) <= {"kelbridge-tram-airport", "skerry-bank-wind-farm",
                                        "apple-alibaba-ia-iphone-chine.fr"}
            for sid, (answer, unsupported) in own.items():
                story_lang = "fr" if sid.endswith(".fr") else "en"
                assert 0.5 < answer < record[f"answer:{lang}:{story_lang}"] and answer <= unsupported
            assert "apple-alibaba-ia-iphone-chine.fr" not in own  # alone in its language: the same bar
        # a record of an older layout is not used: the answer step calibrates the version again
        store.set_meta(META_KEY.format(version="v-old"), {"version": "v-old", "offtopic:en:fr": 0.8})
        assert bars(store, "v-old") == {}
        # ... nor one made with other tuning values (an index calibrated before they changed)
        from index.tuning import TUNING, Tuning

        assert bars(store, third.index_version, Tuning(answer_quantile=TUNING.answer_quantile - 0.05)) == {}
        assert bars(store, third.index_version, Tuning()) == record
    finally:
        store.close()


def test_the_bank_neighbour_bar_is_a_quantile_of_nearest_neighbour_cosines():
    # four unit vectors: two close pairs (cos .9 within a pair, 0 across)
    a = np.array([[1, 0, 0, 0], [0.9, np.sqrt(1 - 0.81), 0, 0], [0, 0, 1, 0], [0, 0, 0.8, 0.6]], dtype=np.float32)
    from index.tuning import Tuning

    assert abs(bank_neighbour_bar(a, Tuning(bank_neighbour_quantile=0.0)) - 0.8) < 1e-6
    assert abs(bank_neighbour_bar(a, Tuning(bank_neighbour_quantile=1.0)) - 0.9) < 1e-6
    assert bank_neighbour_bar(a[:1]) == 1.0  # one message: nothing is like it


def test_messages_like_the_off_topic_bank_are_recognised(shared_answerer):
    snap = shared_answerer.store.snapshot()
    emb = shared_answerer.store.embedder
    assert shared_answerer._like_bank(emb.embed_query(load_bank("en")[0]), snap)  # a bank message itself
    assert shared_answerer._like_bank(emb.embed_query("Qui a gagné le match de foot hier soir ?"), snap)
    assert not shared_answerer._like_bank(emb.embed_query("Why did Apple drop Baidu as its AI partner?"), snap)
