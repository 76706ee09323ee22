"""The SQLite store, on a real file: migrations, atomic polls, stories, pruning, the outbox and alerts."""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import monitor.store.sqlite as sqlite_module
from monitor.errors import StoreError
from monitor.pipeline import plan_alerts
from monitor.schedule import RETRY_DELAYS, RETRY_JITTER
from monitor.store import Store
from monitor.store.migrations import MIGRATIONS
from monitor.store.sqlite import (
    Incoming,
    Planner,
    PollRecord,
    PollSummary,
    alert_from_json,
    alert_to_json,
)
from monitor.store.story_index import unpack_tokens
from monitor.stories import fingerprint, group, score_pairs
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
from monitor.watchlists import Watchlist
from monitor.watchlists.query import parse_query

CHANNELS = ("team", "mail")

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
PUBLISHED = datetime(2024, 1, 18, 9, 30, tzinfo=UTC)
WINDOW = timedelta(hours=72)
HOUR = timedelta(hours=1)
RETENTION = timedelta(days=30)

# Hand-written news texts: each pair is one event told twice, in other words.
SARAVAN = (
    "Gunmen kill 9 border guards near Saravan",
    "Nine Iranian border guards were killed by gunmen near Saravan in Sistan-Baluchestan, Tasnim reported.",
)
SARAVAN_REWRITE = (
    "Nine Iranian border guards killed in Saravan attack",
    "Gunmen killed 9 of Iran's border guards near the town of Saravan in Sistan-Baluchestan, "
    "according to Tasnim.",
)
SARAVAN_SHORT = (
    "Saravan attack: 9 border guards dead",
    "Tasnim said gunmen killed nine guards in Saravan, Sistan-Baluchestan.",
)
WANG_YI = (
    "Wang Yi arrives in Islamabad for CPEC talks",
    "Chinese Foreign Minister Wang Yi arrived in Islamabad on Sunday for talks on CPEC with Shehbaz Sharif.",
)
WANG_YI_REWRITE = (
    "China's Wang Yi in Islamabad to discuss CPEC",
    "Foreign Minister Wang Yi landed in Islamabad for CPEC talks with Prime Minister Shehbaz Sharif.",
)
ENVOY = (
    "Pakistan's ambassador returns to Tehran after 14 months",
    "Pakistan's envoy Mudassir Tipu returned to Tehran, ending a 14 month absence after the Panjgur strikes.",
)
ENVOY_REWRITE = (
    "Envoy Mudassir Tipu back in Tehran",
    "Islamabad's ambassador Mudassir Tipu resumed his post in Tehran after 14 months, Pakistan's foreign "
    "office said.",
)
FLOODS = (
    "Flood warning issued for Quetta",
    "Heavy rain is expected in Quetta and Ziarat over the weekend, the Met Office warned.",
)


def make_item(
    key: str,
    feed: str = "wire",
    title: str | None = None,
    *,
    summary: str | None = None,
    link: str | None = "",
    published: datetime = PUBLISHED,
    outlet: str | None = None,
    fp: str | None = None,
) -> Item:
    return Item(
        feed=feed,
        key=key,
        title=title or f"Title {key}",
        summary=summary if summary is not None else f"Summary {key}",
        link=f"https://{feed}.example/{key}" if link == "" else link,
        published=published,
        updated=None,
        author="Desk",
        tags=("iran", "pakistan"),
        fingerprint=fp or f"fp-{key}",
        outlet=outlet,
    )


def text_item(key: str, text: tuple[str, str], feed: str = "wire", **changes: object) -> Item:
    return make_item(key, feed, text[0], summary=text[1], fp=f"fp-{feed}-{key}", **changes)  # type: ignore[arg-type]


def incoming(
    item: Item, *watchlists: str, story_link: str | None = None, terms: tuple[str, ...] = ("ambassador*",)
) -> Incoming:
    return Incoming(
        item,
        [Match(w, terms) for w in watchlists],
        fingerprint(item.title, item.summary, item.published),
        story_link,
    )


def make_alert(item: Item, channel: str = "team", watchlist: str = "envoys", **changes: object) -> Alert:
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


def simple_planner(
    channels: Sequence[str] = ("team",), *, skip_alerted: bool = True, log: list[Alert] | None = None
) -> Planner:
    """Plans like the pipeline but with readable ids: `<item key>-<watchlist>-<channel>`."""

    def plan(view: StoryView) -> list[Alert]:
        alerts = [
            make_alert(
                item,
                channel=c,
                watchlist=slug,
                terms=terms,
                story_id=view.id,
                outlet=item.outlet or item.feed,
                sources=view.outlets,
            )
            for slug, (item, terms) in view.matched.items()
            for c in channels
            if not (skip_alerted and (slug, c) in view.alerted)
        ]
        if log is not None:
            log.extend(alerts)
        return alerts

    return plan


def make_watchlist(slug: str, **changes: object) -> Watchlist:
    w = Watchlist(slug, f"Watchlist {slug}", "", Severity.HIGH, parse_query("x"))
    return replace(w, **changes)  # type: ignore[arg-type]


def real_planner(*watchlists: Watchlist, channels: Sequence[str] = ("team",), now: datetime = NOW) -> Planner:
    return functools.partial(
        plan_alerts, watchlists={w.slug: w for w in watchlists}, channels=list(channels), now=now
    )


def ok(etag: str | None = '"v1"', last_modified: str | None = "Sat, 20 Jan 2024 11:00:00 GMT") -> FetchResult:
    return FetchResult("wire", FetchStatus.OK, body=b"<rss/>", validators=Validators(etag, last_modified))


def poll(keys: list[str], etag: str = '"v1"') -> PollRecord:
    items = [incoming(make_item(k), "envoys") for k in keys]
    return PollRecord("wire", "https://wire.example/rss", ok(etag), items)


def record(
    store: Store,
    *items: Incoming,
    now: datetime = NOW,
    plan: Planner | None = None,
    seen_tombstones: Sequence[str] = (),
) -> PollSummary:
    """Record each feed's items as one poll of that feed."""
    summaries = []
    for feed in dict.fromkeys(i.item.feed for i in items) or ["wire"]:
        mine = [i for i in items if i.item.feed == feed]
        summaries.append(
            store.record_poll(
                PollRecord(feed, f"https://{feed}.example/rss", ok(), mine, seen_tombstones=seen_tombstones),
                now,
                plan or simple_planner(),
                WINDOW,
            )
        )
    return PollSummary(
        sum(s.new_items for s in summaries),
        sum(s.updated_items for s in summaries),
        sum(s.alerts_queued for s in summaries),
    )


