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

import httpx

from monitor.config import ChannelConfig, FeedConfig, Settings
from monitor.cpu import CpuWork
from monitor.dedup import canonical_link
from monitor.errors import ParseError, StoreError
from monitor.fetch import Fetcher
from monitor.notify import Notifier
from monitor.polling import REPORT_FAILING_AFTER, next_poll
from monitor.schedule import first_due
from monitor.store import Store
from monitor.store.sqlite import FeedRow, Incoming, Known, PollRecord
from monitor.types import (
    Alert,
    CycleReport,
    DeliveryOutcome,
    Digest,
    FeedOutcome,
    FeedSchedule,
    FetchStatus,
    Item,
    Severity,
    StoryView,
    Validators,
)
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.live import LiveWatchlists
from monitor.worker import analyse

log = logging.getLogger("monitor")

# The channel named `ops` gets operator notices (a feed removed, a feed failing for a day) and,
# unless a watchlist names it, no watchlist alerts.
OPS_CHANNEL = "ops"
# A feed failing for REPORT_FAILING_AFTER is reported once it has also failed this many times in a
# row: a single failure after a day of quiet is not yet news.
REPORT_FAILING_MIN = 3


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
    storage_error: str | None = None  # the last write that failed, until one succeeds again
    http: httpx.AsyncClient | None = None  # the notifiers' client, to build them again on reload
    cpu: CpuWork = field(default_factory=lambda: CpuWork(use_process=False))  # parsing and matching
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
        routed = (
            [c for c in configs if c != OPS_CHANNEL]
            if watchlist.channels is None
            else [c for c in watchlist.channels if c in configs]
        )
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
    """What the store needs of an item: its matches, its story fingerprint and its story link."""
    return Incoming(item, *analyse(item, matcher), story_link)


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
    try:
        state = rt.store.sync_feed(feed.name, feed.url)
    except StoreError as e:
        return _storage_failed(rt, feed, e)
    if state is not None and state.disabled_at is not None:
        return FeedOutcome(feed.name, FetchStatus.DISABLED, error=state.disabled_reason)
    moved = state.url if state is not None and state.moved else None
    result = await rt.fetcher.fetch(feed, rt.store.validators(feed.name), url=moved)
    now = rt.clock()
    failures = state.consecutive_failures if state is not None else 0

    def schedule(failed: bool, fresh_for: float | None = None) -> FeedSchedule:
        return next_poll(
            rt.settings.interval(feed),
            now,
            failures=failures + 1 if failed else 0,
            retry_after=result.retry_after if failed else None,
            cache_hint=fresh_for,
            jitter=rt.settings.defaults.jitter,
            moved_to=None if failed else result.moved_to,
        )

    try:
        if result.status is FetchStatus.FAILED:
            return _fetch_failed(
                rt, feed, state, result.error or "fetch failed", result.http_status, now, schedule(True)
            )
        if result.moved_to and result.moved_to != (moved or feed.url):
            log.warning(
                "feed %s: moved permanently to %s; polling it there (update its url in %s)",
                feed.name,
                result.moved_to,
                rt.settings.path,
            )
        if result.status is FetchStatus.NOT_MODIFIED:
            plan = schedule(False, result.retry_after)
            rt.store.record_unchanged(feed.name, feed.url, result.status.value, now, plan)
            rt.storage_error = None
            return FeedOutcome(feed.name, FetchStatus.NOT_MODIFIED, next_poll_at=plan.next_poll_at)
        try:
            # Parsing and matching are CPU work: off the event loop, so other fetches keep flowing.
            parsed = await rt.cpu.parse(feed.name, result.body, result.headers, url=result.url, now=now)
        except ParseError as e:
            return _fetch_failed(rt, feed, state, str(e), None, now, schedule(True))
        warning = parsed.warning
        if warning:
            # A feed read only in part must be fetched whole next time, not answered with a 304.
            result = dataclasses.replace(result, validators=Validators())
        # A configured outlet wins; else the publisher an aggregator names per item; else the feed.
        items = [
            dataclasses.replace(i, outlet=feed.outlet or i.outlet or feed.name)
            for i in unique_by_key(parsed.items)
        ]
        links = {i.key: story_key(i) if i.link else None for i in items}
        sorted_out = triage(items, rt.store.known(feed.name, items, filter(None, links.values())), links)
        matcher = rt.matcher
        todo = sorted_out.new + sorted_out.edited
        try:
            analysed = await rt.cpu.analyse(feed.name, matcher, todo)
        except ParseError as e:  # the worker process died on these items
            return _fetch_failed(rt, feed, state, str(e), None, now, schedule(True))
        incoming = [Incoming(i, *a, links[i.key]) for i, a in zip(todo, analysed, strict=True)]
        by_slug = {w.slug: w for w in matcher.watchlists}
        planner = functools.partial(
            plan_alerts,
            watchlists=by_slug,
            channels={c: rt.settings.channels.get(c) for c in rt.notifiers},
            now=now,
        )
        fresh_for = max((s for s in (result.retry_after, parsed.ttl) if s is not None), default=None)
        plan = schedule(False, fresh_for)
        record = PollRecord(
            feed.name,
            feed.url,
            result,
            incoming,
            warning=warning,
            seen_tombstones=sorted_out.seen_tombstones,
            schedule=plan,
        )
        stored = rt.store.record_poll(
            record, now, planner, timedelta(seconds=rt.settings.defaults.story_window)
        )
        rt.storage_error = None
        if sorted_out.edited:
            log.info("feed %s: %d edited item(s) stored again", feed.name, len(sorted_out.edited))
    except StoreError as e:
        return _storage_failed(rt, feed, e)
    if warning:
        # Said once, not at every poll: the feed's row keeps it for `monitor feeds`.
        repeated = state is not None and state.last_error == warning
        log.log(logging.DEBUG if repeated else logging.WARNING, "feed %s: %s", feed.name, warning)
    matched: dict[str, int] = defaultdict(int)
    for entry in incoming:
        for m in entry.matches:
            matched[m.watchlist] += 1
    return FeedOutcome(
        feed.name,
        FetchStatus.OK,
        new_items=stored.new_items,
        matches=sum(matched.values()),
        alerts_queued=stored.alerts_queued,
        matched=dict(matched),
        next_poll_at=plan.next_poll_at,
    )


