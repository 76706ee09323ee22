"""Channels that deliver alerts, and the outbox worker that feeds them.

Each channel type is a small class satisfying `Notifier`, registered in `CHANNEL_TYPES` the way a
third-party channel would be.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx

from monitor.config import ChannelConfig, Settings
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier
from monitor.notify.email import EmailNotifier
from monitor.notify.slack import SlackNotifier
from monitor.notify.webhook import WebhookNotifier

NotifierFactory = Callable[[ChannelConfig, httpx.AsyncClient], Notifier]


def _apprise(channel: ChannelConfig, _: httpx.AsyncClient) -> Notifier:
    # Apprise and its plugins take longer to import than the rest of monitor: only when used.
    from monitor.notify.apprise_channel import AppriseNotifier

    return AppriseNotifier(channel)


CHANNEL_TYPES: dict[str, NotifierFactory] = {
    "console": lambda c, _: ConsoleNotifier(c.name),
    "slack": lambda c, client: SlackNotifier(c, client),
    "webhook": lambda c, client: WebhookNotifier(c, client),
    "email": lambda c, _: EmailNotifier(c),
    "apprise": _apprise,
}


def build_notifiers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Notifier]:
    return {name: CHANNEL_TYPES[c.type](c, client) for name, c in settings.channels.items()}


def notification_client(timeout: float, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The HTTP client for outgoing alerts. Redirects are failures: an alert is never re-sent elsewhere.

    `verify`: a TLS context to share (the fetcher's), so the certificate authorities are not loaded
    a second time."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), follow_redirects=False, verify=True if verify is None else verify
    )


__all__ = ["CHANNEL_TYPES", "Notifier", "build_notifiers", "notification_client"]
