"""`monitor run`: poll each feed on its own schedule and deliver alerts until told to stop.

Each feed has one pending job at a time, a DateTrigger set from what its last poll decided
(interval, backoff, Retry-After, freshness hints, jitter), so a slow or failing feed never delays
another and two polls of one feed never overlap. A `cycle` job delivers what is due every
`deliver_interval` (and at once after a poll queues alerts) and logs one summary line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.app import open_runtime
from monitor.config import Defaults, FeedConfig, Settings, load_settings
from monitor.errors import ConfigErrors, StoreError
from monitor.fetch import Fetcher
from monitor.metrics import Metrics
from monitor.notify import build_notifiers
from monitor.pipeline import Runtime, deliver_pending, note_storage, poll_feed, prune_if_due, record_cycle
from monitor.polling import BACKOFF_CAP
from monitor.status import StatusServer, is_loopback
from monitor.store.sqlite import FeedRow
from monitor.types import CycleReport, FeedOutcome, FetchStatus
from monitor.watchlists import Matcher
from monitor.watchlists.live import LiveWatchlists

log = logging.getLogger("monitor")

WATCHLIST_CHECK = 5.0  # seconds between looks at the watchlist files
SHUTDOWN_GRACE = 8.0  # seconds in-flight work gets to finish; `docker stop` kills after 10 by default
STORE_RETRY = 60.0  # seconds between attempts to open a state database that cannot be used
FIRST_POLL_SPREAD = 10.0  # the first polls after a start are spread over this many seconds

JOB_DEFAULTS = {
    "max_instances": 1,  # a feed still being polled is not polled again on top
    "coalesce": True,  # after a pause (laptop sleep, long GC), run once, not once per missed slot
    "misfire_grace_time": None,  # a late poll still runs: never silently skip one
}

# Settings the HTTP client for feeds is built from: a reload that changes one builds a new client.
FETCH_SETTINGS: tuple[str, ...] = ("user_agent", "timeout", "fetch_deadline", "max_concurrency")
FETCH_SETTINGS += ("max_feed_bytes", "max_redirects", "allow_private_networks")


class Daemon:
    def __init__(self, rt: Runtime, metrics: Metrics | None = None) -> None:
        self.rt = rt
        self.metrics = metrics or Metrics()
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._running: set[asyncio.Task[object]] = set()
        self._stop = asyncio.Event()
        self._polled: list[FeedOutcome] = []  # outcomes since the last cycle
        self._cycling = False
        self._cycle_again = False
        self._failing_channels: list[str] = []
        self.last_success_at: datetime | None = None  # of any feed poll; read by /healthz
        self.started_at = datetime.now(UTC)

    # Jobs

    def _tracked(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """Wrap a job so shutdown can wait for it, and so one failing job never kills the scheduler."""

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                log.exception("job failed; it will run again on schedule")
            finally:
                self._running.discard(task)

        return run

    def schedule(self) -> None:
        self._schedule_feeds(self.rt.settings.feeds, first_start=True)
        self.scheduler.add_job(
            self._tracked(self._cycle),
            IntervalTrigger(seconds=self.rt.settings.defaults.deliver_interval),
            id="cycle",
            name="deliver due alerts",
        )
        self.scheduler.add_job(
            self._tracked(self._reload_watchlists),
            IntervalTrigger(seconds=WATCHLIST_CHECK),
            id="watchlists",
            name="reload edited watchlists",
        )

    def _schedule_feeds(self, feeds: tuple[FeedConfig, ...], *, first_start: bool) -> None:
        """Queue the first poll of each feed: soon, spread over a few seconds so feeds on one host
        do not fire together, unless the store says the feed is backing off or disabled."""
        now = datetime.now(UTC)
        stored = {row.name: row for row in self.rt.store.feeds(now)}
        for index, feed in enumerate(feeds):
            row = stored.get(feed.name)
            if row is not None and row.disabled_at is not None and row.config_url == feed.url:
                log.warning(
                    "feed %s: not polled: %s (give it a new url in %s to poll again)",
                    feed.name,
                    row.disabled_reason,
                    self.rt.settings.path,
                )
                self.metrics.set_feed_backoff(feed.name, 0, disabled=True)
                continue
            spread = min(index * 0.2, FIRST_POLL_SPREAD) + random.uniform(0, 1)
            first = now + timedelta(seconds=spread)
            resume = _resume_at(row, feed, self.rt.settings, now) if first_start else None
            self._queue_poll(feed, max(first, resume) if resume else first)

    def _queue_poll(self, feed: FeedConfig, when: datetime) -> None:
        self.scheduler.add_job(
            self._tracked(lambda: self._poll(feed)),
            DateTrigger(run_date=when),
            id=_job_id(feed.name),
            name=f"poll {feed.name}",
            replace_existing=True,
        )

    async def _poll(self, feed: FeedConfig) -> None:
        started = time.monotonic()
        outcome: FeedOutcome | None = None
        try:
            outcome = await poll_feed(self.rt, feed)
        finally:
            # Whatever happened, the feed gets its next poll: a job that raised must not end its polling.
            if self._current(feed) and not self._stop.is_set():
                if outcome is not None and outcome.status is FetchStatus.DISABLED:
                    self.metrics.set_feed_backoff(feed.name, 0, disabled=True)
                else:
                    fallback = datetime.now(UTC) + timedelta(seconds=self.rt.settings.interval(feed))
                    when = outcome.next_poll_at if outcome and outcome.next_poll_at else fallback
                    self._queue_poll(feed, when)
        assert outcome is not None  # poll_feed turns every failure into an outcome
        self.metrics.record_poll(outcome, time.monotonic() - started)
        if outcome.status is not FetchStatus.DISABLED:
            self.metrics.set_feed_backoff(feed.name, outcome.backoff, disabled=False)
        self._polled.append(outcome)
        if outcome.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED):
            self.last_success_at = datetime.now(UTC)
        log.debug(
            "poll %s: %s, %d new, %d matched, %d queued",
            feed.name,
            outcome.status.value,
            outcome.new_items,
            outcome.matches,
            outcome.alerts_queued,
        )
        if outcome.alerts_queued:
            self._cycle_soon()

    def _current(self, feed: FeedConfig) -> bool:
        """Whether `feed` is still configured as it was (a reload may have removed or changed it)."""
        return feed in self.rt.settings.feeds

    def _cycle_soon(self) -> None:
        """Deliver now rather than at the next tick; if a cycle is running, run another after it."""
        if self._cycling:
            self._cycle_again = True
            return
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job("cycle", next_run_time=datetime.now(UTC))

    async def _cycle(self) -> None:
        self._cycling = True
        try:
            while True:
                self._cycle_again = False
                await self._one_cycle()
                if not self._cycle_again or self._stop.is_set():
                    break
        finally:
            self._cycling = False

    async def _one_cycle(self) -> None:
        """Deliver what is due, then record and log the cycle: the polls since the last one and
        what delivery did, in one line."""
        started = time.monotonic()
        polled, self._polled = self._polled, []
        deliveries = await deliver_pending(self.rt)
        self.metrics.record_deliveries(deliveries)
        store = self.rt.store
        try:
            pending = store.outbox_counts().get("pending", 0)
            self._failing_channels = [h.channel for h in store.failing_channels()]
        except StoreError as e:
            log.error("cannot read the outbox: %s", e)
            pending = 0
        report = CycleReport(tuple(polled), tuple(deliveries), pending)
        if polled:
            record_cycle(self.rt, report)
        else:
            note_storage(self.rt)
        prune_if_due(self.rt)
        elapsed = time.monotonic() - started
        self.metrics.record_cycle(elapsed, pending)
        if polled or deliveries:
            log.info(
                "cycle: %s",
                report.summary(),
                extra={
                    "feeds_polled": len(polled),
                    "feeds_failed": report.count(FetchStatus.FAILED),
                    "new_items": report.new_items,
                    "matches": report.matches,
                    "alerts_sent": report.sent,
                    "alerts_pending": pending,
                    "seconds": round(elapsed, 3),
                },
            )

    async def _reload_watchlists(self) -> None:
        library = self.rt.library
        if library is None:
            return

        def load() -> Matcher | None:
            # Reading, parsing and compiling happen off the event loop; the switch happens on it.
            return Matcher(library.watchlists) if library.reload() else None

        matcher = await asyncio.to_thread(load)
        if matcher is not None:
            self.rt.use(matcher)

    # Reload (SIGHUP)

    async def reload(self) -> None:
        """Read config.toml and the watchlists again and apply them. An invalid config changes
        nothing: the running one stays, and the errors are logged."""
        old = self.rt.settings
        try:
            new = await asyncio.to_thread(load_settings, old.path)
        except ConfigErrors as e:
            for error in e.errors:
                log.error("config reload: %s", error)
            log.error("config reload failed; still running the configuration loaded before")
            return
        if new.defaults.state_path != old.defaults.state_path:
            log.warning(
                "config reload: state_path changed to %s; it takes effect at restart, %s stays in use",
                new.defaults.state_path,
                old.defaults.state_path,
            )
        if new.defaults.status_address != old.defaults.status_address:
            log.warning("config reload: status_address takes effect at restart")
        defaults = dataclasses.replace(
            new.defaults, state_path=old.defaults.state_path, status_address=old.defaults.status_address
        )
        new = dataclasses.replace(new, defaults=defaults)
        self.rt.settings = new
        if any(getattr(old.defaults, k) != getattr(new.defaults, k) for k in FETCH_SETTINGS):
            self._replace_fetcher(new.defaults)
        if self.rt.http is not None:
            self.rt.notifiers = build_notifiers(new, self.rt.http)
        self.rt.cpu.use_process = new.defaults.worker_process
        await self._reload_library(new)
        self._reschedule(old, new)
        if new.defaults.deliver_interval != old.defaults.deliver_interval:
            self.scheduler.reschedule_job(
                "cycle", trigger=IntervalTrigger(seconds=new.defaults.deliver_interval)
            )
        log.info(
            "config reloaded: %d feeds, %d channels, %d watchlists",
            len(new.feeds),
            len(new.channels),
            len(self.rt.watchlists),
        )

    def _replace_fetcher(self, defaults: Defaults) -> None:
        """Polls in flight finish with the client they started with; it is closed after them."""
        old = self.rt.fetcher
        self.rt.fetcher = Fetcher(defaults)
        in_flight = set(self._running)

        async def close_later() -> None:
            if in_flight:
                await asyncio.wait(in_flight)
            await old.aclose()

        task = asyncio.create_task(close_later())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _reload_library(self, settings: Settings) -> None:
        library = self.rt.library
        directory, channels = settings.defaults.watchlists_dir, tuple(settings.channels)
        if library is None or library.directory != directory:
            library = LiveWatchlists(directory, channels)
        else:
            # Same files, maybe other channels: load again so routing is checked against them.
            # A watchlist that no longer loads keeps its last good version running.
            library.channels = channels
            library.invalidate()
        self.rt.library = library
        matcher = await asyncio.to_thread(lambda: Matcher(library.watchlists) if library.reload() else None)
        if matcher is not None:
            self.rt.use(matcher)

    def _reschedule(self, old: Settings, new: Settings) -> None:
        before = {f.name: f for f in old.feeds}
        after = {f.name: f for f in new.feeds}
        for name in before.keys() - after.keys():
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(_job_id(name))
            self.metrics.forget_feed(name)
            log.info("feed %s: removed from the configuration; no longer polled", name)
        changed = tuple(
            f
            for f in new.feeds
            if f.name not in before or before[f.name] != f or self.scheduler.get_job(_job_id(f.name)) is None
        )
        for feed in changed:
            if feed.name in before and before[feed.name].url != feed.url:
                log.info("feed %s: new url %s", feed.name, feed.url)
        # A new or edited feed is polled soon; one disabled by a 410 stays off unless its url changed.
        self._schedule_feeds(changed, first_start=False)

    # Health, for the status endpoint

    def health(self) -> tuple[bool, str]:
        """Read by the status server's thread: in-memory state only, never the database."""
        now = datetime.now(UTC)
        settings = self.rt.settings
        if self.rt.storage_error:
            return False, f"storage failing: {self.rt.storage_error}"
        if self._failing_channels:
            return False, f"channel {self._failing_channels[0]} is failing (see `monitor deliveries`)"
        longest = max((settings.interval(f) for f in settings.feeds), default=settings.defaults.poll_interval)
        allowed = timedelta(seconds=3 * longest + 60)
        since = self.last_success_at or self.started_at
        if settings.feeds and now - since > allowed:
            return False, f"no feed polled successfully in {int((now - since).total_seconds())}s"
        if self.last_success_at is None:
            return True, "starting: no poll has completed yet"
        return True, f"last successful poll {int((now - self.last_success_at).total_seconds())}s ago"

    # Running

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self._tracked(self.reload)()))
        status = self._start_status_server()
        self.schedule()
        self.scheduler.start()
        feeds = len(self.rt.settings.feeds)
        log.info("monitor running: %d feeds, %d watchlists", feeds, len(self.rt.watchlists))
        try:
            await self._stop.wait()
            await self._shutdown()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if status is not None:
                status.stop()
        log.info("stopped")

    def _start_status_server(self) -> StatusServer | None:
        address = self.rt.settings.defaults.status_address
        if not address:
            return None
        server = StatusServer(address, self.metrics, self.health)
        server.start()
        if not is_loopback(address):
            log.warning("status endpoint listens on %s, beyond this machine; /metrics names feeds", address)
        log.info("status endpoint: %s/healthz and %s/metrics", server.url, server.url)
        return server

    async def _shutdown(self) -> None:
        log.info(
            "stopping: no new polls; waiting up to %gs for %d running job(s)",
            SHUTDOWN_GRACE,
            len(self._running),
        )
        # Pause first: APScheduler's shutdown cancels running coroutine jobs, and in-flight work
        # (a delivery between send and mark-sent) deserves its chance to finish.
        self.scheduler.pause()
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()  # what it had not stored is fetched again next start; queued alerts stay queued
            await asyncio.gather(*pending, return_exceptions=True)
        self.scheduler.shutdown(wait=False)


