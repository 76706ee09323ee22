"""Generic webhooks: a versioned JSON payload POSTed to any URL, signed per Standard Webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.config import ChannelConfig, WebhookOptions
from monitor.digest import sections
from monitor.errors import DeliveryError
from monitor.notify.base import deliver_each, http_failure, outcomes_for
from monitor.types import Alert, DeliveryOutcome, Digest

# Version 2 added digests, story.items and the http(s)-only rule for links (README: Webhook payload).
PAYLOAD_VERSION = 2

# JSON never needs these raw: escaped, a payload pasted into HTML or a <script> stays inert, and
# U+2028/U+2029 cannot end a JavaScript string early. Outside strings JSON has none of them, so
# replacing them in the encoded text is always safe.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _web_link(link: str | None) -> str | None:
    """The link if it is http(s), else None: a receiver may render it as a clickable link."""
    if link and link.lower().startswith(("http://", "https://")):
        return link
    return None


def _alert_fields(alert: Alert) -> dict[str, Any]:
    outlet = alert.outlet or alert.feed
    if alert.story_items:
        items = [
            {
                "outlet": entry.outlet,
                "title": entry.title,
                "link": _web_link(entry.link),
                "published": entry.published.isoformat(),
            }
            for entry in alert.story_items
        ]
    else:  # the story was not read (or is unknown): the alert's own item is all that is known
        items = [
            {
                "outlet": outlet,
                "title": alert.title,
                "link": _web_link(alert.link),
                "published": alert.published.isoformat(),
            }
        ]
    return {
        "type": "alert",
        "id": alert.id,
        "created_at": alert.created_at.isoformat(),
        "watchlist": {
            "slug": alert.watchlist,
            "name": alert.watchlist_name,
            "severity": alert.severity.label,
        },
        "item": {
            "title": alert.title,
            "summary": alert.summary,
            "link": _web_link(alert.link),
            "source": alert.feed,
            "outlet": outlet,
            "published": alert.published.isoformat(),
        },
        "terms": list(alert.terms),
        "story": {
            "id": alert.story_id,
            "sources": list(alert.sources or (outlet,)),
            "min_sources": alert.min_sources,
            "items": items,
        },
    }


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The JSON object POSTed for one alert."""
    return {"version": PAYLOAD_VERSION, **_alert_fields(alert)}


def digest_payload(digest: Digest) -> dict[str, Any]:
    """The JSON object POSTed for a digest: every alert in it, in the order of the digest's sections.

    Nothing is capped: each alert in the digest is marked delivered when the POST succeeds, so one
    left out of the payload would be recorded as sent without the receiver ever seeing it.
    """
    ordered = [a for s in sections(digest.alerts, limit=max(len(digest.alerts), 1)) for a in s.alerts]
    return {
        "version": PAYLOAD_VERSION,
        "type": "digest",
        "id": digest.id,
        "period_end": digest.period_end.isoformat(),
        "alerts": [_alert_fields(a) for a in ordered],
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    """UTF-8 JSON with HTML-significant characters escaped."""
    text = json.dumps(payload, ensure_ascii=False)
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    # A lone surrogate from a broken feed cannot be UTF-8; "?" keeps the JSON valid.
    return text.encode("utf-8", "replace")


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value: v1 and the HMAC-SHA256 of id.timestamp.body."""
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookNotifier:
    def __init__(
        self,
        channel: ChannelConfig,
        client: httpx.AsyncClient,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        assert isinstance(channel.options, WebhookOptions)
        self.name = channel.name
        self._options = channel.options
        self._client = client
        self._clock = clock

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._send)

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        if not digest.alerts:
            return []
        try:
            await self._post(digest.id, encode_payload(digest_payload(digest)))
        except DeliveryError as e:
            return outcomes_for(digest.alerts, self.name, e)
        except Exception as e:  # a bug must not lose the digest: it is retried like a timeout
            error = DeliveryError(self.name, f"unexpected error: {e!r}")
            return outcomes_for(digest.alerts, self.name, error)
        return [DeliveryOutcome(a.id, self.name, True) for a in digest.alerts]

    async def _send(self, alert: Alert) -> None:
        await self._post(alert.id, encode_payload(webhook_payload(alert)))

    async def _post(self, message_id: str, body: bytes) -> None:
        headers = httpx.Headers(self._options.headers)
        # Standard Webhooks headers: the id is the alert's (or digest's), the same on every retry, so
        # receivers can drop repeats; the timestamp is this attempt's, so old requests can be refused.
        timestamp = int(self._clock().timestamp())
        headers["Content-Type"] = "application/json"
        headers["webhook-id"] = message_id
        headers["webhook-timestamp"] = str(timestamp)
        if self._options.secret is not None:
            headers["webhook-signature"] = sign(self._options.secret, message_id, timestamp, body)
        # The client's timeout applies to each read, so a receiver trickling its answer byte by byte
        # could hold delivery forever; the whole exchange gets each phase's timeout once.
        limit = self._client.timeout
        deadline = sum(t for t in (limit.connect, limit.write, limit.read, limit.pool) if t is not None)
        try:
            async with asyncio.timeout(deadline or None):
                response = await self._client.post(self._options.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise http_failure(self.name, e) from e
        except TimeoutError as e:
            raise DeliveryError(self.name, f"timed out (no complete answer within {deadline:g} s)") from e
        if not 200 <= response.status_code < 300:
            raise http_failure(self.name, response)
