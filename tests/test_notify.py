"""Channels: Slack and webhook payloads and error classification (respx), email messages, console."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.config import (
    _CHANNEL_PARSERS,
    ChannelConfig,
    EmailOptions,
    Settings,
    SlackOptions,
    WebhookOptions,
)
from monitor.notify import CHANNEL_TYPES, build_notifiers, notification_client
from monitor.notify.base import deliver_each
from monitor.notify.console import ConsoleNotifier, format_alert
from monitor.notify.email import EmailNotifier, build_message
from monitor.notify.slack import SlackNotifier, slack_message
from monitor.notify.webhook import WebhookNotifier
from monitor.types import Alert, DeliveryOutcome, Severity

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|Your bank>"
SLACK_URL = "https://hooks.slack.example/services/T0/B0/secret"
HOOK_URL = "https://hooks.example/monitor"
OPTIONS = EmailOptions(host="smtp.example", sender="monitor@desk.example", recipients=("a@desk.example",))


def make_alert(n: int = 1, **changes: Any) -> Alert:
    values: dict[str, Any] = {
        "id": f"alert-{n}",
        "channel": "ops",
        "watchlist": "ambassador-returns",
        "watchlist_name": "Ambassadors return",
        "severity": Severity.MEDIUM,
        "feed": "wire",
        "item_key": f"key-{n}",
        "title": f"Envoy returns to Tehran ({n})",
        "summary": "Pakistan's ambassador resumed duties.",
        "link": f"https://wire.example/{n}",
        "published": datetime(2024, 1, 29, 10, 5, tzinfo=UTC),
        "terms": ("ambassador*", "return*"),
        "created_at": NOW,
    }
    values.update(changes)
    return Alert(**values)


def all_strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON-like structure."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in all_strings(v)]
    return []


def deliver(notifier: Any, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
    return asyncio.run(notifier.deliver(alerts))


# Slack: see test_notify_slack.py


def test_unexpected_exception_in_a_send_becomes_a_temporary_failure():
    """A bug in a channel costs a retry, never the outcomes already collected."""
    calls = []

    async def send(alert):
        calls.append(alert.id)
        if alert.id == "alert-2":
            raise RuntimeError("boom")

    outcomes = asyncio.run(deliver_each([make_alert(1), make_alert(2), make_alert(3)], "ops", send))
    assert [(o.alert_id, o.delivered, o.temporary) for o in outcomes] == [
        ("alert-1", True, True),
        ("alert-2", False, True),
    ]
    assert "boom" in (outcomes[1].error or "")
    assert calls == ["alert-1", "alert-2"]


# Webhook: see test_notify_webhook.py


def test_every_channel_says_who_else_reported_the_story():
    """Console, Slack and email show "also reported by ..." and the corroboration wait."""
    alert = dataclasses.replace(
        make_alert(),
        outlet="Dawn",
        sources=("Dawn", "Al Jazeera", "BBC", "Reuters", "<!channel>"),
        min_sources=3,
    )
    expected = "Held until 3 outlets carried it; also reported by Al Jazeera, BBC and 2 more"
    assert expected in format_alert(alert)
    context = slack_message(alert)["blocks"][-1]["elements"][0]["text"]
    assert expected in context
    text = build_message([alert], OPTIONS).get_body(("plain",)).get_content()
    assert expected in text


# Console


def test_console_format():
    """Severity, watchlist and title; feed, time and link; matched terms."""
    assert format_alert(make_alert(severity=Severity.HIGH)) == (
        "[HIGH] Ambassadors return: Envoy returns to Tehran (1)\n"
        "  wire · 2024-01-29 10:05 UTC · https://wire.example/1\n"
        "  matched: ambassador*, return*"
    )


def test_console_format_without_link():
    """No link, no trailing separator."""
    assert format_alert(make_alert(link=None)).splitlines()[1] == "  wire · 2024-01-29 10:05 UTC"


def test_console_notifier_prints_and_delivers():
    """The console channel prints each alert and reports each delivered."""
    stream = io.StringIO()
    outcomes = deliver(ConsoleNotifier("stdout", stream), [make_alert(1), make_alert(2)])
    assert outcomes == [
        DeliveryOutcome("alert-1", "stdout", True),
        DeliveryOutcome("alert-2", "stdout", True),
    ]
    assert stream.getvalue() == format_alert(make_alert(1)) + "\n" + format_alert(make_alert(2)) + "\n"


# Registry


def test_every_config_channel_type_has_a_notifier():
    """Each channel type config.toml accepts is registered."""
    assert set(CHANNEL_TYPES) == set(_CHANNEL_PARSERS)


def test_build_notifiers(tmp_path):
    """build_notifiers makes one notifier per configured channel, of the right class."""
    settings = Settings(
        path=tmp_path / "config.toml",
        channels={
            "ops": ChannelConfig("ops", "slack", SlackOptions(SLACK_URL)),
            "hook": ChannelConfig("hook", "webhook", WebhookOptions(HOOK_URL)),
            "mail": ChannelConfig("mail", "email", OPTIONS),
            "out": ChannelConfig("out", "console", None),  # type: ignore[arg-type]
        },
    )

    async def run() -> dict[str, Any]:
        async with notification_client(5) as client:
            return build_notifiers(settings, client)

    notifiers = asyncio.run(run())
    assert {n: type(v) for n, v in notifiers.items()} == {
        "ops": SlackNotifier,
        "hook": WebhookNotifier,
        "mail": EmailNotifier,
        "out": ConsoleNotifier,
    }
    assert all(n == v.name for n, v in notifiers.items())
