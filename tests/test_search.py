"""Hybrid retrieval over the real index."""
import numpy as np

from index.search import search
from index.tuning import TUNING

BAIDU = "Les premières discussions avec Baidu ont échoué"


def test_why_not_baidu_ranks_the_baidu_passage_first_with_both_scores(shared_answerer):
    for q in ("why not Baidu?", "Pourquoi pas Baidu ?"):
        passages = search(shared_answerer.store, q, k=3)
        assert BAIDU in passages[0].text
        assert passages[0].dense > 0.7 and passages[0].keyword > 0
        assert [p.rank for p in passages] == [1, 2, 3]
        assert passages[0].focused >= passages[1].focused >= passages[2].focused
        assert all(s.text for s in passages[0].sentences)


def test_story_filter_and_unknown_story(shared_answerer):
    sid = "apple-alibaba-ia-iphone-chine.fr"
    assert all(p.story == sid for p in search(shared_answerer.store, "Baidu", k=3, story=sid))
    assert search(shared_answerer.store, "Baidu", k=3, story="no-such-story") == []


def test_story_centroids_are_the_mean_of_the_stored_sentence_vectors(shared_answerer):
    snap = shared_answerer.store.snapshot()
    got = snap.sents.get(include=["embeddings", "metadatas"])
    for story, centroid in snap.story_centroids.items():
        vs = np.asarray([e for e, m in zip(got["embeddings"], got["metadatas"]) if m["story"] == story])
        mean = vs.mean(axis=0)
        assert np.allclose(centroid, mean / np.linalg.norm(mean), atol=1e-4)
        assert abs(float(np.linalg.norm(centroid)) - 1) < 1e-5


def test_passages_rank_by_their_most_specific_answering_sentence(shared_answerer):
    # each passage's ranking score is its best sentence's cosine less a share of that
    # sentence's likeness to the whole story, plus the keyword part of the fused score
    snap = shared_answerer.store.snapshot()
    for q in ("Who is Apple partnering with in China?", "what problems does the deal address?", "why not Baidu?"):
        passages = search(shared_answerer.store, q, k=6)
        assert [p.focused for p in passages] == sorted((p.focused for p in passages), reverse=True)
        for p in passages:
            body = [h for h in p.sentences if h.kind == "body"]
            centroid = snap.story_centroids[p.story]
            vec = {i: np.asarray(e) for i, e in zip(*(lambda g: (g["ids"], g["embeddings"]))(
                snap.sents.get(ids=[f"{p.chunk_id}/{i}" for i in range(len(p.sentences))], include=["embeddings"])))}
            for i, h in enumerate(p.sentences):
                assert abs(h.generic - float(vec[f"{p.chunk_id}/{i}"] @ centroid)) < 1e-4
            best = max(h.dense - TUNING.generic_penalty * h.generic for h in body)
            assert abs(p.focused - (best + (p.score - p.dense) + TUNING.latent_weight * p.latent)) < 1e-6


def test_a_versions_sentence_vectors_are_read_from_chroma_once_and_kept(shared_answerer, monkeypatch):
    import index.store as store_mod

    snap = shared_answerer.store.snapshot()
    real = snap.sents
    reads = []

    class Counting:  # the real collection, its reads counted
        def get(self, **kw):
            reads.append(kw["ids"])
            return real.get(**kw)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(snap, "_vectors", {})
    monkeypatch.setattr(snap, "sents", Counting())
    ids = [f"{snap.ids[0]}/0", f"{snap.ids[1]}/0", "no-such-chunk/0"]
    got = snap.sentence_vectors(ids)
    stored = real.get(ids=ids[:2], include=["embeddings"])
    assert set(got) == set(ids[:2])  # an id the version lacks is left out
    for i, e in zip(stored["ids"], stored["embeddings"]):
        assert np.array_equal(got[i], np.asarray(e, dtype=np.float32))
    assert snap.sentence_vectors(ids[:2]).keys() == got.keys()
    assert reads == [ids]  # the second call read nothing
    search(shared_answerer.store, "why not Baidu?", k=3, snapshot=snap)
    search(shared_answerer.store, "why not Baidu?", k=3, snapshot=snap)
    assert len(reads) == 2  # a question read its sentences once; the same question again, none
    # bounded: past SENTENCE_CACHE the kept vectors are dropped, the answer is unchanged
    assert len(snap._vectors) > 10
    monkeypatch.setattr(store_mod, "SENTENCE_CACHE", 10)
    del snap._vectors[ids[0]]
    assert snap.sentence_vectors(ids[:2]).keys() == got.keys()
    assert list(snap._vectors) == [ids[0]]  # the one read now is kept, the rest dropped


