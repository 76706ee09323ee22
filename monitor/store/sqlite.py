"""The SQLite store. All writes of one feed poll happen in one transaction."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.errors import StoreError
from monitor.schedule import retry_at
from monitor.store.faults import storage_error
from monitor.store.migrations import MIGRATIONS
from monitor.store.story_index import PackTokens, TokenIndex, pack_tokens, unpack_tokens
from monitor.stories import MIN_SHARED, PROPER_WEIGHT, Fingerprint, same_story
from monitor.types import (
    Alert,
    DeliveryOutcome,
    FeedSchedule,
    FetchResult,
    Item,
    Match,
    Severity,
    StoredItem,
    StoryEntry,
    StoryView,
    Validators,
)


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed's health as stored: what `monitor feeds` shows and what the scheduler resumes from."""

    name: str
    url: str  # where it is fetched from now: a 301 moves it away from `config_url`
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_status: str | None
    last_error: str | None
    consecutive_failures: int
    items_total: int
    config_url: str | None = None  # the address config.toml gave
    last_error_at: datetime | None = None
    next_poll_at: datetime | None = None
    backoff: float = 0.0  # seconds added to the feed's interval by consecutive failures
    disabled_at: datetime | None = None  # set by a 410: not polled until its configured address changes
    disabled_reason: str | None = None
    failing_reported_at: datetime | None = None  # when an ops alert reported the current failure streak
    items_per_day: float = 0.0  # new items a day over the last week (or since first polled)

    @property
    def moved(self) -> bool:
        return self.config_url is not None and self.url != self.config_url


@dataclass(frozen=True, slots=True)
class Incoming:
    """An item to store (new, or an edit of a stored one) with what was computed from it."""

    item: Item
    matches: Sequence[Match]
    fingerprint: Fingerprint
    story_link: str | None  # items with the same story link are one story, whatever their text


@dataclass(frozen=True, slots=True)
class Known:
    """What the store already knows of a feed's items, to tell new ones from the rest."""

    fingerprints: Mapping[str, str]  # key -> fingerprint of each stored item
    tombstoned: frozenset[str]  # keys of items pruned but remembered
    feed_fingerprints: frozenset[str]  # text fingerprints of the feed's stored and pruned items
    old_links: frozenset[str]  # story links of pruned items, from any feed


# Plans a story's alerts from what the store knows of it; called inside the poll's transaction.
Planner = Callable[[StoryView], Sequence[Alert]]


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one successful poll of one feed writes, applied atomically."""

    feed: str
    url: str
    result: FetchResult
    items: Sequence[Incoming]  # new items, and stored items whose text changed
    warning: str | None = None
    seen_tombstones: Sequence[str] = ()  # keys of pruned items the feed still lists
    schedule: FeedSchedule | None = None


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    channel: str
    failing_since: datetime
    last_error: str
    last_success_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One outbox entry as `monitor deliveries` lists it."""

    id: str
    channel: str
    watchlist: str
    status: str  # pending, sent or failed
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    refused: tuple[str, ...]
    title: str


@dataclass(frozen=True, slots=True)
class PruneReport:
    items: int
    stories: int
    alerts: int
    tokens: int
    tombstones: int

    def summary(self) -> str:
        return (
            f"pruned {self.items} items, {self.stories} stories, {self.alerts} delivered alerts, "
            f"{self.tokens} items' story tokens and {self.tombstones} expired tombstones"
        )


@dataclass(frozen=True, slots=True)
class PollSummary:
    new_items: int
    updated_items: int
    alerts_queued: int


# Postings (index entries) a story lookup sums in full before it narrows to the items sharing the
# rarest tokens: a quiet window stays under it; in a busy one an item shares a common word with
# thousands. Then PROBE_ROWS bounds the postings of rare tokens read, and so the candidates whose
# stored tokens are read.
LOOKUP_ROWS = 1000
# The fewest tokens that can weigh MIN_SHARED: a token weighs PROPER_WEIGHT at the most.
_FEWEST_SHARED = math.ceil(MIN_SHARED / PROPER_WEIGHT)
PROBE_ROWS = 100
# The page cache, in KiB: a cold cycle writes all over the items table's indexes.
CACHE_KIB = 32 * 1024
CHECKPOINT_PAGES = 16384  # 64 MiB of write-ahead log
# The stored fingerprints of some items (a JSON list of ids), published within a window.
_WINDOWED_FINGERPRINTS = (
    "FROM story_fingerprints WHERE item_id IN (SELECT value FROM json_each(?)) AND published BETWEEN ? AND ?"
)


