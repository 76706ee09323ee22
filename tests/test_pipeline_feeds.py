"""Feed health through the pipeline, against a real loopback server: backoff, Retry-After,
freshness hints, permanent moves, 410 Gone and the ops channel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from monitor.app import open_runtime
from monitor.config import Settings, load_settings
from monitor.notify import build_notifiers
from monitor.pipeline import Runtime, deliver_pending, poll_feed
from monitor.store.sqlite import FeedRow
from monitor.types import FeedOutcome, FetchStatus
from tests.conftest import Route, Server, write_config

T = TypeVar("T")
START = datetime(2024, 1, 18, 12, 0, tzinfo=UTC)
INTERVAL = 600


def rss(*titles: str, ttl: int | None = None) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://n.example/{i}</link></item>" for i, t in enumerate(titles)
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return f'<rss version="2.0"><channel><title>f</title>{ttl_tag}{items}</channel></rss>'.encode()


def settings_for(tmp_path: Path, url: str, receiver: Server | None = None) -> Settings:
    ops = f'\n[channels.ops]\ntype = "webhook"\nurl = "{receiver.url("/ops")}"\n' if receiver else ""
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir(exist_ok=True)
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "monitor.db"}"
watchlists_dir = "{watchlists}"
allow_private_networks = true
poll_interval = "{INTERVAL}s"
jitter = 0
timeout = "5s"

[[feeds]]
name = "f"
url = "{url}"
{ops}""",
    )
    return load_settings(config)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def scenario(settings: Settings, steps: Callable[[Runtime, Clock], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_runtime(settings) as rt:
            clock = Clock()
            rt.clock = clock
            return await steps(rt, clock)

    return asyncio.run(run())


def row(rt: Runtime) -> FeedRow:
    found = rt.store.feed("f")
    assert found is not None
    return found


def wait_after(rt: Runtime, clock: Clock, outcome: FeedOutcome) -> float:
    assert outcome.next_poll_at is not None
    assert row(rt).next_poll_at == outcome.next_poll_at  # stored, so a restart resumes from it
    return (outcome.next_poll_at - clock.now).total_seconds()


def test_repeated_failures_back_off_exponentially_and_a_success_resets(
    tmp_path: Path, feed_server: Server
) -> None:
    feed_server.routes["/f.xml"] = Route(b"down", status=500)
    settings = settings_for(tmp_path, feed_server.url("/f.xml"))

    async def steps(rt: Runtime, clock: Clock) -> tuple[list[float], list[float], FeedRow]:
        waits, backoffs = [], []
        for _ in range(4):
            outcome = await poll_feed(rt, settings.feeds[0])
            assert outcome.status is FetchStatus.FAILED
            waits.append(wait_after(rt, clock, outcome))
            backoffs.append(row(rt).backoff)
            clock.now = outcome.next_poll_at or clock.now
        feed_server.routes["/f.xml"] = Route(rss("back"))
        outcome = await poll_feed(rt, settings.feeds[0])
        assert outcome.status is FetchStatus.OK
        assert wait_after(rt, clock, outcome) == INTERVAL
        return waits, backoffs, row(rt)

    waits, backoffs, healthy = scenario(settings, steps)
    assert waits == [2 * INTERVAL, 4 * INTERVAL, 8 * INTERVAL, 16 * INTERVAL]
    assert backoffs == [w - INTERVAL for w in waits]
    assert (healthy.consecutive_failures, healthy.backoff, healthy.last_error) == (0, 0, None)


def test_429_with_retry_after_waits_as_asked(tmp_path: Path, feed_server: Server) -> None:
    feed_server.routes["/f.xml"] = Route(b"slow down", status=429, headers={"Retry-After": "7200"})
    settings = settings_for(tmp_path, feed_server.url("/f.xml"))

    async def steps(rt: Runtime, clock: Clock) -> tuple[float, FeedRow]:
        outcome = await poll_feed(rt, settings.feeds[0])
        return wait_after(rt, clock, outcome), row(rt)

    wait, state = scenario(settings, steps)
    assert wait == 7200
    assert state.backoff == 7200 - INTERVAL
    assert "rate limited" in (state.last_error or "")


def test_freshness_hints_lengthen_the_wait(tmp_path: Path, feed_server: Server) -> None:
    """Cache-Control max-age and <ttl>: the longer one wins, never shorter than the interval."""
    feed_server.routes["/f.xml"] = Route(rss("a", ttl=60), headers={"Cache-Control": "max-age=1800"})
    settings = settings_for(tmp_path, feed_server.url("/f.xml"))

    async def steps(rt: Runtime, clock: Clock) -> float:
        return wait_after(rt, clock, await poll_feed(rt, settings.feeds[0]))

    assert scenario(settings, steps) == 3600


def test_a_301_moves_the_feed_and_later_polls_go_to_the_new_address(
    tmp_path: Path, feed_server: Server
) -> None:
    feed_server.routes["/old.xml"] = Route(status=301, headers={"Location": feed_server.url("/new.xml")})
    feed_server.routes["/new.xml"] = Route(rss("a"), etag='"n"')
    settings = settings_for(tmp_path, feed_server.url("/old.xml"))

    async def steps(rt: Runtime, clock: Clock) -> tuple[FeedRow, FetchStatus]:
        first = await poll_feed(rt, settings.feeds[0])
        assert first.status is FetchStatus.OK
        moved = row(rt)
        second = await poll_feed(rt, settings.feeds[0])
        return moved, second.status

    moved, second = scenario(settings, steps)
    assert moved.url == feed_server.url("/new.xml")
    assert moved.config_url == feed_server.url("/old.xml")
    assert moved.moved
    assert second is FetchStatus.NOT_MODIFIED  # the new address, with its validators
    assert len(feed_server.gets("/old.xml")) == 1
    assert len(feed_server.gets("/new.xml")) == 2


def test_a_302_does_not_move_the_feed(tmp_path: Path, feed_server: Server) -> None:
    feed_server.routes["/old.xml"] = Route(status=302, headers={"Location": feed_server.url("/new.xml")})
    feed_server.routes["/new.xml"] = Route(rss("a"))
    settings = settings_for(tmp_path, feed_server.url("/old.xml"))

    async def steps(rt: Runtime, clock: Clock) -> FeedRow:
        await poll_feed(rt, settings.feeds[0])
        await poll_feed(rt, settings.feeds[0])
        return row(rt)

    state = scenario(settings, steps)
    assert not state.moved
    assert len(feed_server.gets("/old.xml")) == 2


def test_a_410_disables_the_feed_and_tells_the_ops_channel_once(
    tmp_path: Path, feed_server: Server, receiver: Server
) -> None:
    feed_server.routes["/f.xml"] = Route(b"gone", status=410)
    settings = settings_for(tmp_path, feed_server.url("/f.xml"), receiver)

    async def steps(rt: Runtime, clock: Clock) -> tuple[FeedOutcome, FeedOutcome, FeedRow]:
        gone = await poll_feed(rt, settings.feeds[0])
        await deliver_pending(rt)
        again = await poll_feed(rt, settings.feeds[0])
        await deliver_pending(rt)
        return gone, again, row(rt)

    gone, again, state = scenario(settings, steps)
    assert gone.status is FetchStatus.DISABLED
    assert again.status is FetchStatus.DISABLED
    assert len(feed_server.gets("/f.xml")) == 1  # a disabled feed is not fetched again
    assert state.disabled_at == START
    assert "410" in (state.disabled_reason or "")
    (notice,) = [json.loads(r.body) for r in receiver.posts()]
    assert "removed by its publisher" in json.dumps(notice)


def test_a_disabled_feed_given_a_new_url_is_polled_again(tmp_path: Path, feed_server: Server) -> None:
    feed_server.routes["/f.xml"] = Route(b"gone", status=410)
    feed_server.routes["/g.xml"] = Route(rss("a"))
    settings = settings_for(tmp_path, feed_server.url("/f.xml"))
    scenario(settings, lambda rt, clock: poll_feed(rt, settings.feeds[0]))
    edited = settings_for(tmp_path, feed_server.url("/g.xml"))

    async def steps(rt: Runtime, clock: Clock) -> tuple[FeedOutcome, FeedRow]:
        return await poll_feed(rt, edited.feeds[0]), row(rt)

    outcome, state = scenario(edited, steps)
    assert outcome.status is FetchStatus.OK
    assert (state.disabled_at, state.url, state.config_url) == (
        None,
        edited.feeds[0].url,
        edited.feeds[0].url,
    )


def test_a_feed_failing_for_a_day_is_reported_once_per_streak(
    tmp_path: Path, feed_server: Server, receiver: Server
) -> None:
    feed_server.routes["/f.xml"] = Route(rss("a"))
    settings = settings_for(tmp_path, feed_server.url("/f.xml"), receiver)

    async def steps(rt: Runtime, clock: Clock) -> list[int]:
        notices = []
        await poll_feed(rt, settings.feeds[0])  # a success at START
        feed_server.routes["/f.xml"] = Route(b"down", status=503)
        for hours in (1, 3, 7, 15, 26, 40, 60):
            clock.now = START + timedelta(hours=hours)
            await poll_feed(rt, settings.feeds[0])
            await deliver_pending(rt)
            notices.append(len(receiver.posts()))
        feed_server.routes["/f.xml"] = Route(rss("a", "b"))
        clock.now = START + timedelta(hours=61)
        await poll_feed(rt, settings.feeds[0])
        assert row(rt).failing_reported_at is None  # the next streak is reported again
        return notices

    # Reported at the first failure a day after the last success, and only then.
    assert scenario(settings, steps) == [0, 0, 0, 0, 1, 1, 1]
    body = json.dumps(json.loads(receiver.posts()[0].body))
    assert "has failed 5 times in a row" in body


def test_without_an_ops_channel_nothing_is_queued(tmp_path: Path, feed_server: Server) -> None:
    feed_server.routes["/f.xml"] = Route(b"gone", status=410)
    settings = settings_for(tmp_path, feed_server.url("/f.xml"))

    async def steps(rt: Runtime, clock: Clock) -> dict[str, int]:
        rt.notifiers = build_notifiers(settings, rt.http) if rt.http else {}
        await poll_feed(rt, settings.feeds[0])
        return rt.store.outbox_counts()

    assert scenario(settings, steps) == {}
