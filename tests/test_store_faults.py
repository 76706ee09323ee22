"""Storage faults: a full disk, a read-only or damaged database, a lock held elsewhere, told plainly."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.faults import storage_error
from monitor.store.sqlite import Incoming, PollRecord
from monitor.stories import fingerprint
from monitor.types import (
    Alert,
    DeliveryOutcome,
    FetchResult,
    FetchStatus,
    Item,
    Match,
    Severity,
    StoryView,
    Validators,
)

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
FEED_URL = "https://wire.example/rss"


def make_item(key: str) -> Item:
    """An item whose text shares nothing with the others', so each is its own story."""
    words = " ".join(f"{key}w{n}" for n in range(60))  # long enough that a few hundred need many pages
    return Item(
        feed="wire",
        key=key,
        title=f"Dispatch {key}",
        summary=f"Report {key}: {words}",
        link=f"https://wire.example/{key}",
        published=NOW - timedelta(hours=1),
        updated=None,
        author="Desk",
        tags=("iran",),
        fingerprint=f"fp-{key}",
    )


def poll(keys: list[str], etag: str) -> PollRecord:
    items = [
        Incoming(
            item,
            [Match("border", ("Saravan",))],
            fingerprint(item.title, item.summary, item.published),
            item.link,
        )
        for item in map(make_item, keys)
    ]
    result = FetchResult("wire", FetchStatus.OK, body=b"<rss/>", validators=Validators(etag, None))
    return PollRecord("wire", FEED_URL, result, items)


def alert_for(item: Item, story: int) -> Alert:
    return Alert(
        id=f"{item.key}-border-ops",
        channel="ops",
        watchlist="border",
        watchlist_name="Border incidents",
        severity=Severity.HIGH,
        feed=item.feed,
        item_key=item.key,
        title=item.title,
        summary=item.summary,
        link=item.link,
        published=item.published,
        terms=("Saravan",),
        created_at=NOW,
        story_id=story,
    )


def plan(view: StoryView) -> list[Alert]:
    """One alert per story that matched, for channel `ops`."""
    return [
        alert_for(item, view.id)
        for slug, (item, _) in view.matched.items()
        if (slug, "ops") not in view.alerted
    ]


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def fill_disk(store: Store) -> None:
    """Cap the database at its current size, as a full volume would: the next new page fails."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: Store) -> None:
    store.db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "monitor.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    s = Store.open(path)
    yield s
    s.close()


# A full disk


def test_full_disk_rolls_back_the_poll_and_names_the_file(store: Store, path: Path) -> None:
    """A poll that needs space the disk lacks is a "full" StoreError naming the file; nothing of it stays."""
    store.record_poll(poll(["first"], '"v1"'), NOW, plan, WINDOW)
    before = {table: count(store, table) for table in ("items", "outbox", "matches", "stories", "feeds")}
    fill_disk(store)

    with pytest.raises(StoreError) as raised:
        store.record_poll(poll([f"k{i}" for i in range(300)], '"v2"'), NOW, plan, WINDOW)

    assert raised.value.kind == "full"
    message = str(raised.value)
    assert message.startswith(f"{path}: the disk is full")
    assert f"free space on the volume holding {path.parent}/" in message
    assert "nothing of it was stored" in message
    assert {table: count(store, table) for table in before} == before
    assert store.validators("wire").etag == '"v1"'  # so the feed is fetched in full again

    free_disk(store)
    summary = store.record_poll(poll([f"k{i}" for i in range(300)], '"v2"'), NOW, plan, WINDOW)
    assert summary.new_items == 300
    assert count(store, "items") == 301
    assert store.validators("wire").etag == '"v2"'


def test_full_disk_marks_no_delivery_as_sent(store: Store) -> None:
    """Deliveries recorded on a full disk are rolled back whole: every alert stays pending."""
    store.record_poll(poll([f"k{i}" for i in range(40)], '"v1"'), NOW, plan, WINDOW)
    alerts = store.due_alerts(None, ["ops"])
    assert len(alerts) == 40
    # Recipients an email server refused are recorded with the send, so each row grows.
    refused = tuple(f"analyst{n}@example.org" for n in range(30))
    outcomes = [DeliveryOutcome(a.id, "ops", delivered=True, refused=refused) for a in alerts]
    fill_disk(store)

    with pytest.raises(StoreError) as raised:
        store.record_deliveries(outcomes, NOW)

    assert raised.value.kind == "full"
    assert store.outbox_counts() == {"pending": 40}
    assert store.failing_channels() == []
    free_disk(store)
    store.record_deliveries(outcomes, NOW)
    assert store.outbox_counts() == {"sent": 40}


# A read-only database


def test_query_only_connection_is_a_readonly_error(store: Store, path: Path) -> None:
    """A write SQLite refuses as read-only is a "readonly" StoreError saying who needs write access."""
    store.record_poll(poll(["first"], '"v1"'), NOW, plan, WINDOW)
    store.db.execute("PRAGMA query_only = ON")  # SQLite then refuses every write with SQLITE_READONLY

    with pytest.raises(StoreError) as raised:
        store.check_writable(NOW)
    assert raised.value.kind == "readonly"
    message = str(raised.value)
    assert message.startswith(f"{path}: the database cannot be written")
    assert f"uid {os.geteuid()}" in message
    assert f"write access to {path} and to its directory {path.parent}/" in message
    assert "monitor.db-wal" in message

    with pytest.raises(StoreError, match="cannot be written"):
        store.record_poll(poll(["second"], '"v2"'), NOW, plan, WINDOW)
    assert count(store, "items") == 1


def open_and_write(path: Path) -> None:
    store = Store.open(path)
    try:
        store.check_writable(NOW)
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files; the query_only test covers it")
def test_read_only_file_and_directory(path: Path) -> None:
    """A database file and directory without write permission fail on open or on the first write."""
    Store.open(path).close()
    path.chmod(0o444)
    path.parent.chmod(0o555)  # no -wal or -shm can be created beside it either
    try:
        with pytest.raises(StoreError) as raised:
            open_and_write(path)
        assert raised.value.kind == "readonly"
        assert str(path) in str(raised.value)
        assert "needs write access" in str(raised.value)
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)


def test_write_checks_pass_on_a_healthy_database(store: Store) -> None:
    """check_writable commits its probe when the database can be written."""
    store.check_writable(NOW)
    assert store.get_meta("health_checked_at") == "2024-01-20T12:00:00+00:00"


# A damaged database


def test_garbage_file_is_refused_on_open_with_the_recovery(path: Path) -> None:
    """A file that is not a database is a "corrupt" StoreError telling how to move it aside."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database" * 600)

    with pytest.raises(StoreError) as raised:
        Store.open(path)

    assert raised.value.kind == "corrupt"
    message = str(raised.value)
    assert message.startswith(f"{path}: the database file is damaged")
    assert f"mv {path} {path}.corrupt" in message
    assert "stop monitor" in message
    assert "alerts already sent may be sent again" in message
    assert path.read_bytes() == b"not a database" * 600  # left as it was, for salvage


