"""Ordered schema migrations. Append only: a released migration is never edited."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: feeds with cache validators and health, items, matches, the alert outbox.
    """
    CREATE TABLE feeds (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        last_polled_at TEXT,
        last_success_at TEXT,
        last_status TEXT,
        last_error TEXT,
        last_error_at TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        items_total INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        feed TEXT NOT NULL,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        link TEXT,
        author TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        published TEXT NOT NULL,
        updated TEXT,
        first_seen TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        UNIQUE (feed, key)
    );
    CREATE INDEX items_published ON items (published);
    CREATE TABLE matches (
        item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        watchlist TEXT NOT NULL,
        terms TEXT NOT NULL,
        matched_at TEXT NOT NULL,
        PRIMARY KEY (item_id, watchlist)
    );
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        watchlist TEXT NOT NULL,
        feed TEXT NOT NULL,
        item_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        last_attempt_at TEXT,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: backtests read items by arrival time.
    """
    CREATE INDEX items_first_seen ON items (first_seen);
    """,
)
