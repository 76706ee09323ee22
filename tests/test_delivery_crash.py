"""At-least-once delivery across a crash: `monitor run` killed with SIGKILL while it is POSTing
alerts to a slow webhook, then started again on the same database.

Promised (README, Delivery): every alert arrives; a crash between send and mark-sent causes at
most one repeat, with the same id; once the daemon is done, the outbox holds every alert as sent.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Route, Server, write_config

ITEMS = 30
POST_DELAY = 0.25  # seconds the receiver takes to answer each POST: 30 alerts take ~7.5 s
KILL_AFTER = 6  # alerts received before the first daemon is killed (of ITEMS)

# Made-up words, two per item and none shared, so no two items are grouped into one story.
SYLLABLES = ("ba", "de", "fi", "go", "ku", "la", "me", "no", "pi", "ru")


def nonce(n: int) -> str:
    return SYLLABLES[n // 10 % 10] + SYLLABLES[n % 10] + "vin"


@dataclass
class Post:
    webhook_id: str | None
    payload: dict[str, Any]
    run: int  # which daemon process sent it: 1 (killed) or 2 (restarted)
    at: float


@dataclass
class SlowReceiver:
    """A webhook receiver on loopback that records each POST as soon as its body is read, then
    waits `delay` seconds before answering 200, so a sender is nearly always mid-request."""

    delay: float
    posts: list[Post] = field(default_factory=list)
    run: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    def start(self) -> SlowReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.posts.append(
                        Post(self.headers.get("webhook-id"), json.loads(body), receiver.run, time.monotonic())
                    )
                time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender was killed while we waited

        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def url(self, path: str) -> str:
        assert self._httpd is not None
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}{path}"

    def snapshot(self) -> list[Post]:
        with self._lock:
            return list(self.posts)

    def next_run(self) -> None:
        with self._lock:
            self.run += 1


@pytest.fixture
def slow_receiver() -> Iterator[SlowReceiver]:
    receiver = SlowReceiver(POST_DELAY).start()
    yield receiver
    receiver.stop()


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def rss(count: int) -> tuple[bytes, dict[str, str]]:
    """A feed of `count` items that each match the watchlist, and each item's link by guid."""
    now = datetime.now(UTC)
    entries, links = [], {}
    for n in range(count):
        first, second = nonce(2 * n), nonce(2 * n + 1)
        link = f"https://news.example/zahedan/{first}-{second}"
        links[f"crash-{n}"] = link
        published = format_datetime(now - timedelta(minutes=n), usegmt=True)
        entries.append(
            f"<item><title>Zahedan notice about {first}</title><link>{link}</link>"
            f'<guid isPermaLink="false">crash-{n}</guid><pubDate>{published}</pubDate>'
            f"<description>A report on {second}.</description></item>"
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Crash wire</title>'
        f"<link>https://news.example/</link><description>test</description>{''.join(entries)}"
        "</channel></rss>"
    )
    return body.encode(), links


def outbox_statuses(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    finally:
        conn.close()


def test_a_killed_daemon_delivers_every_alert_at_least_once_and_at_most_twice(
    tmp_path: Path, feed_server: Server, slow_receiver: SlowReceiver
) -> None:
    body, links = rss(ITEMS)
    feed_server.routes["/wire.xml"] = Route(body, etag='"crash-1"')
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    (watchlists / "zahedan.toml").write_text('name = "Zahedan"\nquery = "Zahedan"\n', encoding="utf-8")
    db = tmp_path / "state" / "monitor.db"
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{db}"
watchlists_dir = "{watchlists}"
allow_private_networks = true
poll_interval = "10s"
deliver_interval = "1s"
timeout = "5s"

[[feeds]]
name = "crash-wire"
url = "{feed_server.url("/wire.xml")}"

[channels.hook]
type = "webhook"
url = "{slow_receiver.url("/hook")}"
""",
    )
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}

    def start(run: int) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"run{run}.log").open("wb")
        with log:
            return subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def logs() -> str:
        return "\n".join(
            f"--- run{n}.log ---\n" + (tmp_path / f"run{n}.log").read_text(errors="replace")[-3000:]
            for n in (1, 2)
            if (tmp_path / f"run{n}.log").exists()
        )

    def distinct() -> set[str | None]:
        return {p.webhook_id for p in slow_receiver.snapshot()}

    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Run 1: killed mid-delivery, with some alerts received and the rest still queued.
        processes.append(start(1))
        assert wait_for(lambda: len(slow_receiver.snapshot()) >= KILL_AFTER, timeout=20), (
            f"only {len(slow_receiver.snapshot())} alert(s) arrived before the deadline\n{logs()}"
        )
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=10)
        time.sleep(0.3)  # a POST whose body was sent just before the kill is recorded as run 1
        slow_receiver.next_run()
        before_kill = slow_receiver.snapshot()
        assert 0 < len({p.webhook_id for p in before_kill}) < ITEMS, "the kill did not land mid-delivery"

        # Run 2: the same database; everything still owed goes out.
        processes.append(start(2))
        assert wait_for(lambda: len(distinct()) >= ITEMS, timeout=60), (
            f"{len(distinct())} of {ITEMS} alerts arrived after the restart\n{logs()}"
        )
        assert wait_for(lambda: outbox_statuses(db) == {"sent": ITEMS}, timeout=15), (
            f"outbox: {outbox_statuses(db)}\n{logs()}"
        )
        time.sleep(1.5)  # longer than deliver_interval: a stray resend would show up now
        processes[1].send_signal(signal.SIGTERM)
        assert processes[1].wait(timeout=15) == 0, logs()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    posts = slow_receiver.snapshot()
    copies = Counter(p.webhook_id for p in posts)
    by_link = {p.payload["item"]["link"] for p in posts}

    assert None not in copies, "a POST without a webhook-id header"
    assert by_link == set(links.values()), "alerts of some items never arrived (or unexpected ones did)"
    assert len(copies) == ITEMS  # one alert per matching item: distinct ids = items
    assert max(copies.values()) <= 2, {i: n for i, n in copies.items() if n > 2}
    for post in posts:
        assert post.payload["id"] == post.webhook_id
    for webhook_id, n in copies.items():
        if n == 2:
            first, again = (p for p in posts if p.webhook_id == webhook_id)
            # A repeat is the same alert: same id in header and body, same item and watchlist,
            # first sent by the killed process and again by its successor.
            assert (first.run, again.run) == (1, 2), (webhook_id, first.run, again.run)
            assert again.payload["item"] == first.payload["item"]
            assert again.payload["watchlist"] == first.payload["watchlist"]
    # Only the crash may cause a repeat: alerts first sent after the restart arrive once.
    sent_before = {p.webhook_id for p in before_kill}
    assert all(n == 1 for i, n in copies.items() if i not in sent_before)

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, status FROM outbox").fetchall()
    finally:
        conn.close()
    assert {status for _, status in rows} == {"sent"}
    assert {i for i, _ in rows} == set(copies)