QUESTIONS = ["why not Baidu?", "Pourquoi pas Baidu ?", "How much did iPhone sales fall in China?",
             "Who broke the news first?", "what does Alibaba get out of it", "Quand Apple a-t-il commencé ?",
             "Which models did Apple test besides Baidu's?", "c koi le role de tencent",
             "Is Apple Intelligence out in China?"]


def test_only_close_calls_are_settled_by_latent_terms(shared_answerer, monkeypatch):
    # a question whose two best passages are within latent_margin on the cheap key pays a
    # second model pass for its latent terms; a clear call does not
    emb = shared_answerer.store.embedder
    calls = []
    real = emb.embed_terms
    monkeypatch.setattr(emb, "embed_terms", lambda texts: calls.append(texts) or real(texts))
    close = clear = 0
    for q in QUESTIONS:
        calls.clear()
        passages = search(shared_answerer.store, q, k=20)
        cheap = sorted((p.focused - TUNING.latent_weight * p.latent for p in passages), reverse=True)
        if cheap[0] - cheap[1] < TUNING.latent_margin:
            close += 1
            assert calls == [[q]] and any(p.latent > 0 for p in passages)
        else:
            clear += 1
            assert calls == [] and all(p.latent == 0 for p in passages)
        assert [p.focused for p in passages] == sorted((p.focused for p in passages), reverse=True)
    assert close and clear  # both paths ran


def test_offsets_shift_one_storys_passages(shared_answerer):
    sid = "apple-alibaba-ia-iphone-chine.fr"
    plain = search(shared_answerer.store, "why not Baidu?", k=3)
    shifted = search(shared_answerer.store, "why not Baidu?", k=3, offsets={sid: 0.5, "other": 9.0})
    assert [p.chunk_id for p in shifted] == [p.chunk_id for p in plain]
    for a, b in zip(plain, shifted):
        assert abs((a.focused - b.focused) - 0.5) < 1e-6 and a.score == b.score


def test_the_same_sentence_in_two_stories_is_found_in_the_story_asked_about(tmp_path):
    # among many stories, sentence vectors carry their story's title
    # (index.embed.sentence_vectors): a question about one story's subject finds that
    # story's copy of a sentence two stories share
    from bot.answer import Answerer
    from bot.config import load_settings
    from tests.conftest import copy_stories, small_stories

    stories = copy_stories(tmp_path / "stories")
    said = "The company said it would appeal the decision within 28 days."
    (stories / "greywell-mine.md").write_text(
        "---\ntitle: Lithium mine permit refused at Greywell\n---\n\n"
        "Planners on Tuesday refused Greywell Minerals permission to dig an open-pit lithium mine on the moor.\n\n"
        f"{said}\n", encoding="utf-8")
    (stories / "corran-ferries.md").write_text(
        "---\ntitle: Island ferry operator goes into administration\n---\n\n"
        "Corran Ferries stopped all sailings to the islands on Monday after its lenders pulled out.\n\n"
        f"{said}\n", encoding="utf-8")
    small_stories(stories, TUNING.title_min_stories - 3)  # enough stories for the recipe
    common = dict(data_dir=tmp_path / "data", stories_dir=stories, _env_file=None, log_answers=False)
    with Answerer.from_settings(load_settings(**common)) as a:
        a.ensure_index()
        assert a.store.active().stories == TUNING.title_min_stories
        for q, story in (("will the lithium miner appeal?", "greywell-mine"),
                         ("is the ferry operator going to appeal?", "corran-ferries")):
            copies = [p for p in search(a.store, q, k=6) if said in p.text]
            assert len(copies) == 2 and copies[0].story == story, (q, [p.story for p in copies])
