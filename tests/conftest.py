"""Real loopback servers for integration tests: feeds over HTTP, a webhook receiver, an SMTP server."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

FIXTURES = Path(__file__).parent / "fixtures"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before answering: longer than the client timeout makes a timeout
    headers: dict[str, str] = field(default_factory=dict)  # extra: Location, Retry-After, Cache-Control...


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # one per connection: requests sharing it came over one kept-alive connection


@dataclass
class Server:
    """A ThreadingHTTPServer on loopback; routes and recorded requests are shared with the handler."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    post_status: int = 200
    port: int = 0
    in_flight: int = 0
    most_in_flight: int = 0  # the most GETs answered at once
    _count_lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self, port: int = 0) -> Server:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _record(self) -> Request:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    self.rfile.read(length),
                    self.client_address[1],
                )
                server.requests.append(request)
                return request

            def do_GET(self) -> None:
                with server._count_lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    self._get()
                finally:
                    with server._count_lock:
                        server.in_flight -= 1

            def _get(self) -> None:
                self._record()
                route = server.routes.get(self.path)
                if route is None:
                    self._answer(404, b"not found", "text/plain")
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._answer(304, b"", None, route)
                    return
                if route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified:
                    self._answer(304, b"", None, route)
                    return
                self._answer(route.status, route.body, route.content_type, route)

            def do_POST(self) -> None:
                self._record()
                self._answer(server.post_status, b"ok", "text/plain")

            def _answer(
                self, status: int, body: bytes, content_type: str | None, route: Route | None = None
            ) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                if route and route.etag:
                    self.send_header("ETag", route.etag)
                if route and route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                for name, value in (route.headers if route else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path == path]


@pytest.fixture
def feed_server() -> Iterator[Server]:
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Server]:
    """A webhook receiver that records every POST."""
    server = Server().start()
    yield server
    server.stop()


class MailSink:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"


@dataclass
class Smtp:
    sink: MailSink
    port: int


@pytest.fixture
def smtp_server() -> Iterator[Smtp]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname=LOOPBACK, port=port)
    controller.start()
    yield Smtp(sink, port)
    controller.stop()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def body_text(message: Message) -> str:
    """Every text part of an email, decoded."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)


def posted_json(server: Server) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in server.posts()]


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """Each loading of certificate authorities into a TLS context (ssl), as it happens."""
    loads: list[tuple[object, ...]] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    return loads
