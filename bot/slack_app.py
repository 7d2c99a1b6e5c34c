"""Slack adapter: ``/ask``, ``/refresh``, mentions, DMs and thread follow-ups over one Answerer.

Thin by design: a handler parses the Slack payload, calls the core
(``answerer.answer(question, context=..., source="slack", user=...)``) and renders the
``Answer`` as Block Kit. One ``build_app`` serves Socket Mode and HTTP mode. When the core
streams an LLM answer (``on_text``), the answer message shows the text as it is written,
updated in place, and the final rendering (with citations) then replaces it.

Deadlines: Slack wants every request acknowledged within 3 s. Each listener is a tiny ack
function plus a *lazy* function that does the slow work on Bolt's worker threads. With
``process_before_response=True`` the ack part runs before the response goes back, in both
modes, so a busy worker pool can delay answers but never acknowledgements.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from slack_bolt import App, BoltRequest
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.recent import Recent
from bot.config import Settings
from bot.errors import ConfigError, RateLimited, RefreshInProgress, user_message
from bot.ratelimit import RateLimiter
from bot.render import citation_label, split_text
from bot.types import Answer, Citation

if TYPE_CHECKING:
    from bot.answer import Answerer

log = logging.getLogger(__name__)

TEXT_LIMIT = 3000  # characters in one section or context text (Slack's limit)
MAX_BLOCKS = 50  # blocks in one message (Slack's limit)
WORKING_EMOJI = "hourglass_flowing_sand"
WRITING = "_writing…_"  # marks a streamed LLM answer whose text is not checked yet
FEEDBACK_BLOCK = "feedback"
VOTE_NOTE_BLOCK = "vote_note"
THREADS_KEPT = 5000  # threads remembered for follow-ups
EVENTS_KEPT = 10000  # event ids remembered to answer Slack's retries once
MAX_BODY = 1 << 20  # Slack's requests are a few kB; refuse anything absurd

LOOKING = "Looking… :mag:"
USAGE = "Ask me about the story, for example: `/ask why did Apple pick Alibaba?`"
CANNOT_POST = ("I can't post in this channel ({error}). If I'm not a member yet, invite me with "
               "`/invite @storybot`, or ask me in a direct message.")
VOTE_LOST = "That answer is no longer in the log, so your vote could not be kept."
REFRESH_REFUSED = "Sorry, only workspace admins and the people listed in SLACK_ADMINS may run /refresh."
REFRESH_RUNNING = "A refresh is already running; its report will follow."
REFRESH_STARTED = ("Refreshing the story index… Answers keep coming from the current index "
                   "until the new one is ready.")
# Ordinary messages from people; edits, joins, bot posts and the like are not questions.
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}


# --- entry points ----------------------------------------------------------------------------


def build_app(answerer: Answerer, settings: Settings, client: WebClient | None = None) -> App:
    """The Bolt app answering with ``answerer``; serve it with Socket Mode or ``http_server``.

    ``client`` defaults to a WebClient with ``SLACK_BOT_TOKEN`` pointed at ``SLACK_API_URL``.
    Building the app calls ``auth.test`` once (Bolt checks the token eagerly).
    """
    app = App(
        client=client or web_client(settings),
        # "" rather than None: given None, Bolt would read SLACK_SIGNING_SECRET from the environment.
        signing_secret=_secret(settings.slack_signing_secret) or "",
        process_before_response=True,
        name="storybot",
    )
    SlackBot(answerer, settings).register(app)
    return app


def web_client(settings: Settings) -> WebClient:
    """A WebClient with the bot token, pointed at ``SLACK_API_URL`` when set (proxies, offline tests)."""
    base_url = (settings.slack_api_url or WebClient.BASE_URL).rstrip("/") + "/"
    return WebClient(token=_secret(settings.slack_bot_token), base_url=base_url)


def check_tokens(settings: Settings, *, http: bool) -> None:
    """Raise ``ConfigError`` naming each missing or malformed Slack setting (never a value).

    Socket Mode needs SLACK_BOT_TOKEN (xoxb-) and SLACK_APP_TOKEN (xapp-); HTTP mode needs
    SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET.
    """
    needed = [("SLACK_BOT_TOKEN", settings.slack_bot_token, "xoxb-"),
              ("SLACK_SIGNING_SECRET", settings.slack_signing_secret, "") if http
              else ("SLACK_APP_TOKEN", settings.slack_app_token, "xapp-")]
    missing = [name for name, value, _ in needed if not _secret(value)]
    malformed = [f"{name} (should start with {prefix})" for name, value, prefix in needed
                 if _secret(value) and not str(_secret(value)).startswith(prefix)]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if malformed:
        problems.append("malformed " + ", ".join(malformed))
    if problems:
        mode = "HTTP mode" if http else "Socket Mode"
        raise ConfigError(f"Slack {mode}: {'; '.join(problems)}. See the Slack section of the README.")


def run_slack(settings: Settings, *, http: bool = False, port: int = 3000, host: str = "127.0.0.1",
              answerer: "Answerer | None" = None) -> None:
    """Run the Slack bot until interrupted: Socket Mode, or HTTP mode on ``host:port``.

    The tokens are checked first (``ConfigError`` naming what is missing); only then is the
    index opened and Slack contacted. A token Slack refuses is a ``ConfigError`` naming it too.
    """
    check_tokens(settings, http=http)
    from bot.answer import Answerer  # the index backends: imported only once the tokens look right

    own = answerer is None  # an answerer passed in is the caller's to close
    answerer = Answerer.from_settings(settings) if own else answerer
    try:
        try:
            app = build_app(answerer, settings)
        except BoltError as exc:  # Bolt checks the token with auth.test
            raise ConfigError("Slack refused SLACK_BOT_TOKEN, or could not be reached (auth.test failed); "
                              "check the token and SLACK_API_URL.") from exc
        if http:
            _serve_http(app, host, port)
        else:
            _serve_socket_mode(app, str(_secret(settings.slack_app_token)))
    finally:
        if own:
            answerer.close()


def _serve_http(app: App, host: str, port: int) -> None:
    server = http_server(app, host=host, port=port)
    log.info("Slack HTTP mode: listening on http://%s:%d/slack/events", host, server.server_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _serve_socket_mode(app: App, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    # The handler's web client is app.client, so apps.connections.open honours SLACK_API_URL too.
    handler = SocketModeHandler(app, app_token=app_token)
    try:
        handler.connect()
    except SlackApiError as exc:
        raise ConfigError(f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}).") from exc
    log.info("Slack Socket Mode: connected")
    try:
        threading.Event().wait()  # the handler's threads do the work until Ctrl-C
    finally:
        handler.close()


def http_server(app: App, *, host: str = "127.0.0.1", port: int = 3000,
                path: str = "/slack/events") -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that hands Slack's POSTs on ``path`` to ``app``.

    Events, slash commands and interactivity all use ``path``. The app checks each request's
    signature and timestamp (401 when wrong or stale). Unlike Bolt's development server, which
    listens on every interface, this one binds to ``host``: 127.0.0.1 unless told otherwise,
    behind a TLS proxy that Slack can reach.
    """

    class SlackRequests(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target, _, query = self.path.partition("?")
            raw_length = self.headers.get("Content-Length") or "0"
            if target != path:
                self._reply(404, "")
            elif not raw_length.isdigit():
                self._reply(400, "")
            elif int(raw_length) > MAX_BODY:
                self._reply(413, "")
            else:
                try:
                    body = self.rfile.read(int(raw_length)).decode("utf-8")
                except UnicodeDecodeError:
                    self._reply(400, "")
                    return
                self._dispatch(body, query)

        def _dispatch(self, body: str, query: str) -> None:
            headers: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in self.headers.items()}
            try:
                request = BoltRequest(body=body, query=query, headers=headers)
            except ValueError:  # a body that is not the JSON it claims to be
                self._reply(400, "")
                return
            response = app.dispatch(request)
            self._reply(response.status, response.body, response.headers)

        def _reply(self, status: int, body: str, headers: dict | None = None) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
            self.send_response(status)
            for name, values in (headers or {}).items():
                if name.lower() != "content-length":
                    for value in values:
                        self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("slack http: " + fmt, *args)

    return ThreadingHTTPServer((host, port), SlackRequests)


