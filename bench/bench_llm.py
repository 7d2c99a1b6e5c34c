"""The overhead the LLM path adds around the provider call itself.

Starts the fake OpenAI-compatible server of the tests on 127.0.0.1 and, for N questions,
times ``LLMWriter.write`` (prompt building, the llama-index OpenAILike client, the citation
checks) and, right next to it, the same request sent with a bare ``httpx`` client (the raw
server latency). The overhead is the difference, paired question by question. Prompt
building and the checks are also timed alone. Non-streamed and streamed calls both.

    python bench/bench_llm.py [-n 200] [--latency-ms 0]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.llm import LLMPassage, LLMWriter, check_citations, clean_answer, render_prompt  # noqa: E402
from tests.fake_openai import FakeLLMServer, Reply  # noqa: E402

ANSWER = "Baidu's models did not meet Apple's standards [1], so Apple turned to Alibaba [3] instead [2]."
KEY = "bench-key"


def workload(n: int) -> list[tuple[str, list[LLMPassage]]]:
    """N distinct questions, each with 3 passages of ~1,200 characters (top_k=3 chunks)."""
    body = ("Apple a testé les modèles de plusieurs entreprises chinoises avant de choisir un partenaire. "
            * 13)
    out = []
    for i in range(n):
        passages = [
            LLMPassage(k, "Apple et l'IA en Chine", f"Section {k}", f"{i}-{k}. {body}") for k in (1, 2, 3)
        ]
        out.append((f"Question {i}: why did Apple not pick Baidu for its AI in China?", passages))
    return out


def raw_body(model: str, question: str, passages: list[LLMPassage], stream: bool) -> dict:
    system, user = render_prompt(question, passages, "en")
    body = {"model": model, "temperature": 0.0, "stream": stream,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    return body


def raw_call(client: httpx.Client, url: str, body: dict) -> str:
    """The provider call with nothing around it: one POST, the answer text out."""
    if not body["stream"]:
        resp = client.post(url, json=body)
        resp.raise_for_status()
        return resp.json()["choices"][0]["message"]["content"]
    text = ""
    with client.stream("POST", url, json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
    return text


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="questions per mode (default 200)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay the fake server adds to every reply (default 0)")
    args = parser.parse_args()
    console = Console()

    questions = workload(args.n)
    reply = Reply.answer(ANSWER, delay=args.latency_ms / 1000)
    with FakeLLMServer(default=reply) as server:
        settings = load_settings(llm_provider="openai-like", llm_base_url=server.openai_base_url,
                                 llm_model="bench", llm_api_key=KEY, llm_timeout=10)
        writer = LLMWriter.from_settings(settings, min_interval=0)
        url = f"{server.openai_base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {KEY}"}
        rows = []
        with httpx.Client(headers=headers, timeout=10) as client:
            for stream in (False, True):
                on_text = (lambda _t: None) if stream else None
                for question, passages in questions[:10]:  # warm up both clients
                    writer.write(question, passages, "en", on_text)
                    raw_call(client, url, raw_body("bench", question, passages, stream))
                totals, raws = [], []
                for i, (question, passages) in enumerate(questions):
                    body = raw_body("bench", question, passages, stream)
                    calls = [
                        lambda: totals.append(timed(writer.write, question, passages, "en", on_text)),
                        lambda: raws.append(timed(raw_call, client, url, body)),
                    ]
                    for call in calls if i % 2 else calls[::-1]:  # alternate who goes first
                        call()
                overheads = [t - r for t, r in zip(totals, raws)]
                mode = "streamed" if stream else "non-streamed"
                rows += [
                    (f"{mode}: LLMWriter.write total", totals),
                    (f"{mode}: raw HTTP call (server)", raws),
                    (f"{mode}: overhead (total - raw)", overheads),
                ]
        writer.close()
        requests = len(server.requests)

    prompts = [timed(render_prompt, q, p, "en") for q, p in questions]
    checks = [timed(lambda: check_citations(clean_answer(ANSWER), 3)) for _ in questions]
    rows += [("prompt building alone", prompts), ("citation checks alone", checks)]

    table = Table(title=f"LLM path overhead: {args.n} questions per mode, fake server on 127.0.0.1, "
                        f"+{args.latency_ms:g} ms server latency")
    table.add_column("what")
    for col in ("p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right")
    for name, values in rows:
        table.add_row(name, f"{pct(values, 0.5):.3f}", f"{pct(values, 0.95):.3f}",
                      f"{sum(values) / len(values):.3f}")
    console.print(table)
    console.print(f"{requests} requests served; overhead = write() minus a bare httpx request with the "
                  "same body, paired per question (negative values: noise).")


if __name__ == "__main__":
    main()
