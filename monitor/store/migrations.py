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
    # 3: stories. Each item belongs to one; items of one story share alerts. `story_tokens` indexes
    # the salient tokens of recent items (see monitor.stories) for near-duplicate lookups;
    # `story_alerts` remembers which (story, watchlist, channel) already has its alert; tombstones
    # keep the identity of pruned items so an old item coming back is not news.
    """
    ALTER TABLE items ADD COLUMN story_id INTEGER;
    ALTER TABLE items ADD COLUMN outlet TEXT;
    ALTER TABLE items ADD COLUMN story_link TEXT;
    ALTER TABLE items ADD COLUMN token_weight REAL NOT NULL DEFAULT 0;
    CREATE TABLE stories (
        id INTEGER PRIMARY KEY,
        first_seen TEXT NOT NULL
    );
    INSERT INTO stories (id, first_seen) SELECT id, first_seen FROM items;
    UPDATE items SET story_id = id, outlet = feed;
    CREATE INDEX items_story ON items (story_id);
    CREATE INDEX items_story_link ON items (story_link) WHERE story_link IS NOT NULL;
    CREATE INDEX items_fingerprint ON items (feed, fingerprint);
    CREATE TABLE story_tokens (
        token INTEGER NOT NULL,
        published INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        weight REAL NOT NULL,
        PRIMARY KEY (token, published, item_id)
    ) WITHOUT ROWID;
    CREATE INDEX story_tokens_item ON story_tokens (item_id);
    CREATE INDEX story_tokens_published ON story_tokens (published);
    CREATE TABLE story_alerts (
        story_id INTEGER NOT NULL,
        watchlist TEXT NOT NULL,
        channel TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        PRIMARY KEY (story_id, watchlist, channel)
    );
    INSERT OR IGNORE INTO story_alerts (story_id, watchlist, channel, alert_id)
        SELECT i.id, o.watchlist, o.channel, o.id
        FROM outbox o JOIN items i ON i.feed = o.feed AND i.key = o.item_key;
    ALTER TABLE outbox ADD COLUMN story_id INTEGER;
    CREATE TABLE tombstones (
        feed TEXT NOT NULL,
        key TEXT NOT NULL,
        story_link TEXT,
        fingerprint TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (feed, key)
    );
    CREATE INDEX tombstones_fingerprint ON tombstones (feed, fingerprint);
    CREATE INDEX tombstones_story_link ON tombstones (story_link) WHERE story_link IS NOT NULL;
    CREATE INDEX tombstones_seen ON tombstones (seen_at);
    CREATE INDEX outbox_story ON outbox (story_id);
    """,
    # 4: delivery state. A manual retry restarts an alert's maximum age (`requeued_at`); `refused`
    # keeps the recipients a delivered email did not reach; `channel_health` says which channels
    # refuse everything (a revoked webhook) so health checks and `monitor deliveries` show it.
    """
    ALTER TABLE outbox ADD COLUMN requeued_at TEXT;
    ALTER TABLE outbox ADD COLUMN refused TEXT;
    CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);
    CREATE TABLE channel_health (
        channel TEXT PRIMARY KEY,
        failing_since TEXT,
        last_error TEXT,
        last_failure_at TEXT,
        last_success_at TEXT
    );
    """,
    # 5: feed health. `config_url` is the address config.toml gave when `url` was last set: a 301
    # moves `url` and leaves it, so an edit of the config is told apart from a move. The next poll
    # is stored so a restart keeps a failing feed's backoff; a 410 disables the feed until its
    # configured address changes; `failing_reported_at` keeps a long failure from being reported twice.
    """
    ALTER TABLE feeds ADD COLUMN config_url TEXT;
    ALTER TABLE feeds ADD COLUMN next_poll_at TEXT;
    ALTER TABLE feeds ADD COLUMN backoff REAL NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN disabled_at TEXT;
    ALTER TABLE feeds ADD COLUMN disabled_reason TEXT;
    ALTER TABLE feeds ADD COLUMN failing_reported_at TEXT;
    UPDATE feeds SET config_url = url;
    CREATE INDEX items_feed_first_seen ON items (feed, first_seen);
    """,
    # 6: story tokens, one packed row per item. The lookup's inverted index is kept in memory
    # (monitor/store/story_index.py) and rebuilt from these rows: a row per (token, item) in three
    # B-trees cost most of a cold cycle to write and to search. `pack_tokens` is the aggregate
    # Store.open registers.
    """
    CREATE TABLE story_fingerprints (
        item_id INTEGER PRIMARY KEY,
        published INTEGER NOT NULL,
        tokens BLOB NOT NULL
    );
    INSERT INTO story_fingerprints (item_id, published, tokens)
        SELECT item_id, MIN(published), pack_tokens(token) FROM story_tokens GROUP BY item_id;
    DROP TABLE story_tokens;
    CREATE INDEX story_fingerprints_published ON story_fingerprints (published);
    """,
)
