"""Slack's HTTP mode: the Bolt app behind Bolt's aiohttp adapter, on aiohttp's web server.

aiohttp serves each connection as a coroutine (a slow client ties up no thread), answers
malformed HTTP with 400 and bodies over ``client_max_size`` with 413; Bolt checks signatures
(401) and acks within 3 s; the blocking core runs on the loop's bounded default thread pool.
Added here: a deadline for reading a body, which aiohttp lacks (a head must arrive within its
``keepalive_timeout``, armed at connect); 400 where Bolt would fail with a 500 (a
non-numeric timestamp, a JSON array); and replays. A signed request seen before (same
signature and timestamp) is acked and not handled again. That memory is per process: a
replay reaching another replica within Slack's 5-minute window is handled there.
"""
from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.recent import Recent

READ_DEADLINE = 10.0  # seconds to send a request's head, and again its body
MAX_BODY = 1 << 20  # Slack's requests are a few kB; refuse anything absurd


def web_app(app: AsyncApp, signing_secret: str, path: str = "/slack/events") -> web.Application:
    """The aiohttp application handing Slack's POSTs on ``path`` (events, commands, actions) to ``app``."""
    verifier, seen = SignatureVerifier(signing_secret), Recent(10_000)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        try:
            body = (await asyncio.wait_for(request.read(), READ_DEADLINE)).decode()
        except (TimeoutError, UnicodeDecodeError) as exc:
            return web.Response(status=408 if isinstance(exc, TimeoutError) else 400)
        stamp, signature = (request.headers.get(f"X-Slack-{h}") for h in ("Request-Timestamp", "Signature"))
        if stamp and not stamp.isdigit():
            return web.Response(status=400)
        if not verifier.is_valid(body=body, timestamp=stamp or None, signature=signature or None):
            return web.Response(status=401)
        if not _json_object(body, request.content_type):
            return web.Response(status=400)
        if not seen.add((signature, stamp)):
            return web.Response(status=200)  # answered once already
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    application = web.Application(client_max_size=MAX_BODY)
    application.router.add_post(path, slack_events)
    return application


def _json_object(body: str, content_type: str) -> bool:
    """Is the JSON of Slack's request (the body, or a form's ``payload``, as Bolt reads them) an object?"""
    if content_type != "application/json" and not body.startswith("{"):
        if not (payloads := parse_qs(body).get("payload")):
            return True  # a slash command: plain form fields
        body = payloads[0]
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


async def serve(app: AsyncApp, signing_secret: str, *, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (0: any free port) until ``runner.cleanup()``."""
    runner = web.AppRunner(web_app(app, signing_secret), keepalive_timeout=READ_DEADLINE, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
