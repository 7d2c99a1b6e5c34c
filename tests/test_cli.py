"""The storybot command line, run as a real process (fresh data dir each test)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, STORIES

JSON_KEYS = {"question", "answer", "abstained", "citations", "mode", "index_version", "took_ms", "confidence"}
CITATION_KEYS = {"n", "quote", "passage", "story", "title", "section", "start", "end", "score"}


def cli_env(data, env=None, stories=STORIES) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "LLM_", "CHROMA_"))}
    e.update({"STORYBOT_DATA_DIR": str(data), "STORYBOT_STORIES": str(stories)}, **(env or {}))
    return e


def storybot(*args, data, stdin=None, env=None, stories=STORIES):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, text=True,
                          env=cli_env(data, env, stories), timeout=300, cwd=data.parent)


def test_first_ask_builds_the_index_then_json_contract(tmp_path):
    out = storybot("ask", "--json", "why not Baidu?", data=tmp_path / "d")
    assert out.returncode == 0, out.stderr
    assert "Building the story index" in out.stderr  # the progress line on a first run
    obj = json.loads(out.stdout)
    assert set(obj) == JSON_KEYS | {"answer_id"}
    assert obj["citations"] and set(obj["citations"][0]) == CITATION_KEYS
    c = obj["citations"][0]
    assert c["quote"].startswith("Les premières discussions avec Baidu ont échoué")
    story = (STORIES / f"{c['story']}.txt").read_text(encoding="utf-8")
    assert story[c["start"]:c["end"]] == c["quote"]
    assert obj["mode"] == "extractive" and not obj["abstained"]
    # the second run reuses the index: no build line
    again = storybot("ask", "why not Baidu?", data=tmp_path / "d")
    assert again.returncode == 0 and "Building" not in again.stderr
    assert "[1]" in again.stdout and "Baidu" in again.stdout


def test_batch_mode_reads_one_question_per_line(tmp_path):
    questions = "why not Baidu?\n\nWhat is the weather in Paris today?\n" + "x" * 12000 + "\n"
    out = storybot("ask", "--json", data=tmp_path / "d", stdin=questions)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 4  # one per input line, the blank one included
    assert not lines[0]["abstained"] and lines[1]["abstained"] and lines[2]["abstained"]
    assert lines[2]["citations"] == []
    # a refusal says which rule decided; a confident answer has nothing to explain
    assert "why" not in lines[0] and lines[1]["why"] == "empty question"
    assert lines[2]["why"] in ("off topic", "not mentioned")
    assert len(lines[3]["question"]) <= 1000 and "note" in lines[3]


def test_refresh_json_twice_and_search_and_report(tmp_path):
    first = json.loads(storybot("refresh", "--json", data=tmp_path / "d").stdout)
    second = json.loads(storybot("refresh", "--json", data=tmp_path / "d").stdout)
    assert first["added"] == 13 and first["embedded"] > 0
    assert (second["added"], second["changed"], second["removed"], second["embedded"]) == (0, 0, 0, 0)
    assert second["index_version"] == first["index_version"]
    found = json.loads(storybot("search", "--json", "why not Baidu?", data=tmp_path / "d").stdout)
    assert "Baidu" in found[0]["text"] and {"dense", "keyword", "score"} <= set(found[0])
    listed = json.loads(storybot("stories", "--json", data=tmp_path / "d").stdout)
    assert [s["id"] for s in listed] == ["apple-alibaba-ia-iphone-chine.fr"]
    # the answer log holds what people asked: only a command that records or reads answers
    # creates it (refresh, search and stories made an empty one)
    assert not (tmp_path / "d" / "answers.sqlite3").exists()
    storybot("ask", "What is Tim Cook's view?", data=tmp_path / "d")
    assert (tmp_path / "d" / "answers.sqlite3").exists()
    rep = json.loads(storybot("report", "--json", data=tmp_path / "d").stdout)
    assert rep["abstained"] == 1 and rep["top_abstained"][0]["question"] == "what is tim cook's view?"
    assert rep["top_abstained"][0]["why"] == "not mentioned"  # the story never names him


def test_eval_prints_a_table_and_json(tmp_path):
    out = storybot("eval", str(REPO / "eval" / "dev_questions.jsonl"), data=tmp_path / "d")
    assert out.returncode == 0, out.stderr
    for row in ("first citation right", "first quote holds the answer", "plain retrieval: top passage right",
                "answerable: high / low / none",
                "unanswerable: high / low / none", "wrong abstentions"):
        assert row in out.stdout
    res = json.loads(storybot("eval", "--json", str(REPO / "eval" / "dev_questions.jsonl"), data=tmp_path / "d").stdout)
    # quality itself is asserted on 83 questions with a margin (tests/test_quality.py); here,
    # the report's shape: outcomes add up, both hit@1 rows are there, every row is scored
    assert res["answerable"] == 10 and res["unanswerable"] == 2
    assert res["answerable_high"] + res["answerable_low"] + res["answerable_none"] == 10
    assert res["unanswerable_high"] + res["unanswerable_low"] + res["unanswerable_none"] == 2
    assert 0 <= res["retrieval_hit@1"] <= 1 and 0 <= res["hit@1"] <= 1
    # a quote lies in its passage: a quote holding the gold is a first citation holding it
    assert all(r["rank"] == 1 for r in res["rows"] if r["quote_right"])
    assert res["quote_hit@1"] == sum(r["quote_right"] for r in res["rows"]) / 10 > 0
    assert {r["confidence"] for r in res["rows"]} <= {"high", "low", "none"}
    assert res["unanswerable_high"] == 0  # the weather, and a payment the story never gives
    # every hedge and refusal is counted under the rule that decided it, and only those
    assert "by the rule that decided" in out.stdout
    for kind in ("answerable", "unanswerable"):
        assert sum(c[kind] for c in res["why"].values()) == res[f"{kind}_low"] + res[f"{kind}_none"]
    assert all((r["why"] is None) == (r["confidence"] == "high") for r in res["rows"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "x", "gold": null}\nnot json\n', encoding="utf-8")
    out = storybot("eval", str(bad), data=tmp_path / "d")
    assert out.returncode == 1 and "line 2" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("gold", ["42", '["Baidu", "Alibaba"]'])
def test_eval_names_the_file_and_line_of_a_gold_that_is_not_text(tmp_path, gold):
    questions = tmp_path / "numbers.jsonl"
    lines = ['{"q": "why not Baidu?", "gold": "Baidu"}', f'{{"q": "how many?", "gold": {gold}}}']
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = storybot("eval", str(questions), data=tmp_path / "d")
    assert out.returncode == 1, out.stderr
    assert "numbers.jsonl, line 2" in out.stderr and "'gold' must be" in out.stderr, out.stderr
    assert "TypeError" not in out.stderr and "unexpected" not in out.stderr


def test_eval_of_a_multi_story_corpus(tmp_path):
    """--add-stories adds the multi-story corpus to the shipped story in a temporary index:
    an embedded one, even when the configured index is on a Chroma server (here one that
    does not answer: the shared index is neither read nor written)."""
    from tests.fakes import closed_port

    out = storybot("eval", "--json", str(REPO / "eval" / "multi" / "dev_questions.jsonl"),
                   "--add-stories", str(REPO / "eval" / "multi" / "stories"), data=tmp_path / "d",
                   env={"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(closed_port())})
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["answerable"] == 36 and res["retrieval_hit@1"] > 0.4
    assert not (tmp_path / "d").exists()  # the configured index was not touched


@pytest.mark.parametrize("setup,message", [
    ("missing", "the stories folder does not exist"),
    ("empty", "No story to index in {stories} (.txt"),  # the whole path: which folder was read
    ("file", "is a file: the stories setting names a folder"),
])
def test_clear_errors_without_a_trace(tmp_path, setup, message):
    stories = tmp_path / "stories"
    if setup == "empty":
        stories.mkdir()
    if setup == "file":
        stories.write_text("A story given where its folder was expected.", encoding="utf-8")
    message = message.format(stories=stories)
    out = storybot("ask", "why not Baidu?", data=tmp_path / "d", stories=stories)
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args,option", [
    (["search", "-k", "-1", "why not Baidu?"], "'-k': -1"),  # sliced off the last passage
    (["search", "-k", "0", "why not Baidu?"], "'-k': 0"),  # printed nothing, successfully
    (["report", "--limit", "0"], "'--limit': 0"),
    (["slack", "--http", "--port", "70000"], "'--port': 70000"),
    (["discord", "--clear-guild-commands", "-5"], "'--clear-guild-commands': -5"),
])
def test_numeric_options_out_of_range_are_usage_errors(tmp_path, args, option):
    out = storybot(*args, data=tmp_path / "d")
    assert out.returncode == 2, (out.stdout, out.stderr)  # click's usage error, before anything runs
    assert f"Invalid value for {option} is not in the range" in out.stderr, out.stderr
    assert not (tmp_path / "d").exists()


def test_chat_answers_follow_ups_until_an_empty_line(tmp_path):
    out = storybot("chat", data=tmp_path / "d", stdin="why not Baidu?\nand Tencent?\n\n")
    assert out.returncode == 0, out.stderr
    assert "Baidu ont échoué" in out.stdout and "Tencent et ByteDance" in out.stdout


def test_a_damaged_answer_log_costs_no_answer_and_report_names_it(tmp_path):
    # garbage over answers.sqlite3 used to stop every command, ask and the bots included,
    # with "something unexpected went wrong (DatabaseError)"
    data = tmp_path / "d"
    data.mkdir()
    (data / "answers.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x07garbage" * 600)
    out = storybot("ask", "--json", "why not Baidu?", data=data)
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert obj["citations"] and "answer_id" not in obj
    assert "answer log" in out.stderr and "damaged" in out.stderr
    for command in (["report"], ["forget", "--user", "123"]):
        out = storybot(*command, data=data)
        assert out.returncode == 1 and "unexpected" not in out.stderr
        assert out.stderr.startswith("Error: The answer log ") and "is damaged" in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [["ask", "why not Baidu?"], ["stories", "--json"]])
def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path, args):
    # `storybot stories --json | head -c 1` ended in "Error: something unexpected went wrong
    # (BrokenPipeError)", status 1; `storybot ask ... | head -c 1` in status 1 (rich's exit)
    data = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env(data), cwd=tmp_path)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err  # as a program stopped by SIGPIPE
    assert not any(word in err for word in ("Error", "Traceback", "Exception ignored")), err


def test_markup_and_escapes_in_titles_and_hedged_questions_print_as_text(tmp_path):
    # rich read them as markup: "[/b]" in a story title stopped `storybot stories`, and in a
    # chat user's question answered "low" it stopped `storybot report` (MarkupError); the
    # latter's escape sequences reached the terminal
    from bot.answerlog import AnswerLog

    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "budget.md").write_text("---\ntitle: Budget [/b] vote [bold]2025[/bold] \x1b[31mred\n---\n"
                                       "The council voted the budget on Monday. It passed by ten votes.\n",
                                       encoding="utf-8")
    data = tmp_path / "d"
    out = storybot("stories", data=data, stories=stories)
    assert out.returncode == 0, out.stderr
    assert "[/b]" in out.stdout and "\x1b" not in out.stdout
    log = AnswerLog(data / "answers.sqlite3")
    for question in ("is the [/b] budget [red]late[/red]?", "why \x1b[31mred?"):
        log.record(question=question, abstained=False, citations=[], took_ms=1.0, index_version="v",
                   mode="extractive", source="discord", user="1", confidence="low")
    log.close()
    out = storybot("report", data=data, stories=stories)
    assert out.returncode == 0, out.stderr
    assert "[/b] budget [red]late[/red]" in out.stdout and "\x1b" not in out.stdout


class StreamingAnswerer:
    """An answerer whose LLM streams ``streamed`` then returns ``final``."""

    def __init__(self, streamed: list[str], final):
        self.streamed, self.final = streamed, final

    def answer(self, question, *, source, story, on_text):
        for text in self.streamed:
            on_text(text)
        return self.final


@pytest.mark.parametrize("streamed, text, mode, replaced", [
    ("Baidu failed [1].", "Baidu failed [1].", "llm", False),
    ("Baidu failed (3).", "Baidu failed [1].", "llm", False),  # normalised and renumbered: the same answer
    ("Baidu failed (7).", "Les discussions avec Baidu ont échoué [1]", "extractive (fallback: no citation)",
     True),
])
def test_a_streamed_answer_is_said_replaced_only_when_it_was(capsys, streamed, text, mode, replaced):
    from bot.cli import _ask_streaming
    from bot.types import Answer, Citation

    cite = Citation(n=1, quote="Les discussions avec Baidu ont échoué", passage="p", story="s", title="t",
                    section=None, start=0, end=1, score=1.0)
    _ask_streaming(StreamingAnswerer([streamed[:6], streamed], Answer("q", text, False, (cite,), mode=mode)),
                   "q", None)
    out = capsys.readouterr().out
    assert ("replaced" in out) is replaced
    assert out.count(text) == 1 and out.startswith(streamed)
