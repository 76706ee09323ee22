"""The matching benchmark (bench/bench_matcher.py) still works: generation, agreement, report.

No timing is asserted: only that the benchmark runs, is deterministic, and that the compiled
matcher and the naive loop agree on which watchlists the generated items match.
"""

from __future__ import annotations

from pathlib import Path

from bench import bench_matcher as bench
from monitor.watchlists.loader import load_watchlists
from monitor.watchlists.model import leaves


def test_generated_watchlists_and_items_are_deterministic_and_well_formed() -> None:
    watchlists = bench.generate_watchlists(12, seed=5)
    assert watchlists == bench.generate_watchlists(12, seed=5)
    assert all(len(leaves(w.query)) == bench.TERMS_PER_WATCHLIST for w in watchlists)
    items = bench.generate_items(30, seed=5)
    assert items == bench.generate_items(30, seed=5)
    assert all(40 <= len(item.title) <= 110 for item in items)
    assert all(1_200 <= len(item.summary) <= 1_800 for item in items)


def test_the_compiled_matcher_and_the_naive_loop_agree() -> None:
    shipped, _ = load_watchlists(bench.WATCHLISTS_DIR)
    assert shipped
    generated = bench.generate_watchlists(10)
    items = bench.generate_items(40, signal_share=0.5)  # half carry shipped-watchlist terms
    agreement = bench.check_agreement([*shipped, *generated], items)
    assert agreement.disagreements == []
    assert agreement.exact_decisions == agreement.exact_agree > 0
    assert agreement.exact_matches > 0  # the check is not vacuous


def test_the_benchmark_runs_end_to_end_and_keeps_one_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    args = ["--items", "30", "--generated", "4", "--runs", "1", "--agreement-items", "10"]
    args += ["--compiled-seconds", "0.01", "--naive-seconds", "0.01", "--output", str(results)]
    assert bench.main(args) == 0
    assert bench.main(args) == 0  # a second run replaces the section
    text = results.read_text()
    assert text.count(bench.START_MARKER) == 1
    assert text.count(bench.END_MARKER) == 1
    assert "kept" in text
    assert "| shipped + 4 generated (" in text


# The story benchmark (bench/bench_stories.py): the databases it builds, the stream it decides,
# the query plans it checks and the report it writes. No timing is asserted.

import sqlite3  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402

import pytest  # noqa: E402

from bench import bench_stories as stories  # noqa: E402
from monitor.dedup import content_hash  # noqa: E402
from monitor.pipeline import story_key  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store.migrations import MIGRATIONS  # noqa: E402
from monitor.store.story_index import TokenIndex, pack_tokens  # noqa: E402
from monitor.stories import fingerprint as story_fingerprint  # noqa: E402
from monitor.types import Item  # noqa: E402


@pytest.fixture(scope="module")
def story_databases(tmp_path_factory: pytest.TempPathFactory) -> list[stories.Database]:
    directory = tmp_path_factory.mktemp("stories")
    return [stories.build_database(directory / f"state-{n}.db", n, jobs=1) for n in (500, 5_000)]


