"""Channels: Slack and webhook payloads and error classification (respx), email messages, console."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import respx

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
from monitor.notify.email import EmailNotifier, build_message, subject
from monitor.notify.slack import HEADER_LIMIT, SlackNotifier, escape, slack_message
from monitor.notify.webhook import PAYLOAD_VERSION, WebhookNotifier, webhook_payload
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


# Slack


def test_slack_escape():
    """&, < and > are escaped for mrkdwn; & first, so nothing is double-escaped."""
    assert escape("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"


@pytest.mark.parametrize("field", ["title", "summary", "link", "both"])
def test_slack_message_neutralises_mentions_and_links(field):
    """No `<!` or injected `<url|label>` from feed text survives anywhere in blocks or text."""
    changes: dict[str, Any] = {
        "title": {"title": f"Breaking {HOSTILE}"},
        "summary": {"summary": f"Click {HOSTILE} now"},
        "link": {"link": "https://wire.example/a>|<!channel>"},
        "both": {"title": HOSTILE, "summary": HOSTILE, "terms": ("<!here>",)},
    }[field]
    message = slack_message(make_alert(**changes))
    for text in all_strings(message):
        assert "<!" not in text
        assert "<https://evil.example" not in text
    assert "<!" not in json.dumps(message, ensure_ascii=False)


def test_slack_message_keeps_the_real_link():
    """The item link is the one link in the title section, with the escaped title as its label."""
    message = slack_message(make_alert(title="A & B <c>"))
    section = message["blocks"][1]["text"]
    assert section == {"type": "mrkdwn", "text": "*<https://wire.example/1|A &amp; B &lt;c&gt;>*"}


def test_slack_message_without_link():
    """Without a link the title is bold text."""
    message = slack_message(make_alert(link=None))
    assert message["blocks"][1]["text"]["text"] == "*Envoy returns to Tehran (1)*"


def test_slack_message_shape():
    """Header with the watchlist, title section, summary section, context with feed, time, severity, terms."""
    message = slack_message(make_alert(severity=Severity.HIGH))
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "Ambassadors return"}
    context = message["blocks"][3]["elements"][0]["text"]
    assert context == "wire · 2024-01-29 10:05 UTC · severity high · matched: ambassador*, return*"
    assert message["text"] == "Ambassadors return: Envoy returns to Tehran (1)"


def test_slack_message_without_summary_has_no_summary_block():
    """An empty summary adds no block."""
    kinds = [b["type"] for b in slack_message(make_alert(summary=""))["blocks"]]
    assert kinds == ["header", "section", "context"]


def test_slack_header_is_at_most_150_characters():
    """The header block respects Slack's 150-character limit."""
    message = slack_message(make_alert(watchlist_name="W" * 400, title="T" * 5000, summary="S" * 5000))
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER_LIMIT == 150
    assert header.endswith("…")
    assert len(message["blocks"][2]["text"]["text"]) <= 600
    assert all(len(s) <= 3000 for s in all_strings(message))


def slack(client: httpx.AsyncClient) -> SlackNotifier:
    return SlackNotifier(ChannelConfig("ops", "slack", SlackOptions(SLACK_URL)), client)


def slack_deliver(alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            return await slack(client).deliver(alerts)

    return asyncio.run(run())


def test_slack_delivers_on_200():
    """A 200 is delivered, and the posted JSON is the slack_message."""
    alert = make_alert()
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).respond(200, text="ok")
        outcomes = slack_deliver([alert])
    assert outcomes == [DeliveryOutcome("alert-1", "ops", True)]
    assert json.loads(route.calls.last.request.content) == slack_message(alert)


@pytest.mark.parametrize(
    ("response", "temporary", "needle"),
    [
        (httpx.Response(500, text="internal error"), True, "HTTP 500"),
        (httpx.Response(503, text=""), True, "HTTP 503"),
        (httpx.Response(429, text="rate_limited"), True, "HTTP 429"),
        (httpx.Response(404, text="no_service"), False, "no_service"),
        (httpx.Response(404, text="channel_not_found"), False, "channel_not_found"),
        (httpx.Response(403, text="invalid_token\n"), False, "invalid_token"),
        (httpx.Response(410, text="channel_is_archived"), False, "channel_is_archived"),
        (httpx.Response(400, text="something else"), False, "HTTP 400"),
        (
            httpx.Response(302, headers={"Location": "https://elsewhere.example"}),
            False,
            "redirects are not followed",
        ),
    ],
)
def test_slack_classifies_failures(response, temporary, needle):
    """5xx and 429 are worth retrying; a dead webhook (no_service, channel_not_found...) is permanent."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(return_value=response)
        (outcome,) = slack_deliver([make_alert()])
    assert not outcome.delivered
    assert outcome.temporary is temporary
    assert needle in (outcome.error or "")


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")]
)
def test_slack_network_errors_are_temporary(error):
    """Connection errors and timeouts are retried later."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=error)
        (outcome,) = slack_deliver([make_alert()])
    assert not outcome.delivered
    assert outcome.temporary


