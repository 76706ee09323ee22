"""Fetch limits against a real hostile HTTP server on loopback: bombs, drips, endless bodies, lies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest

from monitor.config import Defaults, FeedConfig
from monitor.fetch import Fetcher
from monitor.types import FetchResult, FetchStatus, Validators

MiB = 2**20
FEED_BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


class Conn:
    """One accepted connection, as the behaviour under test sees it."""

    def __init__(self, server: Hostile, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self._buffer = b""

    def read_request(self) -> str | None:
        """Read one request head; its path, or None when the client closed or sent nonsense."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > 65536 or self.server.stopping.is_set():
                return None
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return None
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.server.record(line)
        parts = line.split()
        return parts[1] if len(parts) > 1 else None

    def send(self, data: bytes) -> bool:
        """Send all of `data`, counting what the client took; False once the client is gone."""
        view = memoryview(data)
        while view:
            if self.server.stopping.is_set():
                return False
            try:
                n = self.sock.send(view)
            except TimeoutError:
                continue  # the client is not reading: wait, unless the test is over
            except OSError:
                return False
            self.server.count_sent(n)
            view = view[n:]
        return True

    def pause(self, seconds: float) -> bool:
        """Sleep, unless the test ends first; False then."""
        return not self.server.stopping.wait(seconds)

    def hold(self) -> None:
        """Keep the connection open and silent until the test ends."""
        self.server.stopping.wait(60)


Behaviour = Callable[[Conn], None]


