"""A local fake Discord for tests: the REST API and the gateway websocket on 127.0.0.1.

It speaks what discord.py 2.x sends and expects, in Discord's documented JSON shapes (API v10,
ids as snowflake strings):

- REST under ``/api/v10``: ``GET /users/@me``, ``GET /oauth2/applications/@me``, ``PUT``
  application commands (global and guild; a bulk overwrite replaces ``registered[scope]``, and a
  guild the application is not in gets 403 Missing Access), ``POST /interactions/{id}/{token}/callback``,
  (autocomplete results included), interaction webhooks (``POST /webhooks/{app}/{token}``, ``PATCH .../messages/@original``),
  ``POST /channels/{id}/messages`` (and ``PATCH`` of one) and ``POST .../typing``.
  Bot-authenticated routes check the ``Authorization: Bot <token>`` header (401 otherwise).
  A message over Discord's limits (content 2,000 characters; 10 embeds, a description 4,096,
  all embeds 6,000) gets 400 Invalid Form Body (50035), as Discord answers it.
  Any other route is answered 404 and listed in ``unhandled``.
- The gateway at ``/gateway``: HELLO (op 10), heartbeat ACKs (op 11), IDENTIFY (op 2) ->
  READY + GUILD_CREATE, RESUME (op 6) -> RESUMED (or, when ``refuse_resume`` is set, an
  invalid session, op 9), with the zlib-stream transport compression discord.py asks for.
  Tests push dispatch events with :meth:`FakeDiscord.dispatch`; the payload builders
  (:meth:`slash`, :meth:`click`, :meth:`user_message`) make real-shaped events.

Every REST call is recorded in ``calls`` (method, path below ``/api/v10``, query, JSON body, or
the ``payload_json`` part of a multipart body); :meth:`wait_for` waits for one to arrive. Runs
on the test's own event loop::

    fake = FakeDiscord(token=TOKEN)
    await fake.start()        # then point DISCORD_API_BASE / DISCORD_GATEWAY_URL at it
    await fake.dispatch("INTERACTION_CREATE", fake.slash("ask", {"question": "why?"}, user=BOB))
    call = await fake.wait_for(lambda c: c.path.startswith("/webhooks/"))
"""
from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API = "/api/v10"
TIMESTAMP = "2025-03-01T12:00:00.000000+00:00"

BOT_ID = 1100000000000000001
APP_ID = BOT_ID  # a bot user's id is its application's id
GUILD_ID = 1200000000000000001
CHANNEL_ID = 1200000000000000002
THREAD_ID = 1200000000000000003
DM_CHANNEL_ID = 1200000000000000004
BOT_ROLE_ID = 1200000000000000005  # the role Discord makes for a bot when it joins a server

# Permission bits (https://discord.com/developers/docs/topics/permissions).
MANAGE_GUILD = 1 << 5
# A member's usual rights: view channel, send, embed links, read history, use commands, send in threads.
MEMBER = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31) | (1 << 38)
MANAGER = MEMBER | MANAGE_GUILD
EPHEMERAL = 1 << 6

# Discord's message limits (https://discord.com/developers/docs/resources/message).
CONTENT_LIMIT, EMBEDS, DESCRIPTION_LIMIT, EMBED_TOTAL = 2000, 10, 4096, 6000
_BODY: web.RequestKey[Any] = web.RequestKey("body", object)  # the body, parsed once by the recorder
_MESSAGE_TYPES = {"default": 0, "reply": 19, "chat_input_command": 20}
_OPTION_TYPES = {str: 3, bool: 5, int: 4}


def user(user_id: int, name: str, *, bot: bool = False) -> dict:
    """A Discord user object."""
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name.title(),
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0}


BOT_USER = user(BOT_ID, "storybot", bot=True)


def _member(u: dict | None, permissions: int | None = None) -> dict:
    member: dict[str, Any] = {"roles": [], "nick": None, "avatar": None, "joined_at": TIMESTAMP,
                              "deaf": False, "mute": False, "flags": 0, "pending": False}
    if u is not None:
        member["user"] = u
    if permissions is not None:
        member["permissions"] = str(permissions)
    return member


