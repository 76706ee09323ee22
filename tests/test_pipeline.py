"""The pipeline end to end against real loopback servers: feeds in, alerts out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from monitor.app import open_runtime
from monitor.config import load_settings
from monitor.notify import build_notifiers
from monitor.pipeline import run_cycle
from monitor.store import Store
from monitor.store.lock import exclusive
from monitor.types import Alert, CycleReport, DeliveryOutcome, FetchStatus
from tests.conftest import (
    Route,
    Server,
    Smtp,
    body_text,
    fixture_bytes,
    free_port,
    posted_json,
    write_config,
)

WATCHLISTS = Path(__file__).parent.parent / "watchlists"
RASK = "Gunmen attack police station in Rask, Sistan-Baluchestan"
RASK_LINK = "https://news.example.com/2023/12/15/rask-police-station-attack"
WANG_YI = "Chinese Foreign Minister Wang Yi meets Pakistani counterpart in Beijing"
WANG_YI_LINK = "https://gulfdesk.example.org/2024/01/20/wang-yi-meets-jilani"
AMBASSADORS = "Iran and Pakistan ambassadors return to their posts"
AMBASSADORS_LINK = "https://wire.example.net/2024/01/26/ambassadors-return"
UNMATCHED = ("Lahore Qalandars win the final in Karachi", "Asian markets close higher on tech rally")


def serve_fixtures(server: Server) -> None:
    server.routes["/frontier.xml"] = Route(fixture_bytes("frontier.xml"), etag='"f-1"')
    server.routes["/gulf-desk.xml"] = Route(
        fixture_bytes("gulf-desk.xml"), last_modified="Sat, 20 Jan 2024 09:00:00 GMT"
    )
    server.routes["/wire.atom"] = Route(
        fixture_bytes("wire.atom"), content_type="application/atom+xml", etag='"w-1"'
    )


def config_text(
    tmp_path: Path,
    feeds: Server,
    *,
    webhook_url: str,
    smtp: Smtp | None = None,
    extra_feeds: str = "",
    timeout: str = "5s",
) -> str:
    email = (
        f"""
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "monitor@example.org"
recipients = ["analyst@example.org"]
"""
        if smtp
        else ""
    )
    return f"""
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{WATCHLISTS}"
allow_private_networks = true
timeout = "{timeout}"

[[feeds]]
name = "frontier"
url = "{feeds.url("/frontier.xml")}"

[[feeds]]
name = "gulf-desk"
url = "{feeds.url("/gulf-desk.xml")}"