def test_slack_permanent_failure_of_one_alert_does_not_stop_the_rest():
    """A permanent failure is that alert's; the next alert is still tried."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(
            side_effect=[httpx.Response(400, text="invalid_payload"), httpx.Response(200, text="ok")]
        )
        outcomes = slack_deliver([make_alert(1), make_alert(2)])
    assert [(o.alert_id, o.delivered) for o in outcomes] == [("alert-1", False), ("alert-2", True)]


def test_slack_temporary_failure_leaves_the_rest_queued_untried():
    """After a 500 the rest of the batch is not tried this run: no outcome, so it stays queued."""
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, text="ok")])
        outcomes = slack_deliver([make_alert(1), make_alert(2)])
    assert [(o.alert_id, o.delivered) for o in outcomes] == [("alert-1", False)]
    assert route.call_count == 1


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


def test_slack_error_does_not_leak_the_webhook_url():
    """The webhook URL is a secret: failures do not quote it."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=httpx.ConnectError(f"cannot connect to {SLACK_URL}"))
        (outcome,) = slack_deliver([make_alert()])
    assert "secret" not in (outcome.error or "")


# Webhook


def test_webhook_payload_shape():
    """The webhook payload is versioned JSON with the watchlist, the item and the terms."""
    alert = make_alert(severity=Severity.CRITICAL)
    payload = webhook_payload(alert)
    assert payload == {
        "version": PAYLOAD_VERSION,
        "type": "alert",
        "id": "alert-1",
        "created_at": "2024-01-20T12:00:00+00:00",
        "watchlist": {"slug": "ambassador-returns", "name": "Ambassadors return", "severity": "critical"},
        "item": {
            "title": "Envoy returns to Tehran (1)",
            "summary": "Pakistan's ambassador resumed duties.",
            "link": "https://wire.example/1",
            "source": "wire",
            "outlet": "wire",
            "published": "2024-01-29T10:05:00+00:00",
        },
        "terms": ["ambassador*", "return*"],
        "story": {"id": None, "sources": ["wire"], "min_sources": 1},
    }
    assert json.loads(json.dumps(payload)) == payload


def test_webhook_payload_lists_the_story_sources():
    """A story carried by several outlets lists them all, the alert's own outlet first."""
    alert = dataclasses.replace(
        make_alert(), story_id=7, outlet="Dawn", sources=("Dawn", "Al Jazeera", "BBC"), min_sources=2
    )
    payload = webhook_payload(alert)
    assert payload["item"]["outlet"] == "Dawn"
    assert payload["story"] == {"id": 7, "sources": ["Dawn", "Al Jazeera", "BBC"], "min_sources": 2}


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


def webhook_deliver(
    alerts: Sequence[Alert], headers: tuple[tuple[str, str], ...] = ()
) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            channel = ChannelConfig("hook", "webhook", WebhookOptions(HOOK_URL, headers))
            return await WebhookNotifier(channel, client).deliver(alerts)

    return asyncio.run(run())


def test_webhook_sends_id_header_and_payload():
    """Each POST carries webhook-id (the alert id), a timestamp, configured headers and the JSON payload."""
    alert = make_alert(title="سفیر ایران")
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).respond(204)
        outcomes = webhook_deliver([alert], headers=(("Authorization", "Bearer t0k"),))
    assert outcomes == [DeliveryOutcome("alert-1", "hook", True)]
    request = route.calls.last.request
    assert request.headers["webhook-id"] == "alert-1"
    assert request.headers["webhook-timestamp"].isdigit()
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content.decode("utf-8")) == webhook_payload(alert)