class Hostile:
    """A raw TCP server on a loopback address that misbehaves as told. It counts the connections
    it accepted, the request lines it read and the bytes the client took from it."""

    def __init__(self, behave: Behaviour, host: str = "127.0.0.1") -> None:
        self.behave = behave
        self.host = host
        self.connections = 0
        self.requests: list[str] = []
        self.sent = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []

    def url(self, path: str = "/feed.xml", host: str | None = None) -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{host}:{self.port}{path}"

    def record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def count_sent(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def start(self) -> Hostile:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        # A small send buffer keeps the bytes in flight few, so `sent` is close to what was read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.settimeout(0.2)
        # The client hanging up is what a hostile server's client should do.
        with sock, contextlib.suppress(OSError):
            self.behave(Conn(self, sock))


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    servers: list[Hostile] = []

    def start(behave: Behaviour, host: str = "127.0.0.1") -> Hostile:
        server = Hostile(behave, host).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def fetch(url: str, **settings: object) -> tuple[FetchResult, float]:
    """Fetch `url` once with the given defaults; the result and the seconds it took."""
    defaults = Defaults(allow_private_networks=True, **settings)  # type: ignore[arg-type]

    async def run() -> FetchResult:
        async with Fetcher(defaults) as fetcher:
            return await fetcher.fetch(FeedConfig(name="hostile", url=url), Validators())

    started = time.monotonic()
    result = asyncio.run(run())
    return result, time.monotonic() - started


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(body: bytes, **headers: str | int) -> Behaviour:
    def behave(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(head(Content_Length=len(body), **headers) + body)

    return behave


# Compression bombs: memory is measured in a fresh process, so the figure is the fetch's own.

BOMB_SIZE = 512 * MiB


@functools.cache
def bomb(encoding: str) -> bytes:
    """BOMB_SIZE zero bytes under `encoding`, compressed a MiB at a time."""
    zeros = bytes(MiB)
    if encoding == "br":
        br = brotli.Compressor(quality=5)
        return b"".join(br.process(zeros) for _ in range(BOMB_SIZE // MiB)) + br.finish()
    wbits = {"gzip": 31, "deflate": 15, "gzip, gzip": 31}[encoding]
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    data = b"".join(z.compress(zeros) for _ in range(BOMB_SIZE // MiB)) + z.flush()
    if encoding == "gzip, gzip":
        data = zlib.compress(data, wbits=31)
    return data


PROBE = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    from monitor.config import Defaults, FeedConfig
    from monitor.fetch import Fetcher
    from monitor.types import Validators

    def peak_mb():
        # VmHWM (Linux) or ru_maxrss: the most resident memory this process ever used.
        try:
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / 1024 / (1024 if sys.platform == "darwin" else 1)

    async def run():
        async with Fetcher(Defaults(allow_private_networks=True)) as fetcher:
            return await fetcher.fetch(FeedConfig(name="bomb", url=sys.argv[1]), Validators())

    before = peak_mb()
    result = asyncio.run(run())
    print(json.dumps({"status": result.status.value, "error": result.error,
                      "before": before, "peak": peak_mb()}))
    """
)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, gzip"])
def test_a_compression_bomb_is_cut_at_the_cap_with_memory_bounded(hostile, encoding):
    """A body inflating to 512 MB (about 500 KB of gzip or deflate, 1 KB of brotli, 2 KB of
    double gzip) fails at the 10 MiB cap; the fetching process never holds much more than that."""
    body = bomb(encoding)
    assert len(body) < 600_000
    server = hostile(answer(body, Content_Type="application/rss+xml", Content_Encoding=encoding))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, server.url()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    probe = json.loads(done.stdout)
    assert probe["status"] == "failed"
    assert probe["error"] == "body larger than 10485760 bytes (max_feed_bytes); not read further"
    # The cap is 10 MiB; the body is held once while read and once more when handed over.
    assert probe["peak"] < 150, probe
    assert probe["peak"] - probe["before"] < 60, probe


def test_an_endless_chunked_body_is_cut_at_the_cap(hostile):
    """A chunked body that never ends is cut once the decoded bytes pass the cap; the server got
    to send no more than the cap plus what the sockets buffer."""
    chunk = b"x" * 65536

    def endless(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        conn.send(head(Transfer_Encoding="chunked"))
        while conn.server.sent < 512 * MiB and conn.send(b"10000\r\n" + chunk + b"\r\n"):
            pass

    server = hostile(endless)
    result, _ = fetch(server.url(), max_feed_bytes=MiB)
    assert result.status is FetchStatus.FAILED
    assert result.error == "body larger than 1048576 bytes (max_feed_bytes); not read further"
    assert server.sent < MiB + socket_slack(), server.sent


def socket_slack() -> int:
    """The most the kernel may buffer between the two ends of a loopback connection."""
    slack = 8 * MiB
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            slack += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
        except (OSError, IndexError, ValueError):
            slack += 8 * MiB
    return slack


def test_a_content_length_over_the_cap_is_refused_unread(hostile):
    """A declared length over the cap fails before the body is read."""
    server = hostile(answer(b"x" * (2 * MiB)))
    result, _ = fetch(server.url(), max_feed_bytes=MiB)
    assert result.status is FetchStatus.FAILED
    assert result.error == (
        "body of 2097152 bytes (Content-Length) is larger than 1048576 bytes (max_feed_bytes); not read"
    )
    assert server.sent < 2 * MiB


# Time: a whole-fetch deadline, not only per-read timeouts.


@pytest.mark.parametrize("where", ["body", "head"])
def test_a_server_dripping_one_byte_a_second_is_cut_at_the_deadline(hostile, where):
    """Each byte arrives well within the read timeout, yet the fetch ends at fetch_deadline."""
    response = head(Content_Length=len(FEED_BODY)) + FEED_BODY

    def drip(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        start = response.index(b"\r\n\r\n") + 4 if where == "body" else 0
        conn.send(response[:start])
        for i in range(start, len(response)):
            if not (conn.send(response[i : i + 1]) and conn.pause(1)):
                return

    server = hostile(drip)
    result, elapsed = fetch(server.url(), fetch_deadline=2, timeout=10)
    assert result.status is FetchStatus.FAILED
    assert result.error == "no complete response within 2s (fetch_deadline)"
    assert 1.9 <= elapsed < 2 + 3
    assert server.sent < len(response)


def test_a_server_that_never_answers_hits_the_read_timeout(hostile):
    """Accepted, then silence: the per-read timeout ends it when it is shorter than the deadline."""
    server = hostile(lambda conn: conn.hold())
    result, elapsed = fetch(server.url(), timeout=1, fetch_deadline=30)
    assert result.status is FetchStatus.FAILED
    assert result.error == "timed out (ReadTimeout) after 1s; the server is slow or down"
    assert 0.9 <= elapsed < 1 + 3
    assert server.connections == 1


def test_a_server_that_never_answers_hits_the_deadline(hostile):
    """Accepted, then silence: the deadline ends it when it is shorter than the read timeout."""
    server = hostile(lambda conn: conn.hold())
    result, elapsed = fetch(server.url(), timeout=20, fetch_deadline=1)
    assert result.status is FetchStatus.FAILED
    assert result.error == "no complete response within 1s (fetch_deadline)"
    assert 0.9 <= elapsed < 1 + 3


# Redirects


def redirecting(stop_at: int) -> Behaviour:
    """/r0 -> /r1 -> ... -> /r{stop_at}, which serves the feed."""

    def behave(conn: Conn) -> None:
        while (path := conn.read_request()) is not None:
            n = int(path.removeprefix("/r"))
            if n < stop_at:
                conn.send(head("302 Found", Location=f"/r{n + 1}", Content_Length=0))
            else:
                conn.send(head(Content_Length=len(FEED_BODY)) + FEED_BODY)

    return behave


def test_five_redirects_are_followed(hostile):
    """The default allows five hops."""
    server = hostile(redirecting(5))
    result, _ = fetch(server.url("/r0"))
    assert (result.status, result.body, result.url) == (FetchStatus.OK, FEED_BODY, server.url("/r5"))
    assert len(server.requests) == 6


def test_a_sixth_redirect_fails(hostile):
    """More than five redirects fail, and the sixth Location is never asked for."""
    server = hostile(redirecting(1000))
    result, _ = fetch(server.url("/r0"))
    assert result.status is FetchStatus.FAILED
    assert result.error == "more than 5 redirects; check the feed URL"
    assert server.requests == [f"GET /r{i} HTTP/1.1" for i in range(6)]


@pytest.mark.parametrize("body", ["endless", "bomb"])
def test_the_body_of_a_redirect_is_never_read(hostile, body):
    """A 302 whose body never ends, or inflates to 512 MB, is followed at once, its body unread."""
    chunk = b"x" * 65536

    def behave(conn: Conn) -> None:
        path = conn.read_request()
        if path == "/feed.xml":
            conn.send(head(Content_Length=len(FEED_BODY)) + FEED_BODY)
        elif path is not None and body == "endless":
            conn.send(head("302 Found", Location="/feed.xml", Transfer_Encoding="chunked"))
            while conn.server.sent < 512 * MiB and conn.send(b"10000\r\n" + chunk + b"\r\n"):
                pass
        elif path is not None:
            bomb_body = bomb("br")
            headers = {"Location": "/feed.xml", "Content_Encoding": "br", "Content_Length": len(bomb_body)}
            conn.send(head("302 Found", **headers) + bomb_body)

    server = hostile(behave)
    tracemalloc.start()
    try:
        result, elapsed = fetch(server.url("/start"), fetch_deadline=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (result.status, result.body) == (FetchStatus.OK, FEED_BODY)
    assert elapsed < 10  # reading the endless body would have run into the deadline
    assert server.sent < socket_slack(), server.sent
    assert peak < 64 * MiB, peak  # Python's own allocations while fetching: no inflated body


def test_a_redirect_to_a_local_file_is_not_followed(hostile, tmp_path):
    """A Location naming a file:// URL fails; the file is never read."""
    secret = tmp_path / "secret.xml"
    secret.write_bytes(FEED_BODY)

    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head("302 Found", Location=secret.as_uri(), Content_Length=0))

    server = hostile(behave)
    result, _ = fetch(server.url())
    assert result.status is FetchStatus.FAILED
    assert result.body == b""
    assert "UnsupportedProtocol" in (result.error or "")


# Broken framing


def test_an_endless_header_block_fails(hostile):
    """Headers that never end fail once they pass httpcore's 100 KiB limit, not at the deadline."""

    def behave(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Junk: " + b"a" * 1000 + b"\r\n"
        while conn.server.sent < 512 * MiB and conn.send(line * 64):
            pass

    server = hostile(behave)
    result, elapsed = fetch(server.url(), fetch_deadline=30)
    assert result.status is FetchStatus.FAILED
    assert (result.error or "").startswith("connection failed: RemoteProtocolError")
    assert elapsed < 10
    assert server.sent < 100 * 1024 + socket_slack()


def test_a_body_shorter_than_its_content_length_fails(hostile):
    """The server says 1000 bytes, sends 500 and hangs up: FAILED, no partial body."""

    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head(Content_Length=1000) + b"x" * 500)

    server = hostile(behave)
    result, _ = fetch(server.url())
    assert result.status is FetchStatus.FAILED
    assert result.error == (
        "connection failed: RemoteProtocolError: peer closed connection without sending complete "
        "message body (received 500 bytes, expected 1000)"
    )
    assert result.body == b""


def test_a_body_shorter_than_its_content_length_on_an_open_connection_times_out(hostile):
    """The server says 1000 bytes, sends 500 and keeps quiet: the read timeout ends it."""

    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head(Content_Length=1000) + b"x" * 500)
            conn.hold()

    server = hostile(behave)
    result, elapsed = fetch(server.url(), timeout=1)
    assert result.status is FetchStatus.FAILED
    assert result.error == "timed out (ReadTimeout) after 1s; the server is slow or down"
    assert elapsed < 1 + 3


def test_bytes_past_the_content_length_are_not_part_of_the_body(hostile):
    """The body is what Content-Length says; whatever follows it is not read into the feed."""

    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head(Content_Length=len(FEED_BODY)) + FEED_BODY + b"<junk/>" * 10_000)
            conn.hold()

    server = hostile(behave)
    result, elapsed = fetch(server.url(), timeout=5)
    assert (result.status, result.body) == (FetchStatus.OK, FEED_BODY)
    assert elapsed < 5  # complete at the declared length: no wait for the connection to close


def test_a_server_that_answers_garbage_fails(hostile):
    """Bytes that are not HTTP are a FAILED result naming the protocol error."""

    def behave(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\x00\xff" * 1000)

    server = hostile(behave)
    result, _ = fetch(server.url())
    assert result.status is FetchStatus.FAILED
    assert (result.error or "").startswith("connection failed: RemoteProtocolError")
