"""Logging set-up: plain lines on stderr, and a filter that blanks every secret the
settings hold (tokens, API keys, auth headers) and every credential written inside a URL
(``https://user:pass@host``) out of every record, whatever logged it.

Tracebacks are for developers: they are written only at debug level (``-v`` or
STORYBOT_LOG_LEVEL=debug); otherwise a record's exception shows as one line, its type and
message, after the record's own line."""
from __future__ import annotations

import logging
import re

from pydantic import SecretStr

REDACTED = "***"
# scheme://userinfo@ : the userinfo of any URL, whatever the scheme (http, redis, postgres...)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@")


# Short-lived credentials the chat platforms hand out with each event, which libraries log
# at debug level in URLs and payloads: a Discord interaction's token (15 minutes to post as
# the bot: /interactions/<id>/<token>/callback, /webhooks/<app id>/<token>, "token": "...")
# and a Slack response_url (30 minutes to post in the channel: .../T0123/4567/<secret>).
# JSON in a log line may escape its slashes ("\/").
_PLATFORM_CREDENTIALS = (
    re.compile(r"((?:interactions|webhooks)\\?/\d+\\?/)[\w.-]{20,}"),
    re.compile(r"(\bT[A-Z0-9]{2,}\\?/\d+\\?/)[A-Za-z0-9]{8,}"),
    re.compile(r"""(["']token["']\s*:\s*["'])[^"']{8,}"""),
)


def redact_urls(text: str) -> str:
    """``https://user:pass@host/x`` -> ``https://***@host/x``; a chat platform's short-lived
    credential in a URL or payload (``_PLATFORM_CREDENTIALS``) -> ``***``."""
    for pattern in _PLATFORM_CREDENTIALS:
        text = pattern.sub(rf"\1{REDACTED}", text)
    return _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)


class RedactSecrets(logging.Filter):
    """Replaces each secret value in a record's rendered message (and args) by ***."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return redact_urls(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed log call: let the handler report it as logging does
            return True
        clean = self.redact(msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


class OneLineErrors(logging.Formatter):
    """Writes a record's traceback only when ``debug`` says so; otherwise its last line
    (``ValueError: ...``), so an expected failure stays one readable line in the log."""

    def __init__(self, fmt: str, debug):
        super().__init__(fmt)
        self._debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if self._debug() or not record.exc_text:
            return super().format(record)
        saved = record.exc_info, record.exc_text
        lines = [line for line in record.exc_text.strip().splitlines() if line.strip()]
        record.exc_info, record.exc_text = None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        return f"{text} ({lines[-1].strip()})" if lines else text


def secret_values(settings) -> list[str]:
    out = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            out.append(value.get_secret_value())
    out += list(settings.chroma_header_dict.values())  # each header value on its own, too
    return out


def setup_logging(settings, level: str | None = None, default: str = "WARNING") -> RedactSecrets:
    """Log to stderr with secrets redacted, at ``level``, else STORYBOT_LOG_LEVEL, else
    ``default`` (WARNING for the CLI, INFO for the long-running bots)."""
    redact = RedactSecrets(secret_values(settings))
    handler = logging.StreamHandler()
    root = logging.getLogger()
    handler.setFormatter(OneLineErrors("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                       lambda: root.level <= logging.DEBUG))
    handler.addFilter(redact)
    for h in list(root.handlers):
        if getattr(h, "_storybot", False):
            root.removeHandler(h)
    handler._storybot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel((level or settings.log_level or default).upper())
    # chatty libraries stay at warning unless asked
    for noisy in ("chromadb", "httpx", "httpcore", "urllib3", "discord.gateway", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return redact
