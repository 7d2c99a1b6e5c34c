"""A real ``chroma run`` server on a free 127.0.0.1 port, for tests and benchmarks.

``ChromaServer`` starts the server that ships with chromadb (its Rust frontend, the same one
``chroma run`` starts) in its own process group, with its data in a temporary folder, waits
for ``/api/v2/heartbeat``, and always kills it: on ``stop()``, on leaving the ``with`` block,
and at interpreter exit. ``kill()`` / ``start()`` simulate a crash and a restart on the same
port and path; ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT) a server that hangs::

    with ChromaServer() as server:
        store = Store.open(embedder, data_dir=tmp, chroma_host=server.host, chroma_port=server.port)

``external_server()`` reads ``STORYBOT_TEST_CHROMA=host:port`` (set by ``.ci/run``, which
starts one server for the whole run) and returns ``(host, port)`` or None.

Run as a script, it starts one server, prints ``host:port`` on one line, and serves until it
gets SIGTERM / SIGINT (then stops the server and deletes its data)::

    python tests/chroma_server.py > chroma.addr & CHROMA_PID=$!
    trap 'kill $CHROMA_PID' EXIT          # whatever happens, the server goes
    STORYBOT_TEST_CHROMA=$(head -1 chroma.addr) python -m pytest
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = 60.0  # seconds to wait for the first heartbeat
ENV_VAR = "STORYBOT_TEST_CHROMA"

# The `chroma` console script is a thin wrapper around this; running it through the current
# interpreter avoids pyenv shims (whose pid is not the server's) and a wrong environment.
_LAUNCH = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"

_live: set["ChromaServer"] = set()


class ChromaStartError(RuntimeError):
    """The Chroma server did not come up; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def heartbeat(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Chroma server answers its heartbeat on host:port."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def external_server() -> tuple[str, int] | None:
    """``STORYBOT_TEST_CHROMA=host:port`` as (host, port), or None when unset."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{ENV_VAR} must look like 127.0.0.1:8000, not {raw!r}")
    return host, int(port)


class ChromaServer:
    """One ``chroma run`` subprocess. Not thread-safe; one owner."""

    def __init__(self, path: str | Path | None = None, port: int | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port or free_port(host)
        self._own_path = path is None
        self.path = Path(path) if path else Path(tempfile.mkdtemp(prefix="storybot-chroma-"))
        self.log_path = self.path.parent / f"{self.path.name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> "ChromaServer":
        """Start (or restart) the server on the same port and path; waits for its heartbeat."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the Chroma server is already running")
        self._close_log()
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "run", "--path", str(self.path / "db"), "--host", self.host,
             "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group: kill() reaches every child
        )
        _live.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if heartbeat(self.host, self.port, timeout=0.5):
                return self
            time.sleep(0.1)
        code = self.proc.poll()
        self.stop()
        raise ChromaStartError(
            f"`chroma run` on {self.address} did not answer its heartbeat within {timeout:.0f} s "
            f"(exit code {code}). Last log lines:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the server (a crash): nothing is flushed or closed politely."""
        self._signal(signal.SIGKILL)
        self._wait()

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        self._wait()
        _live.discard(self)
        self._close_log()

    def cleanup(self) -> None:
        """Stop, then delete the data folder if this object created it."""
        self.stop()
        if self._own_path:
            shutil.rmtree(self.path, ignore_errors=True)
            try:
                self.log_path.unlink()
            except FileNotFoundError:
                pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "ChromaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- internals ------------------------------------------------------------------------
    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the group we created with start_new_session
        except ProcessLookupError:
            pass

    def _wait(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@atexit.register
def _stop_all() -> None:  # a crashed test session must not leave servers behind
    for server in list(_live):
        server.stop()


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Run a throwaway `chroma run` on 127.0.0.1 until terminated.")
    ap.add_argument("--port", type=int, default=None, help="default: a free port")
    args = ap.parse_args()
    server = ChromaServer(port=args.port)
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
        print(server.address, flush=True)
        while not stop and server.proc.poll() is None:
            time.sleep(0.2)
        if server.proc.poll() is not None:
            print(f"the Chroma server exited:\n{server.log_tail()}", file=sys.stderr)
            sys.exit(1)
    except ChromaStartError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