def test_webhook_same_alert_same_id():
    """Retrying an alert sends the same webhook-id, so receivers can drop the repeat."""
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
        first = webhook_deliver([make_alert()])
        second = webhook_deliver([make_alert()])
    assert (first[0].delivered, first[0].temporary, second[0].delivered) == (False, True, True)
    ids = [call.request.headers["webhook-id"] for call in route.calls]
    assert ids == ["alert-1", "alert-1"]


@pytest.mark.parametrize(("status", "temporary"), [(500, True), (408, True), (400, False), (401, False)])
def test_webhook_classifies_failures(status, temporary):
    """Webhook failures follow the HTTP classification."""
    with respx.mock() as mock:
        mock.post(HOOK_URL).respond(status)
        (outcome,) = webhook_deliver([make_alert()])
    assert (outcome.delivered, outcome.temporary) == (False, temporary)
    assert f"HTTP {status}" in (outcome.error or "")


def test_notification_client_does_not_follow_redirects():
    """A redirected webhook is a failure, never a re-send elsewhere."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(HOOK_URL).respond(307, headers={"Location": "https://elsewhere.example/"})
        other = mock.post("https://elsewhere.example/").respond(200)
        (outcome,) = webhook_deliver([make_alert()])
    assert not outcome.delivered
    assert not other.called


# Email


def parts(message: EmailMessage) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in message.iter_parts()}


def test_email_is_multipart_alternative_with_text_and_html():
    """One message with a plain-text and an HTML part, addressed from the options."""
    options = EmailOptions(
        host="smtp.example", sender="monitor@desk.example", recipients=("a@desk.example", "b@desk.example")
    )
    message = build_message([make_alert(1), make_alert(2)], options)
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert message["From"] == "monitor@desk.example"
    assert message["To"] == "a@desk.example, b@desk.example"
    assert message["Date"]
    for content in body.values():
        assert "Envoy returns to Tehran (1)" in content
        assert "Envoy returns to Tehran (2)" in content
    assert "alert-1 alert-2" in body["text/plain"]


def test_email_html_escapes_feed_text():
    """A <script> in a title or summary is inert text in the HTML part."""
    alert = make_alert(title="<b>bold</b> title", summary="<script>alert('x')</script> & more")
    body = parts(build_message([alert], OPTIONS))
    html = body["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert('x')</script> &" in body["text/plain"]  # plain text is not HTML: left as is


def test_email_link_attribute_escaped():
    """A quote in a link cannot break out of the href attribute."""
    html = parts(build_message([make_alert(link='https://wire.example/"onmouseover="x')], OPTIONS))[
        "text/html"
    ]
    assert '"onmouseover="' not in html


def test_email_subject_format():
    """Subject: `[monitor] N new: A (2), B (1)`, most frequent watchlist first."""
    alerts = [
        make_alert(1, watchlist_name="B"),
        make_alert(2, watchlist_name="A"),
        make_alert(3, watchlist_name="A"),
    ]
    assert subject(alerts) == "[monitor] 3 new: A (2), B (1)"
    assert build_message(alerts, OPTIONS)["Subject"] == "[monitor] 3 new: A (2), B (1)"


def test_email_subject_has_no_cr_or_lf_from_a_hostile_watchlist_name():
    """A watchlist name with CR/LF cannot inject headers."""
    hostile = "Evil\r\nBcc: victim@example.org\r\nX-Injected: yes"
    message = build_message([make_alert(watchlist_name=hostile)], OPTIONS)
    assert "\r" not in message["Subject"]
    assert "\n" not in message["Subject"]
    parsed = email.message_from_string(message.as_string())
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert "Bcc: victim@example.org" in parsed["Subject"]


def test_email_message_id_is_deterministic():
    """The same alerts, in any order, get the same Message-ID; different alerts a different one."""
    a, b, c = make_alert(1), make_alert(2), make_alert(3)
    first = build_message([a, b], OPTIONS)["Message-ID"]
    assert build_message([b, a], OPTIONS)["Message-ID"] == first
    assert build_message([a, c], OPTIONS)["Message-ID"] != first
    assert first.startswith("<")
    assert first.endswith("@desk.example>")


def test_email_orders_by_severity():
    """Critical alerts come first in the message."""
    low = make_alert(1, severity=Severity.LOW, title="low one")
    critical = make_alert(2, severity=Severity.CRITICAL, title="critical one")
    text = parts(build_message([low, critical], OPTIONS))["text/plain"]
    assert text.index("critical one") < text.index("low one")
    assert "[CRITICAL] Ambassadors return" in text


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