def count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608


def outbox_row(store: Store, alert_id: str) -> dict[str, object]:
    cursor = store.db.execute("SELECT * FROM outbox WHERE id = ?", [alert_id])
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def story_of(store: Store, feed: str, key: str) -> int:
    return store.db.execute("SELECT story_id FROM items WHERE feed = ? AND key = ?", [feed, key]).fetchone()[
        0
    ]


def partition(store: Store) -> set[frozenset[str]]:
    """The stories as sets of `feed/key`."""
    stories: dict[int, set[str]] = {}
    for feed, key, story in store.db.execute("SELECT feed, key, story_id FROM items"):
        stories.setdefault(story, set()).add(f"{feed}/{key}")
    return {frozenset(s) for s in stories.values()}


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
        assert {
            "feeds",
            "items",
            "matches",
            "outbox",
            "meta",
            "stories",
            "story_fingerprints",
            "story_alerts",
            "tombstones",
        } <= tables
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
    s.record_poll(poll(["a", "b"]), NOW, simple_planner(), WINDOW)
    s.set_meta("k", "v")
    s.close()
    for _ in range(2):
        s = Store.open(path)
        assert s.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert count(s, "items") == 2
        assert count(s, "outbox") == 2
        assert count(s, "stories") == 2
        assert s.get_meta("k") == "v"
        assert s.validators("wire") == Validators('"v1"', "Sat, 20 Jan 2024 11:00:00 GMT")
        s.close()


def test_migration_6_packs_each_items_token_rows_into_one(tmp_path):
    """A database of schema 5 kept a row per (token, item); opened, each item's tokens become
    one packed row, and a copy arriving afterwards still finds its story."""
    path = tmp_path / "m.db"
    s = Store.open(path)
    record(s, incoming(text_item("a", SARAVAN)), incoming(text_item("b", WANG_YI)))
    fingerprints = "SELECT item_id, published, tokens FROM story_fingerprints"
    expected = {
        item_id: (published, unpack_tokens(blob)) for item_id, published, blob in s.db.execute(fingerprints)
    }
    s.close()
    with sqlite3.connect(path) as conn:  # back to schema 5, as it stored them
        conn.execute(
            "CREATE TABLE story_tokens (token INTEGER NOT NULL, published INTEGER NOT NULL,"
            " item_id INTEGER NOT NULL, weight REAL NOT NULL, PRIMARY KEY (token, published, item_id))"
            " WITHOUT ROWID"
        )
        conn.executemany(
            "INSERT INTO story_tokens VALUES (?, ?, ?, 1.0)",
            [
                (token, published, item_id)
                for item_id, (published, tokens) in expected.items()
                for token in tokens
            ],
        )
        conn.execute("DROP TABLE story_fingerprints")
        conn.execute("PRAGMA user_version = 5")
    conn.close()

    s = Store.open(path)
    try:
        assert s.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        migrated = {
            item: (published, unpack_tokens(blob)) for item, published, blob in s.db.execute(fingerprints)
        }
        assert migrated == expected
        assert not s.db.execute("SELECT name FROM sqlite_master WHERE name = 'story_tokens'").fetchall()
        record(s, incoming(text_item("c", SARAVAN_REWRITE, feed="dawn")))
        assert story_of(s, "dawn", "c") == story_of(s, "wire", "a")
    finally:
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
    summary = store.record_poll(poll(["a", "b"]), NOW, simple_planner(CHANNELS), WINDOW)
    assert summary == PollSummary(new_items=2, updated_items=0, alerts_queued=4)
    assert count(store, "items") == 2
    assert count(store, "matches") == 2
    assert count(store, "outbox") == 4
    assert count(store, "story_alerts") == 4
    assert store.validators("wire") == Validators('"v1"', "Sat, 20 Jan 2024 11:00:00 GMT")
    known = store.known("wire", [make_item(k) for k in "abc"], [])
    assert known.fingerprints == {"a": "fp-a", "b": "fp-b"}
    assert known.feed_fingerprints == {"fp-a", "fp-b"}
    assert known.tombstoned == frozenset()
    assert store.known("other", [make_item("a", feed="other")], []).fingerprints == {}
    row = store.db.execute(
        "SELECT title, tags, published, first_seen, outlet FROM items WHERE key = 'a'"
    ).fetchone()
    assert row == (
        "Title a",
        '["iran", "pakistan"]',
        "2024-01-18T09:30:00+00:00",
        "2024-01-20T12:00:00+00:00",
        "wire",  # no outlet given: the feed's name
    )
    (feed,) = store.feeds()
    assert (feed.name, feed.last_status, feed.items_total, feed.consecutive_failures) == ("wire", "ok", 2, 0)
    assert feed.last_success_at == NOW


def test_record_poll_is_atomic_when_a_write_fails(store, monkeypatch):
    """A failure mid-poll leaves no items, matches, stories or alerts behind, and the old validators."""
    store.record_poll(poll(["a"], etag='"v1"'), NOW, simple_planner(), WINDOW)

    def broken(alert: Alert) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sqlite_module, "alert_to_json", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_poll(
            poll(["b", "c"], etag='"v2"'), NOW + timedelta(minutes=15), simple_planner(), WINDOW
        )
    assert count(store, "items") == 1
    assert count(store, "matches") == 1
    assert count(store, "outbox") == 1
    assert count(store, "stories") == 1
    assert count(store, "story_alerts") == 1
    assert count(store, "story_fingerprints") == 1
    assert store.validators("wire").etag == '"v1"'
    assert store.feeds()[0].last_polled_at == NOW


