"""The SQLite store, on a real file: migrations, atomic polls, the outbox and alert round-trips."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

import monitor.store.sqlite as sqlite_module
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.migrations import MIGRATIONS
from monitor.store.sqlite import RETRY_DELAYS, PollRecord, alert_from_json, alert_to_json
from monitor.types import Alert, DeliveryOutcome, FetchResult, FetchStatus, Item, Match, Severity, Validators

CHANNELS = ("ops", "mail")

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)


def make_item(key: str, feed: str = "wire", title: str | None = None) -> Item:
    return Item(
        feed=feed,
        key=key,
        title=title or f"Title {key}",
        summary=f"Summary {key}",
        link=f"https://wire.example/{key}",
        published=datetime(2024, 1, 18, 9, 30, tzinfo=UTC),
        updated=None,
        author="Desk",
        tags=("iran", "pakistan"),
        fingerprint=f"fp-{key}",
    )


def make_alert(item: Item, channel: str = "ops", watchlist: str = "envoys", **changes: object) -> Alert:
    values: dict[str, object] = {
        "id": f"{item.key}-{watchlist}-{channel}",
        "channel": channel,
        "watchlist": watchlist,
        "watchlist_name": "Envoys return",
        "severity": Severity.HIGH,
        "feed": item.feed,
        "item_key": item.key,
        "title": item.title,
        "summary": item.summary,
        "link": item.link,
        "published": item.published,
        "terms": ("ambassador*", "Tehran"),
        "created_at": NOW,
    }
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def ok(etag: str | None = '"v1"', last_modified: str | None = "Sat, 20 Jan 2024 11:00:00 GMT") -> FetchResult:
    return FetchResult("wire", FetchStatus.OK, body=b"<rss/>", validators=Validators(etag, last_modified))


def poll(keys: list[str], etag: str = '"v1"', channels: tuple[str, ...] = ("ops",)) -> PollRecord:
    items = [make_item(k) for k in keys]
    matched = [(i, [Match("envoys", ("ambassador*",))]) for i in items]
    alerts = [make_alert(i, channel=c) for i in items for c in channels]
    return PollRecord("wire", "https://wire.example/rss", ok(etag), matched, alerts)


def count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608


def outbox_row(store: Store, alert_id: str) -> dict[str, object]:
    cursor = store.db.execute("SELECT * FROM outbox WHERE id = ?", [alert_id])
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "state" / "monitor.db")
    yield s
    s.close()


# Opening and migrating


def test_open_creates_directory_and_migrates(tmp_path):
    """Opening a new path creates its directory and applies every migration."""
    path = tmp_path / "deep" / "state" / "monitor.db"
    s = Store.open(path)
    try:
        assert path.exists()
        assert s.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"feeds", "items", "matches", "outbox", "meta"} <= tables
    finally:
        s.close()


def test_wal_mode_and_foreign_keys(store):
    """The database is in WAL mode, with foreign keys enforced."""
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_wal_mode_persists_in_the_file(tmp_path):
    """WAL is a property of the file: a plain sqlite3 connection sees it too."""
    path = tmp_path / "m.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_is_idempotent_and_keeps_data(tmp_path):
    """Opening an up-to-date database again migrates nothing and loses nothing."""
    path = tmp_path / "m.db"
    s = Store.open(path)
    s.record_poll(poll(["a", "b"]), NOW)
    s.set_meta("k", "v")
    s.close()
    for _ in range(2):
        s = Store.open(path)
        assert s.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert count(s, "items") == 2
        assert count(s, "outbox") == 2
        assert s.get_meta("k") == "v"
        assert s.validators("wire") == Validators('"v1"', "Sat, 20 Jan 2024 11:00:00 GMT")
        s.close()


def test_newer_schema_is_refused(tmp_path):
    """A database from a newer monitor is refused with a message saying to upgrade."""
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this monitor understands"):
        Store.open(path)


def test_damaged_file_is_a_store_error(tmp_path):
    """A file that is not a database raises StoreError naming the path and the way out."""
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value)
    assert "move it aside" in str(info.value)


# Polls


def test_record_poll_stores_items_matches_outbox_and_validators(store):
    """One poll writes its items, their matches, the alerts and the feed's validators."""
    store.record_poll(poll(["a", "b"], channels=("ops", "mail")), NOW)
    assert count(store, "items") == 2
    assert count(store, "matches") == 2
    assert count(store, "outbox") == 4
    assert store.validators("wire") == Validators('"v1"', "Sat, 20 Jan 2024 11:00:00 GMT")
    assert store.known_items("wire", ["a", "b", "c"]) == {"a": "fp-a", "b": "fp-b"}
    assert store.known_items("other", ["a"]) == {}
    row = store.db.execute("SELECT title, tags, published, first_seen FROM items WHERE key = 'a'").fetchone()
    assert row == (
        "Title a",
        '["iran", "pakistan"]',
        "2024-01-18T09:30:00+00:00",
        "2024-01-20T12:00:00+00:00",
    )
    (feed,) = store.feeds()
    assert (feed.name, feed.last_status, feed.items_total, feed.consecutive_failures) == ("wire", "ok", 2, 0)
    assert feed.last_success_at == NOW


