"""Slack incoming webhooks, with Block Kit messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from monitor.config import ChannelConfig, SlackOptions
from monitor.errors import DeliveryError
from monitor.notify.base import deliver_each, http_failure
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome

HEADER_LIMIT = 150
TEXT_LIMIT = 3000
# Slack answers these when the webhook itself is dead: retrying cannot help.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_payload",
        "posting_to_general_channel_denied",
    }
)


def escape(text: str) -> str:
    """Escape feed text for mrkdwn, so `<!channel>` or `<url|label>` in a title stays literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: Alert) -> dict[str, Any]:
    title = escape(alert.title)
    # In <url|label> a `|` or `>` in the URL would end it early: they are percent-encoded.
    link = escape(alert.link).replace("|", "%7C") if alert.link else None
    linked = f"*<{link}|{title}>*" if link else f"*{title}*"
    when = alert.published.strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.watchlist_name, HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(linked, TEXT_LIMIT)}},
    ]
    if alert.summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(alert.summary), 600)}}
        )
    outlet = escape(alert.outlet or alert.feed)
    context = f"{outlet} · {when} · severity {alert.severity.label} · matched: " + escape(
        ", ".join(alert.terms)
    )
    note = corroboration_note(alert.sources, alert.outlet or alert.feed, alert.min_sources)
    if note:
        context += " · " + escape(note)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, TEXT_LIMIT)}]})
    # `text` is the notification fallback, and Slack reads it as mrkdwn too: escaped like the blocks.
    return {"text": _cut(escape(f"{alert.watchlist_name}: {alert.title}"), TEXT_LIMIT), "blocks": blocks}


class SlackNotifier:
    def __init__(self, channel: ChannelConfig, client: httpx.AsyncClient) -> None:
        assert isinstance(channel.options, SlackOptions)
        self.name = channel.name
        self._url = channel.options.webhook_url
        self._client = client

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._send)

    async def _send(self, alert: Alert) -> None:
        try:
            response = await self._client.post(self._url, json=slack_message(alert))
        except httpx.HTTPError as e:
            raise http_failure(self.name, e) from e
        if response.status_code == 200:
            return
        code = response.text.strip()
        if code in PERMANENT_ERRORS:
            raise DeliveryError(self.name, f"Slack refused the webhook: {code}", temporary=False)
        raise http_failure(self.name, response)