def test_a_rolled_back_item_is_forgotten_by_the_story_lookup(store, monkeypatch):
    """A poll rolled back leaves nothing in the lookup's index: not even under its row id, which
    SQLite gives to the next item stored, so a copy of the lost item is not put in that one's story."""
    record(store, incoming(text_item("a", WANG_YI)))

    def broken(alert: Alert) -> str:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(sqlite_module, "alert_to_json", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            record(store, incoming(text_item("lost", SARAVAN), "envoys"))
    record(store, incoming(text_item("floods", FLOODS)))
    record(store, incoming(text_item("copy", SARAVAN_REWRITE, feed="dawn")))
    assert len({story_of(store, "wire", "floods"), story_of(store, "dawn", "copy")}) == 2


def test_the_story_lookup_sees_what_another_connection_stored(tmp_path):
    """Another process's commits (a `monitor` command beside the daemon) reach the lookup's
    in-memory index: it is built again when the database changed under it."""
    path = tmp_path / "m.db"
    first, second = Store.open(path), Store.open(path)
    try:
        record(first, incoming(text_item("a", WANG_YI)))  # the index is built
        record(second, incoming(text_item("b", SARAVAN, feed="dawn")))
        record(first, incoming(text_item("c", SARAVAN_REWRITE, feed="bbc")))
        assert story_of(first, "bbc", "c") == story_of(first, "dawn", "b")
    finally:
        first.close()
        second.close()


def test_constraint_violation_rolls_back_and_raises_store_error(store):
    """A constraint violation inside a poll is a StoreError, and nothing of the poll is kept."""
    store.record_poll(poll(["a"], etag='"v1"'), NOW, simple_planner(), WINDOW)
    item = make_item("b")
    twice = Incoming(  # one item, one watchlist, twice
        item,
        [Match("envoys", ("x",)), Match("envoys", ("y",))],
        fingerprint(item.title, item.summary, item.published),
        None,
    )
    with pytest.raises(StoreError, match="rolled back"):
        store.record_poll(
            PollRecord("wire", "https://wire.example/rss", ok('"v2"'), [twice]), NOW, simple_planner(), WINDOW
        )
    assert store.known("wire", [item], []).fingerprints == {}
    assert count(store, "items") == 1
    assert count(store, "matches") == 1
    assert count(store, "outbox") == 1
    assert store.validators("wire").etag == '"v1"'


def test_polling_the_same_items_twice_never_duplicates(store):
    """Recording the same items again adds no rows and queues no alerts."""
    store.record_poll(poll(["a", "b"]), NOW, simple_planner(CHANNELS), WINDOW)
    again = store.record_poll(
        poll(["a", "b"], etag='"v2"'), NOW + timedelta(minutes=5), simple_planner(CHANNELS), WINDOW
    )
    assert again == PollSummary(new_items=0, updated_items=2, alerts_queued=0)
    assert count(store, "items") == 2
    assert count(store, "matches") == 2
    assert count(store, "outbox") == 4
    assert count(store, "stories") == 2
    assert len(store.due_alerts(None, CHANNELS)) == 4
    assert store.validators("wire").etag == '"v2"'
    assert store.feeds()[0].items_total == 2


def test_same_key_in_two_feeds_is_two_items(store):
    """Identity is per feed: one key in two feeds is two items."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    other = make_item("a", feed="dawn")
    summary = store.record_poll(
        PollRecord("dawn", "https://dawn.example/rss", ok(), [incoming(other)]), NOW, simple_planner(), WINDOW
    )
    assert summary.new_items == 1
    assert count(store, "items") == 2


def test_record_unchanged_and_failure(store):
    """Not-modified polls keep validators; failures count up and clear on the next success."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
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


# Edits


def test_an_edited_item_is_updated_and_alerts_only_for_newly_matched_watchlists(store):
    """Same key, new text: the row is updated in place; only a watchlist it did not match before
    alerts, and a watchlist it matched once never alerts again for it."""
    plan = real_planner(make_watchlist("envoys"), make_watchlist("tehran"), channels=CHANNELS)
    first = make_item("a", title="Envoy named", summary="An envoy was named.", fp="fp-1")
    assert record(store, incoming(first, "envoys"), plan=plan) == PollSummary(1, 0, 2)

    edited = replace(
        first, title="Envoy returns to Tehran", summary="The envoy is back in Tehran.", fingerprint="fp-2"
    )
    later = NOW + timedelta(hours=1)
    summary = record(store, incoming(edited, "envoys", "tehran"), now=later, plan=plan)
    assert summary == PollSummary(new_items=0, updated_items=1, alerts_queued=2)
    assert count(store, "items") == 1
    row = store.db.execute("SELECT title, summary, fingerprint, first_seen FROM items").fetchone()
    assert row == (
        "Envoy returns to Tehran",
        "The envoy is back in Tehran.",
        "fp-2",
        "2024-01-20T12:00:00+00:00",
    )
    assert store.known("wire", [edited], []).fingerprints == {"a": "fp-2"}
    assert sorted((a.watchlist, a.channel) for a in store.due_alerts(None, CHANNELS)) == [
        ("envoys", "mail"),
        ("envoys", "team"),
        ("tehran", "mail"),
        ("tehran", "team"),
    ]
    # The envoys match keeps its first terms and time; the new one is recorded at the edit.
    matches = store.db.execute("SELECT watchlist, matched_at FROM matches ORDER BY watchlist").fetchall()
    assert matches == [("envoys", "2024-01-20T12:00:00+00:00"), ("tehran", "2024-01-20T13:00:00+00:00")]

    # Edited again, still matching both (and after the alerts were sent): nothing more.
    store.record_deliveries(
        [DeliveryOutcome(a.id, a.channel, True) for a in store.due_alerts(None, CHANNELS)], later
    )
    again = replace(edited, title="Envoy returns to Tehran, meets minister", fingerprint="fp-3")
    assert record(store, incoming(again, "envoys", "tehran"), now=later + timedelta(hours=1), plan=plan) == (
        PollSummary(0, 1, 0)
    )
    assert count(store, "outbox") == 4
    assert count(store, "matches") == 2


def test_an_edit_keeps_the_item_in_its_story_and_reindexes_its_tokens(store):
    """An edited item stays in its story; its old tokens no longer pair new copies, its new ones do."""
    a = text_item("a", SARAVAN)
    record(store, incoming(a))
    story = story_of(store, "wire", "a")
    record(store, incoming(replace(text_item("a", WANG_YI), fingerprint="fp-edited")))
    assert story_of(store, "wire", "a") == story
    assert count(store, "items") == 1
    record(
        store,
        incoming(text_item("b", SARAVAN_REWRITE, feed="dawn")),
        incoming(text_item("c", WANG_YI_REWRITE, feed="bbc")),
    )
    assert story_of(store, "dawn", "b") != story
    assert story_of(store, "bbc", "c") == story


# Stories


def test_the_same_story_link_in_two_feeds_is_one_story_with_one_alert_per_pair(store):
    """Two feeds carrying one article (same story link, unrelated text) make one story; each
    (watchlist, channel) alerts once, however many of its items match."""
    plan = real_planner(make_watchlist("envoys"), channels=CHANNELS)
    link = "https://wire.example/2024/01/envoys"
    wire = make_item("w1", "wire", "Envoys return", summary="Short wire copy.", outlet="Wire")
    dawn = make_item("d1", "dawn", "Ambassadors back at posts", summary="Dawn's longer take.", outlet="Dawn")
    assert record(store, incoming(wire, "envoys", story_link=link), plan=plan).alerts_queued == 2
    summary = record(
        store, incoming(dawn, "envoys", story_link=link), now=NOW + timedelta(minutes=5), plan=plan
    )
    assert summary == PollSummary(new_items=1, updated_items=0, alerts_queued=0)
    story = story_of(store, "wire", "w1")
    assert story_of(store, "dawn", "d1") == story
    assert [i.key for i in store.stories_of(story)] == ["w1", "d1"]
    assert count(store, "stories") == 1
    assert count(store, "outbox") == 2
    assert store.db.execute("SELECT watchlist, channel FROM story_alerts ORDER BY channel").fetchall() == [
        ("envoys", "mail"),
        ("envoys", "team"),
    ]
    view = store.story_view(story)
    assert view.outlets == ("Wire", "Dawn")
    assert view.matched["envoys"][0].key == "w1"  # the earliest matching item speaks for the story
    assert view.alerted == {("envoys", "team"), ("envoys", "mail")}
    for alert in store.due_alerts(None, CHANNELS):
        assert (alert.item_key, alert.outlet, alert.sources) == ("w1", "Wire", ("Wire", "Dawn"))


@pytest.mark.parametrize(
    ("gap", "together"),
    [
        (timedelta(hours=30), True),
        (timedelta(hours=71), True),
        (-timedelta(hours=60), True),  # the later-published copy arrives first
        (timedelta(days=10), False),
        (-timedelta(days=10), False),
    ],
)
def test_rewritten_copies_join_one_story_only_within_the_window(store, gap, together):
    """Different links and wording, the same names and numbers: one story when published within
    the window of each other; the very same texts ten days apart are two."""
    for first, second in [(SARAVAN, SARAVAN_REWRITE), (ENVOY, ENVOY_REWRITE), (WANG_YI, WANG_YI_REWRITE)]:
        key = first[0][:12]
        record(store, incoming(text_item(key, first, "wire")))
        record(store, incoming(text_item(key, second, "dawn", published=PUBLISHED + gap)))
        assert (story_of(store, "wire", key) == story_of(store, "dawn", key)) is together, first[0]
    # The three events never mix.
    assert len(partition(store)) == (3 if together else 6)


def test_unrelated_items_are_separate_stories(store):
    """Items about different events published together stay apart."""
    texts = [SARAVAN, WANG_YI, ENVOY, FLOODS]
    record(
        store,
        *(incoming(text_item(f"k{n}", t, feed)) for n, t in enumerate(texts) for feed in ("wire", "dawn")),
    )
    assert partition(store) == {frozenset({f"wire/k{n}", f"dawn/k{n}"}) for n in range(len(texts))}


def test_an_item_linking_two_stories_merges_them_into_the_smaller_id(store):
    """A copy sharing one story's link and another's text joins both: the larger story's items,
    story alerts and outbox rows move to the smaller id, and the larger story is gone."""
    plan = real_planner(make_watchlist("guards"), make_watchlist("china"), make_watchlist("both"))
    link = "https://wire.example/saravan"
    saravan = text_item("s", SARAVAN, "wire", outlet="Wire")
    wang = text_item("w", WANG_YI, "dawn", outlet="Dawn")
    record(store, incoming(saravan, "guards", "both", story_link=link), plan=plan)
    record(store, incoming(wang, "china", "both"), plan=plan)
    small, large = story_of(store, "wire", "s"), story_of(store, "dawn", "w")
    assert small < large
    assert count(store, "outbox") == 4  # guards and both for one story, china and both for the other

    offered: list[Alert] = []

    def watched(view: StoryView) -> Sequence[Alert]:
        alerts = plan(view)
        offered.extend(alerts)
        return alerts

    bridge = text_item("b", WANG_YI_REWRITE, "bbc", outlet="BBC")
    summary = record(store, incoming(bridge, story_link=link), now=NOW + timedelta(hours=1), plan=watched)
    # Every (watchlist, channel) of the merged story is known to be queued: nothing is even planned.
    assert summary.alerts_queued == 0
    assert offered == []
    assert {story_of(store, f, k) for f, k in [("wire", "s"), ("dawn", "w"), ("bbc", "b")]} == {small}
    assert [r[0] for r in store.db.execute("SELECT id FROM stories")] == [small]
    assert {r[0] for r in store.db.execute("SELECT story_id FROM outbox")} == {small}
    # Both stories had ("both", "team"): the merged story keeps one, the smaller story's.
    alerts = store.db.execute(
        "SELECT watchlist, channel, alert_id FROM story_alerts WHERE story_id = ?", [small]
    )
    by_pair = {(w, c): a for w, c, a in alerts}
    assert set(by_pair) == {("guards", "team"), ("china", "team"), ("both", "team")}
    assert count(store, "story_alerts") == 3
    assert outbox_row(store, by_pair[("both", "team")])["item_key"] == "s"
    view = store.story_view(small)
    assert view.outlets == ("Wire", "Dawn", "BBC")
    assert set(view.matched) == {"guards", "china", "both"}
    assert [i.key for i in store.stories_of(small)] == ["s", "w", "b"]
    assert store.stories_of(large) == []
    assert {a.sources for a in store.due_alerts(None, ["team"])} == {
        ("Wire", "Dawn", "BBC"),
        ("Dawn", "Wire", "BBC"),
    }


POOL = [SARAVAN, SARAVAN_REWRITE, SARAVAN_SHORT, WANG_YI, WANG_YI_REWRITE, ENVOY, ENVOY_REWRITE, FLOODS]
HOURS = [0, 40, 80, 120, 300]
LINKS = [None, None, "https://x.example/1", "https://x.example/2"]
pool_item = st.tuples(
    st.sampled_from(range(len(POOL))),
    st.sampled_from(HOURS),
    st.sampled_from(LINKS),
    st.sampled_from(["wire", "dawn"]),
)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), spec=st.lists(pool_item, min_size=1, max_size=8))
# A chain: the first and last copies are too far apart to pair, the middle one joins them.
@example(data=None, spec=[(0, 0, None, "wire"), (1, 60, None, "dawn"), (2, 120, None, "wire")])
# Two text stories bridged by a shared link.
@example(
    data=None,
    spec=[(0, 0, "https://x.example/1", "wire"), (4, 0, "https://x.example/1", "dawn"), (3, 0, None, "wire")],
)
def test_stories_do_not_depend_on_arrival_order(tmp_path_factory, data, spec):
    """Any arrival order into a fresh store gives the partition `stories.group` computes in batch."""
    items = [
        incoming(
            text_item(f"k{n}", POOL[text], feed, published=PUBLISHED + timedelta(hours=hours)),
            story_link=link,
        )
        for n, (text, hours, link, feed) in enumerate(spec)
    ]
    # The explicit examples arrive first item first, then the rest backwards.
    order = data.draw(st.permutations(range(len(items)))) if data else [0, *range(len(items) - 1, 0, -1)]
    expected_groups = group([i.fingerprint for i in items], WINDOW, [i.story_link for i in items])
    expected: dict[int, set[str]] = {}
    for i, g in zip(items, expected_groups, strict=True):
        expected.setdefault(g, set()).add(f"{i.item.feed}/{i.item.key}")

    s = Store.open(tmp_path_factory.mktemp("order") / "monitor.db")
    try:
        for n, index in enumerate(order):
            record(s, items[index], now=NOW + timedelta(minutes=n))
        assert partition(s) == {frozenset(g) for g in expected.values()}
        assert count(s, "stories") == len(expected)
    finally:
        s.close()


