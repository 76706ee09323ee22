"""One polling cycle: fetch -> parse -> match -> store -> notify.

`plan_alerts` is pure; the rest wires the stages to the world through a `Runtime`, whose parts
(fetcher, store, notifiers, clock) are injected so tests can swap them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config import FeedConfig, Settings
from monitor.dedup import canonical_link
from monitor.errors import ParseError, StoreError
from monitor.fetch import Fetcher
from monitor.notify import Notifier
from monitor.parse import parse_feed
from monitor.store import Store
from monitor.store.sqlite import PollRecord
from monitor.types import (
    Alert,
    CycleReport,
    DeliveryOutcome,
    FeedOutcome,
    FetchStatus,
    Item,
    Match,
)
from monitor.watchlists import Matcher, Watchlist

log = logging.getLogger("monitor")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a cycle touches, wired once by the CLI or the daemon."""

    settings: Settings
    store: Store
    fetcher: Fetcher
    watchlists: Sequence[Watchlist]
    notifiers: Mapping[str, Notifier]
    clock: Callable[[], datetime] = utc_now
    matcher: Matcher = field(init=False)
    _delivering: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.watchlists)


def story_key(item: Item) -> str:
    """What makes two items one story: for now the same canonical link, whichever feed carries it."""
    return canonical_link(item.link) if item.link else f"{item.feed}\x1f{item.key}"


def alert_id(item: Item, watchlist: str, channel: str) -> str:
    """Stable across attempts and restarts, so receivers can drop repeats.

    Derived from the story, not the feed: the same article in two feeds is one alert.
    """
    key = "\x1f".join((story_key(item), watchlist, channel))
    return hashlib.sha256(key.encode()).hexdigest()[:26]


def plan_alerts(
    item: Item,
    matches: Sequence[Match],
    watchlists: Mapping[str, Watchlist],
    channels: Sequence[str],
    now: datetime,
) -> list[Alert]:
    """The alerts owed for one item's matches: one per (watchlist, routed channel)."""
    alerts = []
    for match in matches:
        watchlist = watchlists[match.watchlist]
        routed = channels if watchlist.channels is None else [c for c in watchlist.channels if c in channels]
        for channel in routed:
            alerts.append(
                Alert(
                    id=alert_id(item, watchlist.slug, channel),
                    channel=channel,
                    watchlist=watchlist.slug,
                    watchlist_name=watchlist.name,
                    severity=watchlist.severity,
                    feed=item.feed,
                    item_key=item.key,
                    title=item.title,
                    summary=item.summary,
                    link=item.link,
                    published=item.published,
                    terms=match.terms,
                    created_at=now,
                )
            )
    return alerts


def unique_by_key(items: Sequence[Item]) -> list[Item]:
    """First occurrence of each identity: a feed listing one guid twice yields one item."""
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


