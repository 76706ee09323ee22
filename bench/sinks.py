"""Sinks for the peers' output: an SMTP server on loopback that counts messages and keeps none.

    with SmtpSink() as sink:
        ...  # point the peer at 127.0.0.1:sink.port
        sink.wait_for(6000)
        print(sink.count)

A benchmark sends thousands of messages through it (rss2email opens one connection per message),
so it only counts: no parsing, no storage, and the server runs on aiosmtpd's own thread.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"


class _CountingHandler:
    """An aiosmtpd handler that accepts every message, counts it and drops its content."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.bytes = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        size = len(envelope.content or b"")
        with self._lock:
            self.count += 1
            self.bytes += size
        return "250 OK"

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.bytes = 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpSink:
    """An SMTP server on 127.0.0.1 at a free port (no auth, no TLS) counting what it receives."""

    def __init__(self) -> None:
        self._handler = _CountingHandler()
        self._controller: Controller | None = None
        self.port = 0

    def start(self) -> SmtpSink:
        # aiosmtpd's Controller cannot bind port 0 (it connects to its own port to check it is
        # up), so a free port is picked first; a lost race with another process is retried.
        error: OSError | None = None
        for _ in range(5):
            port = _free_port()
            controller = Controller(self._handler, hostname=LOOPBACK, port=port, ready_timeout=10)
            try:
                controller.start()
            except OSError as exc:
                error = exc
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start an SMTP sink on {LOOPBACK}: {error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def count(self) -> int:
        """Messages received since the start (or the last `reset`)."""
        return self._handler.count

    @property
    def bytes(self) -> int:
        """Their total size in bytes."""
        return self._handler.bytes

    def reset(self) -> None:
        self._handler.reset()

    def wait_for(self, count: int, timeout: float = 10.0) -> int:
        """Wait until `count` messages have arrived (or `timeout` seconds) and return the count.
        A peer that sends synchronously has delivered everything by the time it exits, so this
        mostly returns at once; it is there for peers that hand mail off asynchronously."""
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count