CORPORA = [Path(__file__).parent / "corpus" / name for name in ("stories.jsonl", "stories_holdout.jsonl")]


@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.name)
def test_the_rare_token_lookup_pairs_the_labelled_stories_as_the_full_one_does(tmp_path, monkeypatch, corpus):
    """A busy window narrows each lookup to the items sharing the item's rarest tokens. Forced on
    for every item, it gives the labelled stories the same pairs as reading every shared token."""
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    scores = []
    for lookup_rows in (10**9, 0):
        monkeypatch.setattr(sqlite_module, "LOOKUP_ROWS", lookup_rows)
        s = Store.open(tmp_path / f"{lookup_rows}.db")
        try:
            for n, row in enumerate(rows):
                published = datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
                item = text_item(f"k{n}", (row["title"], row["summary"]), f"feed{n % 7}", published=published)
                record(s, incoming(item), now=NOW + timedelta(minutes=n))
            story = dict(s.db.execute("SELECT key, story_id FROM items").fetchall())
        finally:
            s.close()
        groups = [story[f"k{n}"] for n in range(len(rows))]
        scores.append(score_pairs([r["story"] for r in rows], [r.get("family", "") for r in rows], groups))
    full, narrowed = scores
    assert full.found > 20  # the corpus pairs many items: the comparison means something
    assert narrowed == full