def _job_id(feed: str) -> str:
    return f"feed:{feed}"


def _resume_at(row: FeedRow | None, feed: FeedConfig, settings: Settings, now: datetime) -> datetime | None:
    """After a restart, a feed that was backing off keeps waiting (a restart must not hammer a
    server that asked us to slow down); a healthy feed is polled at once. Never later than the
    longest wait a poll could have set."""
    if row is None or row.next_poll_at is None or row.backoff <= 0 or row.next_poll_at <= now:
        return None
    longest = timedelta(seconds=max(BACKOFF_CAP, settings.interval(feed)) * 1.5)
    return min(row.next_poll_at, now + longest)


async def run_daemon(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT. A state database that cannot be used (damaged, read-only, disk
    full) is reported and tried again every minute rather than exiting: a container restarting in
    a loop helps no one, and `monitor health` names the problem meanwhile."""
    metrics = Metrics()
    while True:
        try:
            async with open_runtime(settings) as rt:
                await Daemon(rt, metrics).run()
            return
        except StoreError as e:
            if e.kind == "busy":
                raise  # another monitor owns this database: waiting would only hide the mistake
            log.error("%s; trying again in %gs", e, STORE_RETRY)
            if await _stopped_within(STORE_RETRY):
                log.info("stopped")
                return


async def _stopped_within(seconds: float) -> bool:
    """Wait `seconds` unless SIGTERM or SIGINT comes first (then True)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return True
