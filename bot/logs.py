"""Logging set-up: plain lines on stderr, and a filter that blanks every secret the
settings hold (tokens, API keys, auth headers) out of every record, whatever logged it."""
from __future__ import annotations

import logging

from pydantic import SecretStr

REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replaces each secret value in a record's rendered message (and args) by ***."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            clean = self.redact(msg)
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if clean != msg or record.args:
                record.msg, record.args = clean, None
        return True


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redact)
    root = logging.getLogger()
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
