"""`monitor run` as a user runs it: a real process, a real feed server, signals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.daemon import JOB_DEFAULTS
from tests.conftest import Route, Server, fixture_bytes, write_config

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
poll_interval = "10s"

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
