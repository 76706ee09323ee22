"""One polling cycle: fetch -> parse -> match -> store -> notify.

`plan_alerts` is pure; the rest wires the stages to the world through a `Runtime`, whose parts
(fetcher, store, notifiers, clock) are injected so tests can swap them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from monitor.config import ChannelConfig, FeedConfig, Settings
from monitor.dedup import canonical_link
from monitor.errors import ParseError, StoreError
from monitor.fetch import Fetcher
from monitor.notify import Notifier
from monitor.parse import parse_feed
from monitor.schedule import first_due
from monitor.store import Store
from monitor.store.sqlite import Incoming, Known, PollRecord
from monitor.stories import fingerprint
from monitor.types import (
    Alert,
    CycleReport,
    DeliveryOutcome,
    Digest,
    FeedOutcome,
    FetchStatus,
    Item,
    StoryView,
    Validators,
)
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.live import LiveWatchlists

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
    library: LiveWatchlists | None = None  # where the watchlists came from, to reload them
    matcher: Matcher = field(init=False)
    _delivering: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.watchlists)

    def use(self, matcher: Matcher) -> None:
        """Switch to newly loaded watchlists; work in flight finishes with the ones it started with."""
        self.watchlists = matcher.watchlists
        self.matcher = matcher


def story_key(item: Item) -> str:
    """The link that makes two items one story whatever else they say, whichever feed carries it.

    The fragment is kept here (not in item identity): live blogs link each entry to its own
    `#post-N` anchor of one page, and each is news of its own.
    """
    if not item.link:
        return f"{item.feed}\x1f{item.key}"
    fragment = urlsplit(item.link).fragment
    return canonical_link(item.link) + (f"#{fragment}" if fragment else "")


def alert_id(item: Item, watchlist: str, channel: str) -> str:
    """Stable across attempts and restarts, so receivers can drop repeats.

    Derived from the story, not the feed: the same article in two feeds is one alert.
    """
    key = "\x1f".join((story_key(item), watchlist, channel))
    return hashlib.sha256(key.encode()).hexdigest()[:26]


def plan_alerts(
    story: StoryView,
    watchlists: Mapping[str, Watchlist],
    channels: Mapping[str, ChannelConfig | None] | Sequence[str],
    now: datetime,
) -> list[Alert]:
    """The alerts a story owes: one per (watchlist it matched, routed channel) not already queued,
    each due when the watchlist's delivery for that channel and the channel's quiet hours say.

    A watchlist with `min_sources = N` owes nothing until N distinct outlets carry the story; the
    alert then says it waited for them. Watchlists deleted since they matched owe nothing.
    Channels given by name alone have no quiet hours and keep time in UTC.
    """
    configs = channels if isinstance(channels, Mapping) else dict.fromkeys(channels)
    alerts = []
    for slug, (item, terms) in story.matched.items():
        watchlist = watchlists.get(slug)
        if watchlist is None or len(story.outlets) < watchlist.min_sources:
            continue
        routed = configs if watchlist.channels is None else [c for c in watchlist.channels if c in configs]
        for channel in routed:
            if (slug, channel) in story.alerted:
                continue
            config = configs[channel]
            due_at, digest = first_due(
                watchlist.delivery_for(channel),
                watchlist.severity,
                now,
                zone=config.timezone if config else "UTC",
                quiet=config.quiet_hours if config else None,
            )
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
                    terms=terms,
                    created_at=now,
                    story_id=story.id,
                    outlet=item.outlet or item.feed,
                    min_sources=watchlist.min_sources,
                    sources=story.outlets,
                    due_at=due_at,
                    digest=digest,
                )
            )
    return alerts


def unique_by_key(items: Sequence[Item]) -> list[Item]:
    """First occurrence of each identity: a feed listing one guid twice yields one item."""
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


# Below this much text, two items with the same text are not assumed to be one item re-keyed:
# a feed's untitled, empty entries all share the empty fingerprint.
REKEY_MIN_TEXT = 40


@dataclass(frozen=True, slots=True)
class Triage:
    new: list[Item]
    edited: list[Item]  # stored items whose title or summary changed
    seen_tombstones: list[str]  # keys of pruned items still listed by the feed


def triage(items: Sequence[Item], known: Known, story_links: Mapping[str, str | None]) -> Triage:
    """Which items are news. An unchanged stored item is not; an edited one is stored again but
    alerts only for watchlists it newly matches; a pruned item coming back, the same text
    re-published under a new guid, and a copy of a pruned article are not news either.
    """
    result = Triage([], [], [])
    for item in items:
        stored = known.fingerprints.get(item.key)
        if stored is not None:
            if stored != item.fingerprint:
                result.edited.append(item)
        elif item.key in known.tombstoned:
            result.seen_tombstones.append(item.key)
        elif (
            item.fingerprint in known.feed_fingerprints
            and len(item.title) + len(item.summary) >= REKEY_MIN_TEXT
        ) or story_links.get(item.key) in known.old_links:
            continue
        else:
            result.new.append(item)
    return result


def prepare(item: Item, matcher: Matcher, story_link: str | None) -> Incoming:
    """The CPU work for one item, done off the event loop: matching and its story fingerprint."""
    return Incoming(
        item,
        matcher.match(item, spans=False),
        fingerprint(item.title, item.summary, item.published),
        story_link,
    )


async def poll_feed(rt: Runtime, feed: FeedConfig) -> FeedOutcome:
    """Fetch, parse, match and store one feed. Failures are recorded on the feed, never raised."""
    try:
        return await _poll_feed(rt, feed)
    except Exception as e:  # one feed's surprise must not end the cycle for the others
        log.exception("feed %s: unexpected error", feed.name)
        error = f"unexpected error: {e!r}"
        with contextlib.suppress(StoreError):  # if the store is the problem, it is logged above
            rt.store.record_failure(feed.name, feed.url, error, rt.clock())
        return FeedOutcome(feed.name, FetchStatus.FAILED, error=error)


async def _poll_feed(rt: Runtime, feed: FeedConfig) -> FeedOutcome:
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
        if warning:
            # A feed read only in part must be fetched whole next time, not answered with a 304.
            result = dataclasses.replace(result, validators=Validators())
        # A configured outlet wins; else the publisher an aggregator names per item; else the feed.
        items = [
            dataclasses.replace(i, outlet=feed.outlet or i.outlet or feed.name) for i in unique_by_key(items)
        ]
        links = {i.key: story_key(i) if i.link else None for i in items}
        sorted_out = triage(items, rt.store.known(feed.name, items, filter(None, links.values())), links)
        matcher = rt.matcher
        incoming = await asyncio.to_thread(
            lambda: [prepare(i, matcher, links[i.key]) for i in sorted_out.new + sorted_out.edited]
        )
        by_slug = {w.slug: w for w in matcher.watchlists}
        planner = functools.partial(
            plan_alerts,
            watchlists=by_slug,
            channels={c: rt.settings.channels.get(c) for c in rt.notifiers},
            now=now,
        )
        record = PollRecord(
            feed.name, feed.url, result, incoming, warning=warning, seen_tombstones=sorted_out.seen_tombstones
        )
        stored = rt.store.record_poll(
            record, now, planner, timedelta(seconds=rt.settings.defaults.story_window)
        )
        if sorted_out.edited:
            log.info("feed %s: %d edited item(s) stored again", feed.name, len(sorted_out.edited))
    except StoreError as e:
        log.error("feed %s: not stored: %s", feed.name, e)
        return FeedOutcome(feed.name, FetchStatus.FAILED, error=str(e))
    if warning:
        log.warning("feed %s: %s", feed.name, warning)
    return FeedOutcome(
        feed.name,
        FetchStatus.OK,
        new_items=stored.new_items,
        matches=sum(len(i.matches) for i in incoming),
        alerts_queued=stored.alerts_queued,
    )


def digest_id(channel: str, due_at: datetime) -> str:
    """A digest is its channel and its slot: the same id on every retry, whatever else changed."""
    return hashlib.sha256(f"digest\x1f{channel}\x1f{due_at.isoformat()}".encode()).hexdigest()[:26]


def batches(alerts: Sequence[Alert]) -> list[Alert | Digest]:
    """What a channel is sent, in order: its immediate alerts one by one (oldest first), then
    a digest per slot (oldest slot first) holding every alert due in it."""
    immediate = sorted((a for a in alerts if not a.digest), key=lambda a: (a.published, a.id))
    slots: dict[datetime, list[Alert]] = defaultdict(list)
    for alert in alerts:
        if alert.digest:
            slots[alert.due_at or alert.created_at].append(alert)
    digests = [
        Digest(digest_id(group[0].channel, due), group[0].channel, tuple(group), due)
        for due, group in sorted(slots.items())
    ]
    return [*immediate, *digests]


async def send_to(notifier: Notifier, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
    """Deliver a channel's due alerts: immediate ones in one call, each digest in its own."""
    work = batches(alerts)
    immediate = [a for a in work if isinstance(a, Alert)]
    outcomes = await notifier.deliver(immediate) if immediate else []
    for digest in (d for d in work if isinstance(d, Digest)):
        outcomes.extend(await notifier.deliver_digest(digest))
    return outcomes


