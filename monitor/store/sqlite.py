"""The SQLite store. All writes of one feed poll happen in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.errors import StoreError
from monitor.store.migrations import MIGRATIONS
from monitor.types import Alert, DeliveryOutcome, FetchResult, Item, Match, Severity, StoredItem, Validators

# Delay before each retry of an alert whose delivery failed temporarily (then every 12 hours).
RETRY_DELAYS = (30, 120, 600, 3600, 6 * 3600, 12 * 3600)


@dataclass(frozen=True, slots=True)
class FeedRow:
    name: str
    url: str
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_status: str | None
    last_error: str | None
    consecutive_failures: int
    items_total: int


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one successful poll of one feed writes, applied atomically."""

    feed: str
    url: str
    result: FetchResult
    items: Sequence[tuple[Item, Sequence[Match]]]
    alerts: Sequence[Alert]
    warning: str | None = None


class Store:
    """SQLite at `path`, in WAL mode, migrated on open."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Store:
        location = Path(path)
        try:
            if str(path) != ":memory:":
                location.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=10)
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe with WAL
            store = cls(db, location)
            store._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{path}: cannot use the state database ({e}); if the file is damaged, move it aside "
                "and restart: feeds are polled afresh"
            ) from e
        except OSError as e:
            raise StoreError(f"{path}: cannot create the state directory: {e.strerror}") from e
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
    def _writing(self) -> Iterator[None]:
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as e:  # OperationalError, IntegrityError, a damaged file...
            raise StoreError(f"{self.path}: write failed and was rolled back: {e}") from e

    # Feeds

    def validators(self, feed: str) -> Validators:
        row = self.db.execute("SELECT etag, last_modified FROM feeds WHERE name = ?", [feed]).fetchone()
        return Validators(*row) if row else Validators()

    def feeds(self) -> list[FeedRow]:
        rows = self.db.execute(
            "SELECT name, url, last_polled_at, last_success_at, last_status, last_error, "
            "consecutive_failures, items_total FROM feeds ORDER BY name"
        ).fetchall()
        return [FeedRow(r[0], r[1], _dt(r[2]), _dt(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def known_items(self, feed: str, keys: Iterable[str]) -> dict[str, str]:
        """key -> fingerprint for the given keys already stored for `feed`."""
        known: dict[str, str] = {}
        batch = list(keys)
        for start in range(0, len(batch), 500):  # stay under SQLite's bound-parameter limit
            chunk = batch[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, fingerprint in self.db.execute(
                f"SELECT key, fingerprint FROM items WHERE feed = ? AND key IN ({marks})",  # noqa: S608
                [feed, *chunk],
            ):
                known[key] = fingerprint
        return known

    def stored_items(self, since: datetime, watchlist: str) -> list[StoredItem]:
        """Items first seen since `since`, oldest first, each marked if `watchlist` matched it then."""
        query = (
            f"SELECT {_ITEM_COLUMNS}, EXISTS (SELECT 1 FROM matches m WHERE m.item_id = items.id"  # noqa: S608
            " AND m.watchlist = ?) FROM items WHERE first_seen >= ? ORDER BY first_seen, id"
        )
        rows = self.db.execute(query, [watchlist, _iso(since)]).fetchall()
        return [
            StoredItem(row[0], _item(row), datetime.fromisoformat(row[10]), bool(row[12])) for row in rows
        ]

    def stored_item(self, item_id: int) -> Item | None:
        query = f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?"  # noqa: S608
        row = self.db.execute(query, [item_id]).fetchone()
        return _item(row) if row else None

    def record_poll(self, record: PollRecord, now: datetime) -> int:
        """Store new items, their matches and alerts, and the feed's validators: all or nothing.

        Validators are saved with the items they vouch for, so a crash can never leave a feed
        marked "not modified" whose items were not stored. Returns how many alerts were queued:
        fewer than given when the same story's alert is already in the outbox.
        """
        queued = 0
        stamp = _iso(now)
        with self._writing():
            for item, matches in record.items:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO items (feed, key, title, summary, link, author, tags, published,"
                    " updated, first_seen, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        item.feed,
                        item.key,
                        item.title,
                        item.summary,
                        item.link,
                        item.author,
                        json.dumps(list(item.tags)),
                        _iso(item.published),
                        _iso(item.updated) if item.updated else None,
                        stamp,
                        item.fingerprint,
                    ],
                )
                if cursor.rowcount == 0:
                    continue
                for match in matches:
                    self.db.execute(
                        "INSERT INTO matches (item_id, watchlist, terms, matched_at) VALUES (?, ?, ?, ?)",
                        [cursor.lastrowid, match.watchlist, json.dumps(list(match.terms)), stamp],
                    )
            for alert in record.alerts:
                queued += self.db.execute(
                    "INSERT OR IGNORE INTO outbox (id, channel, watchlist, feed, item_key, payload,"
                    " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        alert.id,
                        alert.channel,
                        alert.watchlist,
                        alert.feed,
                        alert.item_key,
                        alert_to_json(alert),
                        stamp,
                        stamp,
                    ],
                ).rowcount
            self._upsert_feed(
                record.feed,
                record.url,
                now,
                status=record.result.status.value,
                error=record.warning,
                success=True,
                validators=record.result.validators,
                new_items=len(record.items),
            )
        return queued

    def record_unchanged(self, feed: str, url: str, status: str, now: datetime) -> None:
        with self._writing():
            self._upsert_feed(feed, url, now, status=status, error=None, success=True)

    def record_failure(self, feed: str, url: str, error: str, now: datetime) -> None:
        with self._writing():
            self._upsert_feed(feed, url, now, status="failed", error=error, success=False)

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
    ) -> None:
        stamp = _iso(now)
        self.db.execute("INSERT OR IGNORE INTO feeds (name, url) VALUES (?, ?)", [feed, url])
        self.db.execute(
            "UPDATE feeds SET url = :url, last_polled_at = :now, last_status = :status,"
            " last_error = CASE WHEN :error IS NOT NULL THEN :error"
            " WHEN :success THEN NULL ELSE last_error END,"
            " last_error_at = CASE WHEN :error IS NOT NULL THEN :now ELSE last_error_at END,"
            " last_success_at = CASE WHEN :success THEN :now ELSE last_success_at END,"
            " consecutive_failures = CASE WHEN :success THEN 0 ELSE consecutive_failures + 1 END,"
            " items_total = items_total + :new_items WHERE name = :feed",
            {
                "url": url,
                "now": stamp,
                "status": status,
                "error": error,
                "success": success,
                "new_items": new_items,
                "feed": feed,
            },
        )
        if validators is not None:
            self.db.execute(
                "UPDATE feeds SET etag = ?, last_modified = ? WHERE name = ?",
                [validators.etag, validators.last_modified, feed],
            )

    # Outbox

    def due_alerts(self, now: datetime | None, channels: Sequence[str], limit: int = 1000) -> list[Alert]:
        """Pending alerts for `channels` whose next attempt is due (all pending ones when `now` is None).

        Alerts queued for a channel no longer configured are left alone, and do not count towards
        `limit`, so they can never crowd out the channels that work.
        """
        if not channels:
            return []
        marks = ",".join("?" * len(channels))
        due = "" if now is None else " AND next_attempt_at <= ?"
        rows = self.db.execute(
            f"SELECT payload FROM outbox WHERE status = 'pending' AND channel IN ({marks}){due}"  # noqa: S608
            " ORDER BY created_at, id LIMIT ?",
            [*channels, *([] if now is None else [_iso(now)]), limit],
        )
        return [alert_from_json(r[0]) for r in rows.fetchall()]

    def record_deliveries(self, outcomes: Sequence[DeliveryOutcome], now: datetime) -> None:
        """Record a delivery run in one transaction: sent, or failed and when to retry."""
        stamp = _iso(now)
        with self._writing():
            for outcome in outcomes:
                if outcome.delivered:
                    self.db.execute(
                        "UPDATE outbox SET status = 'sent', sent_at = ?, last_attempt_at = ?,"
                        " attempts = attempts + 1, last_error = NULL WHERE id = ?",
                        [stamp, stamp, outcome.alert_id],
                    )
                    continue
                row = self.db.execute(
                    "SELECT attempts FROM outbox WHERE id = ?", [outcome.alert_id]
                ).fetchone()
                attempts = (row[0] if row else 0) + 1
                delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
                self.db.execute(
                    "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, last_attempt_at = ?,"
                    " next_attempt_at = ? WHERE id = ?",
                    [
                        "pending" if outcome.temporary else "failed",
                        attempts,
                        outcome.error,
                        stamp,
                        _iso(now + timedelta(seconds=delay)),
                        outcome.alert_id,
                    ],
                )

    def outbox_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        return dict(rows)

    # Meta: small facts about the service itself (last cycle, for health checks).

    def set_meta(self, key: str, value: str) -> None:
        with self._writing():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None


_ITEM_COLUMNS = (
    "id, feed, key, title, summary, link, author, tags, published, updated, first_seen, fingerprint"
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
    )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def alert_to_json(alert: Alert) -> str:
    data: dict[str, Any] = asdict(alert)
    data["severity"] = alert.severity.label
    data["published"] = _iso(alert.published)
    data["created_at"] = _iso(alert.created_at)
    return json.dumps(data, ensure_ascii=False)


def alert_from_json(text: str) -> Alert:
    data = json.loads(text)
    data["severity"] = Severity[data["severity"].upper()]
    data["published"] = datetime.fromisoformat(data["published"])
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    data["terms"] = tuple(data["terms"])
    return Alert(**data)