[[feeds]]
name = "wire"
url = "{feeds.url("/wire.atom")}"
{extra_feeds}
[channels.hook]
type = "webhook"
url = "{webhook_url}"
{email}"""


def webhook_config(tmp_path: Path, feeds: Server, receiver: Server) -> Path:
    """The three fixture feeds delivering to `receiver` as a webhook."""
    return write_config(
        tmp_path / "config.toml", config_text(tmp_path, feeds, webhook_url=receiver.url("/h"))
    )


def poll_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cycle(config: Path) -> CycleReport:
    async def go() -> CycleReport:
        async with open_runtime(load_settings(config)) as rt:
            return await run_cycle(rt)

    return asyncio.run(go())


def test_a_runtime_loads_the_certificate_authorities_once(
    tmp_path: Path, feed_server: Server, receiver: Server, ca_loads: list[tuple[object, ...]]
) -> None:
    """Feeds and alerts share one TLS context: each load takes tens of milliseconds of a start."""

    async def go() -> None:
        async with open_runtime(load_settings(webhook_config(tmp_path, feed_server, receiver))):
            pass

    asyncio.run(go())
    assert len(ca_loads) == 1


def test_end_to_end_delivers_to_webhook_and_email_then_304s(
    tmp_path: Path, feed_server: Server, receiver: Server, smtp_server: Smtp
) -> None:
    """`monitor poll --once` delivers matched items to a webhook and SMTP; a second poll is all 304s."""
    serve_fixtures(feed_server)
    config = write_config(
        tmp_path / "config.toml",
        config_text(tmp_path, feed_server, webhook_url=receiver.url("/hook"), smtp=smtp_server),
    )

    first = poll_once(config)
    assert first.returncode == 0, first.stderr
    assert "3 ok, 0 not modified, 0 failed" in first.stdout

    payloads = posted_json(receiver)
    titles = {p["item"]["title"] for p in payloads}  # type: ignore[index]
    links = {p["item"]["link"] for p in payloads}  # type: ignore[index]
    assert {RASK, WANG_YI, AMBASSADORS} <= titles
    assert {WANG_YI_LINK, AMBASSADORS_LINK} <= links
    assert not titles & set(UNMATCHED)
    # The Rask story is in two feeds under one canonical link: one alert per watchlist, not two.
    rask = [p for p in payloads if p["item"]["title"] == RASK]  # type: ignore[index]
    assert len(rask) == len({p["watchlist"]["slug"] for p in rask})  # type: ignore[index]
    assert all(r.headers["webhook-id"] for r in receiver.posts())

    assert len(smtp_server.sink.messages) == 1
    mail = smtp_server.sink.messages[0]
    text = body_text(mail)
    for title in (WANG_YI, AMBASSADORS):
        assert title in text
    assert WANG_YI_LINK in text
    assert AMBASSADORS_LINK in text
    assert mail["Subject"].startswith(f"[monitor] {len(payloads)} new:")

    posts_before, requests_before = len(receiver.posts()), len(feed_server.requests)
    second = poll_once(config)
    assert second.returncode == 0, second.stderr
    assert "0 ok, 3 not modified, 0 failed" in second.stdout
    assert "new items: 0" in second.stdout
    assert len(receiver.posts()) == posts_before
    assert len(smtp_server.sink.messages) == 1
    conditional = feed_server.requests[requests_before:]
    by_path = {r.path: r.headers for r in conditional}
    assert by_path["/frontier.xml"]["If-None-Match"] == '"f-1"'
    assert by_path["/wire.atom"]["If-None-Match"] == '"w-1"'
    assert by_path["/gulf-desk.xml"]["If-Modified-Since"] == "Sat, 20 Jan 2024 09:00:00 GMT"


def test_faulty_feeds_fail_alone(tmp_path: Path, feed_server: Server, receiver: Server) -> None:
    """A 500, a timeout and invalid XML are recorded on their feeds; healthy feeds still deliver."""
    serve_fixtures(feed_server)
    feed_server.routes["/error.xml"] = Route(b"oops", status=500, content_type="text/plain")
    feed_server.routes["/slow.xml"] = Route(fixture_bytes("wire.atom"), delay=2.5)
    feed_server.routes["/invalid.xml"] = Route(
        b"<html><body><p>Not a feed at all</body>", content_type="text/html"
    )
    extra = "".join(
        f'\n[[feeds]]\nname = "{name}"\nurl = "{feed_server.url(path)}"\n'
        for name, path in (("error", "/error.xml"), ("slow", "/slow.xml"), ("invalid", "/invalid.xml"))
    )
    config = write_config(
        tmp_path / "config.toml",
        config_text(
            tmp_path, feed_server, webhook_url=receiver.url("/hook"), extra_feeds=extra, timeout="1s"
        ),
    )

    report = cycle(config)

    statuses = {f.feed: f.status for f in report.feeds}
    assert statuses == {
        "frontier": FetchStatus.OK,
        "gulf-desk": FetchStatus.OK,
        "wire": FetchStatus.OK,
        "error": FetchStatus.FAILED,
        "slow": FetchStatus.FAILED,
        "invalid": FetchStatus.FAILED,
    }
    assert {p["item"]["title"] for p in posted_json(receiver)} >= {RASK, WANG_YI, AMBASSADORS}  # type: ignore[index]
    store = Store.open(tmp_path / "state" / "monitor.db")
    rows = {row.name: row for row in store.feeds()}
    store.close()
    assert "HTTP 500" in (rows["error"].last_error or "")
    assert "timed out" in (rows["slow"].last_error or "")
    assert "not an RSS or Atom feed" in (rows["invalid"].last_error or "")
    assert all(rows[n].consecutive_failures == 1 for n in ("error", "slow", "invalid"))
    assert rows["wire"].last_error is None
    assert rows["wire"].consecutive_failures == 0


def test_receiver_down_then_up_delivers_exactly_once(tmp_path: Path, feed_server: Server) -> None:
    """An alert that failed while the receiver was down arrives on the next cycle, once."""
    serve_fixtures(feed_server)
    port = free_port()  # nothing listens here during the first cycle
    receiver = Server()
    config = write_config(
        tmp_path / "config.toml",
        config_text(tmp_path, feed_server, webhook_url=f"http://127.0.0.1:{port}/hook"),
    )

    first = cycle(config)
    assert first.sent == 0
    assert first.pending > 0
    assert first.failed_deliveries == 1  # the rest of a down channel's batch waits, untried

    receiver.start(port)
    try:
        second = cycle(config)
        third = cycle(config)
    finally:
        receiver.stop()

    ids = [r.headers["webhook-id"] for r in receiver.posts()]
    assert len(ids) == first.pending == second.sent
    assert len(set(ids)) == len(ids)
    assert second.pending == 0
    assert third.sent == 0
    assert third.new_items == 0


@pytest.mark.parametrize("status", [500, 503])
def test_receiver_error_keeps_alert_queued(
    tmp_path: Path, feed_server: Server, receiver: Server, status: int
) -> None:
    """A 5xx is temporary: nothing is marked sent, and the rest of the batch waits untried."""
    serve_fixtures(feed_server)
    receiver.post_status = status
    config = webhook_config(tmp_path, feed_server, receiver)

    report = cycle(config)

    assert report.sent == 0
    assert report.pending > 1
    assert len(receiver.posts()) == 1


def rss(*entries: tuple[str, str, str]) -> bytes:
    """An RSS body from (guid, title, link) triples."""
    items = "".join(
        f"<item><guid isPermaLink='false'>{g}</guid><title>{t}</title><link>{link}</link></item>"
        for g, t, link in entries
    )
    return (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>x</title>{items}</channel></rss>".encode()
    )


class Exploding:
    """A notifier that breaks its contract by raising."""

    name = "broken"

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        raise RuntimeError("notifier bug")


def test_a_channel_that_raises_does_not_cost_the_others(
    tmp_path: Path, feed_server: Server, receiver: Server
) -> None:
    """One channel raising leaves its alerts queued; the other channel's sends are recorded as sent."""
    serve_fixtures(feed_server)
    config = webhook_config(tmp_path, feed_server, receiver)
    settings = load_settings(config)

    async def go() -> tuple[CycleReport, dict[str, int]]:
        async with open_runtime(settings) as rt, httpx.AsyncClient() as client:
            hook = build_notifiers(settings, client)["hook"]
            rt.notifiers = {"hook": hook, "broken": Exploding()}
            report = await run_cycle(rt)
            return report, rt.store.outbox_counts()

    report, counts = asyncio.run(go())
    hook_sent = sum(1 for d in report.deliveries if d.channel == "hook" and d.delivered)
    assert hook_sent == len(receiver.posts()) > 0
    assert counts == {"sent": hook_sent, "pending": hook_sent}
    assert all(not d.delivered and d.temporary for d in report.deliveries if d.channel == "broken")


