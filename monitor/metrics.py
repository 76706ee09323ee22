"""Prometheus metrics of one running service.

Every label value is a name from the configuration (feed, channel, watchlist), so the number of
series is bounded by the config; URLs and error text never become labels.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from monitor.types import DeliveryOutcome, FeedOutcome, FetchStatus

# A poll is bounded by fetch_deadline (30 s by default); a cycle polls every feed, then delivers.
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
CYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    """Counters and gauges of one running service, in its own CollectorRegistry (never the global
    one, so tests and several runtimes in one process never collide)."""

    content_type = CONTENT_TYPE_LATEST  # of what render() returns

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # seconds since the epoch, for the *_timestamp_seconds gauges
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.feed_polls = Counter(
            "monitor_feed_polls", "Feed polls, by outcome.", ["feed", "status"], registry=r
        )
        self.feed_failures = Counter("monitor_feed_failures", "Feed polls that failed.", ["feed"], registry=r)
        self.items_new = Counter("monitor_items_new", "New items stored, by feed.", ["feed"], registry=r)
        self.watchlist_matches = Counter(
            "monitor_watchlist_matches", "New items a watchlist matched.", ["watchlist"], registry=r
        )
        self.feed_poll_seconds = Histogram(
            "monitor_feed_poll_seconds", "Time to poll one feed.", buckets=POLL_BUCKETS, registry=r
        )
        self.feed_last_success = Gauge(
            "monitor_feed_last_success_timestamp_seconds",
            "When a feed was last fetched without error (200 or 304).",
            ["feed"],
            registry=r,
        )
        self.deliveries = Counter(
            "monitor_deliveries",
            "Delivery attempts: delivered, retrying (temporary failure) or failed (for good).",
            ["channel", "status"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "monitor_cycle_duration_seconds",
            "Time of one poll-and-deliver cycle.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycle_last_seconds = Gauge(
            "monitor_cycle_last_duration_seconds", "Time the last cycle took.", registry=r
        )
        self.outbox_pending = Gauge(
            "monitor_outbox_pending", "Alerts queued and not yet delivered.", registry=r
        )
        self.last_cycle = Gauge(
            "monitor_last_cycle_timestamp_seconds", "When the last cycle ended.", registry=r
        )
        self.feed_backoff = Gauge(
            "monitor_feed_backoff_seconds",
            "Extra wait before a failing feed's next poll (0 when it is healthy).",
            ["feed"],
            registry=r,
        )
        self.feed_disabled = Gauge(
            "monitor_feed_disabled",
            "1 when a feed is no longer polled (HTTP 410 Gone).",
            ["feed"],
            registry=r,
        )

    def record_poll(self, outcome: FeedOutcome, seconds: float) -> None:
        feed = outcome.feed
        self.feed_polls.labels(feed=feed, status=outcome.status.value).inc()
        # Touched on every poll so the failure series exists at 0 and rate() sees the first failure.
        failures = self.feed_failures.labels(feed=feed)
        if outcome.status is FetchStatus.FAILED:
            failures.inc()
        elif outcome.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED):
            self.feed_last_success.labels(feed=feed).set(self._clock())
        self.items_new.labels(feed=feed).inc(outcome.new_items)
        for watchlist, count in outcome.matched.items():
            self.watchlist_matches.labels(watchlist=watchlist).inc(count)
        self.feed_poll_seconds.observe(seconds)

    def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        for outcome in outcomes:
            if outcome.delivered:
                status = "delivered"
            elif outcome.temporary:
                status = "retrying"
            else:
                status = "failed"
            self.deliveries.labels(channel=outcome.channel, status=status).inc()

    def record_cycle(self, seconds: float, pending: int) -> None:
        self.cycle_seconds.observe(seconds)
        self.cycle_last_seconds.set(seconds)
        self.outbox_pending.set(pending)
        self.last_cycle.set(self._clock())

    def set_feed_backoff(self, feed: str, seconds: float, disabled: bool) -> None:
        self.feed_backoff.labels(feed=feed).set(seconds)
        self.feed_disabled.labels(feed=feed).set(1 if disabled else 0)

    def forget_feed(self, feed: str) -> None:
        """Drop every series of a feed that left the configuration, so it is not reported forever."""
        per_feed: list[Counter | Gauge] = [
            self.feed_failures,
            self.items_new,
            self.feed_last_success,
            self.feed_backoff,
            self.feed_disabled,
        ]
        # Older prometheus_client versions raise KeyError for a series that was never created.
        for metric in per_feed:
            with contextlib.suppress(KeyError):
                metric.remove(feed)
        for status in FetchStatus:
            with contextlib.suppress(KeyError):
                self.feed_polls.remove(feed, status.value)

    def render(self) -> bytes:
        """The text exposition format, as served at /metrics."""
        return generate_latest(self.registry)