# --- the handlers ----------------------------------------------------------------------------


class SlackBot:
    """The Slack side of one Answerer: the listeners and the little state they share.

    The state is in memory and bounded: the threads the bot answered in (for follow-ups,
    thread -> its last question) and the event ids already handled (for Slack's retries).
    """

    def __init__(self, answerer: Answerer, settings: Settings):
        self.answerer = answerer
        self.admins = set(settings.slack_admins)
        self.limiter = RateLimiter(*settings.rate_limit)
        self.threads = Recent(THREADS_KEPT)
        self.seen_events = Recent(EVENTS_KEPT)

    def register(self, app: App) -> None:
        """Attach the middleware and listeners to ``app``."""
        app.middleware(self.skip_retries_and_bots)
        app.command("/ask")(ack=_ack_ask, lazy=[self.answer_ask])
        app.command("/refresh")(ack=_ack, lazy=[self.run_refresh])
        app.event("app_mention")(ack=_ack, lazy=[self.answer_event])
        app.event("message", matchers=[self.is_question_message])(ack=_ack, lazy=[self.answer_event])
        # Every other message the bot can see (chatter, edits, joins): acknowledged, ignored.
        app.event("message")(_ack)
        app.action(re.compile(r"^vote_(up|down)$"))(ack=_ack, lazy=[self.record_vote])

    # -- filters, run before the ack --

    def skip_retries_and_bots(self, body: dict, ack: Callable, next_: Callable) -> Any:
        """Middleware: acknowledge, and go no further for, events from bots and repeated events.

        Slack redelivers an event (``X-Slack-Retry-Num`` over HTTP, ``retry_attempt`` in
        Socket Mode) when it thinks the first delivery failed; the event id says whether this
        process already took it.
        """
        if body.get("type") != "event_callback":
            return next_()
        event, event_id = body.get("event") or {}, body.get("event_id")
        if event.get("bot_id") or event.get("subtype") == "bot_message":
            return ack()
        if event_id and not self.seen_events.add(event_id):
            log.info("Slack event %s was already taken: acknowledging the retry only", event_id)
            return ack()
        return next_()

    def is_question_message(self, event: dict, context: Any) -> bool:
        """A DM to the bot, or a reply in a thread the bot answered in that does not mention it
        (the ``app_mention`` event answers those)."""
        if event.get("subtype") not in PERSON_SUBTYPES or not event.get("user"):
            return False
        if event.get("channel_type") == "im":
            return True
        thread = event.get("thread_ts")
        return (bool(thread) and f"<@{context.bot_user_id}>" not in event.get("text", "")
                and self.threads.get((event["channel"], thread)) is not None)

    # -- the slow work, after the ack --

    def answer_event(self, event: dict, client: WebClient, context: Any) -> None:
        """Answer a mention, a DM or a thread follow-up in the thread of the asking message,
        with an hourglass on that message meanwhile."""
        channel, user, ts = event["channel"], event["user"], event["ts"]
        thread = event.get("thread_ts") or ts
        question = _clean_question(event.get("text", ""), context.bot_user_id)

        reply = _Reply(client, channel, thread)

        def note(text: str) -> None:
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread, text=text)

        def apologize(text: str) -> None:
            reply.send([{"text": text}])

        if self._rate_limited(user, note):
            return
        with _apology_on_error(apologize, "answering a Slack message"), _working_sign(client, channel, ts):
            reply.send(render_answer(self._ask(question, (channel, thread), user, reply)))

    def answer_ask(self, command: dict, client: WebClient, respond: Callable) -> None:
        """Answer ``/ask``: the question goes into the channel with an hourglass, and that
        status message is then updated in place with the answer (its thread takes follow-ups)."""
        question = _clean_question(command.get("text", ""))
        user, channel = command["user_id"], command["channel_id"]

        def note(text: str) -> None:
            respond(text=text, response_type="ephemeral")

        if not question or self._rate_limited(user, note):
            return  # an empty /ask got its usage with the ack
        try:
            status = client.chat_postMessage(
                channel=channel, text=f"<@{user}> asked: {escape(question)} :{WORKING_EMOJI}:")["ts"]
        except SlackApiError as exc:
            log.warning("Slack: cannot post in channel %s: %s", channel, exc.response.get("error"))
            note(CANNOT_POST.format(error=exc.response.get("error")))
            return

        reply = _Reply(client, channel, status, ts=status, asked_by=user, question=question)

        def apologize(text: str) -> None:
            reply.send([{"text": text}])

        with _apology_on_error(apologize, "answering /ask"):
            reply.send(render_answer(self._ask(question, (channel, status), user, reply), asked_by=user))

    def run_refresh(self, command: dict, client: WebClient, respond: Callable) -> None:
        """Run ``/refresh`` for admins; everyone hears back in ephemeral messages."""

        def note(text: str) -> None:
            respond(text=text, response_type="ephemeral")

        with _apology_on_error(note, "/refresh"):
            if not self._is_admin(client, command["user_id"]):
                note(REFRESH_REFUSED)
            elif self.answerer.refreshing:
                note(REFRESH_RUNNING)
            else:
                note(REFRESH_STARTED)
                try:
                    report = self.answerer.refresh()
                except RefreshInProgress:  # another refresh started between the check and now
                    note(REFRESH_RUNNING)
                else:
                    note(report.summary())

    def record_vote(self, body: dict, action: dict, client: WebClient, respond: Callable) -> None:
        """Record a 👍/👎 on the answer log (one per user, changeable) and show it on the message."""
        user, value = body["user"]["id"], 1 if action["action_id"] == "vote_up" else -1

        def note(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        with _apology_on_error(note, "recording a vote"):
            if not self.answerer.vote(int(action["value"]), user, value):
                note(VOTE_LOST)
                return
            message = body["message"]
            client.chat_update(channel=body["channel"]["id"], ts=message["ts"], text=message.get("text", ""),
                               blocks=_with_vote_note(message.get("blocks", []), user, value))

    # -- helpers --

    def _ask(self, question: str, thread: tuple[str, str], user: str, reply: _Reply) -> Answer:
        """Ask the core, with the thread's previous question as context (the core uses it when
        the new question is short), and remember this thread for follow-ups. A streamed LLM
        answer is shown in ``reply`` while it is being written.

        The thread is remembered before the answer is posted (or first shown, when
        streamed), so a follow-up sent as soon as the answer shows up is recognised."""
        context = self.threads.get(thread)

        def on_text(text: str) -> None:  # on this worker thread, at most about once a second
            self.threads.put(thread, question)
            reply.show(text)

        answer = self.answerer.answer(question, context=context, source="slack", user=user, on_text=on_text)
        self.threads.put(thread, question)
        return answer

    def _rate_limited(self, user: str, note: Callable[[str], None]) -> bool:
        """True (and a polite note to the user) when ``user`` asks too fast."""
        try:
            self.limiter.check(user)
        except RateLimited as exc:
            note(str(exc))
            return True
        return False

    def _is_admin(self, client: WebClient, user: str) -> bool:
        """Listed in SLACK_ADMINS, or a workspace admin or owner according to ``users.info``."""
        if user in self.admins:
            return True
        profile = client.users_info(user=user)["user"]
        return bool(profile.get("is_admin") or profile.get("is_owner"))


class _Reply:
    """Where one answer goes: its first message in place of ``ts`` when there is one (the
    /ask status message, or the message showing a streamed answer), else posted in
    ``thread``; any further messages posted in ``thread``.

    ``show`` gives the text of an LLM answer still being written: the first call posts
    that message (unless ``ts`` is given), later ones update it in place. The final answer
    then replaces it. Calls come one at a time, from the worker thread answering.
    """

    def __init__(self, client: WebClient, channel: str, thread: str, *, ts: str | None = None,
                 asked_by: str | None = None, question: str = ""):
        self.client, self.channel, self.thread, self.ts = client, channel, thread, ts
        self.asked_by, self.question = asked_by, question
        self.streamed = False

    def show(self, text: str) -> None:
        message = render_provisional(text, asked_by=self.asked_by, question=self.question)
        try:
            if self.ts is None:
                posted = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread, **message)
                self.ts = posted["ts"]
            else:
                self.client.chat_update(channel=self.channel, ts=self.ts, **message)
            self.streamed = True
        except SlackApiError as exc:  # only a glimpse is lost: the final answer still follows
            log.warning("Slack: could not show the answer being written: %s", exc.response.get("error"))

    def send(self, messages: list[dict]) -> None:
        first, *rest = messages
        if self.ts is None:
            self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread, **first)
        else:
            # An update keeps the blocks it is not given: a text-only message (an apology)
            # must clear those of the streamed text.
            cleared: dict[str, Any] = {"blocks": []} if self.streamed else {}
            self.client.chat_update(channel=self.channel, ts=self.ts, **(cleared | first))
        for message in rest:
            self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread, **message)


