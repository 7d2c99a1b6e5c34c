"""Slack's HTTP mode: the Bolt app behind Bolt's aiohttp adapter, on aiohttp's web server.

aiohttp serves each connection as a coroutine (so slow clients tie up no thread) and
answers malformed HTTP itself (400) and bodies over ``client_max_size`` (413). Bolt checks
signatures and timestamps (401) and acks within 3 s; the blocking core runs on the event
loop's bounded default thread pool (``asyncio.to_thread``). Added here, and only here:

- deadlines: aiohttp closes a connection that sends no complete request head within its
  ``keepalive_timeout`` (armed at connect, set to ``READ_DEADLINE``), but has no deadline
  for reading a body; ``_slack_events`` gives one;
- 400 for what Bolt would answer with a 500 and a traceback: a non-numeric timestamp, a
  body that is not the JSON object it claims to be (a JSON array, say);
- replays: a signed request seen before (same signature and timestamp) is acknowledged and
  not handled again. The memory is per process: with several replicas behind a load
  balancer, a replay that reaches another replica within Slack's 5-minute window is handled.
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
REPLAYS_KEPT = 10_000  # signatures remembered (Slack refuses timestamps older than 5 minutes)


def web_app(app: AsyncApp, signing_secret: str, path: str = "/slack/events") -> web.Application:
    """The aiohttp application that hands Slack's POSTs on ``path`` to ``app`` (events,
    slash commands and interactivity all use it)."""
    verifier, seen = SignatureVerifier(signing_secret), Recent(REPLAYS_KEPT)

    async def _slack_events(request: web.Request) -> web.StreamResponse:
        try:
            body = (await asyncio.wait_for(request.read(), READ_DEADLINE)).decode("utf-8")
        except TimeoutError:
            return web.Response(status=408)
        except UnicodeDecodeError:
            return web.Response(status=400)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if timestamp and not timestamp.isdigit():
            return web.Response(status=400)
        if not verifier.is_valid(body=body, timestamp=timestamp or None, signature=signature or None):
            return web.Response(status=401)
        if not _json_object(body, request.content_type):
            return web.Response(status=400)
        if not seen.add((signature, timestamp)):
            return web.Response(status=200)  # answered once already
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_application = web.Application(client_max_size=MAX_BODY)
    web_application.router.add_post(path, _slack_events)
    return web_application


def _json_object(body: str, content_type: str) -> bool:
    """Is the JSON Slack sends (the body, or a form's ``payload`` field) an object?"""
    if content_type != "application/json" and not body.startswith("{"):  # as Bolt reads it: a form
        payloads = parse_qs(body).get("payload")
        if not payloads:
            return True  # a slash command: plain form fields
        body = payloads[0]
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


async def serve(app: AsyncApp, signing_secret: str, *, host: str, port: int) -> web.AppRunner:
    """Start serving ``app`` on ``host:port`` (0: any free port); stop with ``runner.cleanup()``."""
    runner = web.AppRunner(web_app(app, signing_secret), keepalive_timeout=READ_DEADLINE, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