async def deliver_pending(rt: Runtime, *, retry_now: bool = False) -> list[DeliveryOutcome]:
    """Send due alerts, channel by channel, marking each sent only after the channel accepted it.

    With `retry_now` alerts that failed before are tried now, whatever their backoff; alerts
    waiting for their digest or for the end of quiet hours still wait.
    """
    async with rt._delivering:
        now = rt.clock()
        alerts = rt.store.due_alerts(now, channels=list(rt.notifiers), retry_now=retry_now)
        by_channel: dict[str, list[Alert]] = defaultdict(list)
        for alert in alerts:
            by_channel[alert.channel].append(alert)
        results = await asyncio.gather(
            *(send_to(rt.notifiers[c], batch) for c, batch in by_channel.items()), return_exceptions=True
        )
        outcomes: list[DeliveryOutcome] = []
        for (channel, batch), result in zip(by_channel.items(), results, strict=True):
            if isinstance(result, BaseException):
                # A notifier broke its contract: nothing is known to be sent, so all stay queued.
                log.error("channel %s failed unexpectedly: %r", channel, result)
                error = f"unexpected error: {result!r}"
                outcomes.extend(DeliveryOutcome(a.id, channel, False, error, True) for a in batch)
            else:
                outcomes.extend(result)
        for outcome in outcomes:
            if not outcome.delivered:
                log.warning(
                    "alert %s to %s failed (%s): %s",
                    outcome.alert_id,
                    outcome.channel,
                    "will retry" if outcome.temporary else "permanent",
                    outcome.error,
                )
            elif outcome.refused:
                log.warning(
                    "alert %s to %s: refused by %s", outcome.alert_id, outcome.channel, outcome.refused
                )
        try:
            rt.store.record_deliveries(
                outcomes, rt.clock(), timedelta(seconds=rt.settings.defaults.delivery_max_age)
            )
        except StoreError as e:
            # The sends happened; their alerts stay pending and go again, with the same ids.
            log.error("delivery results not recorded: %s", e)
        return outcomes