def test_story_databases_hold_what_a_steady_state_store_holds(
    story_databases: list[stories.Database], tmp_path: Path
) -> None:
    small, large = story_databases
    assert (small.size, large.size) == (500, 5_000)
    conn = sqlite3.connect(large.path)
    count = conn.execute
    assert count("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert count("PRAGMA journal_mode").fetchone()[0] == "wal"
    fresh = Store.open(tmp_path / "fresh.db")  # every index of the migrated schema is there
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    assert count(schema).fetchall() == fresh.db.execute(schema).fetchall()
    fresh.close()
    assert count("SELECT COUNT(*) FROM items").fetchone()[0] == large.size
    assert count("SELECT COUNT(DISTINCT feed) FROM items").fetchone()[0] > 150
    # Items are spread over the retention period; fingerprint rows exist only for recent items,
    # one per item, as the store writes them.
    oldest, newest = count("SELECT MIN(first_seen), MAX(first_seen) FROM items").fetchone()
    assert oldest < stories._iso(stories.NOW - stories.RETENTION + timedelta(days=1))
    assert newest <= stories._iso(stories.NOW)
    horizon = stories.NOW - stories.TOKEN_HORIZON
    assert count("SELECT MIN(published) FROM story_fingerprints").fetchone()[0] >= int(horizon.timestamp())
    recent = count("SELECT COUNT(*) FROM items WHERE published >= ?", [stories._iso(horizon)]).fetchone()[0]
    assert large.token_items == recent > 0
    assert count("SELECT COUNT(*) FROM story_fingerprints").fetchone()[0] == large.token_items
    assert large.postings > 10 * large.token_items
    fingerprinted = count(
        "SELECT f.published, f.tokens, i.title, i.summary, i.published, i.token_weight"
        " FROM story_fingerprints f JOIN items i ON i.id = f.item_id LIMIT 100"
    ).fetchall()
    assert sum(len(row[1]) for row in count("SELECT item_id, tokens FROM story_fingerprints")) == (
        8 * large.postings
    )
    for stamp, blob, title, summary, published, weight in fingerprinted:
        fp = story_fingerprint(title, summary, datetime.fromisoformat(published))
        assert (stamp, blob, weight) == (int(fp.published.timestamp()), pack_tokens(fp.tokens), fp.weight)
    # Every item is in a story; most stories have one item, some several.
    orphans = "SELECT COUNT(*) FROM items WHERE story_id NOT IN (SELECT id FROM stories)"
    assert count(orphans).fetchone()[0] == 0
    sizes = [n for (n,) in count("SELECT COUNT(*) FROM items GROUP BY story_id")]
    assert sizes.count(1) > 0.7 * len(sizes)
    assert max(sizes) >= 3
    for feed, key, link, story_link, title, summary, fingerprint in count(
        "SELECT feed, key, link, story_link, title, summary, fingerprint FROM items LIMIT 300"
    ):
        item = Item(feed, key, title, summary, link, stories.NOW)
        assert story_link == (story_key(item) if link else None)  # what the pipeline would store
        assert fingerprint == content_hash(title, summary)
    assert count("SELECT COUNT(*) FROM matches").fetchone()[0] > 0
    assert count("SELECT COUNT(*) FROM tombstones").fetchone()[0] >= stories.ANCHOR_TOMBSTONES
    conn.close()
    # The same rows every time.
    again = stories.build_database(tmp_path / "again.db", small.size, jobs=1)
    texts = "SELECT feed, key, title, summary, published FROM items ORDER BY id"
    first, second = sqlite3.connect(small.path), sqlite3.connect(again.path)
    assert first.execute(texts).fetchall() == second.execute(texts).fetchall()
    first.close()
    second.close()


def test_the_decision_stream_is_the_same_at_every_size_and_has_the_mix() -> None:
    decisions = stories.decision_stream(400, seed=7)
    assert decisions == stories.decision_stream(400, seed=7)
    kinds = {d.kind for d in decisions}
    assert kinds == set(stories.STREAM_MIX)
    assert 0.6 < sum(d.kind == "new" for d in decisions) / len(decisions) < 0.8
    stored = {(i.feed, i.key): i for story in stories.anchors(7).stories for i, _ in story}
    for decision in decisions:
        assert decision.link == (story_key(decision.item) if decision.item.link else None)
        if decision.kind == "known":
            assert stored[decision.anchor] == decision.item  # type: ignore[index]
        if decision.kind == "link-copy":
            original = stored[decision.anchor]  # type: ignore[index]
            assert decision.item.link == original.link
            assert decision.item.feed != original.feed


def test_no_statement_of_a_decision_scans_a_table(
    story_databases: list[stories.Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = stories.query_plans(story_databases[-1], stories.decision_stream(200))
    assert len(plans) > 15
    assert [p.statement for p in plans if p.scans] == []
    for label, plan in stories.named(plans).items():
        assert plan is not None, label
        assert any(d.startswith("SEARCH") for d in plan.details), (label, plan.details)
    for label in ("fingerprints by id (`_similar`)", "items by id (`_similar`)"):
        assert "USING INTEGER PRIMARY KEY" in stories.named(plans)[label].details[0]  # type: ignore[union-attr]
    # The one whole read allowed is the index build, once per process; it is a scan.
    build = [p for p in plans if p.statement == stories.INDEX_BUILD]
    assert len(build) == 1
    assert build[0].details == ("SCAN story_fingerprints",)
    # The narrowed form (past LOOKUP_ROWS postings, which this small database never reaches)
    # reads the candidates' fingerprints by id too.
    monkeypatch.setattr("monitor.store.sqlite.LOOKUP_ROWS", 0)
    narrowed = stories.query_plans(story_databases[-1], stories.decision_stream(40))
    assert [p.statement for p in narrowed if p.scans] == []
    read = [
        p for p in narrowed if p.statement.startswith("SELECT item_id, tokens FROM story_fingerprints WHERE")
    ]
    assert len(read) == 1
    assert read[0].details[0] == "SEARCH story_fingerprints USING INTEGER PRIMARY KEY (rowid=?)"
    # The check is not vacuous: a lookup by an unindexed column is a full scan, and is caught.
    conn = sqlite3.connect(story_databases[-1].path)
    query = "EXPLAIN QUERY PLAN SELECT id FROM items WHERE title = 'x'"
    details = tuple(row[3] for row in conn.execute(query))
    conn.close()
    assert stories.Plan("SELECT id FROM items WHERE title = ?", details).scans


def _postings(index: TokenIndex) -> dict[int, list[int]]:
    return {token: sorted(items) for token, items in index._items.items()}


def test_a_rolled_back_decision_leaves_the_token_index_as_it_was(
    story_databases: list[stories.Database],
) -> None:
    """The benchmark's own ROLLBACK does not reach the store's in-memory index: it undoes the
    decision there too, so every timed decision sees the index the database holds."""
    store = Store.open(story_databases[-1].path)
    try:
        built = _postings(store._token_index())
        plan = stories.planner()
        decisions = stories.decision_stream(200)
        assert {"new", "copy", "link-copy", "edited"} <= {d.kind for d in decisions}
        for decision in decisions:
            stories.decide_rolled_back(store, decision, plan, 0)
        assert store._index is not None
        assert _postings(store._index) == built
        assert _postings(TokenIndex.load(store.db.execute(stories.INDEX_BUILD))) == built
        # Not vacuous: rolled back without the undo, a decision leaves its postings behind.
        new = next(d for d in decisions if d.kind == "new")
        store.db.conn.execute("BEGIN")
        stories.decide(store, new, plan)
        store.db.conn.execute("ROLLBACK")
        assert _postings(store._index) != built
    finally:
        store.close()


def test_the_story_benchmark_runs_end_to_end_and_keeps_one_section(tmp_path: Path) -> None:
    rows, plans, decisions = stories.run([500, 5_000], 200, 2, tmp_path, every=5)
    assert [r.database.size for r in rows] == [500, 5_000]
    for row in rows:
        assert sum(c.total() for c in row.outcomes.values()) == len(decisions) == 200
        assert set(row.outcomes["link-copy"]) == {"its story"}  # found by the story link
        assert set(row.outcomes["known"]) == {"not stored"}
        assert 0 < row.total.low <= row.total.median <= row.total.p90 <= row.total.high
        assert row.memory.peak_kb >= row.memory.setup_peak_kb > 0
        assert row.memory.items_after > row.database.size  # the fresh process committed the stream
        assert row.memory.index_ms > 0
        lookups = row.lookups
        assert lookups.decisions > 10
        assert lookups.agree == lookups.decisions  # the steps timed are the store's lookup
        assert lookups.candidates.median <= lookups.walked.median <= lookups.postings.median
        assert lookups.plausible.median <= lookups.rows.median
        assert lookups.index_bytes > 0
        assert lookups.tokens > 0
    assert rows[1].lookups.postings.median > rows[0].lookups.postings.median
    assert rows[1].lookups.index_bytes > rows[0].lookups.index_bytes
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n<!-- matcher:start -->\nkept\n<!-- matcher:end -->\n")
    text = stories.section(rows, plans, decisions, 2, 5, 1.0)
    stories.write_section(results, text)
    stories.write_section(results, text)  # a second run replaces the section
    written = results.read_text()
    assert written.count(stories.START_MARKER) == written.count(stories.END_MARKER) == 1
    assert "kept" in written
    assert "| 5,000 | " in written
    assert "SEARCH story_fingerprints USING INTEGER PRIMARY KEY" in written
    assert "story_tokens" not in written


def test_the_story_benchmark_command_line(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    args = ["--sizes", "500,600", "--decisions", "40", "--rounds", "1", "--every", "3"]
    assert stories.main([*args, "--workdir", str(tmp_path), "--output", str(results)]) == 0
    assert stories.START_MARKER in results.read_text()
    assert list(tmp_path.iterdir()) == [results]  # the databases went with the temporary directory


def test_the_cycle_benchmark_runs_end_to_end_and_keeps_other_sections(tmp_path: Path) -> None:
    """Farm, cold, warm and steady polls of a real `monitor poll --once`, the naive clients and
    the in-process repeated cycles, at 5 feeds; the peers and the profile need installs and
    ptrace, so `make bench` alone runs them."""
    from bench import bench_cycle

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    args = ["--sizes", "5", "--runs", "1", "--cycles", "3", "--latency", "0"]
    args += ["--skip-peers", "--skip-profile", "--output", str(results)]
    assert bench_cycle.main(args) == 0
    assert bench_cycle.main(args) == 0  # replaces its own section
    text = results.read_text()
    assert text.count(bench_cycle.CYCLE_START) == 1
    assert "kept" in text
    assert "| 5 | cold | 1 |" in text
    assert "count mismatch" not in text
    assert "the word caches of `monitor.stories` went from" in text  # what the heap holds by design


def test_a_profile_counts_the_worker_process_apart_from_the_event_loop() -> None:
    """py-spy's --subprocesses stacks start with their processes: the worker's samples form a group
    of their own, its functions count like the main process's, and waiting leaves are left out."""
    from bench import bench_cycle

    main = 'process 10:"python -m monitor poll --once"'
    worker = f'{main};process 11:"python -m monitor.worker"'
    raw = "\n".join(
        [
            f"{main};thread (0x1): MainThread;run_cycle (monitor/pipeline.py:500);"
            "Store.record_poll (monitor/store/sqlite.py:390) 30",
            f"{worker};thread (0x2): MainThread;serve (monitor/worker.py:60);"
            "parse_document (monitor/parse.py:92) 60",
            f"{worker};thread (0x2): MainThread;serve (monitor/worker.py:55);"
            "EpollSelector.select (selectors.py:468) 500",
            f"{main};thread (0x3): monitor-cpu_0;_worker (concurrent/futures/thread.py:81) 100",
            "thread (0x4): MainThread;Fetcher.fetch (monitor/fetch.py:90) 10",
        ]
    )
    profile = bench_cycle.Profile(feeds=1)
    bench_cycle.summarise_profile(profile, raw)
    assert profile.samples == 100
    assert profile.waiting == 600
    assert dict(profile.threads) == {"worker process": 0.6, "event loop (main thread)": 0.4}
    assert dict(profile.monitor_top)["parse_document (monitor/parse.py)"] == 0.6
