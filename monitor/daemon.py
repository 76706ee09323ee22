"""`monitor run`: poll each feed on its own schedule and deliver alerts until told to stop."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.app import open_runtime
from monitor.config import FeedConfig, Settings
from monitor.pipeline import Runtime, deliver_pending, poll_feed, prune_if_due, record_cycle
from monitor.types import CycleReport
from monitor.watchlists import Matcher

log = logging.getLogger("monitor")

WATCHLIST_CHECK = 5.0  # seconds between looks at the watchlist files
SHUTDOWN_GRACE = 8.0  # seconds in-flight work gets to finish; `docker stop` kills after 10 by default

JOB_DEFAULTS = {
    "max_instances": 1,  # a feed still being polled is not polled again on top
    "coalesce": True,  # after a pause (laptop sleep, long GC), run once, not once per missed slot
    "misfire_grace_time": None,  # a late poll still runs: never silently skip one
}


class Daemon:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._running: set[asyncio.Task[object]] = set()
        self._stop = asyncio.Event()

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
        settings = self.rt.settings
        now = datetime.now(UTC)
        for index, feed in enumerate(settings.feeds):
            interval = settings.interval(feed)
            # The first polls are spread over a few seconds, later ones by jitter, so feeds on one
            # host do not all fire together.
            first = now + timedelta(seconds=min(index * 0.2, 10) + random.uniform(0, 1))
            self.scheduler.add_job(
                self._tracked(functools.partial(self._poll, feed)),
                IntervalTrigger(seconds=interval, jitter=interval * settings.defaults.jitter),
                id=f"feed:{feed.name}",
                name=f"poll {feed.name}",
                next_run_time=first,
            )
        self.scheduler.add_job(
            self._tracked(lambda: deliver_pending(self.rt)),
            IntervalTrigger(seconds=settings.defaults.deliver_interval),
            id="deliver",
            name="deliver pending alerts",
        )

        if self.rt.library is not None:
            self.scheduler.add_job(
                self._tracked(self._reload_watchlists),
                IntervalTrigger(seconds=WATCHLIST_CHECK),
                id="watchlists",
                name="reload edited watchlists",
            )

    async def _reload_watchlists(self) -> None:
        library = self.rt.library
        assert library is not None

        def load() -> Matcher | None:
            # Reading, parsing and compiling happen off the event loop; the switch happens on it.
            return Matcher(library.watchlists) if library.reload() else None

        matcher = await asyncio.to_thread(load)
        if matcher is not None:
            self.rt.use(matcher)

    async def _poll(self, feed: FeedConfig) -> None:
        outcome = await poll_feed(self.rt, feed)
        deliveries = await deliver_pending(self.rt)
        report = CycleReport((outcome,), tuple(deliveries), self.rt.store.outbox_counts().get("pending", 0))
        log.info("poll %s: %s", feed.name, report.summary())
        record_cycle(self.rt, report)
        prune_if_due(self.rt)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        self.schedule()
        self.scheduler.start()
        feeds = len(self.rt.settings.feeds)
        log.info("monitor running: %d feeds, %d watchlists", feeds, len(self.rt.watchlists))
        await self._stop.wait()
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
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("stopped")


async def run_daemon(settings: Settings) -> None:
    async with open_runtime(settings) as rt:
        await Daemon(rt).run()
