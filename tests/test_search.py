"""Hybrid retrieval over the real index."""
from index.search import search

BAIDU = "Les premières discussions avec Baidu ont échoué"


def test_why_not_baidu_ranks_the_baidu_passage_first_with_both_scores(shared_answerer):
    for q in ("why not Baidu?", "Pourquoi pas Baidu ?"):
        passages = search(shared_answerer.store, q, k=3)
        assert BAIDU in passages[0].text
        assert passages[0].dense > 0.7 and passages[0].keyword > 0
        assert [p.rank for p in passages] == [1, 2, 3]
        assert passages[0].score >= passages[1].score >= passages[2].score
        assert all(s.text for s in passages[0].sentences)


def test_story_filter_and_unknown_story(shared_answerer):
    sid = "apple-alibaba-ia-iphone-chine.fr"
    assert all(p.story == sid for p in search(shared_answerer.store, "Baidu", k=3, story=sid))
    assert search(shared_answerer.store, "Baidu", k=3, story="no-such-story") == []