async def run_cycle(rt: Runtime, feeds: Sequence[FeedConfig] | None = None) -> CycleReport:
    """Poll the feeds concurrently (bounded), then deliver every pending alert."""
    targets = rt.settings.feeds if feeds is None else feeds
    limit = asyncio.Semaphore(rt.settings.defaults.max_concurrency)

    async def bounded(feed: FeedConfig) -> FeedOutcome:
        async with limit:
            return await poll_feed(rt, feed)

    outcomes = await asyncio.gather(*(bounded(f) for f in targets))
    deliveries = await deliver_pending(rt, retry_now=True)
    prune_if_due(rt)
    report = CycleReport(tuple(outcomes), tuple(deliveries), rt.store.outbox_counts().get("pending", 0))
    record_cycle(rt, report)
    return report


PRUNE_EVERY = timedelta(hours=1)


def prune_if_due(rt: Runtime) -> None:
    """Apply `retention_days`, at most once an hour: pruning is cheap, but not free at every cycle."""
    now = rt.clock()
    try:
        last = rt.store.get_meta("last_prune_at")
        if last and now - datetime.fromisoformat(last) < PRUNE_EVERY:
            return
        defaults = rt.settings.defaults
        report = rt.store.prune(
            now, timedelta(days=defaults.retention_days), timedelta(seconds=defaults.story_window)
        )
        rt.store.set_meta("last_prune_at", now.isoformat())
    except StoreError as e:
        log.error("cannot prune old items: %s", e)
        return
    if report.items or report.tombstones:
        log.info("%s", report.summary())


def record_cycle(rt: Runtime, report: CycleReport) -> None:
    """Remember when a cycle last ran and whether it went well, for `monitor health`."""
    try:
        rt.store.set_meta("last_cycle_at", rt.clock().isoformat())
        rt.store.set_meta("last_cycle_summary", report.summary())
    except StoreError as e:
        log.error("cannot record the cycle: %s", e)
