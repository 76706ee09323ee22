"""`monitor health`, run as Docker's HEALTHCHECK runs it: exit 0 or 1 and exactly one line saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.store import Store
from monitor.types import Alert, DeliveryOutcome, Severity
from tests.conftest import write_config

FEED = "wire"
FEED_URL = "http://127.0.0.1:9/wire.xml"  # never fetched: health only reads the store


def health(config: Path) -> tuple[int, str]:
    """Exit code and the single line `monitor health` printed."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "health", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr)
    return result.returncode, lines[0]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "monitor.db"


@pytest.fixture
def config(tmp_path: Path, state: Path) -> Path:
    return write_config(
        tmp_path / "config.toml",
        f'[defaults]\nstate_path = "{state}"\n'
        f'[[feeds]]\nname = "{FEED}"\nurl = "{FEED_URL}"\ninterval = "10m"\n'
        '[channels.console]\ntype = "console"\n'
        '[channels.ops]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n',
    )


@pytest.fixture
def store(state: Path) -> Iterator[Store]:
    s = Store.open(state)
    yield s
    s.close()


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def polled(store: Store, *, cycle: str, success: str | None) -> None:
    """Seed what a daemon's cycles leave behind."""
    store.set_meta("last_cycle_at", cycle)
    if success is not None:
        store.set_meta("last_success_at", success)


def test_healthy_after_a_recent_successful_poll(config: Path, store: Store) -> None:
    """A recent cycle with an answering feed and a writable database is healthy, with counts."""
    store.record_unchanged(FEED, FEED_URL, "not modified", datetime.now(UTC))
    polled(store, cycle=ago(seconds=5), success=ago(seconds=5))

    code, line = health(config)

    assert code == 0, line
    assert line.startswith("healthy: last poll ")
    assert line.endswith("s ago, 1 feed (0 failing), 0 alerts pending")


def test_stale_last_poll_is_unhealthy(config: Path, store: Store) -> None:
    """A last cycle 2 h ago, with a 10-minute interval, is older than the 3 x 10 min + 60 s allowed."""
    store.record_unchanged(FEED, FEED_URL, "not modified", datetime.now(UTC) - timedelta(hours=2))
    polled(store, cycle=ago(hours=2), success=ago(hours=2))

    code, line = health(config)

    assert code == 1
    assert line.startswith("unhealthy: last poll 72")
    assert line.endswith("s ago (allowed 1860s)")


def test_no_feed_succeeding_is_unhealthy(config: Path, store: Store) -> None:
    """Cycles that complete while every fetch fails (the network is down) are unhealthy, with an example."""
    store.record_failure(FEED, FEED_URL, "connection refused", datetime.now(UTC))
    polled(store, cycle=ago(seconds=5), success=ago(hours=2))

    code, line = health(config)

    assert code == 1
    assert line.startswith("unhealthy: no feed polled successfully in 72")
    assert line.endswith("s (1 feed failing; e.g. wire: connection refused)")


def test_no_feed_ever_succeeding_is_unhealthy(config: Path, store: Store) -> None:
    """Without any success recorded, the reason says none has happened yet."""
    store.record_failure(FEED, FEED_URL, "HTTP 503", datetime.now(UTC))
    polled(store, cycle=ago(seconds=5), success=None)

    code, line = health(config)

    assert (code, line) == (
        1,
        "unhealthy: no feed polled successfully yet (1 feed failing; e.g. wire: HTTP 503)",
    )


def test_no_poll_yet_is_unhealthy(config: Path, store: Store) -> None:
    """A store no cycle has completed on is not healthy yet."""
    assert health(config) == (1, "unhealthy: no poll has completed yet")


def test_failing_channel_is_unhealthy(config: Path, store: Store) -> None:
    """A channel that refused an alert for good makes the service unhealthy until it accepts one."""
    now = datetime.now(UTC)
    store.record_unchanged(FEED, FEED_URL, "not modified", now)
    polled(store, cycle=ago(seconds=5), success=ago(seconds=5))
    alert = Alert(
        id="a1",
        channel="ops",
        watchlist="border",
        watchlist_name="Border incidents",
        severity=Severity.HIGH,
        feed=FEED,
        item_key="k1",
        title="Guards attacked near Saravan",
        summary="",
        link=None,
        published=now,
        terms=("Saravan",),
        created_at=now,
    )
    store.queue_alert(alert)
    store.record_deliveries(
        [DeliveryOutcome("a1", "ops", delivered=False, error="HTTP 410: webhook removed", temporary=False)],
        now,
    )

    code, line = health(config)

    assert code == 1
    assert line.startswith("unhealthy: channel ops failing since ")
    assert line.endswith(" UTC: HTTP 410: webhook removed")


def test_recorded_storage_error_is_unhealthy(config: Path, store: Store) -> None:
    """A write failure the daemon recorded (and has not yet cleared) is the reason given."""
    store.record_unchanged(FEED, FEED_URL, "not modified", datetime.now(UTC))
    polled(store, cycle=ago(seconds=5), success=ago(seconds=5))
    reason = f"{store.path}: the disk is full (while writing to it); free space on the volume holding x/"
    store.set_meta("storage_error", reason)

    assert health(config) == (1, f"unhealthy: {reason}")


def test_corrupt_database_is_unhealthy_with_the_recovery(config: Path, state: Path) -> None:
    """A database that cannot be opened names the file and how to move it aside."""
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a database" * 600)

    code, line = health(config)

    assert code == 1
    assert line.startswith(f"unhealthy: {state}: the database file is damaged (while opening it)")
    assert f"mv {state} {state}.corrupt" in line


def test_database_marked_read_only_is_not_writable(config: Path, store: Store, state: Path) -> None:
    """A database SQLite must treat as read-only fails the write check, whoever runs the check.

    Byte 18 of the header is the file format's write version; SQLite opens a file whose write
    version it does not know for reading only, which even root cannot write, unlike a chmod.
    """
    polled(store, cycle=ago(seconds=5), success=ago(seconds=5))
    store.close()
    with state.open("r+b") as handle:
        handle.seek(18)
        handle.write(bytes([3]))

    code, line = health(config)

    assert code == 1
    assert line.startswith(f"unhealthy: database not writable: {state}: the database cannot be written")
    assert f"write access to {state} and to its directory {state.parent}/" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files; the header test covers it")
def test_read_only_permissions_are_not_writable(config: Path, store: Store, state: Path) -> None:
    """A database file and directory without write permission make health fail, naming the file."""
    polled(store, cycle=ago(seconds=5), success=ago(seconds=5))
    store.close()
    state.chmod(0o444)
    state.parent.chmod(0o555)
    try:
        code, line = health(config)
    finally:
        state.parent.chmod(0o755)
        state.chmod(0o644)

    assert code == 1
    assert line.startswith("unhealthy: ")
    assert f"{state}: the database cannot be written" in line
    assert "needs write access" in line


def test_invalid_config_exits_1_not_docker_reserved_2(tmp_path: Path) -> None:
    """A broken config.toml is reported on the one line with exit 1: Docker reserves exit code 2."""
    config = write_config(tmp_path / "config.toml", '[defaults]\npoll_intervall = "5m"\n')

    code, line = health(config)

    assert code == 1
    assert line.startswith(f"unhealthy: {config}: defaults.poll_intervall: unknown key")
