"""Soak: `monitor run` for ten minutes against 200 changing feeds; memory must stay flat.

Slow, so not part of `make test`; run it with `make soak` (MONITOR_SOAK_SECONDS shortens it).
"""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Server, write_config

pytestmark = pytest.mark.slow

FEEDS = 200
ITEMS = 20
CHANGE_EVERY = 10.0  # seconds: each feed gains an item this often (each at its own moment)
WATCHLISTS = Path(__file__).parent.parent / "watchlists"
SAMPLE_EVERY = 5.0
TITLES = (
    "Gunmen attack border post near Saravan in Sistan-Baluchestan",
    "Markets close higher on tech rally",
    "Chinese envoy visits Islamabad and Tehran to ease tension",
    "Cricket board announces new season schedule",
)


class ChangingFeeds:
    """200 feeds on one loopback server, each gaining an item every CHANGE_EVERY seconds (at its
    own phase), with ETags so an unchanged feed answers 304."""

    def __init__(self) -> None:
        self.requests = 0
        self.started = time.monotonic()
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                feeds.requests += 1
                number = int(self.path.strip("/").split(".")[0])
                tick = int((time.monotonic() - feeds.started + number * CHANGE_EVERY / FEEDS) / CHANGE_EVERY)
                etag = f'"{number}-{tick}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = feeds.body(number, tick)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def body(self, number: int, tick: int) -> bytes:
        items = []
        for serial in range(tick, tick - ITEMS, -1):
            title = f"{TITLES[(number + serial) % len(TITLES)]} ({number}-{serial})"
            summary = "<p>" + " ".join(["Officials said the situation was being assessed."] * 12) + "</p>"
            items.append(
                f"<item><title>{title}</title><guid>n{number}-{serial}</guid>"
                f"<link>https://feed{number}.example/{serial}</link>"
                f"<description><![CDATA[{summary}]]></description></item>"
            )
        channel = f"<channel><title>feed {number}</title>{''.join(items)}</channel>"
        return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()

    def url(self, number: int) -> str:
        return f"http://{LOOPBACK}:{self.httpd.server_address[1]}/{number}.xml"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def changing_feeds() -> Iterator[ChangingFeeds]:
    feeds = ChangingFeeds()
    yield feeds
    feeds.stop()


def resident_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_over_a_long_run(
    tmp_path: Path, changing_feeds: ChangingFeeds, receiver: Server
) -> None:
    seconds = float(os.environ.get("MONITOR_SOAK_SECONDS", "600"))
    feeds = "".join(f'[[feeds]]\nname = "f{n}"\nurl = "{changing_feeds.url(n)}"\n\n' for n in range(FEEDS))
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{WATCHLISTS}"
poll_interval = "5s"
deliver_interval = "5s"
allow_private_networks = true

[channels.hook]
type = "webhook"
url = "{receiver.url("/hook")}"

{feeds}""",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: list[tuple[float, int, int]] = []  # (seconds, RSS kB, feed requests so far)
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            time.sleep(SAMPLE_EVERY)
            assert process.poll() is None, "the daemon exited"
            samples.append((elapsed, resident_kb(process.pid), changing_feeds.requests))
        process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - stopping < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Warm-up (imports, first polls, SQLite's page cache filling) is the first fifth; after it the
    # resident size must not keep growing: the last third stays within 15% (+5 MB) of the middle.
    steady = [s for s in samples if s[0] >= seconds / 5]
    third = max(len(steady) // 3, 1)
    middle = statistics.median(kb for _, kb, _ in steady[third : 2 * third])
    last = max(kb for _, kb, _ in steady[-third:])
    report = ", ".join(f"{t:.0f}s {kb / 1024:.0f}MB" for t, kb, _ in samples[:: max(len(samples) // 12, 1)])
    print(f"\nRSS: {report}; middle median {middle / 1024:.1f} MB, last-third peak {last / 1024:.1f} MB")
    assert last <= middle * 1.15 + 5 * 1024, report
    # Polling went on all along: requests grew in every tenth of the run.
    tenths = [samples[i * len(samples) // 10][2] for i in range(10)] + [samples[-1][2]]
    assert all(b > a for a, b in itertools.pairwise(tenths)), tenths
    assert receiver.posts(), "no alert delivered during the run"