def test_a_busy_window_reads_only_the_rare_tokens_candidates(store, monkeypatch):
    """Past LOOKUP_ROWS index rows, a lookup probes only the rarest tokens, up to PROBE_ROWS
    rows, and reads the stored tokens of those candidates alone; an item sharing them is still
    found, with its exact shared weight."""
    monkeypatch.setattr(sqlite_module, "LOOKUP_ROWS", 50)
    monkeypatch.setattr(sqlite_module, "PROBE_ROWS", 10)
    common = "Envoys discussed trade, water, grain, shipping, tariffs, railways, pipelines and visas."
    for n in range(40):
        filler = text_item(f"f{n}", (f"Talks in Town{n}x", f"In Town{n}x today. {common}"), "wire")
        record(store, incoming(filler), now=NOW + timedelta(seconds=n))
    copy_of = text_item("orig", SARAVAN, "dawn")
    record(store, incoming(copy_of), now=NOW + timedelta(minutes=5))
    read: list[bytes] = []

    def unpack(blob: bytes) -> tuple[int, ...]:
        read.append(blob)
        return unpack_tokens(blob)

    monkeypatch.setattr(sqlite_module, "unpack_tokens", unpack)
    title, summary = SARAVAN_REWRITE
    copy = text_item("copy", (title, f"{common} {summary}"), "bbc")
    record(store, incoming(copy), now=NOW + timedelta(minutes=6))
    assert story_of(store, "bbc", "copy") == story_of(store, "dawn", "orig")
    (orig_tokens,) = store.db.execute(
        "SELECT tokens FROM story_fingerprints f JOIN items i ON i.id = f.item_id WHERE i.key = 'orig'"
    ).fetchone()
    assert orig_tokens in read
    assert len(read) <= 10  # of the 41 items sharing the common words


# Corroboration: min_sources


def test_min_sources_holds_the_alert_until_a_second_outlet_carries_the_story(store):
    """With min_sources = 2 a match waits; another copy from the same outlet does not release it;
    a copy from a second outlet does, even though that copy matches nothing itself."""
    plan = real_planner(make_watchlist("guards", min_sources=2), channels=CHANNELS)
    first = text_item("a", SARAVAN, "dawn", outlet="Dawn")
    assert record(store, incoming(first, "guards"), plan=plan).alerts_queued == 0
    story = story_of(store, "dawn", "a")

    same_outlet = text_item("b", SARAVAN_REWRITE, "dawn-urdu", outlet="Dawn")
    assert (
        record(
            store, incoming(same_outlet, "guards"), now=NOW + timedelta(minutes=5), plan=plan
        ).alerts_queued
        == 0
    )
    assert story_of(store, "dawn-urdu", "b") == story
    assert store.story_view(story).outlets == ("Dawn",)
    assert count(store, "outbox") == 0
    assert count(store, "story_alerts") == 0

    unrelated = text_item("z", FLOODS, "reuters", outlet="Reuters")
    assert record(store, incoming(unrelated), now=NOW + timedelta(minutes=8), plan=plan).alerts_queued == 0

    other_outlet = text_item("c", SARAVAN_SHORT, "reuters", outlet="Reuters")
    summary = record(store, incoming(other_outlet), now=NOW + timedelta(minutes=10), plan=plan)
    assert summary.alerts_queued == 2
    assert story_of(store, "reuters", "c") == story
    alerts = store.due_alerts(None, CHANNELS)
    assert sorted(a.channel for a in alerts) == ["mail", "team"]
    for alert in alerts:
        assert (alert.item_key, alert.outlet, alert.min_sources) == ("a", "Dawn", 2)
        assert alert.sources == ("Dawn", "Reuters")
        assert alert.also_reported_by == ("Reuters",)
        assert alert.story_id == story
    # A third outlet owes nothing more.
    third = text_item("d", SARAVAN_REWRITE, "bbc", outlet="BBC")
    assert (
        record(store, incoming(third, "guards"), now=NOW + timedelta(minutes=20), plan=plan).alerts_queued
        == 0
    )


# Pruning


