"""What every channel shares: the Notifier protocol and helpers for per-alert delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from monitor.errors import DeliveryError
from monitor.types import Alert, DeliveryOutcome, Digest

# A receiver asking for a longer pause than this is treated as asking for this long.
MAX_RETRY_AFTER = 24 * 3600.0


class Notifier(Protocol):
    name: str

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        """Try to deliver every alert as it is (immediate delivery); one outcome per alert,
        never an exception."""
        ...

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        """Try to deliver the digest as one message (or a few numbered ones); one outcome per
        alert in it, never an exception."""
        ...


async def deliver_each(
    alerts: Sequence[Alert], channel: str, send: Callable[[Alert], Awaitable[None]]
) -> list[DeliveryOutcome]:
    """Deliver alerts one by one with `send` (an async callable), collecting an outcome for each.

    After a temporary failure the rest of the batch is left queued, untried: a receiver that is
    down would otherwise cost one timeout per alert while every other channel waits.
    """
    outcomes = []
    for alert in alerts:
        try:
            await send(alert)
        except DeliveryError as e:
            outcomes.append(DeliveryOutcome(alert.id, channel, False, str(e), e.temporary, e.retry_after))
        except Exception as e:  # a bug or an unforeseen failure must not lose the outcomes so far
            outcomes.append(DeliveryOutcome(alert.id, channel, False, f"unexpected error: {e!r}", True))
        else:
            outcomes.append(DeliveryOutcome(alert.id, channel, True))
            continue
        if outcomes[-1].temporary:
            break
    return outcomes


def outcomes_for(alerts: Sequence[Alert], channel: str, error: DeliveryError) -> list[DeliveryOutcome]:
    """The same failure for every alert of a message that carried several (a digest)."""
    return [
        DeliveryOutcome(a.id, channel, False, str(error), error.temporary, error.retry_after) for a in alerts
    ]


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds to wait per the response's Retry-After (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def http_failure(channel: str, error: httpx.HTTPError | httpx.Response) -> DeliveryError:
    """Classify an HTTP failure: retrying helps for timeouts, 5xx, 408 and 429; not for other
    statuses. A 429 or 503 passes on the wait its Retry-After asks for."""
    if isinstance(error, httpx.Response):
        status = error.status_code
        body = error.text[:200].strip()
        temporary = status >= 500 or status in (408, 425, 429)
        detail = f"HTTP {status}" + (f": {body}" if body else "")
        if 300 <= status < 400:
            detail += " (redirects are not followed; configure the final URL)"
        wait = retry_after(error) if status in (429, 503) else None
        return DeliveryError(channel, detail, temporary=temporary, retry_after=wait)
    if isinstance(error, httpx.TimeoutException):
        return DeliveryError(channel, f"timed out ({type(error).__name__})")
    return DeliveryError(channel, f"connection failed: {type(error).__name__}")