def test_hostile_feed_fails_alone(tmp_path: Path, feed_server: Server, receiver: Server) -> None:
    """A non-ASCII ETag and a lone surrogate in a title never abort the cycle, on any poll."""
    serve_fixtures(feed_server)
    feed_server.routes["/etag.xml"] = Route(
        rss(("e1", "Blast in Zahedan kills two police officers", "https://e.example/1")), etag='"café"'
    )
    feed_server.routes["/surrogate.xml"] = Route(
        rss(("s1", "Bad &#xD800; title", "https://s.example/1")), etag='"s"'
    )
    extra = "".join(
        f'\n[[feeds]]\nname = "{name}"\nurl = "{feed_server.url(path)}"\n'
        for name, path in (("etag", "/etag.xml"), ("surrogate", "/surrogate.xml"))
    )
    config = write_config(
        tmp_path / "config.toml",
        config_text(tmp_path, feed_server, webhook_url=receiver.url("/h"), extra_feeds=extra),
    )

    first, second = cycle(config), cycle(config)

    assert {f.feed for f in first.feeds if f.status is FetchStatus.OK} >= {
        "frontier",
        "gulf-desk",
        "wire",
        "etag",
    }
    assert {f.feed: f.status for f in second.feeds}["etag"] is FetchStatus.OK  # refetched: ETag unusable
    assert len(feed_server.gets("/etag.xml")) == 2
    assert "If-None-Match" not in feed_server.gets("/etag.xml")[1].headers
    assert first.sent > 0