async def poll_feed(rt: Runtime, feed: FeedConfig) -> FeedOutcome:
    """Fetch, parse, match and store one feed. Failures are recorded on the feed, never raised."""
    result = await rt.fetcher.fetch(feed, rt.store.validators(feed.name))
    now = rt.clock()
    try:
        if result.status is FetchStatus.FAILED:
            error = result.error or "fetch failed"
            rt.store.record_failure(feed.name, feed.url, error, now)
            log.warning("feed %s: %s", feed.name, error)
            return FeedOutcome(feed.name, FetchStatus.FAILED, error=error)
        if result.status is FetchStatus.NOT_MODIFIED:
            rt.store.record_unchanged(feed.name, feed.url, result.status.value, now)
            return FeedOutcome(feed.name, FetchStatus.NOT_MODIFIED)
        try:
            # Parsing and matching are CPU work: off the event loop, so other fetches keep flowing.
            items, warning = await asyncio.to_thread(
                parse_feed, feed.name, result.body, result.headers, url=result.url, now=now
            )
        except ParseError as e:
            rt.store.record_failure(feed.name, feed.url, str(e), now)
            log.warning("feed %s: %s", feed.name, e)
            return FeedOutcome(feed.name, FetchStatus.FAILED, error=str(e))
        items = unique_by_key(items)
        known = rt.store.known_items(feed.name, [i.key for i in items])
        new_items = [i for i in items if i.key not in known]
        matched = await asyncio.to_thread(lambda: [(i, rt.matcher.match(i)) for i in new_items])
        by_slug = {w.slug: w for w in rt.watchlists}
        channels = list(rt.notifiers)
        alerts = [a for item, matches in matched for a in plan_alerts(item, matches, by_slug, channels, now)]
        rt.store.record_poll(PollRecord(feed.name, feed.url, result, matched, alerts, warning=warning), now)
    except StoreError as e:
        log.error("feed %s: not stored: %s", feed.name, e)
        return FeedOutcome(feed.name, FetchStatus.FAILED, error=str(e))
    if warning:
        log.warning("feed %s: %s", feed.name, warning)
    return FeedOutcome(
        feed.name,
        FetchStatus.OK,
        new_items=len(new_items),
        matches=sum(len(m) for _, m in matched),
        alerts_queued=len(alerts),
    )


async def deliver_pending(rt: Runtime, *, due_only: bool = True) -> list[DeliveryOutcome]:
    """Send queued alerts, channel by channel, marking each sent only after the channel accepted it.

    With `due_only` False every pending alert is tried now, whatever its backoff.
    """
    async with rt._delivering:
        now = rt.clock()
        alerts = rt.store.due_alerts(now if due_only else None)
        by_channel: dict[str, list[Alert]] = defaultdict(list)
        for alert in sorted(alerts, key=lambda a: (a.published, a.id)):
            by_channel[alert.channel].append(alert)
        missing = [c for c in by_channel if c not in rt.notifiers]
        for channel in missing:
            log.warning(
                "%d alert(s) queued for channel %r, which is no longer configured; they stay queued",
                len(by_channel.pop(channel)),
                channel,
            )
        results = await asyncio.gather(*(rt.notifiers[c].deliver(batch) for c, batch in by_channel.items()))
        outcomes = [o for batch in results for o in batch]
        finished = rt.clock()
        for outcome in outcomes:
            if outcome.delivered:
                rt.store.mark_sent(outcome.alert_id, finished)
            else:
                rt.store.mark_failed(
                    outcome.alert_id, outcome.error or "failed", temporary=outcome.temporary, now=finished
                )
                log.warning(
                    "alert %s to %s failed (%s): %s",
                    outcome.alert_id,
                    outcome.channel,
                    "will retry" if outcome.temporary else "permanent",
                    outcome.error,
                )
        return outcomes


async def run_cycle(rt: Runtime, feeds: Sequence[FeedConfig] | None = None) -> CycleReport:
    """Poll the feeds concurrently (bounded), then deliver every pending alert."""
    targets = rt.settings.feeds if feeds is None else feeds
    limit = asyncio.Semaphore(rt.settings.defaults.max_concurrency)

    async def bounded(feed: FeedConfig) -> FeedOutcome:
        async with limit:
            return await poll_feed(rt, feed)

    outcomes = await asyncio.gather(*(bounded(f) for f in targets))
    deliveries = await deliver_pending(rt, due_only=False)
    report = CycleReport(tuple(outcomes), tuple(deliveries), rt.store.outbox_counts().get("pending", 0))
    record_cycle(rt, report)
    return report


def record_cycle(rt: Runtime, report: CycleReport) -> None:
    """Remember when a cycle last ran and whether it went well, for `monitor health`."""
    try:
        rt.store.set_meta("last_cycle_at", rt.clock().isoformat())
        rt.store.set_meta("last_cycle_summary", report.summary())
    except StoreError as e:
        log.error("cannot record the cycle: %s", e)