def test_prune_deletes_old_items_and_keeps_tombstones_and_pending_alerts(store):
    old = NOW - timedelta(days=40)
    link = "https://wire.example/old-story"
    sent_item = make_item("old-sent", summary="Envoy gone", published=old)
    pending_item = make_item("old-pending", summary="Envoy back", published=old)
    record(store, incoming(sent_item, "envoys", story_link=link), incoming(pending_item, "envoys"), now=old)
    sent(store, "old-sent-envoys-team", old + timedelta(minutes=1))
    fresh = make_item("fresh", published=NOW - timedelta(hours=1))
    record(store, incoming(fresh, "envoys"))
    fingerprints_before = count(store, "story_fingerprints")

    report = store.prune(NOW, RETENTION, WINDOW)
    assert (report.items, report.stories, report.alerts, report.tombstones) == (2, 2, 1, 0)
    assert [r[0] for r in store.db.execute("SELECT key FROM items")] == ["fresh"]
    assert count(store, "matches") == 1
    assert count(store, "stories") == 1
    assert count(store, "story_alerts") == 1
    assert store.db.execute("SELECT item_id FROM story_fingerprints").fetchall() == [
        (store.db.execute("SELECT id FROM items").fetchone()[0],)
    ]
    assert count(store, "story_fingerprints") < fingerprints_before
    # The sent alert is gone, the pending one is still owed.
    assert [a.id for a in store.due_alerts(None, ["team"])] == [
        "old-pending-envoys-team",
        "fresh-envoys-team",
    ]
    assert store.outbox_counts() == {"pending": 2}

    olds = [sent_item, pending_item, fresh]
    known = store.known("wire", olds, [link, "https://elsewhere.example/x"])
    assert known.fingerprints == {"fresh": "fp-fresh"}
    assert known.tombstoned == {"old-sent", "old-pending"}
    assert known.feed_fingerprints == {"fp-old-sent", "fp-old-pending", "fp-fresh"}
    assert known.old_links == {link}
    assert store.known("dawn", olds, [link]).tombstoned == frozenset()
    assert store.known("dawn", olds, [link]).old_links == {link}  # a copy in any feed

    # Pruning again changes nothing.
    assert store.prune(NOW, RETENTION, WINDOW) == sqlite_module.PruneReport(0, 0, 0, 0, 0)

    # The feed still lists old-sent 20 days later: its tombstone is refreshed, old-pending's is not.
    record(store, now=NOW + timedelta(days=20), seen_tombstones=["old-sent"])
    seen = dict(store.db.execute("SELECT key, seen_at FROM tombstones").fetchall())
    assert seen == {"old-sent": "2024-02-09T12:00:00+00:00", "old-pending": "2024-01-20T12:00:00+00:00"}
    report = store.prune(NOW + timedelta(days=31), RETENTION, WINDOW)
    assert report.tombstones == 1
    assert report.items == 1  # fresh is old by now
    known = store.known("wire", olds, [link])
    assert known.tombstoned == {"old-sent", "fresh"}
    assert known.feed_fingerprints == {"fp-old-sent", "fp-fresh"}
    assert count(store, "items") == 0
    assert count(store, "story_fingerprints") == 0
    assert {a.id for a in store.due_alerts(None, ["team"])} == {
        "old-pending-envoys-team",
        "fresh-envoys-team",
    }


def test_a_pending_alert_keeps_its_sources_when_its_story_is_pruned(store):
    """An alert still owed when its story is pruned is delivered as it was queued, with the outlets
    known then: not stripped of them, and not given those of a later story that reuses the id."""
    plan = real_planner(make_watchlist("guards", min_sources=2))
    record(store, incoming(text_item("a", SARAVAN, "dawn", outlet="Dawn"), "guards"), plan=plan)
    record(store, incoming(text_item("b", SARAVAN_REWRITE, "reuters", outlet="Reuters")), plan=plan)
    (queued,) = store.due_alerts(None, ["team"])
    assert queued.sources == ("Dawn", "Reuters")

    later = NOW + RETENTION + timedelta(days=1)
    assert store.prune(later, RETENTION, WINDOW).stories == 1
    (alert,) = store.due_alerts(None, ["team"])
    assert (alert.id, alert.outlet, alert.sources) == (queued.id, "Dawn", ("Dawn", "Reuters"))

    record(store, incoming(text_item("c", FLOODS, "bbc", outlet="BBC")), now=later, plan=plan)
    (alert,) = store.due_alerts(None, ["team"])
    assert alert.sources == ("Dawn", "Reuters")


def test_prune_drops_token_rows_two_windows_after_publication(store):
    """An item first seen recently but published long ago stays; its token rows go."""
    record(
        store,
        incoming(text_item("late", SARAVAN, published=NOW - 2 * WINDOW - timedelta(hours=1))),
        incoming(text_item("recent", WANG_YI, published=NOW - 2 * WINDOW + timedelta(hours=1))),
    )
    ids = dict(store.db.execute("SELECT key, id FROM items").fetchall())
    report = store.prune(NOW, RETENTION, WINDOW)
    assert report.items == 0
    assert report.tokens > 0
    assert count(store, "items") == 2
    assert [r[0] for r in store.db.execute("SELECT item_id FROM story_fingerprints")] == [ids["recent"]]


# Outbox


def sent(store, alert_id, now):
    store.record_deliveries([DeliveryOutcome(alert_id, "team", True)], now)


def failed(store, alert_id, error, *, temporary, now):
    store.record_deliveries([DeliveryOutcome(alert_id, "team", False, error, temporary)], now)


def test_due_alerts_respects_next_attempt(store):
    """New alerts are due from the moment they are queued, in creation order."""
    store.record_poll(poll(["a", "b"]), NOW, simple_planner(), WINDOW)
    assert store.due_alerts(NOW - timedelta(seconds=1), CHANNELS) == []
    due = store.due_alerts(NOW, CHANNELS)
    assert [a.id for a in due] == ["a-envoys-team", "b-envoys-team"]
    assert store.due_alerts(NOW, CHANNELS, limit=1) == due[:1]