def _storage_failed(rt: Runtime, feed: FeedConfig, error: StoreError) -> FeedOutcome:
    """Nothing of the poll was stored (the transaction rolled back): it is fetched again next time."""
    log.error("feed %s: not stored: %s", feed.name, error)
    rt.storage_error = str(error)
    return FeedOutcome(feed.name, FetchStatus.FAILED, error=str(error))


def _fetch_failed(
    rt: Runtime,
    feed: FeedConfig,
    state: FeedRow | None,
    error: str,
    http_status: int | None,
    now: datetime,
    plan: FeedSchedule,
) -> FeedOutcome:
    """Record a failed poll with its backoff; a 410 disables the feed and a long failure is
    reported, each on the ops channel when one is configured."""
    rt.store.record_failure(feed.name, feed.url, error, now, plan)
    rt.storage_error = None
    if http_status == 410:
        reason = f"HTTP 410 Gone at {now:%Y-%m-%d %H:%M} UTC: the publisher removed this feed"
        rt.store.disable_feed(feed.name, reason, now)
        log.error(
            "feed %s: %s; polling stopped (give it a new url in %s to poll again)",
            feed.name,
            reason,
            rt.settings.path,
        )
        _notify_ops(
            rt,
            feed,
            "gone",
            f"Feed {feed.name} was removed by its publisher (HTTP 410)",
            f"{feed.url} answered 410 Gone, so monitor stopped polling it. Delete the feed from "
            f"{rt.settings.path} or give it a new url; a new url is polled again.",
            now,
        )
        return FeedOutcome(feed.name, FetchStatus.DISABLED, error=reason)
    log.warning(
        "feed %s: %s; next try at %s",
        feed.name,
        error,
        f"{plan.next_poll_at:%H:%M:%S} UTC (backoff +{plan.backoff:.0f}s)",
    )
    streak_start = state.last_success_at if state is not None else None
    if (
        state is not None
        and state.failing_reported_at is None
        and (streak_start is None or now - streak_start >= REPORT_FAILING_AFTER)
        and state.consecutive_failures + 1 >= REPORT_FAILING_MIN
    ):
        since = f"since {streak_start:%Y-%m-%d %H:%M} UTC" if streak_start else "since it was added"
        _notify_ops(
            rt,
            feed,
            f"failing {now:%Y%m%d%H%M}",
            f"Feed {feed.name} has failed {state.consecutive_failures + 1} times in a row",
            f"No successful poll {since}. Last error: {error}. monitor keeps trying, backing off "
            "to once a day; `monitor feeds` shows its state.",
            now,
        )
        rt.store.mark_failing_reported(feed.name, now)
    return FeedOutcome(
        feed.name, FetchStatus.FAILED, error=error, next_poll_at=plan.next_poll_at, backoff=plan.backoff
    )


