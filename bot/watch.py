"""Stories that update themselves: a running bot watches its stories folder and refreshes
the index once the files settle.

The watching is watchfiles' (native change notifications, polling where there are none);
this module only decides when to refresh. The refresh is the usual incremental one
(``Answerer.refresh``): unchanged text is not embedded again, and questions keep being
answered from the live index until the new one is swapped in.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import RefreshInProgress, StoryIndexError
from index.refresh import RefreshReport
from index.sources import SUFFIXES

if TYPE_CHECKING:
    from bot.answer import Answerer

log = logging.getLogger(__name__)

QUIET_MS = 1_000  # refresh once no story file has changed for this long...
MAX_WAIT_MS = 4_000  # ...or this long after the first change of a steady stream
BUSY_RETRY_S = 1.0  # a refresh someone else started may have read the folder before the change


def _story_filter():
    from watchfiles import Change, DefaultFilter

    class StoryFilter(DefaultFilter):
        """Story files (.txt, .md) outside hidden folders, anything deleted (a folder
        removed with its stories reports only the folder), and any folder added: a folder
        moved in with its stories reports only the folder, and the files of one just made
        may be written before it is watched (the refresh reads the whole folder)."""

        def __call__(self, change: Change, path: str) -> bool:
            if not super().__call__(change, path):
                return False
            return (Path(path).suffix.lower() in SUFFIXES or change == Change.deleted
                    or (change == Change.added and Path(path).is_dir()))

    return StoryFilter()


class StoryWatcher:
    """Watches ``folder`` on a daemon thread and calls ``answerer.refresh()`` after changes
    settle. Changes made during a refresh lead to one more refresh after it (coalesced).
    Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, answerer: "Answerer", folder: Path, *, quiet_ms: int = QUIET_MS,
                 max_wait_ms: int = MAX_WAIT_MS):
        self.answerer = answerer
        self.folder = Path(folder)
        self.quiet_ms = quiet_ms
        self.max_wait_ms = max_wait_ms
        self.refreshes = 0  # refreshes this watcher ran (for logs and tests)
        self.last_report: RefreshReport | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "StoryWatcher":
        if not self.folder.is_dir():
            log.warning("not watching %s: the folder does not exist", self.folder)
            return self
        self._thread = threading.Thread(target=self._run, name="storybot-watch", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; waits for a refresh under way to end (up to ``timeout`` s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "StoryWatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        from watchfiles import watch

        # watchfiles logs every batch at INFO; our own line below says the same once
        logging.getLogger("watchfiles").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
        log.info("watching %s for new and changed stories", self.folder)
        try:
            changes_seen = watch(self.folder, watch_filter=_story_filter(), step=self.quiet_ms,
                                 debounce=self.max_wait_ms, stop_event=self._stop, raise_interrupt=False,
                                 rust_timeout=1_000, yield_on_timeout=True)
            for changes in changes_seen:
                self._ready.set()
                if changes and not self._stop.is_set():
                    names = sorted({Path(p).name for _, p in changes})
                    log.info("stories changed (%s): refreshing the index", ", ".join(names[:5]) +
                             (f" and {len(names) - 5} more" if len(names) > 5 else ""))
                    self._refresh()
        except Exception:  # the bot goes on answering; it just stops picking up changes
            log.exception("stopped watching %s", self.folder)
        finally:
            self._ready.set()

    def _refresh(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.answerer.refresh()
            except RefreshInProgress:
                self._stop.wait(BUSY_RETRY_S)
                continue
            except StoryIndexError as exc:
                log.warning("the stories changed but the index was not refreshed: %s", exc)
                return
            except Exception:
                log.exception("the stories changed but the refresh failed")
                return
            self.refreshes += 1
            self.last_report = report
            log.info("refresh after a change: %s", report.summary())
            return
