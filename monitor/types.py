"""Domain types: immutable values passed between the stages of the pipeline.

Every datetime is timezone-aware and in UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Severity(enum.IntEnum):
    """How much an alert matters; ordered so digests can sort by it."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Item:
    """One normalised feed entry."""

    feed: str  # the feed's configured name
    key: str  # stable identity within the feed: guid, else canonical link, else content hash
    title: str
    summary: str  # plain text
    link: str | None
    published: datetime  # from the feed, else the time the item was first seen
    updated: datetime | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    fingerprint: str = ""  # hash of title and summary, to tell an edited item from an unchanged one
    outlet: str | None = None  # the publisher: from <source>, else the feed's `outlet`, else its name


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a watchlist term was found: a span of one field of the item as it was written."""

    term: str  # as written in the watchlist: `Baluch*`, `"border guards"`, `/rask?/`
    field: str  # title, summary, source or link
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Match:
    """An item satisfies a watchlist; `terms` are the watchlist terms that were found.

    Only terms that count towards the match are reported, never the excluded (NOT) ones. The
    score adds, for each distinct term found, the weight of the best field it was found in
    (title 2, summary 1, source and link 0.5): a rough "how strongly", for sorting.
    """

    watchlist: str  # slug
    terms: tuple[str, ...]
    score: float = 0.0
    hits: tuple[Hit, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item from the store: its row id, when it arrived, and whether a watchlist matched it then."""

    id: int
    item: Item
    first_seen: datetime
    matched_then: bool


@dataclass(frozen=True, slots=True)
class StoryEntry:
    """One item of an alert's story, as a receiver sees it: who carried it, under what headline."""

    outlet: str
    title: str
    link: str | None
    published: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """One message owed to one channel. `id` is stable across every delivery attempt."""

    id: str
    channel: str
    watchlist: str
    watchlist_name: str
    severity: Severity
    feed: str
    item_key: str
    title: str
    summary: str
    link: str | None
    published: datetime
    terms: tuple[str, ...]
    created_at: datetime
    story_id: int | None = None
    outlet: str = ""  # who published the item the alert shows
    min_sources: int = 1  # the watchlist waited for this many outlets (corroboration)
    # Every outlet carrying the story, in the order they arrived; read when the alert is delivered,
    # so copies that arrived while it waited are listed too.
    sources: tuple[str, ...] = ()
    # Every item of the story, read at delivery like `sources` (empty when the story is unknown).
    story_items: tuple[StoryEntry, ...] = ()
    # When it is first due: at once, the end of the channel's quiet hours, or its digest's time.
    due_at: datetime | None = None
    digest: bool = False  # sent with the other alerts of the channel due at the same `due_at`

    @property
    def also_reported_by(self) -> tuple[str, ...]:
        return tuple(s for s in self.sources if s != self.outlet)


@dataclass(frozen=True, slots=True)
class Digest:
    """Several alerts for one channel, sent as one message (or a few numbered ones, where a
    channel limits a message's size). `id` depends only on the channel and the digest's slot, so
    a retried digest is recognisably the same one (email reuses it as the Message-ID).
    """

    id: str
    channel: str
    alerts: tuple[Alert, ...]
    period_end: datetime  # the scheduled time the digest was due


@dataclass(frozen=True, slots=True)
class StoryView:
    """What planning a story's alerts needs, read from the store inside the poll's transaction."""

    id: int
    outlets: tuple[str, ...]  # distinct, in arrival order
    # watchlist slug -> the earliest item of the story that matched it, and the terms it matched
    matched: Mapping[str, tuple[Item, tuple[str, ...]]]
    alerted: frozenset[tuple[str, str]]  # (watchlist, channel) pairs already queued for this story


class FetchStatus(enum.StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    DISABLED = "disabled"  # removed by its publisher (HTTP 410): not polled until its address changes


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators remembered per feed for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    feed: str
    status: FetchStatus
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""  # where the body finally came from, after redirects
    validators: Validators = Validators()
    http_status: int | None = None
    error: str | None = None
    # How long the server asked us to wait (Retry-After on 429/503, Cache-Control max-age on
    # success), in seconds; a lower bound for the next poll.
    retry_after: float | None = None
    moved_to: str | None = None  # where a permanent redirect (301, 308) said the feed now lives


@dataclass(frozen=True, slots=True)
class FeedSchedule:
    """What a poll decided about the feed's next one (see monitor.polling.next_poll)."""

    next_poll_at: datetime
    backoff: float = 0.0  # seconds failures and Retry-After added to the feed's interval
    moved_to: str | None = None  # a permanent redirect: fetch from here from now on


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one poll of one feed did; a cycle is a list of these."""

    feed: str
    status: FetchStatus
    new_items: int = 0
    matches: int = 0
    alerts_queued: int = 0
    error: str | None = None
    matched: Mapping[str, int] = field(default_factory=dict)  # watchlist slug -> items it matched
    next_poll_at: datetime | None = None  # when the feed is due again (backoff and server hints included)
    backoff: float = 0.0  # seconds failures and Retry-After added to its interval


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    alert_id: str
    channel: str
    delivered: bool
    error: str | None = None
    temporary: bool = True
    retry_after: float | None = None  # seconds the receiver asked us to wait before trying again
    # Delivered, but some recipients refused it (email): recorded, not retried.
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CycleReport:
    feeds: tuple[FeedOutcome, ...]
    deliveries: tuple[DeliveryOutcome, ...]
    pending: int  # alerts still queued after delivery

    def count(self, status: FetchStatus) -> int:
        return sum(1 for f in self.feeds if f.status is status)

    @property
    def new_items(self) -> int:
        return sum(f.new_items for f in self.feeds)

    @property
    def matches(self) -> int:
        return sum(f.matches for f in self.feeds)

    @property
    def sent(self) -> int:
        return sum(1 for d in self.deliveries if d.delivered)

    @property
    def failed_deliveries(self) -> int:
        return sum(1 for d in self.deliveries if not d.delivered)

    def summary(self) -> str:
        disabled = self.count(FetchStatus.DISABLED)
        return (
            f"feeds: {self.count(FetchStatus.OK)} ok, "
            f"{self.count(FetchStatus.NOT_MODIFIED)} not modified, "
            f"{self.count(FetchStatus.FAILED)} failed"
            f"{f', {disabled} disabled' if disabled else ''}; "
            f"new items: {self.new_items}; matches: {self.matches}; "
            f"alerts sent: {self.sent}; alerts pending: {self.pending}"
        )
