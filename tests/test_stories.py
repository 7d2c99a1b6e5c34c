"""Stories you can name: ``storybot stories`` and "did you mean" for an unknown story id."""
from __future__ import annotations

import json

from click.testing import CliRunner

from bot.cli import cli
from bot.stories import closest_ids, list_stories, unknown_story_text
from tests.conftest import STORIES

IDS = {"apple-alibaba-ia-iphone-chine.fr", "tech/tencent-ai-2026", "tech/baidu-ernie", "festival"}


def test_closest_ids_for_typos_case_prefixes_and_folders():
    assert closest_ids("apple-alibaba", IDS)[0] == "apple-alibaba-ia-iphone-chine.fr"
    assert closest_ids("Festival", IDS) == ["festival"]
    assert closest_ids("festivl", IDS) == ["festival"]
    assert closest_ids("baidu-ernie", IDS) == ["tech/baidu-ernie"]
    assert closest_ids("zzzz", IDS) == []


def test_the_unknown_story_reply_suggests_and_says_how_to_list(shared_answerer):
    answer = shared_answerer.answer("why not Baidu?", story="apple-alibab")
    assert answer.abstained and not answer.citations
    assert "apple-alibab" in answer.text and "Did you mean: apple-alibaba-ia-iphone-chine.fr?" in answer.text
    assert "`storybot stories`" in answer.text
    french = unknown_story_text("rien", IDS, "fr")
    assert "rien" in french and "Vouliez-vous dire" not in french and "storybot stories" in french
    # a chat user cannot run the command: the suggestions stay, the command goes
    chat = shared_answerer.answer("why not Baidu?", story="apple-alibab", source="discord")
    assert "Did you mean: apple-alibaba-ia-iphone-chine.fr?" in chat.text and "storybot" not in chat.text


def test_a_story_id_pasted_with_spaces_around_it_is_the_story(shared_answerer):
    sid = "apple-alibaba-ia-iphone-chine.fr"
    plain = shared_answerer.answer("why not Baidu?", story=sid)
    for pasted in (f"  {sid} ", f"{sid}\n", f"\t{sid}"):
        answer = shared_answerer.answer("why not Baidu?", story=pasted)
        assert not answer.abstained and answer.text == plain.text, pasted
    # only spaces: no filter, every story
    assert shared_answerer.answer("why not Baidu?", story="   ").text == plain.text


def test_list_stories_from_the_live_index(shared_answerer):
    [info] = list_stories(shared_answerer.store.snapshot())
    assert info.id == "apple-alibaba-ia-iphone-chine.fr" and info.chunks == 13
    assert info.title.startswith("Apple s’associe à Alibaba") and info.refreshed_at > 0


def test_storybot_stories_prints_a_table_and_json(tmp_path):
    args = ["--data-dir", str(tmp_path / "d"), "stories", "--stories", str(STORIES)]
    out = CliRunner().invoke(cli, [*args, "--json"])
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.stdout)
    assert set(row) == {"id", "title", "outlet", "date", "url", "chunks", "refreshed_at"}
    assert row["id"] == "apple-alibaba-ia-iphone-chine.fr" and row["chunks"] == 13
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0
    assert "apple-alibaba-ia-iphone-chine.fr" in table.stdout and "chunks" in table.stdout