def test_record_poll_is_atomic_when_a_write_fails(store, monkeypatch):
    """A failure mid-poll leaves no items, matches or alerts behind, and the old validators in place."""
    store.record_poll(poll(["a"], etag='"v1"'), NOW)

    def broken(alert: Alert) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sqlite_module, "alert_to_json", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_poll(poll(["b", "c"], etag='"v2"'), NOW + timedelta(minutes=15))
    assert count(store, "items") == 1
    assert count(store, "matches") == 1
    assert count(store, "outbox") == 1
    assert store.validators("wire").etag == '"v1"'
    assert store.feeds()[0].last_polled_at == NOW


def test_constraint_violation_rolls_back_and_raises_store_error(store):
    """A constraint violation inside a poll is a StoreError, and nothing of the poll is kept."""
    store.record_poll(poll(["a"], etag='"v1"'), NOW)
    item = make_item("b")
    record = PollRecord(
        "wire",
        "https://wire.example/rss",
        ok('"v2"'),
        [(item, [Match("envoys", ("x",)), Match("envoys", ("y",))])],  # one item, one watchlist, twice
        [make_alert(item)],
    )
    with pytest.raises(StoreError, match="rolled back"):
        store.record_poll(record, NOW)
    assert store.known_items("wire", ["b"]) == {}
    assert count(store, "matches") == 1
    assert count(store, "outbox") == 1
    assert store.validators("wire").etag == '"v1"'


def test_polling_the_same_items_twice_never_duplicates(store):
    """Recording the same items and alerts again adds no rows."""
    store.record_poll(poll(["a", "b"], channels=("ops", "mail")), NOW)
    store.record_poll(poll(["a", "b"], etag='"v2"', channels=("ops", "mail")), NOW + timedelta(minutes=5))
    assert count(store, "items") == 2
    assert count(store, "matches") == 2
    assert count(store, "outbox") == 4
    assert len(store.due_alerts(None, CHANNELS)) == 4
    assert store.validators("wire").etag == '"v2"'


def test_same_key_in_two_feeds_is_two_items(store):
    """Identity is per feed: one key in two feeds is two items."""
    store.record_poll(poll(["a"]), NOW)
    other = make_item("a", feed="dawn")
    store.record_poll(PollRecord("dawn", "https://dawn.example/rss", ok(), [(other, [])], []), NOW)
    assert count(store, "items") == 2


def test_record_unchanged_and_failure(store):
    """Not-modified polls keep validators; failures count up and clear on the next success."""
    store.record_poll(poll(["a"]), NOW)
    store.record_unchanged("wire", "https://wire.example/rss", "not_modified", NOW + timedelta(minutes=1))
    assert store.validators("wire").etag == '"v1"'
    store.record_failure("wire", "https://wire.example/rss", "HTTP 500", NOW + timedelta(minutes=2))
    store.record_failure("wire", "https://wire.example/rss", "HTTP 502", NOW + timedelta(minutes=3))
    (feed,) = store.feeds()
    assert (feed.last_status, feed.last_error, feed.consecutive_failures) == ("failed", "HTTP 502", 2)
    assert feed.last_success_at == NOW + timedelta(minutes=1)
    assert store.validators("wire").etag == '"v1"'
    store.record_unchanged("wire", "https://wire.example/rss", "not_modified", NOW + timedelta(minutes=4))
    (feed,) = store.feeds()
    assert (feed.consecutive_failures, feed.last_error) == (0, None)


def test_validators_of_unknown_feed_are_empty(store):
    """A feed never polled has no validators."""
    assert store.validators("nope") == Validators()


def sent(store, alert_id, now):
    store.record_deliveries([DeliveryOutcome(alert_id, "ops", True)], now)


def failed(store, alert_id, error, *, temporary, now):
    store.record_deliveries([DeliveryOutcome(alert_id, "ops", False, error, temporary)], now)


# Outbox


def test_due_alerts_respects_next_attempt(store):
    """New alerts are due from the moment they are queued, in creation order."""
    store.record_poll(poll(["a", "b"]), NOW)
    assert store.due_alerts(NOW - timedelta(seconds=1), CHANNELS) == []
    due = store.due_alerts(NOW, CHANNELS)
    assert [a.id for a in due] == ["a-envoys-ops", "b-envoys-ops"]
    assert store.due_alerts(NOW, CHANNELS, limit=1) == due[:1]


