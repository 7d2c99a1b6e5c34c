"""A local fake Slack on 127.0.0.1, for the adapter's tests.

- Web API at ``/api/<method>``: records every call (method, params, headers without the
  token, and which kind of token was used) and answers the way Slack does for the methods
  the bot uses; anything else is ``unknown_method``. ``fail`` makes a method fail with an
  error code, ``rate_limit`` refuses its next calls with HTTP 429 and ``Retry-After``.
- ``response_url`` receiver at ``/response/<name>``: records what the bot sends there
  (``fail("response_url", code)``: and answers 404 with the code, as Slack refuses an expired one).
- Socket Mode: ``apps.connections.open`` (app token only) returns the URL of a websocket that
  says ``hello``, then delivers the envelopes a test pushes and records the acks sent back.

Tests wait on conditions with a timeout (``wait_for``), never on sleeps. The module also
builds Slack's payloads and signs HTTP-mode requests the way Slack does.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

BOT_TOKEN = "xoxb-fake-bot-token-0123456789"
APP_TOKEN = "xapp-fake-app-token-9876543210"
SIGNING_SECRET = "fake-signing-secret-abcdef"
TEAM, APP_ID, BOT_USER, BOT_ID = "T0FAKE", "A0FAKE", "UBOT", "BBOT"
WAIT = 10.0  # seconds a test waits for something the bot does before failing


@dataclass(frozen=True)
class Call:
    """One request the bot made: a Web API call, or a post to a response_url."""

    method: str  # "chat.postMessage", ... or "response_url"
    params: dict
    headers: dict  # without Authorization
    token: str | None  # which token authenticated it: "bot", "app", "other" or None
    response: dict = field(default_factory=dict)  # what the fake answered (Web API calls)
    target: str = ""  # the name in the response_url (response_url posts)

    @property
    def blocks(self) -> list[dict]:
        return self.params.get("blocks") or []

    @property
    def text(self) -> str:
        return self.params.get("text") or ""

    def texts(self, block_type: str) -> list[str]:
        """The mrkdwn texts of this message's ``section`` or ``context`` blocks."""
        out = []
        for block in self.blocks:
            if block["type"] == block_type == "section":
                out.append(block["text"]["text"])
            elif block["type"] == block_type == "context":
                out += [element["text"] for element in block["elements"]]
        return out


