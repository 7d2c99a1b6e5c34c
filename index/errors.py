"""Error types of the story index. Every message is safe to show to a user: no paths to
secrets, no tokens, no stack traces."""
from __future__ import annotations


class StoryIndexError(Exception):
    """Base class: ``str(err)`` is a short message fit for a chat reply or a CLI error."""


class StoreLocked(StoryIndexError):
    """Another process owns the embedded store."""


class EmbedderMismatch(StoryIndexError):
    """The index was built by another embedding model than the one configured."""


class StoreUnavailable(StoryIndexError):
    """The Chroma server cannot be reached (or answered with an error)."""


class DataDirUnusable(StoryIndexError):
    """The data folder cannot be written (read-only, no permission, full disk) or the
    embedded index is locked by another program. Not corruption: nothing is moved aside;
    the message names the folder and the fix."""


class NoStories(StoryIndexError):
    """The stories folder is missing or holds no readable story."""


class RefreshInProgress(StoryIndexError):
    """A refresh is already running; a second one is not started. ``retry_after``: when it
    runs in another process, the seconds after which trying again can succeed (its lease
    lapses then unless renewed); None when it runs in this one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class EmbedderUnavailable(StoryIndexError):
    """The configured embedding backend cannot be loaded or reached."""
