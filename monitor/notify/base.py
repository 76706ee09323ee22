"""What every channel shares: the Notifier protocol and helpers for per-alert delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import httpx

from monitor.errors import DeliveryError
from monitor.types import Alert, DeliveryOutcome


class Notifier(Protocol):
    name: str

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        """Try to deliver every alert; one outcome per alert, never an exception."""
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
            outcomes.append(DeliveryOutcome(alert.id, channel, False, str(e), e.temporary))
        except Exception as e:  # a bug or an unforeseen failure must not lose the outcomes so far
            outcomes.append(DeliveryOutcome(alert.id, channel, False, f"unexpected error: {e!r}", True))
        else:
            outcomes.append(DeliveryOutcome(alert.id, channel, True))
            continue
        if outcomes[-1].temporary:
            break
    return outcomes


def http_failure(channel: str, error: httpx.HTTPError | httpx.Response) -> DeliveryError:
    """Classify an HTTP failure: retrying helps for timeouts, 5xx, 408 and 429; not for other statuses."""
    if isinstance(error, httpx.Response):
        status = error.status_code
        body = error.text[:200].strip()
        temporary = status >= 500 or status in (408, 425, 429)
        detail = f"HTTP {status}" + (f": {body}" if body else "")
        if 300 <= status < 400:
            detail += " (redirects are not followed; configure the final URL)"
        return DeliveryError(channel, detail, temporary=temporary)
    if isinstance(error, httpx.TimeoutException):
        return DeliveryError(channel, f"timed out ({type(error).__name__})")
    return DeliveryError(channel, f"connection failed: {type(error).__name__}")
