"""`monitor run` as a user runs it: a real process, a real feed server, signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.daemon import JOB_DEFAULTS
from tests.conftest import Route, Server, fixture_bytes, free_port, write_config

WATCHLISTS = Path(__file__).parent.parent / "watchlists"


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_delivers_then_stops_cleanly_on_signal(
    tmp_path: Path, feed_server: Server, receiver: Server, sig: signal.Signals
) -> None:
    """The daemon polls, delivers, and on SIGTERM/SIGINT exits 0 within 10 s with an intact database."""
    feed_server.routes["/frontier.xml"] = Route(fixture_bytes("frontier.xml"), etag='"f"')
    db = tmp_path / "state" / "monitor.db"
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{db}"
watchlists_dir = "{WATCHLISTS}"
allow_private_networks = true
poll_interval = "1s"
jitter = 0

[[feeds]]
name = "frontier"
url = "{feed_server.url("/frontier.xml")}"

[channels.hook]
type = "webhook"
url = "{receiver.url("/hook")}"
""",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: receiver.posts(), timeout=20), "no alert delivered"
        # Polls go on at the feed's one-second interval (answered 304 after the first).
        assert wait_for(lambda: len(feed_server.gets("/frontier.xml")) >= 4, timeout=15)
        started = time.monotonic()
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert elapsed < 10
    assert "stopped" in stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    assert statuses == {"sent": len(receiver.posts())}


def test_job_defaults_never_skip_or_stack_polls() -> None:
    """One instance per job, coalesced catch-up, and no misfire grace limit that would drop a poll."""
    assert JOB_DEFAULTS == {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


def test_edited_watchlists_reach_the_running_pipeline(tmp_path: Path, feed_server: Server) -> None:
    """The daemon's reload job swaps in an edited watchlist; a broken edit leaves the old one running."""
    import asyncio

    from monitor.app import open_runtime
    from monitor.config import load_settings
    from monitor.daemon import Daemon
    from monitor.pipeline import poll_feed

    def feed(*titles: str) -> bytes:
        entries = "".join(
            f"<item><title>{t}</title><link>https://news.example/{t.replace(' ', '-')}</link></item>"
            for t in titles
        )
        return f'<rss version="2.0"><channel><title>f</title>{entries}</channel></rss>'.encode()

    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    watchlist = watchlists / "w.toml"
    watchlist.write_text('name = "W"\nquery = "Saravan"\n', encoding="utf-8")
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "monitor.db"}"
watchlists_dir = "{watchlists}"
allow_private_networks = true

