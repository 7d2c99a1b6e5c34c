"""Error types of the answering core and adapters, and the one place that turns any
exception into a message that is safe to show a user."""
from __future__ import annotations

from index.errors import (  # re-exported: adapters import every error type from here
    DataDirUnusable,
    EmbedderMismatch,
    EmbedderUnavailable,
    NoStories,
    RefreshInProgress,
    StoreLocked,
    StoreUnavailable,
    StoryIndexError,
)


__all__ = [
    "APOLOGY", "AnswerLogDamaged", "ConfigError", "DataDirUnusable", "EmbedderMismatch", "EmbedderUnavailable", "NoStories",
    "RateLimited", "RefreshInProgress", "StoreLocked", "StoreUnavailable", "StoryIndexError",
    "StorybotError", "user_message",
]


class StorybotError(Exception):
    """Base class of the bot's own errors; ``str(err)`` is safe to show a user."""


class AnswerLogDamaged(StorybotError):
    """The answer log file is not a readable SQLite database (the message names the file
    and the fix). Questions are still answered, unlogged; ``report`` and ``forget`` stop."""


class ConfigError(StorybotError):
    """A setting is missing or malformed (the message names the setting, never its value)."""


class RateLimited(StorybotError):
    """The user asked too many questions too fast."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(
            f"You're asking a lot of questions at once. Please wait {max(1, round(retry_after))} s and ask again."
        )


APOLOGY = "Sorry, something went wrong while answering. The problem has been logged; please try again."


def user_message(exc: BaseException) -> str:
    """The message to show a user for ``exc``: its own text for our error types, a short
    apology for anything else (whose trace the caller logs)."""
    if isinstance(exc, (StorybotError, StoryIndexError)):
        return str(exc)
    return APOLOGY