def test_due_alerts_fills_sources_from_the_story_now(store):
    """Each alert lists every outlet of its story, its own outlet first, copies that arrived while
    it waited included."""
    plan = real_planner(make_watchlist("guards"))
    record(store, incoming(text_item("r", SARAVAN, "reuters", outlet="Reuters")), plan=plan)
    record(store, incoming(text_item("d", SARAVAN_REWRITE, "dawn", outlet="Dawn"), "guards"), plan=plan)
    (queued,) = store.due_alerts(None, ["team"])
    assert (queued.outlet, queued.sources) == ("Dawn", ("Dawn", "Reuters"))
    record(store, incoming(text_item("b", SARAVAN_SHORT, "bbc", outlet="BBC")), plan=plan)
    record(store, incoming(text_item("d2", SARAVAN_SHORT, "dawn", outlet="Dawn")), plan=plan)
    (alert,) = store.due_alerts(None, ["team"])
    assert alert.sources == ("Dawn", "Reuters", "BBC")
    assert alert.also_reported_by == ("Reuters", "BBC")
    assert alert.story_id == story_of(store, "dawn", "d")
    # The stored payload still has what was known when it was queued.
    assert alert_from_json(str(outbox_row(store, alert.id)["payload"])).sources == ("Reuters", "Dawn")


def test_sent_alert_is_not_due_again(store):
    """A sent alert is never due again, and is counted as sent."""
    store.record_poll(poll(["a", "b"]), NOW, simple_planner(), WINDOW)
    sent(store, "a-envoys-team", NOW + timedelta(seconds=5))
    assert [a.id for a in store.due_alerts(None, CHANNELS)] == ["b-envoys-team"]
    assert store.outbox_counts() == {"sent": 1, "pending": 1}
    row = outbox_row(store, "a-envoys-team")
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, "2024-01-20T12:00:05+00:00")


def next_attempt_of(store: Store, alert_id: str) -> datetime:
    return datetime.fromisoformat(str(outbox_row(store, alert_id)["next_attempt_at"]))


def within_jitter(when: datetime, now: datetime, delay: float) -> bool:
    return (
        now + timedelta(seconds=delay * (1 - RETRY_JITTER))
        <= when
        <= now + timedelta(seconds=delay * (1 + RETRY_JITTER))
    )


def test_temporary_failure_backs_off(store):
    """A temporary failure keeps the alert pending, counts the attempt and pushes its next try out."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    alert_id = "a-envoys-team"
    failed(store, alert_id, "HTTP 503", temporary=True, now=NOW)
    row = outbox_row(store, alert_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 503")
    next_attempt = next_attempt_of(store, alert_id)
    assert within_jitter(next_attempt, NOW, RETRY_DELAYS[0])
    assert store.due_alerts(NOW, CHANNELS) == []
    assert [a.id for a in store.due_alerts(NOW, CHANNELS, retry_now=True)] == [alert_id]
    assert [a.id for a in store.due_alerts(next_attempt, CHANNELS)] == [alert_id]
    assert [a.id for a in store.due_alerts(None, CHANNELS)] == [alert_id]

    later = next_attempt
    failed(store, alert_id, "timeout", temporary=True, now=later)
    assert outbox_row(store, alert_id)["attempts"] == 2
    assert within_jitter(next_attempt_of(store, alert_id), later, RETRY_DELAYS[1])


def test_backoff_caps_at_the_last_delay(store):
    """After many failures the delay stays at the longest one."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    for _ in range(len(RETRY_DELAYS) + 3):
        failed(store, "a-envoys-team", "down", temporary=True, now=NOW)
    assert outbox_row(store, "a-envoys-team")["attempts"] == len(RETRY_DELAYS) + 3
    assert within_jitter(next_attempt_of(store, "a-envoys-team"), NOW, RETRY_DELAYS[-1])


def test_retries_spread_out_with_jitter(store):
    """Alerts failing together are not all retried at the same second."""
    store.record_poll(poll([f"k{n}" for n in range(20)]), NOW, simple_planner(), WINDOW)
    for n in range(20):
        failed(store, f"k{n}-envoys-team", "HTTP 503", temporary=True, now=NOW)
    assert len({next_attempt_of(store, f"k{n}-envoys-team") for n in range(20)}) >= 5  # of 13 seconds


def test_retry_after_pushes_the_next_attempt_out(store):
    """A Retry-After longer than the backoff is honoured."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    store.record_deliveries(
        [DeliveryOutcome("a-envoys-team", "team", False, "HTTP 429", True, retry_after=900.0)], NOW
    )
    assert next_attempt_of(store, "a-envoys-team") == NOW + timedelta(seconds=900)


def test_temporary_failures_give_up_at_the_maximum_age(store):
    """An alert still failing after the maximum age is failed, saying why; a manual retry restarts it."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    max_age = timedelta(days=2)
    when = NOW
    while outbox_row(store, "a-envoys-team")["status"] == "pending":
        store.record_deliveries(
            [DeliveryOutcome("a-envoys-team", "team", False, "HTTP 503", True)], when, max_age
        )
        when = next_attempt_of(store, "a-envoys-team")
        assert when - NOW < timedelta(days=3)
    row = outbox_row(store, "a-envoys-team")
    assert str(row["last_error"]).startswith("gave up after")
    assert "HTTP 503" in str(row["last_error"])
    assert store.due_alerts(None, CHANNELS) == []

    later = NOW + timedelta(days=5)
    assert store.requeue(None, later) == 1
    assert [a.id for a in store.due_alerts(later, CHANNELS)] == ["a-envoys-team"]
    store.record_deliveries(
        [DeliveryOutcome("a-envoys-team", "team", False, "HTTP 503", True)], later, max_age
    )
    assert outbox_row(store, "a-envoys-team")["status"] == "pending"