class Store:
    """SQLite at `path`, in WAL mode, migrated on open."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path
        # The story lookup's inverted index (see `_similar`): built from `story_fingerprints` when
        # first needed, kept up by this connection's writes, and built again after a rollback, a
        # prune, or a commit by another connection (SQLite's data_version tells).
        self._index: TokenIndex | None = None
        self._index_version = 0

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating it if needed) and migrate the database at `path`.

        A damaged file is refused here rather than on some later read: setting the journal mode
        reads its header and the migration check reads its schema, and SQLite reports a file that
        is not a database, or shorter than its header says, on either. An empty file is a new
        database to SQLite, and is used as one.
        """
        location = Path(path)
        if str(path) != ":memory:":
            try:
                location.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise storage_error(path, e, "creating its directory") from e
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(path), timeout=10)
            # For migration 6 (typeshed wants an aggregate to return an int; SQLite takes any value).
            conn.create_aggregate("pack_tokens", 1, PackTokens)  # type: ignore[arg-type]
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe with WAL
            # A feed's items touch index pages all over the items table (by feed and key, by
            # fingerprint, by story link): with SQLite's default 2 MB cache a cold cycle re-read
            # and re-wrote the same pages many times over.
            db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            # ... and with SQLite's default a checkpoint copied them back into the database after
            # nearly every feed: pages written by many feeds in a row are copied once instead.
            db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            store = cls(db, location)
            store._migrate()
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, sqlite3.DatabaseError | OSError):
                raise storage_error(path, e, "opening it") from e
            raise
        return store

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: database schema {version} is newer than this monitor understands "
                f"({len(MIGRATIONS)}); upgrade monitor"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                for statement in _statements(script):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _writing(self, doing: str = "writing to it") -> Iterator[None]:
        """One transaction: committed whole, or rolled back whole and raised as a StoreError that
        says what failed (a full disk, a read-only or damaged file...) and how to fix it."""
        try:
            with self.db.atomic():
                yield
        except BaseException as e:
            self._index = None  # it may hold what was rolled back: built again when next needed
            if isinstance(e, sqlite3.DatabaseError):  # OperationalError, IntegrityError, damage...
                raise storage_error(self.path or ":memory:", e, doing, rolled_back=True) from e
            raise

    def check_writable(self, now: datetime) -> None:
        """Commit one small write, as the daemon's own writes do, or raise the StoreError that
        says why the database cannot take it; health checks use it."""
        with self._writing("checking that it can be written"):
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('health_checked_at', ?)", [_iso(now)]
            )

    # Feeds

    def validators(self, feed: str) -> Validators:
        row = self.db.execute("SELECT etag, last_modified FROM feeds WHERE name = ?", [feed]).fetchone()
        return Validators(*row) if row else Validators()

    def feeds(self, now: datetime | None = None, *, name: str | None = None) -> list[FeedRow]:
        """Every stored feed (or the one named) with its health; items a day are counted over the
        week before `now`."""
        now = now or datetime.now(UTC)
        week = now - timedelta(days=7)
        # Two statements, not `:name IS NULL OR f.name = :name`: SQLite plans that as a scan of
        # every feed, and one feed's row is read before each of its polls.
        only = "WHERE f.name = :name" if name is not None else ""
        rows = self.db.execute(
            f"SELECT {_FEED_COLUMNS}, (SELECT COUNT(*) FROM items i WHERE i.feed = f.name"  # noqa: S608
            " AND i.first_seen >= :week), (SELECT MIN(first_seen) FROM items i WHERE i.feed = f.name"
            f" AND i.first_seen >= :week) FROM feeds f {only} ORDER BY name",
            {"week": _iso(week), "name": name},
        ).fetchall()
        return [_feed_row(r, now) for r in rows]

    def feed(self, name: str) -> FeedRow | None:
        """One feed's row: read before every poll, so it never counts the other feeds' items."""
        return next(iter(self.feeds(name=name)), None)

    def sync_feed(self, name: str, config_url: str) -> FeedRow | None:
        """The stored state of a feed configured at `config_url`. When the configuration names a
        new address, the old one's move, removal (410) and backoff are forgotten: the user has
        told us where the feed is now."""
        row = self.db.execute("SELECT config_url FROM feeds WHERE name = ?", [name]).fetchone()
        if row is not None and row[0] != config_url:
            with self._writing():
                self.db.execute(
                    "UPDATE feeds SET url = :url, config_url = :url, disabled_at = NULL,"
                    " disabled_reason = NULL, backoff = 0, consecutive_failures = 0, next_poll_at = NULL,"
                    " failing_reported_at = NULL, etag = NULL, last_modified = NULL WHERE name = :name",
                    {"url": config_url, "name": name},
                )
        return self.feed(name) if row is not None else None

    def disable_feed(self, name: str, reason: str, now: datetime) -> None:
        with self._writing():
            self.db.execute(
                "UPDATE feeds SET disabled_at = ?, disabled_reason = ?, next_poll_at = NULL, backoff = 0"
                " WHERE name = ?",
                [_iso(now), reason, name],
            )

    def mark_failing_reported(self, name: str, now: datetime) -> None:
        with self._writing():
            self.db.execute("UPDATE feeds SET failing_reported_at = ? WHERE name = ?", [_iso(now), name])

    def queue_alert(self, alert: Alert) -> bool:
        """Queue an alert that belongs to no story (an operator notice); False if already queued."""
        with self._writing():
            return bool(self._insert_alert(alert, _iso(alert.created_at), None))

    def _insert_alert(self, alert: Alert, created: str, story_id: int | None) -> int:
        """Add an alert to the outbox, due when it says (else at once); 0 if it is already there."""
        return int(
            self.db.execute(
                "INSERT OR IGNORE INTO outbox (id, channel, watchlist, feed, item_key, payload,"
                " created_at, next_attempt_at, story_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    alert.id,
                    alert.channel,
                    alert.watchlist,
                    alert.feed,
                    alert.item_key,
                    alert_to_json(alert),
                    created,
                    _iso(alert.due_at) if alert.due_at else created,
                    story_id,
                ],
            ).rowcount
        )

    def known(self, feed: str, items: Sequence[Item], story_links: Iterable[str]) -> Known:
        """What is already known of these items of `feed`: stored, pruned, or re-keyed copies."""
        keys = [i.key for i in items]
        fingerprints = [i.fingerprint for i in items]
        stored = dict(
            self._in("SELECT key, fingerprint FROM items WHERE feed = ? AND key IN ({})", [feed], keys)
        )
        tombstoned = {
            k for (k,) in self._in("SELECT key FROM tombstones WHERE feed = ? AND key IN ({})", [feed], keys)
        }
        same_text = {
            f
            for table in ("items", "tombstones")
            for (f,) in self._in(
                f"SELECT fingerprint FROM {table} WHERE feed = ? AND fingerprint IN ({{}})",  # noqa: S608
                [feed],
                fingerprints,
            )
        }
        old_links = {
            link
            for (link,) in self._in(
                "SELECT story_link FROM tombstones WHERE story_link IN ({})", [], list(story_links)
            )
        }
        return Known(stored, frozenset(tombstoned), frozenset(same_text), frozenset(old_links))

    def _in(
        self, query: str, params: Sequence[object], values: Sequence[object]
    ) -> Iterator[tuple[Any, ...]]:
        """Run `query` with its `IN ({})` filled by `values`, in batches under SQLite's parameter limit."""
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            yield from self.db.execute(query.format(",".join("?" * len(chunk))), [*params, *chunk])

    def stored_items(self, since: datetime, watchlist: str) -> list[StoredItem]:
        """Items first seen since `since`, oldest first, each marked if `watchlist` matched it then."""
        query = (
            f"SELECT {_ITEM_COLUMNS}, EXISTS (SELECT 1 FROM matches m WHERE m.item_id = items.id"  # noqa: S608
            " AND m.watchlist = ?) FROM items WHERE first_seen >= ? ORDER BY first_seen, id"
        )
        rows = self.db.execute(query, [watchlist, _iso(since)]).fetchall()
        return [
            StoredItem(row[0], _item(row), datetime.fromisoformat(row[10]), bool(row[13])) for row in rows
        ]

    def stored_item(self, item_id: int) -> Item | None:
        query = f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?"  # noqa: S608
        row = self.db.execute(query, [item_id]).fetchone()
        return _item(row) if row else None

    def record_poll(self, record: PollRecord, now: datetime, plan: Planner, window: timedelta) -> PollSummary:
        """Store new and edited items, their matches, stories and alerts, and the feed's validators.

        All or nothing. Validators are saved with the items they vouch for, so a crash can never
        leave a feed marked "not modified" whose items were not stored. Each item joins a story
        (see `_join_story`); `plan` then decides which of the story's alerts are owed, and only
        those not already queued for the same story, watchlist and channel are added.
        """
        stamp = _iso(now)
        new = updated = queued = 0
        with self._writing():
            if record.seen_tombstones:
                # A pruned item the feed still lists keeps its tombstone alive.
                list(
                    self._in(
                        "UPDATE tombstones SET seen_at = ? WHERE feed = ? AND key IN ({})",
                        [stamp, record.feed],
                        list(record.seen_tombstones),
                    )
                )
            for incoming in record.items:
                item_id, story_id, fresh = self._upsert_item(incoming, stamp)
                new += fresh
                updated += not fresh
                story_id = self._join_story(item_id, story_id, incoming, window, stamp)
                queued += self._queue_alerts(story_id, plan, stamp)
            self._upsert_feed(
                record.feed,
                record.url,
                now,
                status=record.result.status.value,
                error=record.warning,
                success=True,
                validators=record.result.validators,
                new_items=new,
                schedule=record.schedule,
            )
        return PollSummary(new, updated, queued)

    def _upsert_item(self, incoming: Incoming, stamp: str) -> tuple[int, int | None, bool]:
        """Insert a new item or update an edited one: (row id, its story, whether it is new).

        An edit records only the watchlists the item did not match before: those are the only
        ones that may alert again.
        """
        item = incoming.item
        values = {
            "feed": item.feed,
            "key": item.key,
            "title": item.title,
            "summary": item.summary,
            "link": item.link,
            "author": item.author,
            "tags": json.dumps(list(item.tags)),
            "published": _iso(item.published),
            "updated": _iso(item.updated) if item.updated else None,
            "first_seen": stamp,
            "fingerprint": item.fingerprint,
            "outlet": item.outlet or item.feed,
            "story_link": incoming.story_link,
            "token_weight": incoming.fingerprint.weight,
        }
        row = self.db.execute(
            "SELECT id, story_id FROM items WHERE feed = ? AND key = ?", [item.feed, item.key]
        ).fetchone()
        if row is None:
            columns = ", ".join(values)
            marks = ", ".join(f":{c}" for c in values)
            item_id = self.db.execute(f"INSERT INTO items ({columns}) VALUES ({marks})", values).lastrowid  # noqa: S608
            assert item_id is not None
            story_id, fresh, matched_before = None, True, set()
        else:
            item_id, story_id = row
            del values["first_seen"], values["feed"], values["key"]
            assignments = ", ".join(f"{c} = :{c}" for c in values)
            self.db.execute(f"UPDATE items SET {assignments} WHERE id = :id", {**values, "id": item_id})  # noqa: S608
            old = self.db.execute(
                "SELECT tokens FROM story_fingerprints WHERE item_id = ?", [item_id]
            ).fetchone()
            if old is not None:
                self._token_index().remove(item_id, unpack_tokens(old[0]))
                self.db.execute("DELETE FROM story_fingerprints WHERE item_id = ?", [item_id])
            matched_before = {
                w for (w,) in self.db.execute("SELECT watchlist FROM matches WHERE item_id = ?", [item_id])
            }
            fresh = False
        for match in incoming.matches:
            if match.watchlist not in matched_before:
                self.db.execute(
                    "INSERT INTO matches (item_id, watchlist, terms, matched_at) VALUES (?, ?, ?, ?)",
                    [item_id, match.watchlist, json.dumps(list(match.terms)), stamp],
                )
        return item_id, story_id, fresh

    def _join_story(
        self, item_id: int, story_id: int | None, incoming: Incoming, window: timedelta, stamp: str
    ) -> int:
        """Put the item in a story: the one of every stored item with the same story link or a
        near-duplicate text published within `window`. When it links several stories they merge,
        so the grouping is the same whatever order the copies arrive in.
        """
        stories = {story_id} if story_id is not None else set()
        if incoming.story_link:
            stories.update(
                sid
                for (sid,) in self.db.execute(
                    "SELECT DISTINCT story_id FROM items WHERE story_link = ? AND id != ?",
                    [incoming.story_link, item_id],
                )
            )
        fp = incoming.fingerprint
        published = int(fp.published.timestamp())
        span = int(window.total_seconds())
        if fp.weight >= MIN_SHARED:  # a lighter item cannot share enough with any other
            stories.update(self._similar(item_id, fp, published - span, published + span))
        if not stories:
            cursor = self.db.execute("INSERT INTO stories (first_seen) VALUES (?)", [stamp])
            assert cursor.lastrowid is not None
            stories.add(cursor.lastrowid)
        target = min(stories)
        for merged in stories - {target}:
            self._merge_stories(merged, target)
        self.db.execute("UPDATE items SET story_id = ? WHERE id = ?", [target, item_id])
        self.db.execute(
            "INSERT OR REPLACE INTO story_fingerprints (item_id, published, tokens) VALUES (?, ?, ?)",
            [item_id, published, pack_tokens(fp.tokens)],
        )
        self._token_index().add(item_id, fp.tokens)
        return target

    def _similar(self, item_id: int, fp: Fingerprint, start: int, end: int) -> set[int]:
        """The stories of the items published between `start` and `end` that are the same story
        as `fp` (`same_story`).

        When the postings of the item's tokens are few (LOOKUP_ROWS), every item sharing a
        token is summed from the index. Past that, which a busy window reaches, the lookup would
        read a growing share of the window for every item: instead the candidates are the items
        that share one of its rarest tokens (names and numbers, which a copy keeps), as many of
        those as PROBE_ROWS postings allow, and their stored tokens are read to sum what they share.
        The sums are exact either way; a copy that shares none of the rarest tokens is missed.
        A token weighs the same in every item (see `monitor.stories`), so the item's own weights
        are summed.
        """
        index = self._token_index()
        tokens = fp.tokens
        by_rarity = sorted((index.count(token), token) for token in tokens)
        shared: dict[int, float] = {}
        if sum(count for count, _ in by_rarity) <= LOOKUP_ROWS:
            for token, weight in tokens.items():
                for other in index.items(token):
                    shared[other] = shared.get(other, 0.0) + weight
            rows = self.db.execute(
                f"SELECT item_id {_WINDOWED_FINGERPRINTS}",
                [_json_ids(other for other, weight in shared.items() if weight >= MIN_SHARED), start, end],
            )
            near = {other: shared[other] for (other,) in rows}
        else:
            rows_read = 0
            for probed, (count, token) in enumerate(by_rarity):
                rows_read += count
                if probed and rows_read > PROBE_ROWS:
                    break
                shared.update(dict.fromkeys(index.items(token), 0.0))
            near = {}
            own, weigh = set(tokens), tokens.__getitem__
            for other, blob in self.db.execute(
                f"SELECT item_id, tokens {_WINDOWED_FINGERPRINTS}",
                [_json_ids(shared), start, end],
            ):
                common = own.intersection(unpack_tokens(blob))
                # Most candidates share a token or two, which cannot weigh MIN_SHARED: not summed.
                if len(common) >= _FEWEST_SHARED:
                    weight = sum(map(weigh, common))
                    if weight >= MIN_SHARED:
                        near[other] = weight
        near.pop(item_id, None)
        if not near:
            return set()
        return {
            story
            for other, weight, story in self.db.execute(
                "SELECT id, token_weight, story_id FROM items WHERE id IN (SELECT value FROM json_each(?))",
                [_json_ids(near)],
            )
            if same_story(near[other], fp.weight, weight)
        }

    def _token_index(self) -> TokenIndex:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._index is None or version != self._index_version:
            self._index = TokenIndex.load(self.db.execute("SELECT item_id, tokens FROM story_fingerprints"))
            self._index_version = version
        return self._index

    def indexed_tokens(self) -> int:
        """Distinct tokens in the story index, 0 before it is built (a benchmark reports it)."""
        return 0 if self._index is None else self._index.tokens

    def _merge_stories(self, merged: int, target: int) -> None:
        self.db.execute("UPDATE items SET story_id = ? WHERE story_id = ?", [target, merged])
        self.db.execute("UPDATE OR IGNORE story_alerts SET story_id = ? WHERE story_id = ?", [target, merged])
        self.db.execute("DELETE FROM story_alerts WHERE story_id = ?", [merged])
        self.db.execute("UPDATE outbox SET story_id = ? WHERE story_id = ?", [target, merged])
        self.db.execute("DELETE FROM stories WHERE id = ?", [merged])

    def story_view(self, story_id: int) -> StoryView:
        outlets = [
            o
            for (o,) in self.db.execute(
                "SELECT outlet FROM items WHERE story_id = ? ORDER BY first_seen, id", [story_id]
            )
        ]
        matched: dict[str, tuple[Item, tuple[str, ...]]] = {}
        for row in self.db.execute(
            f"SELECT {_ITEM_COLUMNS}, m.watchlist, m.terms FROM matches m JOIN items ON items.id = m.item_id"  # noqa: S608
            " WHERE items.story_id = ? ORDER BY items.first_seen, items.id",
            [story_id],
        ):
            if row[-2] not in matched:
                matched[row[-2]] = (_item(row), tuple(json.loads(row[-1])))
        alerted = frozenset(
            self.db.execute(
                "SELECT watchlist, channel FROM story_alerts WHERE story_id = ?", [story_id]
            ).fetchall()
        )
        return StoryView(story_id, tuple(dict.fromkeys(outlets)), matched, alerted)

    def _queue_alerts(self, story_id: int, plan: Planner, stamp: str) -> int:
        # Most stories match no watchlist: one existence check spares them reading the whole view.
        if not self.db.execute(
            "SELECT 1 FROM matches m JOIN items i ON i.id = m.item_id WHERE i.story_id = ? LIMIT 1",
            [story_id],
        ).fetchone():
            return 0
        view = self.story_view(story_id)
        queued = 0
        for alert in plan(view):
            queued += self._insert_alert(alert, stamp, story_id)
            self.db.execute(
                "INSERT OR IGNORE INTO story_alerts (story_id, watchlist, channel, alert_id)"
                " VALUES (?, ?, ?, ?)",
                [story_id, alert.watchlist, alert.channel, alert.id],
            )
        return queued

    def record_unchanged(
        self, feed: str, url: str, status: str, now: datetime, schedule: FeedSchedule | None = None
    ) -> None:
        with self._writing():
            self._upsert_feed(feed, url, now, status=status, error=None, success=True, schedule=schedule)

    def record_failure(
        self, feed: str, url: str, error: str, now: datetime, schedule: FeedSchedule | None = None
    ) -> None:
        with self._writing():
            self._upsert_feed(feed, url, now, status="failed", error=error, success=False, schedule=schedule)

    def _upsert_feed(
        self,
        feed: str,
        url: str,
        now: datetime,
        *,
        status: str,
        error: str | None,
        success: bool,
        validators: Validators | None = None,
        new_items: int = 0,
        schedule: FeedSchedule | None = None,
    ) -> None:
        """Record a poll of `feed`, configured at `url`. A schedule's `moved_to` moves the address
        it is fetched from; the configured one is kept, to tell a later config edit from the move."""
        stamp = _iso(now)
        self.db.execute(
            "INSERT OR IGNORE INTO feeds (name, url, config_url) VALUES (?, ?, ?)", [feed, url, url]
        )
        self.db.execute(
            "UPDATE feeds SET url = COALESCE(:moved_to, url), last_polled_at = :now, last_status = :status,"
            " last_error = CASE WHEN :error IS NOT NULL THEN :error"
            " WHEN :success THEN NULL ELSE last_error END,"
            " last_error_at = CASE WHEN :error IS NOT NULL THEN :now ELSE last_error_at END,"
            " last_success_at = CASE WHEN :success THEN :now ELSE last_success_at END,"
            " consecutive_failures = CASE WHEN :success THEN 0 ELSE consecutive_failures + 1 END,"
            " failing_reported_at = CASE WHEN :success THEN NULL ELSE failing_reported_at END,"
            " next_poll_at = :next_poll_at, backoff = :backoff,"
            " items_total = items_total + :new_items WHERE name = :feed",
            {
                "moved_to": schedule.moved_to if schedule else None,
                "now": stamp,
                "status": status,
                "error": error,
                "success": success,
                "new_items": new_items,
                "feed": feed,
                "next_poll_at": _iso(schedule.next_poll_at) if schedule else None,
                "backoff": schedule.backoff if schedule else 0.0,
            },
        )
        if validators is not None:
            self.db.execute(
                "UPDATE feeds SET etag = ?, last_modified = ? WHERE name = ?",
                [validators.etag, validators.last_modified, feed],
            )

    # Outbox

    def due_alerts(
        self, now: datetime | None, channels: Sequence[str], limit: int = 1000, *, retry_now: bool = False
    ) -> list[Alert]:
        """Pending alerts for `channels` whose next attempt is due (every pending one when `now` is
        None). With `retry_now`, alerts that failed before are due at once, whatever their backoff
        (alerts waiting for a digest or for the end of quiet hours still wait).

        Alerts queued for a channel no longer configured are left alone, and do not count towards
        `limit`, so they can never crowd out the channels that work.
        """
        if not channels:
            return []
        marks = ",".join("?" * len(channels))
        retried = " OR attempts > 0" if retry_now else ""
        due = "" if now is None else f" AND (next_attempt_at <= ?{retried})"
        rows = self.db.execute(
            f"SELECT payload, story_id FROM outbox WHERE status = 'pending' AND channel IN ({marks}){due}"  # noqa: S608
            " ORDER BY created_at, id LIMIT ?",
            [*channels, *([] if now is None else [_iso(now)]), limit],
        )
        return [self._with_sources(alert_from_json(payload), story) for payload, story in rows.fetchall()]

    def _with_sources(self, alert: Alert, story_id: int | None) -> Alert:
        """The alert with every outlet its story has now, copies that came while it waited included."""
        if story_id is None:
            return alert
        entries = [
            StoryEntry(outlet or feed, title, link, datetime.fromisoformat(published))
            for outlet, feed, title, link, published in self.db.execute(
                "SELECT outlet, feed, title, link, published FROM items WHERE story_id = ?"
                " ORDER BY first_seen, id",
                [story_id],
            )
        ]
        if not entries:  # the story was pruned: keep what the alert was queued with
            return alert
        sources = tuple(dict.fromkeys([alert.outlet or alert.feed, *(e.outlet for e in entries)]))
        return dataclasses.replace(alert, story_id=story_id, sources=sources, story_items=tuple(entries))

    def stories_of(self, story_id: int) -> list[Item]:
        """The items of one story, in arrival order."""
        query = f"SELECT {_ITEM_COLUMNS} FROM items WHERE story_id = ? ORDER BY first_seen, id"  # noqa: S608
        return [_item(row) for row in self.db.execute(query, [story_id])]

    def recent_stories(self, since: datetime, min_outlets: int) -> list[tuple[int, list[Item]]]:
        """Stories with an item first seen since `since` and at least `min_outlets` outlets, newest first."""
        rows = self.db.execute(
            "SELECT story_id FROM items WHERE story_id IN (SELECT story_id FROM items WHERE first_seen >= ?)"
            " GROUP BY story_id HAVING COUNT(DISTINCT outlet) >= ? ORDER BY MAX(first_seen) DESC",
            [_iso(since), min_outlets],
        ).fetchall()
        return [(story_id, self.stories_of(story_id)) for (story_id,) in rows]

    # Retention

    def prune(self, now: datetime, retention: timedelta, window: timedelta) -> PruneReport:
        """Forget items first seen before `now - retention`, keeping a tombstone of each.

        A tombstone keeps the item's identity (feed and key), its story link and its text
        fingerprint, so an old item that reappears is recognised; it lives `retention` after the
        feed last listed the item. Token rows go once no new copy can pair with them: two
        windows after publication (one for the pairing, one for a late-arriving copy). Pending
        alerts are kept whatever their age: they are owed.
        """
        cutoff = _iso(now - retention)
        stamp = _iso(now)
        with self._writing():
            self.db.execute(
                "INSERT OR REPLACE INTO tombstones (feed, key, story_link, fingerprint, seen_at)"
                " SELECT feed, key, story_link, fingerprint, ? FROM items WHERE first_seen < ?",
                [stamp, cutoff],
            )
            self.db.execute(
                "DELETE FROM story_fingerprints WHERE item_id IN (SELECT id FROM items WHERE first_seen < ?)",
                [cutoff],
            )
            items = self.db.execute("DELETE FROM items WHERE first_seen < ?", [cutoff]).rowcount
            orphans = "NOT IN (SELECT story_id FROM items WHERE story_id IS NOT NULL)"
            stories = self.db.execute(f"DELETE FROM stories WHERE id {orphans}").rowcount  # noqa: S608
            self.db.execute(f"DELETE FROM story_alerts WHERE story_id {orphans}")  # noqa: S608
            # Alerts still owed keep the sources they were queued with: their story is gone, and its
            # id may be given to a new story.
            self.db.execute(
                "UPDATE outbox SET story_id = NULL WHERE story_id NOT IN (SELECT id FROM stories)"
            )
            alerts = self.db.execute(
                "DELETE FROM outbox WHERE status != 'pending' AND created_at < ?", [cutoff]
            ).rowcount
            tokens = self.db.execute(
                "DELETE FROM story_fingerprints WHERE published < ?",
                [int((now - 2 * window).timestamp())],
            ).rowcount
            tombstones = self.db.execute("DELETE FROM tombstones WHERE seen_at < ?", [cutoff]).rowcount
        self._index = None  # built again, without the pruned items, when next needed
        return PruneReport(items, stories, alerts, tokens, tombstones)

    def record_deliveries(
        self,
        outcomes: Sequence[DeliveryOutcome],
        now: datetime,
        max_age: timedelta = timedelta(days=7),
        rng: random.Random | None = None,
    ) -> None:
        """Record a delivery run in one transaction: sent, or failed and when to retry.

        A temporary failure is retried on the backoff schedule (sooner never than a Retry-After
        asked) until the alert is `max_age` old (counted from a manual retry, if any), then it
        is given up as failed. A permanent failure fails the alert at once and marks its channel
        as failing until something is delivered to it again.
        """
        stamp = _iso(now)
        with self._writing():
            for outcome in outcomes:
                if outcome.delivered:
                    self.db.execute(
                        "UPDATE outbox SET status = 'sent', sent_at = ?, last_attempt_at = ?,"
                        " attempts = attempts + 1, last_error = ?, refused = ? WHERE id = ?",
                        [
                            stamp,
                            stamp,
                            outcome.error,
                            json.dumps(list(outcome.refused)) if outcome.refused else None,
                            outcome.alert_id,
                        ],
                    )
                    self._channel_health(outcome.channel, stamp, None)
                    continue
                row = self.db.execute(
                    "SELECT attempts, COALESCE(requeued_at, created_at) FROM outbox WHERE id = ?",
                    [outcome.alert_id],
                ).fetchone()
                if row is None:
                    continue
                attempts, since = row[0] + 1, datetime.fromisoformat(row[1])
                status, error = ("pending" if outcome.temporary else "failed"), outcome.error
                retry = retry_at(attempts, now, requested=outcome.retry_after, rng=rng)
                if outcome.temporary and retry - since > max_age:
                    status = "failed"
                    error = f"gave up after {attempts} attempts over {_span(now - since)}: {outcome.error}"
                self.db.execute(
                    "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, last_attempt_at = ?,"
                    " next_attempt_at = ? WHERE id = ?",
                    [status, attempts, error, stamp, _iso(retry), outcome.alert_id],
                )
                if not outcome.temporary:
                    self._channel_health(outcome.channel, stamp, outcome.error or "refused")

    def _channel_health(self, channel: str, stamp: str, permanent_error: str | None) -> None:
        """A delivery clears a channel's failing mark; a permanent failure sets it (keeping when
        it started). Temporary failures are the outbox's business, not a channel fault."""
        if permanent_error is None:
            self.db.execute(
                "INSERT INTO channel_health (channel, last_success_at) VALUES (?, ?) ON CONFLICT (channel)"
                " DO UPDATE SET failing_since = NULL, last_success_at = excluded.last_success_at",
                [channel, stamp],
            )
        else:
            self.db.execute(
                "INSERT INTO channel_health (channel, failing_since, last_error, last_failure_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET"
                " failing_since = COALESCE(failing_since, excluded.failing_since),"
                " last_error = excluded.last_error, last_failure_at = excluded.last_failure_at",
                [channel, stamp, permanent_error, stamp],
            )

    def failing_channels(self) -> list[ChannelHealth]:
        """Channels whose last delivery failed for good (a revoked webhook), oldest fault first."""
        rows = self.db.execute(
            "SELECT channel, failing_since, last_error, last_success_at FROM channel_health"
            " WHERE failing_since IS NOT NULL ORDER BY failing_since, channel"
        )
        return [ChannelHealth(c, datetime.fromisoformat(f), e or "", _dt(s)) for c, f, e, s in rows]

    def deliveries(self, *, failed_only: bool = False, limit: int = 100) -> list[DeliveryRow]:
        """The outbox, newest first: what was sent, what waits and why, what failed."""
        where = "WHERE status = 'failed'" if failed_only else ""
        rows = self.db.execute(
            "SELECT id, channel, watchlist, status, attempts, created_at, next_attempt_at, sent_at,"  # noqa: S608
            f" last_error, refused, payload FROM outbox {where} ORDER BY created_at DESC, id LIMIT ?",
            [limit],
        )
        return [
            DeliveryRow(
                id=r[0],
                channel=r[1],
                watchlist=r[2],
                status=r[3],
                attempts=r[4],
                created_at=datetime.fromisoformat(r[5]),
                next_attempt_at=datetime.fromisoformat(r[6]),
                sent_at=_dt(r[7]),
                last_error=r[8],
                refused=tuple(json.loads(r[9])) if r[9] else (),
                title=json.loads(r[10]).get("title", ""),
            )
            for r in rows
        ]

    def requeue(self, ids: Sequence[str] | None, now: datetime) -> int:
        """Make failed alerts pending again, due now, with a fresh maximum age: the given ids
        (any prefix of 6 or more characters names an alert), or every failed alert when None."""
        stamp = _iso(now)
        update = (
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, requeued_at = ?"
            " WHERE status = 'failed'"
        )
        with self._writing():
            if ids is None:
                return self.db.execute(update, [stamp, stamp]).rowcount
            return sum(
                self.db.execute(update + " AND id LIKE ? || '%'", [stamp, stamp, i]).rowcount
                for i in ids
                if len(i) >= 6
            )

    def outbox_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        return dict(rows)

    # Meta: small facts about the service itself (last cycle, for health checks).

    def set_meta(self, key: str, value: str) -> None:
        with self._writing():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def delete_meta(self, key: str) -> None:
        with self._writing():
            self.db.execute("DELETE FROM meta WHERE key = ?", [key])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None


