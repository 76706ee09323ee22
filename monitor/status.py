"""The status HTTP endpoint: GET /healthz for probes, GET /metrics for Prometheus.

Only the standard library serves it, in a daemon thread beside the asyncio loop. It reads
in-memory state only (the metrics registry and a health callable), never the database, so a
scrape cannot slow down or lock out a poll.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.metrics import Metrics

log = logging.getLogger("monitor")

Health = Callable[[], tuple[bool, str]]

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_FORMAT_HINT = "write HOST:PORT, such as 127.0.0.1:9464, or [IPv6]:PORT, such as [::1]:9464"


class StatusServerError(MonitorError):
    """The status endpoint cannot listen on its address (in use, not a local address, no permission)."""


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); ValueError saying what is wrong otherwise.
    Port 0 means any free port."""
    if "/" in address:
        raise ValueError(f"{address!r}: write only HOST:PORT, without a scheme or path; {_FORMAT_HINT}")
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise ValueError(f"{address!r} has no port; {_FORMAT_HINT}")
    if not host:
        raise ValueError(f"{address!r} has no host; {_FORMAT_HINT}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{address!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"{address!r}: put an IPv6 address in brackets; {_FORMAT_HINT}")
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{address!r}: {host!r} is not a host name or IP address; {_FORMAT_HINT}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{address!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(address: str) -> bool:
    """Whether `address` (HOST:PORT) listens only to this machine; ValueError if it is not an address.

    A host name other than `localhost` counts as not loopback: what it resolves to can change.
    """
    host, _ = parse_address(address)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow scraper never holds up stop()

    def __init__(self, address: tuple[str, int], metrics: Metrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, a DNS query that can hang in a
        # container; the name is only used for CGI, which this server does not do.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "monitor"
    sys_version = ""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._healthz()
        elif path == "/metrics":
            self._answer(200, self.server.metrics.render(), self.server.metrics.content_type)
        else:
            self._answer(404, b"not found; try /healthz or /metrics\n", "text/plain; charset=utf-8")

    def _healthz(self) -> None:
        try:
            healthy, reason = self.server.health()
        except Exception:  # a broken check must show as unhealthy, not as a dropped connection
            log.exception("status: the health check failed")
            healthy, reason = False, "the health check failed (see the log)"
        text = f"ok: {reason}\n" if healthy else f"unhealthy: {reason}\n"
        self._answer(200 if healthy else 503, text.encode("utf-8"), "text/plain; charset=utf-8")

    def _not_allowed(self) -> None:
        self._answer(405, b"method not allowed; use GET\n", "text/plain; charset=utf-8", allow="GET")

    # http.server finds a method's handler by this naming scheme.
    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def _answer(self, status: int, body: bytes, content_type: str, allow: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Not to stderr, as http.server does: every scrape would add a line to the log.
        log.debug("status: %s %s", self.address_string(), format % args)


class StatusServer:
    """Serves /healthz and /metrics on `address` (HOST:PORT or [IPv6]:PORT; port 0 = any free port)."""

    def __init__(self, address: str, metrics: Metrics, health: Health) -> None:
        self._address = address
        self._host, self._port = parse_address(address)
        self._metrics = metrics
        self._health = health
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen and serve in a daemon thread; StatusServerError if the address cannot be bound."""
        if self._httpd is not None:
            raise RuntimeError("the status server is already running")
        server_class = _Server6 if ":" in self._host else _Server
        try:
            httpd = server_class((self._host, self._port), self._metrics, self._health)
        except OSError as e:
            reason = e.strerror or str(e)
            raise StatusServerError(f"cannot listen on {self._address}: {reason}") from e
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="monitor-status", daemon=True)
        self._thread.start()
        log.debug("status: listening on %s", self.url)

    @property
    def url(self) -> str:
        """Where it listens, such as http://127.0.0.1:9464 (the real port when 0 was asked for)."""
        if self._httpd is None:
            raise RuntimeError("the status server is not running")
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket; does nothing if it is not running."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