def test_permanent_failure_gives_up(store):
    """A permanent failure marks the alert failed: never due again."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    failed(store, "a-envoys-team", "channel_not_found", temporary=False, now=NOW)
    row = outbox_row(store, "a-envoys-team")
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "channel_not_found")
    assert store.due_alerts(None, CHANNELS) == []
    assert store.due_alerts(NOW + timedelta(days=30), CHANNELS) == []
    assert store.outbox_counts() == {"failed": 1}


def test_permanent_failure_marks_the_channel_failing_until_a_delivery(store):
    """A channel is failing from its first permanent failure until something reaches it again."""
    store.record_poll(poll(["a", "b", "c"]), NOW, simple_planner(), WINDOW)
    assert store.failing_channels() == []
    failed(store, "a-envoys-team", "Slack refused the webhook: invalid_token", temporary=False, now=NOW)
    failed(store, "b-envoys-team", "Slack refused the webhook: no_service", temporary=False, now=NOW + HOUR)
    [health] = store.failing_channels()
    assert (health.channel, health.failing_since) == ("team", NOW)
    assert health.last_error.endswith("no_service")
    failed(store, "c-envoys-team", "HTTP 503", temporary=True, now=NOW + 2 * HOUR)
    assert [h.channel for h in store.failing_channels()] == ["team"]
    sent(store, "c-envoys-team", NOW + 3 * HOUR)
    assert store.failing_channels() == []


def test_deliveries_lists_newest_first_and_filters_failed(store):
    """The outbox listing shows status, attempts, errors and refused recipients."""
    store.record_poll(poll(["a"]), NOW, simple_planner(), WINDOW)
    store.record_poll(poll(["b"], etag='"v2"'), NOW + HOUR, simple_planner(), WINDOW)
    failed(store, "a-envoys-team", "SMTP 550 from mx: no such user", temporary=False, now=NOW + HOUR)
    store.record_deliveries(
        [
            DeliveryOutcome(
                "b-envoys-team", "team", True, "refused: x@desk.example", refused=("x@desk.example",)
            )
        ],
        NOW + 2 * HOUR,
    )
    rows = store.deliveries()
    assert [(r.id, r.status) for r in rows] == [("b-envoys-team", "sent"), ("a-envoys-team", "failed")]
    assert rows[0].refused == ("x@desk.example",)
    assert rows[1].last_error == "SMTP 550 from mx: no such user"
    assert rows[1].title
    assert [r.id for r in store.deliveries(failed_only=True)] == ["a-envoys-team"]


def test_requeue_by_id_prefix(store):
    """`deliveries retry ID` takes an id or a prefix of at least 6 characters; sent alerts stay sent."""
    store.record_poll(poll(["alpha", "bravo"]), NOW, simple_planner(), WINDOW)
    failed(store, "alpha-envoys-team", "gone", temporary=False, now=NOW)
    sent(store, "bravo-envoys-team", NOW)
    assert store.requeue(["alpha-"], NOW + HOUR) == 1
    assert store.requeue(["bravo-envoys-team"], NOW + HOUR) == 0
    assert store.requeue(["al"], NOW + HOUR) == 0
    assert [a.id for a in store.due_alerts(NOW + HOUR, CHANNELS)] == ["alpha-envoys-team"]


def test_meta(store):
    """Meta values are stored, replaced and read back."""
    assert store.get_meta("last_cycle_at") is None
    store.set_meta("last_cycle_at", "one")
    store.set_meta("last_cycle_at", "two")
    assert store.get_meta("last_cycle_at") == "two"


# Alert JSON


def test_alert_json_round_trip():
    """An alert survives JSON: severity, terms tuple, non-ASCII text, time zones and its story."""
    tehran = timezone(timedelta(hours=3, minutes=30))
    alert = make_alert(
        make_item("a", title="سفیر ایران بازگشت – “quoted”"),
        severity=Severity.CRITICAL,
        published=datetime(2024, 1, 18, 13, 0, tzinfo=tehran),
        terms=("سفیر", "return*"),
        link=None,
        story_id=7,
        outlet="Dawn",
        min_sources=2,
        sources=("Dawn", "رادیو فردا"),
    )
    text = alert_to_json(alert)
    assert "سفیر" in text  # stored readable, not \\u-escaped
    back = alert_from_json(text)
    assert back == alert
    assert back.published.utcoffset() == timedelta(0)
    assert isinstance(back.terms, tuple)
    assert isinstance(back.sources, tuple)
    assert back.severity is Severity.CRITICAL


def test_alert_round_trip_through_the_store(store):
    """The alert that comes out of the outbox equals the one that went in, with its story's items."""
    planned: list[Alert] = []
    store.record_poll(poll(["a"]), NOW, simple_planner(log=planned), WINDOW)
    assert len(planned) == 1
    [due] = store.due_alerts(NOW, CHANNELS)
    assert dataclasses.replace(due, story_items=()) == planned[0]
    assert [(e.outlet, e.title, e.link) for e in due.story_items] == [
        (planned[0].outlet, planned[0].title, planned[0].link)
    ]


def test_alerts_for_unconfigured_channels_do_not_crowd_out_others(store):
    """Alerts queued for a channel that is gone are skipped, not counted against the limit."""
    store.record_poll(poll(["a", "b", "c"]), NOW, simple_planner(("gone", "team")), WINDOW)
    due = store.due_alerts(None, ["team"], limit=2)
    assert [a.channel for a in due] == ["team", "team"]
    assert store.due_alerts(None, []) == []


def test_record_poll_counts_only_newly_queued_alerts(store):
    """An alert id already in the outbox is not queued twice, and the count says so, even when the
    planner offers it again."""
    plan = simple_planner(skip_alerted=False)
    assert store.record_poll(poll(["a"]), NOW, plan, WINDOW).alerts_queued == 1
    assert store.record_poll(poll(["a"]), NOW, plan, WINDOW).alerts_queued == 0
    assert count(store, "outbox") == 1
    assert count(store, "story_alerts") == 1


def test_the_planner_sees_what_the_story_already_has(store):
    """The planner is given the story's outlets, matches and already-queued pairs."""
    views: list[StoryView] = []

    def plan(view: StoryView) -> list[Alert]:
        views.append(view)
        return simple_planner()(view)

    record(store, incoming(text_item("a", SARAVAN, "wire", outlet="Wire"), "guards"), plan=plan)
    record(store, incoming(text_item("b", SARAVAN_REWRITE, "dawn", outlet="Dawn")), plan=plan)
    record(store, incoming(text_item("c", FLOODS, "dawn", outlet="Dawn")), plan=plan)  # matches nothing
    assert len(views) == 2
    first, second = views
    assert (first.outlets, set(first.matched), first.alerted) == (("Wire",), {"guards"}, frozenset())
    assert second.id == first.id
    assert second.outlets == ("Wire", "Dawn")
    assert second.matched["guards"][0].key == "a"
    assert second.alerted == {("guards", "team")}


def test_a_feeds_row_is_read_by_its_name_not_by_scanning_every_feed(store):
    """Read before every poll: each statement searches an index. A scan of the feeds table made
    a cycle's reads grow with the square of the feeds."""
    for n in range(20):
        store.record_unchanged(f"feed-{n}", f"https://wire.example/{n}", "not_modified", NOW)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        row = store.sync_feed("feed-7", "https://wire.example/7")
    finally:
        store.db.conn.set_trace_callback(None)
    assert row is not None
    assert row.name == "feed-7"
    selects = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert len(selects) == 2
    for statement in selects:
        # The trace shows the values bound: explain the statement as it ran.
        plan = [r[3] for r in store.db.conn.execute("EXPLAIN QUERY PLAN " + statement)]
        assert not [step for step in plan if step.startswith("SCAN")], (statement, plan)