[[feeds]]
name = "f"
url = "{feed_server.url("/f.xml")}"
""",
    )
    settings = load_settings(config)

    async def scenario() -> list[int]:
        matches = []
        async with open_runtime(settings, notifiers={}) as rt:
            daemon = Daemon(rt)
            for step, (query, title) in enumerate(
                [("Zahedan", "Attack in Zahedan"), ("(Zahedan OR", "Second attack in Zahedan")]
            ):
                watchlist.write_text(f'name = "W"\nquery = "{query}"\n', encoding="utf-8")
                os.utime(watchlist, (time.time() + step + 1, time.time() + step + 1))
                await daemon._reload_watchlists()
                feed_server.routes["/f.xml"] = Route(feed(title), etag=f'"{step}"')
                outcome = await poll_feed(rt, settings.feeds[0])
                matches.append(outcome.matches)
        return matches

    assert asyncio.run(scenario()) == [1, 1]


# Reload, status endpoint, storage faults: a real process each time.


class Running:
    """`monitor run` in a subprocess; its stderr (JSON lines, as it is not a terminal) is collected."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(json.loads(line))

    def logged(self, needle: str) -> bool:
        return any(needle in str(line.get("msg")) for line in list(self.lines))

    def stop(self) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)
        self._reader.join(timeout=5)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def feed_config(tmp_path: Path, feeds: dict[str, str], extra: str = "") -> Path:
    blocks = "".join(f'\n[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds.items())
    return write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{WATCHLISTS}"
allow_private_networks = true
poll_interval = "1s"
deliver_interval = "1s"
jitter = 0
{extra}
{blocks}""",
    )


def test_sighup_reloads_a_valid_config_and_keeps_the_old_one_when_invalid(
    tmp_path: Path, feed_server: Server
) -> None:
    feed_server.routes["/a.xml"] = Route(fixture_bytes("frontier.xml"), etag='"a"')
    feed_server.routes["/b.xml"] = Route(fixture_bytes("wire.atom"), etag='"b"')
    config = feed_config(tmp_path, {"a": feed_server.url("/a.xml")})
    daemon = Running(config)
    try:
        assert wait_for(lambda: feed_server.gets("/a.xml"), timeout=15)
        # A valid edit: a second feed. It is polled after SIGHUP, without a restart.
        feed_config(tmp_path, {"a": feed_server.url("/a.xml"), "b": feed_server.url("/b.xml")})
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(feed_server.gets("/b.xml")) >= 2, timeout=15), "new feed not polled"
        assert wait_for(lambda: daemon.logged("config reloaded: 2 feeds"), timeout=5)
        # An invalid edit: logged, and both feeds keep being polled as before.
        config.write_text("[defaults\npoll_interval = ", encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: daemon.logged("config reload failed"), timeout=10)
        polls = len(feed_server.gets("/a.xml")), len(feed_server.gets("/b.xml"))
        assert wait_for(
            lambda: (
                len(feed_server.gets("/a.xml")) >= polls[0] + 2
                and len(feed_server.gets("/b.xml")) >= polls[1] + 2
            ),
            timeout=15,
        ), "polling stopped after an invalid config"
        # Removing a feed stops its polls.
        feed_config(tmp_path, {"b": feed_server.url("/b.xml")})
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: daemon.logged("config reloaded: 1 feeds"), timeout=10)
        time.sleep(1.5)  # a poll of a that had already started may still land
        removed = len(feed_server.gets("/a.xml"))
        time.sleep(3)
        assert len(feed_server.gets("/a.xml")) == removed
        assert daemon.stop() < 10
    finally:
        daemon.kill()
    assert daemon.process.returncode == 0
    assert daemon.logged("TOML syntax error")


def test_status_endpoint_serves_health_and_prometheus_metrics(tmp_path: Path, feed_server: Server) -> None:
    feed_server.routes["/a.xml"] = Route(fixture_bytes("frontier.xml"), etag='"a"')
    feed_server.routes["/down.xml"] = Route(b"no", status=500)
    port = free_port()
    config = feed_config(
        tmp_path,
        {"a": feed_server.url("/a.xml"), "down": feed_server.url("/down.xml")},
        extra=f'status_address = "127.0.0.1:{port}"',
    )
    daemon = Running(config)
    try:
        assert wait_for(lambda: len(feed_server.gets("/a.xml")) >= 2 and feed_server.gets("/down.xml"), 15)
        assert wait_for(lambda: daemon.logged("cycle: "), timeout=10)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", timeout=5)
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert daemon.stop() < 10
    finally:
        daemon.kill()
    assert health.status_code == 200, health.text
    assert health.text.startswith("ok: ")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.text)
        for s in family.samples
    }
    assert samples[("monitor_feed_polls_total", (("feed", "a"), ("status", "ok")))] == 1
    assert samples[("monitor_feed_polls_total", (("feed", "a"), ("status", "not_modified")))] >= 1
    assert samples[("monitor_feed_failures_total", (("feed", "down"),))] >= 1
    assert samples[("monitor_feed_backoff_seconds", (("feed", "down"),))] > 0
    assert samples[("monitor_items_new_total", (("feed", "a"),))] >= 1
    assert samples[("monitor_watchlist_matches_total", (("watchlist", "sistan-baluchestan"),))] >= 1


def test_a_damaged_database_keeps_the_daemon_up_and_reporting_until_stopped(tmp_path: Path) -> None:
    """No crash loop: the daemon names the file and the recovery step, retries, and stops on SIGTERM."""
    db = tmp_path / "state" / "monitor.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database " * 500)
    config = feed_config(tmp_path, {"a": "https://feeds.example/a.xml"})
    daemon = Running(config)
    try:
        assert wait_for(lambda: daemon.logged("damaged"), timeout=15)
        time.sleep(1)
        assert daemon.process.poll() is None  # still running, not exiting to be restarted
        assert daemon.stop() < 10
    finally:
        daemon.kill()
    assert daemon.process.returncode == 0
    (error,) = [line for line in daemon.lines if "damaged" in str(line["msg"])]
    assert str(db) in str(error["msg"])
    assert "mv " in str(error["msg"])