def test_live_blog_entries_on_one_page_each_alert(
    tmp_path: Path, feed_server: Server, receiver: Server
) -> None:
    """Entries linking to #anchors of one page are different stories: each alerts."""
    page = "https://live.example/iran-pakistan-live"
    feed_server.routes["/live.xml"] = Route(
        rss(
            ("p1", "Gunmen attack border post near Saravan", f"{page}#post-1"),
            ("p2", "Second attack reported in Rask police station", f"{page}#post-2"),
        )
    )
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "monitor.db"}"
watchlists_dir = "{WATCHLISTS}"
allow_private_networks = true
[[feeds]]
name = "live"
url = "{feed_server.url("/live.xml")}"
[channels.hook]
type = "webhook"
url = "{receiver.url("/h")}"
""",
    )

    cycle(config)

    links = [
        p["item"]["link"] for p in posted_json(receiver) if p["watchlist"]["slug"] == "sistan-baluchestan"
    ]  # type: ignore[index]
    assert sorted(links) == [f"{page}#post-1", f"{page}#post-2"]


def test_fetches_stay_under_max_concurrency(tmp_path: Path, feed_server: Server, receiver: Server) -> None:
    """No more feeds are fetched at once than max_concurrency allows."""
    body = fixture_bytes("wire.atom")
    extra = ""
    for n in range(6):
        feed_server.routes[f"/slow{n}.xml"] = Route(body, delay=0.3)
        extra += f'\n[[feeds]]\nname = "slow{n}"\nurl = "{feed_server.url(f"/slow{n}.xml")}"\n'
    serve_fixtures(feed_server)
    text = config_text(tmp_path, feed_server, webhook_url=receiver.url("/h"), extra_feeds=extra)
    config = write_config(
        tmp_path / "config.toml", text.replace("[defaults]", "[defaults]\nmax_concurrency = 2")
    )

    report = cycle(config)

    assert report.count(FetchStatus.OK) == 9
    assert feed_server.most_in_flight == 2


def test_a_second_process_on_the_same_database_is_refused(
    tmp_path: Path, feed_server: Server, receiver: Server
) -> None:
    """While one monitor holds the state database, another exits with a clear message and sends nothing."""
    serve_fixtures(feed_server)
    config = webhook_config(tmp_path, feed_server, receiver)
    with exclusive(tmp_path / "state" / "monitor.db"):
        result = poll_once(config)
    assert result.returncode == 1
    assert "another monitor process" in result.stderr
    assert receiver.posts() == []
    assert poll_once(config).returncode == 0
