"""The story lookup's in-memory inverted index and the packed form of an item's tokens."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from monitor.store.story_index import PackTokens, TokenIndex, pack_tokens, unpack_tokens

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(st.sets(INT64, max_size=60))
def test_packed_tokens_read_back_sorted(tokens):
    blob = pack_tokens(tokens)
    assert len(blob) == 8 * len(tokens)
    assert unpack_tokens(blob) == tuple(sorted(tokens))


def test_the_packed_form_does_not_depend_on_the_machine():
    """Little-endian always, so a database file moves between machines."""
    assert pack_tokens([1, -2]) == bytes.fromhex("feffffffffffffff0100000000000000")


def test_the_sqlite_aggregate_packs_as_pack_tokens_does():
    conn = sqlite3.connect(":memory:")
    conn.create_aggregate("pack_tokens", 1, PackTokens)  # type: ignore[arg-type]
    conn.execute("CREATE TABLE t (item INTEGER, token INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, 5), (1, -3), (2, 2**62), (1, 0)])
    rows = dict(conn.execute("SELECT item, pack_tokens(token) FROM t GROUP BY item"))
    assert rows == {1: pack_tokens([5, -3, 0]), 2: pack_tokens([2**62])}
    conn.close()


def test_the_index_lists_the_items_of_each_token_and_counts_them():
    index = TokenIndex.load([(1, pack_tokens([10, 20])), (2, pack_tokens([20, 30]))])
    index.add(3, [20])
    assert list(index.items(20)) == [1, 2, 3]
    assert (index.count(10), index.count(20), index.count(99)) == (1, 3, 0)
    assert index.tokens == 3
    assert list(index.items(99)) == []


def test_removing_an_item_forgets_it_under_those_tokens_only():
    index = TokenIndex()
    index.add(1, [10, 20])
    index.add(2, [10])
    index.remove(1, [10, 77])  # 77: never added, no error
    assert list(index.items(10)) == [2]
    assert list(index.items(20)) == [1]
    index.remove(2, [10])
    assert index.count(10) == 0


def test_ids_past_four_bytes_are_kept_whole():
    """Postings take 4 bytes an id; a token whose list meets a larger id (SQLite allows 2**63 - 1)
    keeps every id exactly."""
    index = TokenIndex()
    big = 2**63 - 1
    index.add(7, [1, 2])
    index.add(big, [1])
    index.add(2**32, [3])
    assert list(index.items(1)) == [7, big]
    assert list(index.items(2)) == [7]
    assert list(index.items(3)) == [2**32]
    index.remove(big, [1])
    assert list(index.items(1)) == [7]
