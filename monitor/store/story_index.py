"""The story lookup's inverted index: for each story token, the stored items that carry it.

It lives in memory. SQLite keeps each item's tokens as one packed row (`story_fingerprints`),
which is cheap to write and to read back for a handful of candidates, and the index is rebuilt
from those rows when a process first needs it. Kept as SQLite rows instead, one per (token, item),
every item wrote some thirty rows into three B-trees and every lookup stepped through thousands of
them: most of a cold cycle's time.
"""

from __future__ import annotations

import contextlib
import functools
import struct
from array import array
from collections.abc import Iterable, Sequence

_EMPTY: Sequence[int] = array("q")


def pack_tokens(tokens: Iterable[int]) -> bytes:
    """Token hashes as a blob: signed 64-bit, little-endian whatever the machine."""
    values = sorted(tokens)
    return struct.pack(f"<{len(values)}q", *values)


def unpack_tokens(blob: bytes) -> tuple[int, ...]:
    return _layout(len(blob) // 8).unpack(blob)


@functools.cache
def _layout(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}q")


class PackTokens:
    """`pack_tokens` as an SQLite aggregate, for the migration that packs the old token rows."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    def step(self, token: int) -> None:
        self.tokens.append(token)

    def finalize(self) -> bytes:
        return pack_tokens(self.tokens)


class TokenIndex:
    """token -> ids of the items carrying it, in the order they were added.

    Ids are kept in typed arrays of 4 bytes each (8 for a token whose list meets an id past 2**32,
    which SQLite allows): at 5,000 feeds a window holds some five million postings, which as
    Python lists of ints would take ten times the memory.
    """

    def __init__(self) -> None:
        self._items: dict[int, array[int]] = {}

    @classmethod
    def load(cls, rows: Iterable[tuple[int, bytes]]) -> TokenIndex:
        """From (item id, packed tokens) rows."""
        index = cls()
        for item_id, blob in rows:
            index.add(item_id, unpack_tokens(blob))
        return index

    def add(self, item_id: int, tokens: Iterable[int]) -> None:
        for token in tokens:
            items = self._items.get(token)
            if items is None:
                self._items[token] = items = array("I")
            try:
                items.append(item_id)
            except OverflowError:
                self._items[token] = items = array("q", items)
                items.append(item_id)

    def remove(self, item_id: int, tokens: Iterable[int]) -> None:
        """Forget the item under each of `tokens` (an edited item's old text); rare, so linear."""
        for token in tokens:
            items = self._items.get(token)
            if items is None:
                continue
            with contextlib.suppress(ValueError):  # not under this token: nothing to forget
                items.remove(item_id)
            if not items:
                del self._items[token]

    @property
    def tokens(self) -> int:
        return len(self._items)

    def count(self, token: int) -> int:
        items = self._items.get(token)
        return 0 if items is None else len(items)

    def items(self, token: int) -> Sequence[int]:
        return self._items.get(token, _EMPTY)
