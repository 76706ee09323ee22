"""When a feed is polled next: its interval, stretched by failures and by what the server asks.

Pure functions of (feed state, response hints, now); the daemon and the store only record the times
they give.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from monitor.types import FeedSchedule

# Consecutive failures double the wait, up to this: a dead feed is still tried once a day, so it
# recovers on its own and never stops silently.
BACKOFF_CAP = 24 * 3600.0
# Cache-Control max-age and RSS <ttl> may lengthen the interval, but a feed saying "come back in a
# week" is not obeyed for more than this: news feeds lie about their freshness.
MAX_CACHE_HINT = 6 * 3600.0
# A Retry-After on 429/503 is a direct request; honoured up to the backoff cap.
MAX_RETRY_AFTER = BACKOFF_CAP
# A feed failing this long is reported on the ops channel, once per failure streak.
REPORT_FAILING_AFTER = timedelta(hours=24)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


def cache_max_age(cache_control: str | None) -> float | None:
    """Seconds a response says it stays fresh (`max-age`), unless it forbids reuse (`no-store`)."""
    if not cache_control or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def feed_ttl(value: object) -> float | None:
    """An RSS 2.0 `<ttl>` (minutes) in seconds; anything else is ignored."""
    try:
        minutes = float(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if 0 < minutes < 10**6 else None


def backoff_delay(interval: float, failures: int) -> float:
    """The wait after `failures` consecutive failures: the interval, doubled per failure, capped.

    The cap never shortens a feed's own interval: a feed polled every two days waits two days.
    """
    if failures <= 0:
        return interval
    return min(interval * 2.0 ** min(failures, 40), max(BACKOFF_CAP, interval))


def next_poll(
    interval: float,
    now: datetime,
    *,
    failures: int = 0,
    retry_after: float | None = None,
    cache_hint: float | None = None,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    moved_to: str | None = None,
) -> FeedSchedule:
    """When to poll a feed again after a poll at `now`.

    - `failures` consecutive failures back off exponentially from the interval (see backoff_delay);
    - a server's Retry-After (429/503) is a floor, up to MAX_RETRY_AFTER;
    - a successful response's freshness (max-age, <ttl>) is a floor too, up to MAX_CACHE_HINT;
    - jitter adds up to `jitter` x the wait, so feeds on one host drift apart instead of firing
      together.
    The schedule's `backoff` is what failures and Retry-After added beyond the interval.
    """
    wait = backoff_delay(interval, failures)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
    backoff = wait - interval  # what trouble added; a freshness hint is the feed's normal pace
    if cache_hint is not None and failures == 0:
        wait = max(wait, min(cache_hint, MAX_CACHE_HINT))
    spread = (rng or random).uniform(0, jitter * wait) if jitter else 0.0
    return FeedSchedule(
        next_poll_at=now + timedelta(seconds=wait + spread),
        backoff=max(backoff, 0.0),
        moved_to=moved_to,
    )