def _notify_ops(rt: Runtime, feed: FeedConfig, kind: str, title: str, summary: str, now: datetime) -> None:
    """Queue an operator notice on the `ops` channel, if there is one; it is logged either way."""
    if OPS_CHANNEL not in rt.notifiers:
        return
    key = f"ops:{kind}"
    alert = Alert(
        id=hashlib.sha256(f"ops\x1f{feed.name}\x1f{feed.url}\x1f{kind}".encode()).hexdigest()[:26],
        channel=OPS_CHANNEL,
        watchlist="ops",
        watchlist_name="monitor operations",
        severity=Severity.HIGH,
        feed=feed.name,
        item_key=key,
        title=title,
        summary=summary,
        link=feed.url if not feed.is_local else None,
        published=now,
        terms=(),
        created_at=now,
        outlet="monitor",
        due_at=now,
    )
    rt.store.queue_alert(alert)


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


async def run_cycle(
    rt: Runtime,
    feeds: Sequence[FeedConfig] | None = None,
    on_polled: Callable[[FeedOutcome], None] | None = None,
) -> CycleReport:
    """Poll the feeds concurrently (bounded), then deliver every pending alert. `on_polled` hears
    of each feed as it finishes (a progress bar)."""
    targets = rt.settings.feeds if feeds is None else feeds
    limit = asyncio.Semaphore(rt.settings.defaults.max_concurrency)

    async def bounded(feed: FeedConfig) -> FeedOutcome:
        async with limit:
            outcome = await poll_feed(rt, feed)
        if on_polled is not None:
            on_polled(outcome)
        return outcome

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
    now = rt.clock().isoformat()
    try:
        rt.store.set_meta("last_cycle_at", now)
        rt.store.set_meta("last_cycle_summary", report.summary())
        if report.count(FetchStatus.OK) or report.count(FetchStatus.NOT_MODIFIED):
            rt.store.set_meta("last_success_at", now)
    except StoreError as e:
        log.error("cannot record the cycle: %s", e)
    note_storage(rt)


def note_storage(rt: Runtime) -> None:
    """Keep the last storage failure in the database for `monitor health`, and clear it once a
    write succeeds again. Best effort: a full disk may refuse even this, and then the health
    check's own write fails and says so."""
    with contextlib.suppress(StoreError):
        if rt.storage_error:
            rt.store.set_meta("storage_error", rt.storage_error)
        elif rt.store.get_meta("storage_error"):
            rt.store.delete_meta("storage_error")
