"""Watchlists reloaded from disk: edits picked up, broken edits never take a watchlist down."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from monitor.watchlists.live import LiveWatchlists


def write(path: Path, query: str, name: str = "W") -> None:
    path.write_text(f'name = "{name}"\nquery = {query!r}\n', encoding="utf-8")
    # Make each write visible even when the file system's clock is coarse.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def queries(live: LiveWatchlists) -> dict[str, str]:
    return {w.slug: w.source for w in live.watchlists}


def test_first_load_then_nothing_changes(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", "Zahedan")
    live = LiveWatchlists(tmp_path)
    assert live.reload() is True
    assert queries(live) == {"a": "Zahedan"}
    assert live.reload() is False


def test_an_edit_is_picked_up(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", "Zahedan")
    live = LiveWatchlists(tmp_path)
    live.reload()
    write(tmp_path / "a.toml", "Zahedan OR Saravan")
    assert live.reload() is True
    assert queries(live) == {"a": "Zahedan OR Saravan"}


def test_a_broken_edit_keeps_the_last_good_version_and_logs_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "a.toml", "Zahedan")
    write(tmp_path / "b.toml", "Rask")
    live = LiveWatchlists(tmp_path)
    live.reload()
    write(tmp_path / "a.toml", "(Zahedan OR")
    write(tmp_path / "b.toml", "Rask OR Saravan")
    with caplog.at_level(logging.ERROR, logger="monitor"):
        live.reload()
    assert queries(live) == {"a": "Zahedan", "b": "Rask OR Saravan"}
    assert "a.toml: query: expected a term, the query ends at column 12" in caplog.text
    assert "last good version keeps running" in caplog.text
    write(tmp_path / "a.toml", "Zahedan OR Khash")
    live.reload()
    assert queries(live)["a"] == "Zahedan OR Khash"
    assert live.errors == []


def test_a_broken_shared_term_set_keeps_the_watchlists_that_use_it(tmp_path: Path) -> None:
    (tmp_path / "terms").mkdir()
    (tmp_path / "terms" / "places.toml").write_text('towns = ["Zahedan"]\n', encoding="utf-8")
    write(tmp_path / "a.toml", "@towns AND attack*")
    live = LiveWatchlists(tmp_path)
    live.reload()
    (tmp_path / "terms" / "places.toml").write_text("towns = [\n", encoding="utf-8")
    live.reload()
    assert queries(live) == {"a": "@towns AND attack*"}
    assert any("places.toml" in str(e) for e in live.errors)


def test_a_new_file_is_added_and_a_deleted_one_dropped(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", "Zahedan")
    live = LiveWatchlists(tmp_path)
    live.reload()
    write(tmp_path / "b.toml", "Rask")
    (tmp_path / "a.toml").unlink()
    assert live.reload() is True
    assert queries(live) == {"b": "Rask"}


def test_a_watchlist_broken_from_the_start_is_left_out(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", "Zahedan")
    write(tmp_path / "b.toml", "(")
    live = LiveWatchlists(tmp_path)
    live.reload()
    assert queries(live) == {"a": "Zahedan"}
    assert [Path(e.file).name for e in live.errors] == ["b.toml"]


def test_a_bad_entry_in_a_shared_term_set_keeps_the_watchlists_that_use_it(tmp_path: Path) -> None:
    (tmp_path / "terms").mkdir()
    (tmp_path / "terms" / "places.toml").write_text('towns = ["Zahedan"]\n', encoding="utf-8")
    write(tmp_path / "a.toml", "@towns AND attack*")
    write(tmp_path / "b.toml", "Rask")
    live = LiveWatchlists(tmp_path)
    live.reload()
    (tmp_path / "terms" / "places.toml").write_text('towns = ["Za*hedan"]\n', encoding="utf-8")
    live.reload()
    assert queries(live) == {"a": "@towns AND attack*", "b": "Rask"}
    assert any("towns[0]" in str(e) for e in live.errors)