def test_sent_alert_is_not_due_again(store):
    """A sent alert is never due again, and is counted as sent."""
    store.record_poll(poll(["a", "b"]), NOW)
    sent(store, "a-envoys-ops", NOW + timedelta(seconds=5))
    assert [a.id for a in store.due_alerts(None, CHANNELS)] == ["b-envoys-ops"]
    assert store.outbox_counts() == {"sent": 1, "pending": 1}
    row = outbox_row(store, "a-envoys-ops")
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, "2024-01-20T12:00:05+00:00")


def test_temporary_failure_backs_off(store):
    """A temporary failure keeps the alert pending, counts the attempt and pushes its next try out."""
    store.record_poll(poll(["a"]), NOW)
    alert_id = "a-envoys-ops"
    failed(store, alert_id, "HTTP 503", temporary=True, now=NOW)
    row = outbox_row(store, alert_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 503")
    next_attempt = datetime.fromisoformat(str(row["next_attempt_at"]))
    assert next_attempt == NOW + timedelta(seconds=RETRY_DELAYS[0])
    assert next_attempt > NOW
    assert store.due_alerts(NOW, CHANNELS) == []
    assert [a.id for a in store.due_alerts(next_attempt, CHANNELS)] == [alert_id]
    assert [a.id for a in store.due_alerts(None, CHANNELS)] == [alert_id]

    later = next_attempt
    failed(store, alert_id, "timeout", temporary=True, now=later)
    row = outbox_row(store, alert_id)
    assert row["attempts"] == 2
    assert datetime.fromisoformat(str(row["next_attempt_at"])) == later + timedelta(seconds=RETRY_DELAYS[1])


def test_backoff_caps_at_the_last_delay(store):
    """After many failures the delay stays at the longest one."""
    store.record_poll(poll(["a"]), NOW)
    for _ in range(len(RETRY_DELAYS) + 3):
        failed(store, "a-envoys-ops", "down", temporary=True, now=NOW)
    row = outbox_row(store, "a-envoys-ops")
    assert row["attempts"] == len(RETRY_DELAYS) + 3
    assert datetime.fromisoformat(str(row["next_attempt_at"])) == NOW + timedelta(seconds=RETRY_DELAYS[-1])


def test_permanent_failure_gives_up(store):
    """A permanent failure marks the alert failed: never due again."""
    store.record_poll(poll(["a"]), NOW)
    failed(store, "a-envoys-ops", "channel_not_found", temporary=False, now=NOW)
    row = outbox_row(store, "a-envoys-ops")
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "channel_not_found")
    assert store.due_alerts(None, CHANNELS) == []
    assert store.due_alerts(NOW + timedelta(days=30), CHANNELS) == []
    assert store.outbox_counts() == {"failed": 1}


def test_meta(store):
    """Meta values are stored, replaced and read back."""
    assert store.get_meta("last_cycle_at") is None
    store.set_meta("last_cycle_at", "one")
    store.set_meta("last_cycle_at", "two")
    assert store.get_meta("last_cycle_at") == "two"


# Alert JSON


def test_alert_json_round_trip():
    """An alert survives JSON: severity, terms tuple, non-ASCII text and time zones."""
    tehran = timezone(timedelta(hours=3, minutes=30))
    alert = make_alert(
        make_item("a", title="سفیر ایران بازگشت – “quoted”"),
        severity=Severity.CRITICAL,
        published=datetime(2024, 1, 18, 13, 0, tzinfo=tehran),
        terms=("سفیر", "return*"),
        link=None,
    )
    text = alert_to_json(alert)
    assert "سفیر" in text  # stored readable, not \\u-escaped
    back = alert_from_json(text)
    assert back == alert
    assert back.published.utcoffset() == timedelta(0)
    assert isinstance(back.terms, tuple)
    assert back.severity is Severity.CRITICAL


def test_alert_round_trip_through_the_store(store):
    """The alert that comes out of the outbox equals the one that went in."""
    record = poll(["a"])
    store.record_poll(record, NOW)
    assert store.due_alerts(NOW, CHANNELS) == list(record.alerts)


def test_alerts_for_unconfigured_channels_do_not_crowd_out_others(store):
    """Alerts queued for a channel that is gone are skipped, not counted against the limit."""
    store.record_poll(poll(["a", "b", "c"], channels=("gone", "ops")), NOW)
    due = store.due_alerts(None, ["ops"], limit=2)
    assert [a.channel for a in due] == ["ops", "ops"]
    assert store.due_alerts(None, []) == []


def test_record_poll_counts_only_newly_queued_alerts(store):
    """An alert id already in the outbox is not queued twice, and the count says so."""
    assert store.record_poll(poll(["a"]), NOW) == 1
    assert store.record_poll(poll(["a"]), NOW) == 0
