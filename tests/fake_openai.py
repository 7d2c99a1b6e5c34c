"""A small, scripted LLM server on 127.0.0.1 for tests and benchmarks.

It speaks just enough of two wire formats for the real llama-index clients to talk to it:

- OpenAI's ``POST /v1/chat/completions``, non-streamed (one JSON body) and streamed (SSE
  ``data: {...}`` chunks, then ``data: [DONE]``);
- Ollama's ``POST /api/chat``, non-streamed (one JSON body) and streamed (NDJSON lines).

Each request takes the next scripted :class:`Reply` (or ``default`` when the script is empty)
and is recorded (path, headers, JSON body) in ``requests``. The server runs aiohttp on its own
event loop in a daemon thread, so synchronous code under test can call it directly::

    with FakeLLMServer() as server:
        server.script(Reply.answer("Apple tested Baidu's models [1]."))
        ...  # point the client at server.openai_base_url
        server.requests[0].body["messages"]
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """What the server does with one request.

    ``text`` is the assistant's answer; when the request asks for a stream it is sent in
    ``chunks`` (by default word by word). ``status`` other than 200 sends an error body.
    ``raw`` sends these bytes as is (a malformed body). ``delay`` waits before answering;
    ``stall_after`` waits ``delay`` after that many stream chunks instead (a stream that stops
    mid-way).
    """

    text: str = ""
    status: int = 200
    raw: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    chunks: tuple[str, ...] | None = None
    stall_after: int | None = None

    @classmethod
    def answer(cls, text: str, **kw) -> Reply:
        return cls(text=text, **kw)

    @classmethod
    def error(cls, status: int, message: str = "internal error") -> Reply:
        return cls(status=status, text=message)

    @classmethod
    def malformed(cls, raw: bytes | str, content_type: str = "application/json") -> Reply:
        return cls(raw=raw.encode() if isinstance(raw, str) else raw, content_type=content_type)

    def pieces(self) -> list[str]:
        """The stream chunks: ``chunks`` when given, else the words of ``text``."""
        if self.chunks is not None:
            return list(self.chunks)
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """All message contents of the request, joined (what the model was asked)."""
        parts = []
        for m in self.body.get("messages", []):
            content = m.get("content")
            if isinstance(content, list):  # OpenAI content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(content or "")
        return "\n".join(parts)


class FakeLLMServer:
    """An OpenAI- and Ollama-compatible HTTP server with scripted replies (see module doc)."""

    def __init__(self, default: Reply | None = None):
        self.default = default
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self.port = 0

    # --- public ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies, used one per request in order."""
        with self._lock:
            self._script.extend(replies)

    def reset(self, default: Reply | None = None) -> None:
        """Forget recorded requests and unused replies; set the default reply."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = default

    @property
    def pending(self) -> int:
        """How many scripted replies are still unused."""
        with self._lock:
            return len(self._script)

    def start(self) -> FakeLLMServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        loop.call_soon_threadsafe(self._closing.set)  # wakes any sleeping handler
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- server ---------------------------------------------------------------------------
    async def _serve(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/api/chat", self._ollama_chat)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _take(self, request: web.Request) -> tuple[Reply, dict]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode(errors="replace")}
        with self._lock:
            self.requests.append(Recorded(request.path, dict(request.headers), body))
            reply = self._script.popleft() if self._script else self.default
        if reply is None:
            reply = Reply.error(500, "fake server: no scripted reply left")
        return reply, body

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), seconds)
            except asyncio.TimeoutError:
                pass

    async def _common(self, reply: Reply) -> web.Response | None:
        """The replies that are the same in both formats: errors and raw bodies."""
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": reply.text, "type": "server_error", "code": reply.status}},
                status=reply.status,
            )
        if reply.raw is not None:
            return web.Response(body=reply.raw, content_type=reply.content_type)
        return None

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        reply, body = await self._take(request)
        model = body.get("model", "fake")
        if reply.stall_after is None:
            await self._sleep(reply.delay)
        done = await self._common(reply)
        if done is not None:
            return done
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            })

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(reply.pieces()):
            if reply.stall_after is not None and i == reply.stall_after:
                await self._sleep(reply.delay)
            await resp.write(chunk({"content": piece}))
        await resp.write(chunk({}, "stop"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        reply, body = await self._take(request)
        model = body.get("model", "fake")
        if reply.stall_after is None:
            await self._sleep(reply.delay)
        done = await self._common(reply)
        if done is not None:
            return done

        def message(content: str, final: bool) -> dict:
            out = {
                "model": model,
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": content},
                "done": final,
            }
            if final:
                out.update(done_reason="stop", prompt_eval_count=10, eval_count=10)
            return out

        if body.get("stream") is False:
            return web.json_response(message(reply.text, True))
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        for i, piece in enumerate(reply.pieces()):
            if reply.stall_after is not None and i == reply.stall_after:
                await self._sleep(reply.delay)
            await resp.write((json.dumps(message(piece, False)) + "\n").encode())
        await resp.write((json.dumps(message("", True)) + "\n").encode())
        await resp.write_eof()
        return resp
