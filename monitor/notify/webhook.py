"""Generic webhooks: a versioned JSON payload POSTed to any URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from monitor.config import ChannelConfig, WebhookOptions
from monitor.notify.base import deliver_each, http_failure
from monitor.types import Alert, DeliveryOutcome

PAYLOAD_VERSION = 1


def webhook_payload(alert: Alert) -> dict[str, Any]:
    return {
        "version": PAYLOAD_VERSION,
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
            "link": alert.link,
            "source": alert.feed,
            "outlet": alert.outlet or alert.feed,
            "published": alert.published.isoformat(),
        },
        "terms": list(alert.terms),
        "story": {
            "id": alert.story_id,
            "sources": list(alert.sources or (alert.outlet or alert.feed,)),
            "min_sources": alert.min_sources,
        },
    }


class WebhookNotifier:
    def __init__(self, channel: ChannelConfig, client: httpx.AsyncClient) -> None:
        assert isinstance(channel.options, WebhookOptions)
        self.name = channel.name
        self._options = channel.options
        self._client = client

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._send)

    async def _send(self, alert: Alert) -> None:
        body = json.dumps(webhook_payload(alert), ensure_ascii=False).encode()
        headers = {
            **dict(self._options.headers),
            "Content-Type": "application/json",
            # Standard Webhooks header names: receivers drop repeats by webhook-id.
            "webhook-id": alert.id,
            "webhook-timestamp": str(int(datetime.now().timestamp())),
        }
        try:
            response = await self._client.post(self._options.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise http_failure(self.name, e) from e
        if not 200 <= response.status_code < 300:
            raise http_failure(self.name, response)