def test_truncated_database_is_refused_on_open(path: Path) -> None:
    """A real database cut to half its size, header intact, is reported as damaged, not a crash."""
    store = Store.open(path)
    store.record_poll(poll([f"k{i}" for i in range(200)], '"v1"'), NOW, plan, WINDOW)
    store.close()  # the last connection to close checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    size = path.stat().st_size
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    with path.open("r+b") as handle:
        handle.truncate(size // 2)

    with pytest.raises(StoreError) as raised:
        Store.open(path)
    assert raised.value.kind == "corrupt"
    assert f"mv {path} {path}.corrupt" in str(raised.value)


def test_empty_file_is_a_new_database(path: Path) -> None:
    """A 0-byte file is not damaged: SQLite treats it as a new database, and it is migrated."""
    path.parent.mkdir(parents=True)
    path.touch()

    store = Store.open(path)
    try:
        store.check_writable(NOW)
        store.record_poll(poll(["first"], '"v1"'), NOW, plan, WINDOW)
        assert count(store, "items") == 1
    finally:
        store.close()


# A lock held elsewhere


def test_lock_held_by_another_connection_is_busy(store: Store, path: Path) -> None:
    """A write transaction held by another process is a "busy" StoreError pointing past monitor's lock."""
    other = sqlite3.connect(path)
    try:
        other.execute("BEGIN IMMEDIATE")  # what a sqlite3 shell or backup tool holding a write does
        store.db.execute("PRAGMA busy_timeout = 0")  # fail at once instead of waiting 10 s
        with pytest.raises(StoreError) as raised:
            store.check_writable(NOW)
        assert raised.value.kind == "busy"
        assert str(raised.value).startswith(f"{path}: the database is locked by another process")
        assert f"{path}.lock" in str(raised.value)
    finally:
        other.rollback()
        other.close()
    store.check_writable(NOW)


# Classification without SQLite codes


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "full"),
        (OSError(errno.EACCES, "Permission denied"), "readonly"),
        (OSError(errno.EROFS, "Read-only file system"), "readonly"),
        (sqlite3.OperationalError("database or disk is full"), "full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "readonly"),
        (sqlite3.DatabaseError("file is not a database"), "corrupt"),
        (sqlite3.DatabaseError("database disk image is malformed"), "corrupt"),
        (sqlite3.OperationalError("database is locked"), "busy"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: matches.item_id"), "other"),
    ],
    ids=lambda v: v if isinstance(v, str) else str(v),
)
def test_errors_without_codes_are_classified_by_errno_or_text(error: BaseException, kind: str) -> None:
    """OSErrors by errno, SQLite errors without a result code by SQLite's own wording."""
    fault = storage_error("state/monitor.db", error, "storing feed dawn")
    assert fault.kind == kind
    assert str(fault).startswith("state/monitor.db: ")
    assert "(while storing feed dawn" in str(fault)


def test_other_errors_keep_sqlite_text() -> None:
    """An error of no known kind keeps SQLite's words and names the file."""
    fault = storage_error("state/monitor.db", sqlite3.OperationalError("no such table: items"), "reading it")
    assert str(fault) == "state/monitor.db: no such table: items (while reading it)"


def test_read_only_file_system_says_so() -> None:
    """EROFS names the read-only mount as the cause."""
    fault = storage_error("state/monitor.db", OSError(errno.EROFS, "Read-only file system"), "opening it")
    assert "the file system is mounted read-only" in str(fault)


def test_store_error_kind_defaults_to_other() -> None:
    """StoreError(message) still works, and is of kind "other"."""
    assert StoreError("state/monitor.db: something").kind == "other"
    assert StoreError("x", kind="full").kind == "full"