_FEED_COLUMNS = (
    "name, url, last_polled_at, last_success_at, last_status, last_error, consecutive_failures,"
    " items_total, config_url, last_error_at, next_poll_at, backoff, disabled_at, disabled_reason,"
    " failing_reported_at"
)


def _feed_row(r: Sequence[Any], now: datetime) -> FeedRow:
    recent, first = r[15], _dt(r[16])
    # A feed first polled three days ago has three days of items, not seven.
    days = max((now - first).total_seconds() / 86400, 1.0) if first else 7.0
    return FeedRow(
        name=r[0],
        url=r[1],
        last_polled_at=_dt(r[2]),
        last_success_at=_dt(r[3]),
        last_status=r[4],
        last_error=r[5],
        consecutive_failures=r[6],
        items_total=r[7],
        config_url=r[8],
        last_error_at=_dt(r[9]),
        next_poll_at=_dt(r[10]),
        backoff=r[11],
        disabled_at=_dt(r[12]),
        disabled_reason=r[13],
        failing_reported_at=_dt(r[14]),
        items_per_day=recent / min(days, 7.0),
    )


_ITEM_COLUMNS = (
    "items.id, feed, key, title, summary, link, author, tags, published, updated, first_seen,"
    " fingerprint, outlet"
)


def _item(row: Sequence[Any]) -> Item:
    return Item(
        feed=row[1],
        key=row[2],
        title=row[3],
        summary=row[4],
        link=row[5],
        published=datetime.fromisoformat(row[8]),
        updated=_dt(row[9]),
        author=row[6],
        tags=tuple(json.loads(row[7])),
        fingerprint=row[11],
        outlet=row[12],
    )


def _json_ids(ids: Iterable[int]) -> str:
    """Row ids as a JSON array for `json_each`; json.dumps takes three times as long on ints."""
    return "[" + ",".join(map(str, ids)) + "]"


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def alert_to_json(alert: Alert) -> str:
    data: dict[str, Any] = asdict(alert)
    data["severity"] = alert.severity.label
    data["published"] = _iso(alert.published)
    data["created_at"] = _iso(alert.created_at)
    data["due_at"] = _iso(alert.due_at) if alert.due_at else None
    for entry, item in zip(data["story_items"], alert.story_items, strict=True):
        entry["published"] = _iso(item.published)
    return json.dumps(data, ensure_ascii=False)


def alert_from_json(text: str) -> Alert:
    data = json.loads(text)
    data["severity"] = Severity[data["severity"].upper()]
    data["published"] = datetime.fromisoformat(data["published"])
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    data["due_at"] = _dt(data.get("due_at"))
    data["terms"] = tuple(data["terms"])
    data["sources"] = tuple(data.get("sources", ()))
    data["story_items"] = tuple(
        StoryEntry(e["outlet"], e["title"], e["link"], datetime.fromisoformat(e["published"]))
        for e in data.get("story_items", ())
    )
    return Alert(**data)