def _ack(ack: Callable) -> None:
    ack()


def _ack_ask(ack: Callable, command: dict) -> None:
    ack(text=LOOKING if _clean_question(command.get("text", "")) else USAGE)


@contextmanager
def _apology_on_error(apologize: Callable[[str], None], doing: str) -> Iterator[None]:
    """Log the trace of any exception and tell the user a short message instead of staying silent."""
    try:
        yield
    except Exception as exc:
        log.exception("Slack: %s failed", doing)
        apologize(user_message(exc))


@contextmanager
def _working_sign(client: WebClient, channel: str, ts: str) -> Iterator[None]:
    """An hourglass reaction on the asking message while the answer is being made."""
    _react(client.reactions_add, channel, ts)
    try:
        yield
    finally:
        _react(client.reactions_remove, channel, ts)


def _react(call: Callable, channel: str, ts: str) -> None:
    try:
        call(channel=channel, timestamp=ts, name=WORKING_EMOJI)
    except SlackApiError as exc:
        # A missing scope or a reaction already gone must not cost the user the answer.
        log.warning("Slack: %s failed: %s", call.__name__, exc.response.get("error"))


def _clean_question(text: str, bot_user_id: str | None = None) -> str:
    """The question in a Slack text: the bot's own mention removed, Slack's escaping undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def render_answer(answer: Answer, *, asked_by: str | None = None) -> list[dict]:
    """``answer`` as Slack messages, in order, each ``{"text": fallback, "blocks": [...]}``.

    The answer text with its [n] markers goes in section blocks, each citation in context
    blocks (quote, story title, section), after an "asked by" line when ``asked_by`` is a
    user id. Every text stays within 3,000 characters and every message within 50 blocks,
    split at word boundaries; the 👍/👎 buttons close the last message when the answer was
    logged. An abstention is its short text alone: it cites nothing.
    """
    blocks: list[dict] = []
    if asked_by:
        blocks += [_context(p) for p in _pieces(f"<@{asked_by}> asked: {escape(answer.question)}")]
    blocks += [_section(p) for p in _pieces(escape(answer.text))]
    if answer.note:  # e.g. "your question was cut", shown for abstentions too
        blocks += [_context(p) for p in _pieces(escape(answer.note))]
    if not answer.abstained:
        for citation in answer.citations:
            blocks += [_context(p) for p in _pieces(_citation_text(citation))]
    return _pack(blocks, _feedback(answer.answer_id))


def render_provisional(text: str, *, asked_by: str | None = None, question: str = "") -> dict:
    """One message showing the text of an LLM answer still being written (streamed, not
    checked yet): cut at a word to fit, marked as in progress, after an "asked by" line
    when ``asked_by`` is a user id. ``{"text": fallback, "blocks": [...]}``."""
    blocks = [_context(_cut(f"<@{asked_by}> asked: {escape(question)}"))] if asked_by else []
    blocks += [_section(_cut(escape(text))), _context(WRITING)]
    return {"text": _fallback(blocks), "blocks": blocks}


def escape(text: str) -> str:
    """Slack's escaping of &, < and > (so no text can ping @channel or fake a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _pieces(text: str) -> list[str]:
    return split_text(text, TEXT_LIMIT)