class FakeSlack:
    """The fake: start it (or use it as a context manager), point the bot at ``api_url``."""

    def __init__(self, users: dict[str, dict] | None = None):
        self.users = users or {}  # user id -> users.info fields (is_admin, is_owner, ...)
        self.calls: list[Call] = []
        self.acks: dict[str, dict] = {}
        self._failures: dict[str, str] = {}
        self._rate_limits: dict[str, int] = {}  # method -> calls still to refuse with HTTP 429
        self._sockets: list[ServerConnection] = []
        self._ts = itertools.count(1)
        self._cond = threading.Condition()
        self._http = _Server(("127.0.0.1", 0), _handler_for(self))
        # slack_sdk's built-in client drops the connection without answering a close frame.
        self._ws = serve(self._serve_socket, "127.0.0.1", 0, ping_interval=None, close_timeout=0.1)
        self._threads = [threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True),
                         threading.Thread(target=self._ws.serve_forever, daemon=True)]

    # -- lifecycle --

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ws.shutdown()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(WAIT)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._http.server_port}/response/{name}"

    def fail(self, method: str, error: str) -> None:
        """Make every later call to ``method`` fail with Slack's ``error`` code (``"response_url"``:
        every later post to a response_url, answered 404 with the code as its body)."""
        self._failures[method] = error

    def rate_limit(self, method: str, times: int = 1) -> None:
        """Refuse the next ``times`` calls to ``method`` as Slack does past a rate limit: HTTP
        429, ``Retry-After: 0`` (seconds) and ``{"ok": false, "error": "ratelimited"}``."""
        with self._cond:
            self._rate_limits[method] = times

    # -- waiting on what the bot did --

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """The first truthy value of ``predicate`` (re-checked on every request the fake gets)."""
        with self._cond:
            value = self._cond.wait_for(predicate, timeout)
        if not value:
            methods = [c.method for c in self.calls]
            raise AssertionError(f"timed out waiting for {what}; calls so far: {methods}")
        return value

    def calls_to(self, method: str, **params: Any) -> list[Call]:
        """The recorded calls to ``method`` whose params include ``params``."""
        with self._cond:
            return [c for c in self.calls
                    if c.method == method and all(c.params.get(k) == v for k, v in params.items())]

    def wait_calls(self, method: str, count: int = 1, timeout: float = WAIT, **params: Any) -> list[Call]:
        """Wait until at least ``count`` calls match (see ``calls_to``); returns them all."""
        return self.wait_for(lambda: len(found := self.calls_to(method, **params)) >= count and found,
                             f"{count} call(s) to {method} with {params}", timeout)

    def responses(self, name: str) -> list[Call]:
        """What the bot posted to ``response_url(name)``, in order."""
        with self._cond:
            return [c for c in self.calls if c.method == "response_url" and c.target == name]

    def wait_responses(self, name: str, count: int = 1) -> list[Call]:
        """Wait until the bot posted ``count`` times to ``response_url(name)``; returns them all."""
        return self.wait_for(lambda: len(found := self.responses(name)) >= count and found,
                             f"{count} post(s) to response_url {name}")

    # -- Socket Mode --

    def push(self, kind: str, payload: dict, *, retry_attempt: int = 0, retry_reason: str = "") -> str:
        """Deliver one envelope (``events_api``, ``slash_commands`` or ``interactive``) to the
        connected client; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                                    "accepts_response_payload": kind != "events_api"}
        if kind == "events_api":
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        socket = self.wait_for(lambda: self._sockets and self._sockets[-1], "a Socket Mode connection")
        socket.send(json.dumps(envelope))
        return envelope_id

    def hang_up(self) -> None:
        """Close the Socket Mode connections from Slack's side, as Slack does when it rotates them."""
        with self._cond:
            sockets = list(self._sockets)
        for socket in sockets:
            socket.close()

    def wait_ack(self, envelope_id: str) -> dict:
        """The ack the client sent for an envelope (``{"envelope_id": ..., "payload": ...}``)."""
        return self.wait_for(lambda: self.acks.get(envelope_id), f"the ack of envelope {envelope_id}")

    def _serve_socket(self, socket: ServerConnection) -> None:
        socket.send(json.dumps({"type": "hello", "num_connections": 1,
                                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                                "connection_info": {"app_id": APP_ID}}))
        with self._cond:
            self._sockets.append(socket)
            self._cond.notify_all()
        try:
            for raw in socket:
                ack = json.loads(raw)
                with self._cond:
                    self.acks[ack["envelope_id"]] = ack
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._sockets.remove(socket)

    # -- the Web API --

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _refuse_over_limit(self, method: str) -> bool:
        with self._cond:
            if self._rate_limits.get(method, 0) <= 0:
                return False
            self._rate_limits[method] -= 1
            return True

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _web_api(self, method: str, params: dict, token: str | None) -> dict:
        if token is None:
            return {"ok": False, "error": "not_authed"}
        if token == "other":
            return {"ok": False, "error": "invalid_auth"}
        if token != ("app" if method == "apps.connections.open" else "bot"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if method in self._failures:
            return {"ok": False, "error": self._failures[method]}
        methods = {"auth.test": self._auth_test, "apps.connections.open": self._apps_connections_open,
                   "chat.postMessage": self._chat_post_message, "chat.update": self._chat_update,
                   "chat.postEphemeral": self._chat_post_ephemeral, "reactions.add": self._reaction,
                   "reactions.remove": self._reaction, "users.info": self._users_info}
        answer = methods.get(method)
        return answer(params) if answer else {"ok": False, "error": "unknown_method"}

    def _auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "storybot",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _apps_connections_open(self, params: dict) -> dict:
        port = self._ws.socket.getsockname()[1]
        return {"ok": True, "url": f"ws://127.0.0.1:{port}/link/?ticket={uuid.uuid4()}"}

    def _chat_post_message(self, params: dict) -> dict:
        ts = self._next_ts()
        message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM,
                   "ts": ts, "text": params.get("text", ""), "blocks": params.get("blocks") or []}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def _chat_update(self, params: dict) -> dict:
        message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": params["ts"],
                   "text": params.get("text", ""), "blocks": params.get("blocks") or []}
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": message["text"],
                "message": message}

    def _chat_post_ephemeral(self, params: dict) -> dict:
        return {"ok": True, "message_ts": self._next_ts()}

    def _reaction(self, params: dict) -> dict:
        return {"ok": True}

    def _users_info(self, params: dict) -> dict:
        user = params.get("user")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        profile = {"id": user, "team_id": TEAM, "name": user.lower(), "deleted": False, "is_bot": False,
                   "is_admin": False, "is_owner": False}
        return {"ok": True, "user": profile | self.users[user]}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A bot stopped mid-request (at a test's end) hangs up: nothing to report.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class FakeSlackHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query))
            params |= _parse_body(self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                                  self.headers.get("Content-Type", ""))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            kind, _, name = url.path.strip("/").partition("/")
            if kind == "response":
                fake._record(Call("response_url", params, headers, None, target=name))
                error = fake._failures.get("response_url")
                self._send(error or "ok", "text/plain", status=404 if error else 200)
            elif kind == "api":
                token = _token_kind(self.headers.get("Authorization"), params.pop("token", None))
                if fake._refuse_over_limit(name):
                    response = {"ok": False, "error": "ratelimited"}
                    fake._record(Call(name, params, headers, token, response))
                    self._send(json.dumps(response), "application/json; charset=utf-8", status=429,
                               headers={"Retry-After": "0"})
                    return
                response = fake._web_api(name, params, token)
                fake._record(Call(name, params, headers, token, response))
                self._send(json.dumps(response), "application/json; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: str, content_type: str, status: int = 200,
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            pass  # the recorded calls say it all

    return FakeSlackHandler


def _parse_body(raw: bytes, content_type: str) -> dict:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        params = json.loads(raw)
    else:
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    # Form-encoded calls carry blocks as a JSON string; decode them like Slack does.
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


def _token_kind(authorization: str | None, form_token: str | None) -> str | None:
    token = (authorization or "").removeprefix("Bearer ").strip() or form_token
    if not token:
        return None
    return {BOT_TOKEN: "bot", APP_TOKEN: "app"}.get(token, "other")


# --- Slack's payloads ------------------------------------------------------------------------


def slash_command(command: str, text: str, *, user: str, response_url: str,
                  channel: str = "C0GENERAL") -> dict:
    """A slash command payload, as Slack sends it (form fields, all strings)."""
    return {"token": "legacy-verification-token", "team_id": TEAM, "team_domain": "fake",
            "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": user.lower(),
            "command": command,
            "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": "1337.42.abcdef"}


def event_callback(event: dict, *, event_id: str) -> dict:
    """The Events API wrapper around one event."""
    return {"token": "legacy-verification-token", "team_id": TEAM, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": 1700000000,
            "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": BOT_USER, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": "4-fake"}


def mention(text: str, *, user: str, ts: str, channel: str = "C0GENERAL",
            thread_ts: str | None = None) -> dict:
    """An ``app_mention`` event: ``text`` after the bot's mention."""
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts,
             "channel": channel, "event_ts": ts, "team": TEAM}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def message(text: str, *, user: str | None, ts: str, channel: str = "C0GENERAL",
            channel_type: str = "channel", thread_ts: str | None = None, **extra: Any) -> dict:
    """A ``message`` event (``channel_type="im"`` for a DM); ``extra`` adds bot_id, subtype, ..."""
    event = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
             "channel_type": channel_type, "event_ts": ts, "team": TEAM}
    return event | ({"thread_ts": thread_ts} if thread_ts else {}) | extra


def block_action(action_id: str, *, user: str, posted: Call, response_url: str) -> dict:
    """A click on a button of a message the bot posted (``posted``: its chat.postMessage or
    chat.update call, whose response holds the message as Slack stores it)."""
    msg = posted.response["message"]
    button = next(e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == action_id)
    return {"type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": APP_ID, "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": msg["ts"], "channel_id": posted.params["channel"],
                          "is_ephemeral": False},
            "trigger_id": "1337.43.abcdef", "team": {"id": TEAM, "domain": "fake"},
            "channel": {"id": posted.params["channel"], "name": "general"}, "message": msg,
            "response_url": response_url,
            "actions": [button | {"block_id": "feedback", "type": "button",
                                 "action_ts": "1700000001.000001"}]}


def http_body(kind: str, payload: dict) -> tuple[str, str]:
    """How Slack encodes a payload over HTTP: (body, content type)."""
    if kind == "events_api":
        return json.dumps(payload), "application/json"
    if kind == "slash_commands":
        return urlencode(payload), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


def signed_headers(body: str, *, secret: str = SIGNING_SECRET,
                   timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature over ``body`` (``timestamp`` defaults to now)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