def _text_channel() -> dict:
    return {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general", "position": 0,
            "permission_overwrites": [], "parent_id": None, "topic": None, "nsfw": False,
            "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}


def _thread() -> dict:
    return {"id": str(THREAD_ID), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(CHANNEL_ID),
            "owner_id": str(BOT_ID), "name": "about the story", "last_message_id": None,
            "message_count": 0, "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                "archive_timestamp": TIMESTAMP, "locked": False}}


def _dm_channel(recipient: dict) -> dict:
    return {"id": str(DM_CHANNEL_ID), "type": 1, "last_message_id": None, "recipients": [recipient],
            "flags": 0}


def _guild() -> dict:
    everyone = {"id": str(GUILD_ID), "name": "@everyone", "permissions": str(MEMBER), "position": 0,
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
    # named like the bot, and offered beside it when a member types "@storybot"
    bot_role = {**everyone, "id": str(BOT_ROLE_ID), "name": "storybot", "position": 1, "managed": True,
                "tags": {"bot_id": str(BOT_ID)}}
    return {
        "id": str(GUILD_ID), "name": "Story readers", "icon": None, "owner_id": "1", "region": None,
        "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
        "default_message_notifications": 1, "explicit_content_filter": 0, "roles": [everyone, bot_role],
        "emojis": [], "stickers": [], "features": [], "mfa_level": 0, "application_id": None,
        "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
        "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
        "preferred_locale": "en-US", "public_updates_channel_id": None, "nsfw_level": 0,
        "premium_progress_bar_enabled": False, "joined_at": TIMESTAMP, "large": False,
        "unavailable": False, "member_count": 4, "voice_states": [], "presences": [],
        "members": [{**_member(BOT_USER), "roles": [str(BOT_ROLE_ID)]}],
        "channels": [_text_channel()], "threads": [_thread()],
        "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
    }


def _channel_of(channel_id: int, u: dict) -> dict:
    return {CHANNEL_ID: _text_channel, THREAD_ID: _thread}.get(channel_id, lambda: _dm_channel(u))()


@dataclass(frozen=True)
class Call:
    """One REST call the fake received. ``path`` is below ``/api/v10``."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None

    @property
    def flags(self) -> int:
        """The message flags of the body (interaction callbacks keep them under ``data``)."""
        body = self.json or {}
        return int((body.get("data") or body).get("flags") or 0)

    @property
    def content(self) -> str:
        body = self.json or {}
        return (body.get("data") or body).get("content") or ""

    @property
    def embeds(self) -> list[dict]:
        body = self.json or {}
        return (body.get("data") or body).get("embeds") or []

    @property
    def custom_ids(self) -> list[str]:
        body = self.json or {}
        rows = (body.get("data") or body).get("components") or []
        return [c["custom_id"] for row in rows for c in row.get("components", []) if "custom_id" in c]


class _Gateway:
    """One gateway connection: sends JSON, zlib-compressed as a stream when asked."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None):
        self.ws = ws
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None

    async def send(self, payload: dict) -> None:
        raw = json.dumps(payload)
        if self._zlib is None:
            await self.ws.send_str(raw)
        else:  # one shared zlib context per connection, each message ends with a sync flush
            await self.ws.send_bytes(self._zlib.compress(raw.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))


@dataclass
class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1 (see the module docstring)."""

    token: str
    refuse_resume: bool = False
    calls: list[Call] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    identifies: list[dict] = field(default_factory=list)
    resumes: list[dict] = field(default_factory=list)
    connections: list[dict[str, str]] = field(default_factory=list)
    messages: dict[int, dict] = field(default_factory=dict)
    command_ids: dict[str, int] = field(default_factory=dict)
    # the command names registered per scope: None (global) or a guild id; the bot is in GUILD_ID only
    registered: dict[int | None, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1300000000000000001)
        self._changed = asyncio.Condition()  # notified on every recorded call and session change
        self.sessions = 0  # READY payloads sent
        self.live = False  # an identified or resumed session is connected
        self._gateway: _Gateway | None = None
        self._seq = 0
        self._interactions: dict[str, dict] = {}  # token -> INTERACTION_CREATE payload
        self._originals: dict[str, dict] = {}  # token -> original response message
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        hook = "/webhooks/{app_id}/{token}"
        app.add_routes([
            web.get("/gateway", self._gateway_socket),
            web.get(API + "/users/@me", self._me),
            web.get(API + "/oauth2/applications/@me", self._application),
            web.put(API + "/applications/{app_id}/commands", self._commands),
            web.put(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._commands),
            web.post(API + "/interactions/{interaction_id}/{token}/callback", self._callback),
            web.post(API + hook, self._followup),
            web.patch(API + hook + "/messages/@original", self._edit_original),
            web.post(API + "/channels/{channel_id}/messages", self._channel_message),
            web.patch(API + "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            web.post(API + "/channels/{channel_id}/typing", self._typing),
        ])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._gateway is not None:
            await self._gateway.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- what tests use -------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10.0) -> Call:
        """The first recorded call matching ``predicate``, waiting up to ``timeout`` seconds."""
        call = await self._wait(lambda: next((c for c in self.calls if predicate(c)), None), timeout)
        if call is None:
            seen = "\n".join(f"  {c.method} {c.path} {c.json}" for c in self.calls)
            raise AssertionError(f"no matching REST call within {timeout} s; calls so far:\n{seen}")
        return call

    def find(self, method: str, pattern: str) -> list[Call]:
        """Recorded calls with this method whose path fully matches the regex ``pattern``."""
        return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    async def wait_for_session(self, number: int, timeout: float = 10.0) -> None:
        """Wait until session ``number`` (counting from 1) got READY and GUILD_CREATE and is live."""
        if not await self._wait(lambda: self.sessions >= number and self.live, timeout):
            raise AssertionError(f"no live gateway session #{number} within {timeout} s")

    async def wait_until_live(self, timeout: float = 10.0) -> None:
        """Wait for an identified (or resumed) gateway session."""
        if not await self._wait(lambda: self.live, timeout):
            raise AssertionError(f"no live gateway session within {timeout} s")

    async def _wait(self, found: Callable[[], Any], timeout: float) -> Any:
        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(found), timeout)
            except TimeoutError:
                return None

    async def _changes(self, **state: Any) -> None:
        async with self._changed:
            for name, value in state.items():
                setattr(self, name, value)
            self._changed.notify_all()

    async def dispatch(self, event: str, data: dict) -> None:
        """Send one dispatch event (op 0) on the live gateway session."""
        await self.wait_until_live()
        await self._send_dispatch(event, data)

    async def reconnect(self) -> None:
        """Ask the bot to reconnect (op 7), as Discord does before moving a session."""
        await self.wait_until_live()
        assert self._gateway is not None
        await self._changes(live=False)
        await self._gateway.send({"op": 7, "d": None, "s": None, "t": None})

    # --- payload builders ------------------------------------------------------------------

    def slash(self, name: str, options: dict[str, Any] | None = None, *, user: dict,
              permissions: int = MEMBER, channel_id: int = CHANNEL_ID) -> dict:
        """An INTERACTION_CREATE payload for a slash command (``user`` as a guild member,
        or from the DM channel when ``channel_id`` is ``DM_CHANNEL_ID``)."""
        given = [{"name": k, "type": _OPTION_TYPES[type(v)], "value": v} for k, v in (options or {}).items()]
        data = {"id": str(self.command_ids[name]), "name": name, "type": 1, "options": given}
        return self._interaction(2, data, user=user, permissions=permissions, channel_id=channel_id)

    def autocomplete(self, name: str, options: dict[str, Any], focused: str, *, user: dict) -> dict:
        """An INTERACTION_CREATE payload for autocomplete: ``user`` is typing option ``focused``."""
        given = [{"name": k, "type": _OPTION_TYPES[type(v)], "value": v, **({"focused": True} if k == focused else {})}
                 for k, v in options.items()]
        data = {"id": str(self.command_ids[name]), "name": name, "type": 1, "options": given}
        return self._interaction(4, data, user=user, permissions=MEMBER, channel_id=CHANNEL_ID)

    def click(self, message: dict, custom_id: str, *, user: dict) -> dict:
        """An INTERACTION_CREATE payload for a button click on ``message`` (a recorded message)."""
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(3, data, user=user, permissions=MEMBER,
                                    channel_id=int(message["channel_id"]))
        payload["message"] = message
        return payload

    def user_message(self, content: str, *, author: dict, channel_id: int = CHANNEL_ID,
                     mention_bot: bool = False, mention_bot_role: bool = False, reply_to: dict | None = None,
                     ping: bool = True) -> dict:
        """A MESSAGE_CREATE payload from ``author``; in the DM channel when ``channel_id`` is
        ``DM_CHANNEL_ID``. ``mention_bot`` prefixes ``<@bot>``; ``mention_bot_role`` prefixes the
        bot's role, ``<@&role>`` (what a member gets who picks the role when typing "@storybot");
        ``reply_to`` makes it a reply in that message's channel (which lists the replied-to
        author in ``mentions`` unless the user turned the reply's ``ping`` off)."""
        if reply_to is not None:
            channel_id = int(reply_to["channel_id"])
        guild = channel_id != DM_CHANNEL_ID
        mentions = []
        if mention_bot:
            content = f"<@{BOT_ID}> {content}"
            mentions.append(BOT_USER)
        if mention_bot_role:
            content = f"<@&{BOT_ROLE_ID}> {content}"
        message = self._message(channel_id, {"content": content}, author=author,
                                kind="reply" if reply_to else "default")
        message["mention_roles"] = [str(BOT_ROLE_ID)] if mention_bot_role else []
        if reply_to is not None:
            message["message_reference"] = {"type": 0, "message_id": reply_to["id"],
                                            "channel_id": reply_to["channel_id"],
                                            **({"guild_id": str(GUILD_ID)} if guild else {})}
            message["referenced_message"] = reply_to
            if ping and reply_to["author"]["id"] not in {m["id"] for m in mentions}:
                mentions.append(reply_to["author"])
        message["mentions"] = mentions
        if guild:
            message["guild_id"] = str(GUILD_ID)
            message["member"] = _member(None)
        return message

    def _interaction(self, kind: int, data: dict, *, user: dict, permissions: int, channel_id: int) -> dict:
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(next(self._ids)), "application_id": str(APP_ID), "type": kind,
            "data": data, "token": token, "version": 1, "channel_id": str(channel_id),
            "channel": _channel_of(channel_id, user), "app_permissions": str(MEMBER), "locale": "en-US",
            "entitlements": [], "attachment_size_limit": 10485760,
        }
        if channel_id == DM_CHANNEL_ID:
            payload.update(user=user, context=1, authorizing_integration_owners={"1": user["id"]})
        else:
            payload.update(guild_id=str(GUILD_ID), member=_member(user, permissions), context=0,
                           guild_locale="en-US", authorizing_integration_owners={"0": str(GUILD_ID)},
                           guild={"id": str(GUILD_ID), "locale": "en-US", "features": []})
        self._interactions[token] = payload
        return payload

    def _message(self, channel_id: int, body: dict, *, author: dict, kind: str = "default") -> dict:
        message: dict[str, Any] = {
            "id": str(next(self._ids)), "channel_id": str(channel_id), "author": author,
            "content": body.get("content") or "", "timestamp": TIMESTAMP, "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": body.get("embeds") or [], "pinned": False,
            "type": _MESSAGE_TYPES[kind], "flags": body.get("flags") or 0,
            "components": body.get("components") or [],
        }
        self.messages[int(message["id"])] = message
        return message

    # --- REST -----------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler):
        if not request.path.startswith(API):
            return await handler(request)
        body = await _body(request)
        call = Call(request.method, request.path[len(API):], dict(request.query), body)
        request[_BODY] = body
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if _needs_bot_auth(call.path) and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        if request.method in ("POST", "PATCH") and (problem := _over_limits(body)):
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": problem}, status=400)
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            self.unhandled.append(f"{call.method} {call.path}")
            return _json({"message": "Unknown route (fake Discord)", "code": 0}, status=404)

    async def _me(self, request: web.Request) -> web.Response:
        return _json({**BOT_USER, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(APP_ID), "name": "storybot", "icon": None, "description": "", "rpc_origins": [],
            "bot_public": True, "bot_require_code_grant": False, "owner": user(1, "owner"), "team": None,
            "verify_key": "0" * 64, "flags": 1 << 19, "summary": "", "interactions_endpoint_url": None,
            "bot": BOT_USER,
        })

    async def _commands(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        if guild_id not in (None, GUILD_ID):
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        self.registered[guild_id] = [command["name"] for command in request[_BODY]]
        scope = {"guild_id": str(guild_id)} if guild_id else {}
        out = []
        for command in request[_BODY]:
            command_id = self.command_ids.setdefault(command["name"], next(self._ids))
            out.append({"type": 1, "options": [], "nsfw": False, "default_member_permissions": None,
                        **command, "id": str(command_id), "application_id": str(APP_ID),
                        "version": str(next(self._ids)), **scope})
        return _json(out)

    async def _callback(self, request: web.Request) -> web.Response:
        body, token = request[_BODY], request.match_info["token"]
        interaction = self._interactions[token]
        if body["type"] == 8:  # autocomplete choices: no message
            return web.Response(status=204)
        flags = int((body.get("data") or {}).get("flags") or 0)
        original = self._message(int(interaction["channel_id"]), body.get("data") or {}, author=BOT_USER,
                                 kind="chat_input_command")
        self._originals[token] = original
        response: dict[str, Any] = {
            "interaction": {"id": interaction["id"], "type": interaction["type"],
                            "response_message_id": original["id"],
                            "response_message_loading": body["type"] == 5,
                            "response_message_ephemeral": bool(flags & EPHEMERAL)},
            "resource": {"type": body["type"]},
        }
        if body["type"] == 4:
            response["resource"]["message"] = original
        return _json(response)

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interactions[request.match_info["token"]]
        message = self._message(int(interaction["channel_id"]), request[_BODY], author=BOT_USER,
                                kind="chat_input_command")
        message.update(webhook_id=str(APP_ID), application_id=str(APP_ID))
        return _json(message)

    async def _edit_original(self, request: web.Request) -> web.Response:
        return _json(_edited(self._originals[request.match_info["token"]], request[_BODY]))

    async def _edit_message(self, request: web.Request) -> web.Response:
        return _json(_edited(self.messages[int(request.match_info["message_id"])], request[_BODY]))

    async def _channel_message(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        message = self._message(int(request.match_info["channel_id"]), body, author=BOT_USER,
                                kind="reply" if body.get("message_reference") else "default")
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        return _json(message)

    async def _typing(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    # --- gateway --------------------------------------------------------------------------

    async def _gateway_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(dict(request.query))
        compress = request.query.get("compress")
        if compress not in (None, "zlib-stream"):
            self.unhandled.append(f"gateway compress={compress}")
            await ws.close(code=4000)
            return ws
        gateway = _Gateway(ws, compress)
        await gateway.send({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await self._on_gateway_message(gateway, json.loads(msg.data))
        if self._gateway is gateway:
            await self._changes(live=False)
        return ws

    async def _on_gateway_message(self, gateway: _Gateway, payload: dict) -> None:
        op, data = payload["op"], payload["d"]
        if op == 1:  # heartbeat
            await gateway.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # identify
            self.identifies.append(data)
            if data["token"] != self.token:
                await gateway.ws.close(code=4004, message=b"Authentication failed.")
                return
            await self._start_session(gateway)
        elif op == 6:  # resume
            self.resumes.append(data)
            if self.refuse_resume:
                await gateway.send({"op": 9, "d": False, "s": None, "t": None})
                return
            self._gateway = gateway
            await self._send_dispatch("RESUMED", {})
            await self._changes(live=True)

    async def _start_session(self, gateway: _Gateway) -> None:
        self._gateway, self._seq = gateway, 0
        await self._send_dispatch("READY", {
            "v": 10, "user": {**BOT_USER, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}], "private_channels": [],
            "relationships": [], "presences": [], "session_id": secrets.token_hex(16),
            "session_type": "normal", "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 1 << 19},
        })
        await self._send_dispatch("GUILD_CREATE", _guild())
        await self._changes(live=True, sessions=self.sessions + 1)

    async def _send_dispatch(self, event: str, data: dict) -> None:
        assert self._gateway is not None
        self._seq += 1
        await self._gateway.send({"op": 0, "t": event, "s": self._seq, "d": data})


def _edited(message: dict, body: dict) -> dict:
    message.update({k: v for k, v in body.items() if k in {"content", "embeds", "components"}},
                   edited_timestamp=TIMESTAMP)
    return message


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: discord.py parses JSON only on that exact header.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def _over_limits(body: Any) -> dict | None:
    """Discord's ``errors`` for a message body (an interaction callback's under ``data``) over
    its limits, or None."""
    if not isinstance(body, dict):
        return None
    message = body.get("data") if isinstance(body.get("data"), dict) else body
    embeds = message.get("embeds") or []
    descriptions = [len(e.get("description") or "") for e in embeds]
    total = sum(descriptions) + sum(len(e.get("title") or "") for e in embeds)
    for field, size, limit in (("content", len(message.get("content") or ""), CONTENT_LIMIT),
                               ("embeds", len(embeds), EMBEDS),
                               ("embeds", max(descriptions, default=0), DESCRIPTION_LIMIT),
                               ("embeds", total, EMBED_TOTAL)):
        if size > limit:
            return {field: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                         "message": f"Must be {limit} or fewer in length."}]}}
    return None


def _needs_bot_auth(path: str) -> bool:
    # Interaction callbacks and webhooks are authorized by the token in their URL.
    return not path.startswith(("/interactions/", "/webhooks/"))


async def _body(request: web.Request) -> Any:
    if request.content_type == "application/json":
        return await request.json()
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        return json.loads(str(form["payload_json"])) if "payload_json" in form else None
    return None