def _citation_text(citation: Citation) -> str:
    return f"*[{citation.n}]* “{escape(citation.quote)}”\n{escape(citation_label(citation))}"


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _feedback(answer_id: int | None) -> dict | None:
    if answer_id is None:  # the answer was not logged: there is nothing to vote on
        return None

    def button(action_id: str, label: str) -> dict:
        return {"type": "button", "action_id": action_id, "value": str(answer_id),
                "text": {"type": "plain_text", "text": label, "emoji": True}}

    return {"type": "actions", "block_id": FEEDBACK_BLOCK,
            "elements": [button("vote_up", "👍 Helpful"), button("vote_down", "👎 Not helpful")]}


def _pack(blocks: list[dict], feedback: dict | None) -> list[dict]:
    groups = [blocks[i:i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)] or [[]]
    if feedback:
        # The last message also carries the buttons and, once someone votes, the vote note.
        last, room = groups.pop(), MAX_BLOCKS - 2
        groups += [last[:room]] + ([last[room:]] if len(last) > room else [])
        groups[-1].append(feedback)
    return [{"text": _fallback(group), "blocks": group} for group in groups]


def _fallback(blocks: list[dict]) -> str:
    """The plain ``text`` of a message, for notifications: its texts, cut short at a word."""
    texts = [block["text"]["text"] if block["type"] == "section" else block["elements"][0]["text"]
             for block in blocks if block["type"] in ("section", "context")]
    return _cut("\n".join(texts))


def _cut(text: str) -> str:
    """``text`` within one block's limit: cut at a word, with "…" when cut."""
    pieces = split_text(text, TEXT_LIMIT - 1) or [""]
    return pieces[0] + ("…" if len(pieces) > 1 else "")


def _with_vote_note(blocks: list[dict], user: str, value: int) -> list[dict]:
    """The message's blocks with a note that ``user``'s vote was taken (the buttons stay: a
    vote can be changed, and others can vote)."""
    note = _context(f"Thanks <@{user}>, your {'👍' if value > 0 else '👎'} is recorded.")
    note["block_id"] = VOTE_NOTE_BLOCK
    return [block for block in blocks if block.get("block_id") != VOTE_NOTE_BLOCK] + [note]
