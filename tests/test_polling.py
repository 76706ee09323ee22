"""When a feed is polled next: backoff, server hints, jitter (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.polling import (
    BACKOFF_CAP,
    MAX_CACHE_HINT,
    backoff_delay,
    cache_max_age,
    feed_ttl,
    next_poll,
)

NOW = datetime(2024, 1, 18, 12, 0, tzinfo=UTC)


def wait_of(**kwargs: object) -> float:
    schedule = next_poll(900, NOW, **kwargs)  # type: ignore[arg-type]
    return (schedule.next_poll_at - NOW).total_seconds()


def test_a_healthy_feed_waits_its_interval() -> None:
    assert wait_of() == 900
    assert next_poll(900, NOW).backoff == 0


@pytest.mark.parametrize(
    ("failures", "wait"), [(1, 1800), (2, 3600), (3, 7200), (6, 57600), (7, BACKOFF_CAP)]
)
def test_failures_double_the_wait_up_to_a_day(failures: int, wait: float) -> None:
    assert backoff_delay(900, failures) == wait
    assert next_poll(900, NOW, failures=failures).backoff == wait - 900


def test_the_cap_holds_for_any_number_of_failures_and_never_shortens_a_long_interval() -> None:
    assert backoff_delay(900, 10_000) == BACKOFF_CAP
    assert backoff_delay(3 * 86400, 5) == 3 * 86400


def test_retry_after_is_a_floor_for_a_failed_poll() -> None:
    assert wait_of(failures=1, retry_after=5400) == 5400
    assert wait_of(failures=1, retry_after=60) == 1800  # shorter than the backoff: the backoff wins
    assert wait_of(failures=1, retry_after=10 * 86400) == BACKOFF_CAP  # absurd requests are capped
    assert next_poll(900, NOW, failures=1, retry_after=5400).backoff == 4500


def test_freshness_hints_lengthen_a_healthy_feed_within_limits() -> None:
    assert wait_of(cache_hint=3600) == 3600
    assert wait_of(cache_hint=60) == 900  # never sooner than the interval
    assert wait_of(cache_hint=30 * 86400) == MAX_CACHE_HINT
    assert next_poll(900, NOW, cache_hint=3600).backoff == 0  # the feed's pace, not trouble


def test_jitter_spreads_polls_within_its_share_of_the_wait() -> None:
    rng = random.Random(7)
    waits = [
        (next_poll(900, NOW, jitter=0.1, rng=rng).next_poll_at - NOW).total_seconds() for _ in range(200)
    ]
    assert all(900 <= w <= 990 for w in waits)
    assert max(waits) - min(waits) > 45  # actually spread, not a constant offset


def test_a_move_is_carried_in_the_schedule() -> None:
    assert next_poll(900, NOW, moved_to="https://new.example/rss").moved_to == "https://new.example/rss"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=600", 600),
        ("public, max-age=120, must-revalidate", 120),
        ('max-age="90"', 90),
        ("s-maxage=50, max-age=30", 30),
        ("no-store, max-age=600", None),
        ("no-cache", None),
        ("max-age=abc", None),
        ("", None),
        (None, None),
    ],
)
def test_cache_max_age(header: str | None, seconds: float | None) -> None:
    assert cache_max_age(header) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"), [("60", 3600), (" 15 ", 900), ("0", None), ("x", None), (None, None)]
)
def test_feed_ttl_is_minutes(value: object, seconds: float | None) -> None:
    assert feed_ttl(value) == seconds


def test_next_poll_is_after_now_whatever_the_inputs() -> None:
    for failures in range(0, 50, 7):
        for hint in (None, 0.0, 1.0, 10.0**9):
            schedule = next_poll(1, NOW, failures=failures, retry_after=hint, cache_hint=hint, jitter=0.5)
            assert NOW < schedule.next_poll_at <= NOW + timedelta(seconds=BACKOFF_CAP * 1.5)
