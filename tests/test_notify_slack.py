"""The Slack channel: Block Kit messages and digests within Slack's limits, escaping and links,
the per-webhook pace, the plain-text fallback and error classification (respx, and one loopback)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from monitor.config import ChannelConfig, SlackOptions
from monitor.digest import sections
from monitor.notify import notification_client
from monitor.notify.slack import (
    BLOCK_LIMIT,
    HEADER_LIMIT,
    MESSAGE_BUDGET,
    TEXT_LIMIT,
    SlackNotifier,
    WebhookPacer,
    escape,
    plain_message,
    slack_digest_messages,
    slack_message,
    slack_url,
)
from monitor.types import Alert, DeliveryOutcome, Digest, Severity
from tests.conftest import Server, posted_json
from tests.test_notify import HOSTILE, NOW, SLACK_URL, all_strings, make_alert

OTHER_URL = "https://hooks.slack.example/services/T0/B1/other"
# Every `<...>` construct of mrkdwn: a link, a mention, a channel, a special command.
ANGLE = re.compile(r"<([^<>|]*)(?:\|[^<>]*)?>")


class FakeClock:
    """A monotonic clock that only moves when slept on, so spacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def fake_pacer(clock: FakeClock | None = None) -> WebhookPacer:
    clock = clock or FakeClock()
    return WebhookPacer(clock=clock, sleep=clock.sleep)


def slack(
    client: httpx.AsyncClient, pacer: WebhookPacer | None = None, url: str = SLACK_URL
) -> SlackNotifier:
    return SlackNotifier(ChannelConfig("ops", "slack", SlackOptions(url)), client, pacer or fake_pacer())


def slack_deliver(alerts: Sequence[Alert], pacer: WebhookPacer | None = None) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            return await slack(client, pacer).deliver(alerts)

    return asyncio.run(run())


def slack_deliver_digest(digest: Digest, pacer: WebhookPacer | None = None) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            return await slack(client, pacer).deliver_digest(digest)

    return asyncio.run(run())


def make_digest(alerts: Sequence[Alert]) -> Digest:
    return Digest("digest-1", "ops", tuple(alerts), NOW)


def many_alerts(count: int, per_watchlist: int = 10, **changes: Any) -> list[Alert]:
    """`count` alerts, `per_watchlist` to a watchlist, each a minute newer than the last."""
    return [
        make_alert(
            n,
            watchlist=f"w{n // per_watchlist:02d}",
            watchlist_name=f"Watchlist {n // per_watchlist:02d}",
            published=NOW + timedelta(minutes=n),
            **changes,
        )
        for n in range(count)
    ]


def texts(message: dict[str, Any]) -> list[str]:
    """The text of every block, in order (header, sections, context elements)."""
    result: list[str] = []
    for block in message["blocks"]:
        if block["type"] == "context":
            result.extend(e["text"] for e in block["elements"])
        else:
            result.append(block["text"]["text"])
    return result


def assert_no_injection(value: Any, allowed: set[str]) -> None:
    """No string pings anyone, and every `<...>` in any string is one of our links to `allowed`."""
    for text in all_strings(value):
        assert "<!" not in text
        assert "<@" not in text
        assert "<#" not in text
        found = ANGLE.findall(text)
        assert text.count("<") == len(found), text
        assert set(found) <= allowed, text


def respond_ok(times: list[float], clock: FakeClock) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.now)
        return httpx.Response(200, text="ok")

    return answer


# Messages: escaping, links, limits


def test_slack_escape() -> None:
    """&, < and > are escaped for mrkdwn; & first, so nothing is double-escaped."""
    assert escape("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"


@pytest.mark.parametrize("field", ["title", "summary", "link", "outlet", "all"])
def test_slack_message_neutralises_mentions_and_links(field: str) -> None:
    """No `<!`, mention or injected `<url|label>` from feed text survives anywhere in blocks or text."""
    cases: dict[str, dict[str, Any]] = {
        "title": {"title": f"Breaking {HOSTILE}"},
        "summary": {"summary": f"Click {HOSTILE} now"},
        "link": {"link": "https://wire.example/a>|<!channel>"},
        "outlet": {"outlet": "<@U123> <#C42>", "sources": ("<@U123> <#C42>", "<!here>")},
        "all": {"title": HOSTILE, "summary": HOSTILE, "terms": ("<!here>",), "outlet": HOSTILE},
    }
    changes = cases[field]
    message = slack_message(make_alert(**changes))
    allowed = {slack_url(changes.get("link", "https://wire.example/1")) or "no link"}
    assert_no_injection(message, allowed)
    assert_no_injection(plain_message(message), allowed)


def test_slack_hostile_title_shows_literally_everywhere() -> None:
    """`<!channel> <https://evil.example|Your bank>` as a title reads as itself in the message, the
    digest and the plain-text fallback: it pings nobody and links nowhere."""
    alert = make_alert(title=HOSTILE)
    shown = "&lt;!channel&gt; &lt;https://evil.example|Your bank&gt;"
    (digest_message,) = slack_digest_messages(make_digest([alert]))
    for message in (slack_message(alert), digest_message, plain_message(slack_message(alert))):
        assert_no_injection(message, {"https://wire.example/1"})
        assert any(shown in text for text in all_strings(message))
        assert "<https://evil.example" not in json.dumps(message, ensure_ascii=False)


def test_slack_mrkdwn_is_verbatim() -> None:
    """Every mrkdwn text is verbatim, so Slack does not auto-link a bare URL or #channel in feed text."""
    alert = make_alert(title="see https://evil.example and #general", sources=("wire", "BBC"))
    for message in [slack_message(alert), *slack_digest_messages(make_digest([alert]))]:
        objects = [b["text"] for b in message["blocks"] if "text" in b]
        objects += [e for b in message["blocks"] for e in b.get("elements", [])]
        mrkdwn = [o for o in objects if o["type"] == "mrkdwn"]
        assert mrkdwn
        assert all(o["verbatim"] is True for o in mrkdwn)


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "  javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://files.example/x",
        "//evil.example/no-scheme",
        "https:///no-host",
        "wire.example/relative",
        "http://[::1",  # unparseable
    ],
)
def test_slack_links_only_http_and_https(link: str) -> None:
    """Any other scheme (or none) is shown as no link at all: the title stays, as bold text."""
    assert slack_url(link) is None
    message = slack_message(make_alert(link=link))
    assert message["blocks"][1]["text"]["text"] == "*Envoy returns to Tehran (1)*"
    (digest_message,) = slack_digest_messages(make_digest([make_alert(link=link)]))
    assert_no_injection(digest_message, set())
    assert "javascript" not in json.dumps(digest_message).lower()


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://wire.example/a|b>c<d", "https://wire.example/a%7Cb%3Ec%3Cd"),
        ("http://wire.example/?q=a&b=c d", "http://wire.example/?q=a&amp;b=c%20d"),
        ("HTTPS://Wire.example/x", "HTTPS://Wire.example/x"),
        (" https://wire.example/x\n", "https://wire.example/x"),
    ],
)
def test_slack_url_encodes_what_would_break_the_link(link: str, expected: str) -> None:
    """`|`, `>`, `<` and spaces are percent-encoded inside `<url|label>`; `&` is escaped."""
    assert slack_url(link) == expected
    assert slack_message(make_alert(link=link))["blocks"][1]["text"]["text"] == (
        f"*<{expected}|Envoy returns to Tehran (1)>*"
    )


def test_slack_message_keeps_the_real_link() -> None:
    """The item link is the one link in the title section, with the escaped title as its label."""
    message = slack_message(make_alert(title="A & B <c>"))
    section = message["blocks"][1]["text"]
    assert section == {
        "type": "mrkdwn",
        "text": "*<https://wire.example/1|A &amp; B &lt;c&gt;>*",
        "verbatim": True,
    }


def test_slack_message_without_link() -> None:
    """Without a link the title is bold text."""
    message = slack_message(make_alert(link=None))
    assert message["blocks"][1]["text"]["text"] == "*Envoy returns to Tehran (1)*"


def test_slack_message_shape() -> None:
    """Header with the watchlist, title section, summary section, context with feed, time, severity, terms."""
    message = slack_message(make_alert(severity=Severity.HIGH))
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "Ambassadors return"}
    context = message["blocks"][3]["elements"][0]["text"]
    assert context == "wire · 2024-01-29 10:05 UTC · severity high · matched: ambassador*, return*"
    assert message["text"] == "Ambassadors return: Envoy returns to Tehran (1)"


def test_slack_message_without_summary_has_no_summary_block() -> None:
    """An empty summary adds no block."""
    kinds = [b["type"] for b in slack_message(make_alert(summary=""))["blocks"]]
    assert kinds == ["header", "section", "context"]


def test_slack_header_is_at_most_150_characters() -> None:
    """The header block respects Slack's 150-character limit."""
    message = slack_message(make_alert(watchlist_name="W" * 400, title="T" * 5000, summary="S" * 5000))
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER_LIMIT == 150
    assert header.endswith("…")
    assert len(message["blocks"][2]["text"]["text"]) <= 600


@pytest.mark.parametrize("link", ["https://wire.example/1", "https://wire.example/" + "x" * 1900, None])
def test_slack_message_texts_fit_in_3000_characters(link: str | None) -> None:
    """Huge feed text is cut to 3,000 characters per text, with "…", and never inside an entity."""
    alert = make_alert(
        title="<&>" * 3000, summary="&" * 5000, link=link, terms=tuple(f"t{n}" for n in range(2000))
    )
    message = slack_message(alert)
    strings = [message["text"], *texts(message)]
    assert all(len(s) <= TEXT_LIMIT == 3000 for s in strings)
    assert message["text"].endswith("…")
    assert message["blocks"][-1]["elements"][0]["text"].endswith("…")
    for text in strings:
        # Left over after removing whole entities, a `&` would be a cut one, shown as garbage.
        assert "&" not in re.sub(r"&(amp|lt|gt);", "", text)
    if link:
        assert message["blocks"][1]["text"]["text"].startswith(f"*<{link}|")
        assert message["blocks"][1]["text"]["text"].endswith("…>*")


def test_slack_url_longer_than_2000_characters_is_not_linked() -> None:
    """An absurdly long URL is dropped rather than crowding the title out of its section."""
    link = "https://wire.example/" + "x" * 3000
    assert slack_url(link) is None
    assert (
        slack_message(make_alert(link=link))["blocks"][1]["text"]["text"] == "*Envoy returns to Tehran (1)*"
    )


# Digests: rendering and splitting


def test_slack_digest_renders_sections() -> None:
    """Header, per watchlist a title line with its count, one line per alert with link, outlet,
    time and who else reported it; the most severe watchlist first."""
    alerts = [
        make_alert(1, severity=Severity.HIGH, outlet="Dawn", sources=("Dawn", "BBC")),
        make_alert(2, watchlist="border", watchlist_name="Border", link=None),
        make_alert(3),
    ]
    (message,) = slack_digest_messages(make_digest(alerts))
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Digest: 3 alerts, 2024-01-20 12:00 UTC"},
    }
    assert texts(message)[1:] == [
        "*Ambassadors return* · 2 alerts · severity high",
        "• <https://wire.example/1|Envoy returns to Tehran (1)> · Dawn · 2024-01-29 10:05 UTC"
        " · Also reported by BBC",
        "• <https://wire.example/3|Envoy returns to Tehran (3)> · wire · 2024-01-29 10:05 UTC",
        "*Border* · 1 alert · severity medium",
        "• Envoy returns to Tehran (2) · wire · 2024-01-29 10:05 UTC",
    ]
    assert message["text"] == "Digest: 3 alerts, 2024-01-20 12:00 UTC: Ambassadors return (2), Border (1)"


def test_slack_digest_says_and_n_more_for_a_capped_section() -> None:
    """A watchlist with more alerts than a section shows lists the newest and says "and N more"."""
    (message,) = slack_digest_messages(make_digest(many_alerts(25, per_watchlist=100)))
    lines = texts(message)
    assert lines[1] == "*Watchlist 00* · 25 alerts · severity medium"
    assert sum(line.startswith("• ") for line in lines) == 20
    assert lines[-1] == "and 5 more"
    assert message["blocks"][-1]["type"] == "context"
    assert "Envoy returns to Tehran (24)" in lines[2]  # newest first


def test_slack_digest_of_120_alerts_is_split_into_numbered_messages() -> None:
    """120 alerts over 12 watchlists take three messages, "(1/3)".."(3/3)", each at most 50 blocks,
    with every alert once, in the digest's order, and no watchlist title left alone at a message end."""
    alerts = many_alerts(120)
    messages = slack_digest_messages(make_digest(alerts))
    assert len(messages) == 3
    for number, message in enumerate(messages, start=1):
        assert len(message["blocks"]) <= BLOCK_LIMIT == 50
        header = message["blocks"][0]["text"]["text"]
        assert header == f"Digest: 120 alerts, 2024-01-20 12:00 UTC ({number}/3)"
        assert message["text"].startswith(header)
        assert len(message["text"]) <= TEXT_LIMIT
        assert not texts(message)[-1].startswith("*Watchlist")
    assert len(messages[0]["blocks"]) == BLOCK_LIMIT
    shown = [t for m in messages for t in texts(m) if t.startswith("• ")]
    expected = [a for s in sections(alerts) for a in s.alerts]
    assert len(shown) == 120
    assert all(f"|{a.title}>" in line for a, line in zip(expected, shown, strict=True))
    # A watchlist carried over to the next message is named again there.
    assert texts(messages[1])[1].endswith("(continued)")


def test_slack_digest_is_split_by_size_too() -> None:
    """Long lines split a digest before 50 blocks: no message carries more than MESSAGE_BUDGET characters."""
    alerts = many_alerts(40, per_watchlist=20, title="T" * 400, link="https://wire.example/" + "p" * 1500)
    messages = slack_digest_messages(make_digest(alerts))
    assert len(messages) > 1
    for message in messages:
        assert len(message["blocks"]) < BLOCK_LIMIT
        assert sum(len(t) for t in texts(message)) <= MESSAGE_BUDGET
        assert all(len(t) <= TEXT_LIMIT for t in texts(message))
    assert sum(t.startswith("• ") for m in messages for t in texts(m)) == 40


def test_slack_digest_of_one_message_is_not_numbered() -> None:
    """A digest that fits one message has no "(1/1)"."""
    (message,) = slack_digest_messages(make_digest([make_alert()]))
    assert message["blocks"][0]["text"]["text"] == "Digest: 1 alert, 2024-01-20 12:00 UTC"


def test_slack_digest_without_alerts_has_no_messages() -> None:
    """An empty digest posts nothing."""
    assert slack_digest_messages(make_digest([])) == []
    assert slack_deliver_digest(make_digest([])) == []


def test_plain_message_of_a_full_digest_message_is_cut_between_lines() -> None:
    """The plain-text form of a 50-block message fits 3,000 characters, keeps whole lines and says
    how many it left out."""
    message = slack_digest_messages(make_digest(many_alerts(120)))[0]
    plain = plain_message(message)
    assert set(plain) == {"text"}
    assert len(plain["text"]) <= TEXT_LIMIT
    lines = plain["text"].split("\n")
    assert lines[0] == "*Digest: 120 alerts, 2024-01-20 12:00 UTC (1/3)*"
    assert re.fullmatch(r"… \(\d+ more lines\)", lines[-1])
    assert set(lines[1:-1]) <= set(texts(message))


# Delivery: errors and the plain-text fallback


def test_slack_delivers_on_200() -> None:
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
        (httpx.Response(403, text="action_prohibited"), False, "action_prohibited"),
        (httpx.Response(400, text="invalid_payload"), False, "invalid_payload"),
        (httpx.Response(400, text="something else"), False, "HTTP 400"),
        (
            httpx.Response(302, headers={"Location": "https://elsewhere.example"}),
            False,
            "redirects are not followed",
        ),
    ],
)
def test_slack_classifies_failures(response: httpx.Response, temporary: bool, needle: str) -> None:
    """5xx and 429 are worth retrying; a dead webhook (no_service, channel_not_found...) is permanent."""
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(return_value=response)
        (outcome,) = slack_deliver([make_alert()])
    assert not outcome.delivered
    assert outcome.temporary is temporary
    assert needle in (outcome.error or "")
    assert route.call_count == 1  # only invalid_blocks earns a second post


@pytest.mark.parametrize(("header", "expected"), [("30", 30.0), ("0", 0.0), (None, None)])
def test_slack_429_passes_on_retry_after(header: str | None, expected: float | None) -> None:
    """A 429 is temporary and carries the wait Slack asked for, if it said."""
    headers = {"Retry-After": header} if header is not None else {}
    with respx.mock() as mock:
        mock.post(SLACK_URL).respond(429, text="rate_limited", headers=headers)
        (outcome,) = slack_deliver([make_alert()])
    assert (outcome.delivered, outcome.temporary, outcome.retry_after) == (False, True, expected)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")]
)
def test_slack_network_errors_are_temporary(error: httpx.HTTPError) -> None:
    """Connection errors and timeouts are retried later."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=error)
        (outcome,) = slack_deliver([make_alert()])
    assert not outcome.delivered
    assert outcome.temporary


def test_slack_permanent_failure_of_one_alert_does_not_stop_the_rest() -> None:
    """A permanent failure is that alert's; the next alert is still tried."""
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(
            side_effect=[httpx.Response(400, text="invalid_payload"), httpx.Response(200, text="ok")]
        )
        outcomes = slack_deliver([make_alert(1), make_alert(2)])
    assert [(o.alert_id, o.delivered) for o in outcomes] == [("alert-1", False), ("alert-2", True)]


def test_slack_temporary_failure_leaves_the_rest_queued_untried() -> None:
    """After a 500 the rest of the batch is not tried this run: no outcome, so it stays queued."""
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, text="ok")])
        outcomes = slack_deliver([make_alert(1), make_alert(2)])
    assert [(o.alert_id, o.delivered) for o in outcomes] == [("alert-1", False)]
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError(f"cannot connect to {SLACK_URL}"),
        httpx.Response(500, text=f"upstream {SLACK_URL} failed"),
        httpx.Response(404, text="no route for /services/T0/B0/secret"),
    ],
    ids=["exception", "body-with-url", "body-with-path"],
)
def test_slack_error_does_not_leak_the_webhook_url(failure: httpx.Response | httpx.HTTPError) -> None:
    """The webhook URL is a secret: failures do not quote it, even when the receiver echoes it."""
    with respx.mock() as mock:
        route = mock.post(SLACK_URL)
        if isinstance(failure, httpx.Response):
            route.mock(return_value=failure)
        else:
            route.mock(side_effect=failure)
        (outcome,) = slack_deliver([make_alert()])
        digest_outcomes = slack_deliver_digest(make_digest([make_alert()]))
    for error in [outcome.error, *(o.error for o in digest_outcomes)]:
        assert error
        assert "secret" not in error
        assert "hooks.slack.example" not in error


@pytest.mark.parametrize("code", ["invalid_blocks", "invalid_blocks_format"])
def test_slack_invalid_blocks_falls_back_to_plain_text(code: str) -> None:
    """Slack refusing the blocks gets the same content once more as escaped plain text, no blocks."""
    alert = make_alert(title=HOSTILE, sources=("wire", "BBC"))
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(
            side_effect=[httpx.Response(400, text=code), httpx.Response(200, text="ok")]
        )
        outcomes = slack_deliver([alert])
    assert outcomes == [DeliveryOutcome("alert-1", "ops", True)]
    assert route.call_count == 2
    assert "blocks" in json.loads(route.calls[0].request.content)
    fallback = json.loads(route.calls[1].request.content)
    assert fallback == plain_message(slack_message(alert))
    assert set(fallback) == {"text"}
    assert fallback["text"].split("\n") == [
        "*Ambassadors return*",
        "*<https://wire.example/1|&lt;!channel&gt; &lt;https://evil.example|Your bank&gt;>*",
        "Pakistan's ambassador resumed duties.",
        "wire · 2024-01-29 10:05 UTC · severity medium · matched: ambassador*, return*"
        " · Also reported by BBC",
    ]
    assert_no_injection(fallback, {"https://wire.example/1"})


@pytest.mark.parametrize(
    ("second", "temporary"),
    [
        (httpx.Response(400, text="invalid_blocks"), False),
        (httpx.Response(503, text="busy"), True),
        (httpx.Response(404, text="channel_not_found"), False),
    ],
)
def test_slack_fallback_is_tried_once_and_its_failure_reported(
    second: httpx.Response, temporary: bool
) -> None:
    """If the plain-text message fails too, that failure is the outcome; no third post."""
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(side_effect=[httpx.Response(400, text="invalid_blocks"), second])
        (outcome,) = slack_deliver([make_alert()])
    assert route.call_count == 2
    assert (outcome.delivered, outcome.temporary) == (False, temporary)
    assert "Slack refused the blocks (invalid_blocks), then the plain-text message" in (outcome.error or "")
    assert second.text.strip() in (outcome.error or "")


# Delivery: digests


def test_slack_digest_posts_every_message_in_order() -> None:
    """All messages of a digest are posted, in order; every alert of it is delivered."""
    alerts = many_alerts(120)
    digest = make_digest(alerts)
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).respond(200, text="ok")
        outcomes = slack_deliver_digest(digest)
    assert [json.loads(c.request.content) for c in route.calls] == slack_digest_messages(digest)
    assert outcomes == [DeliveryOutcome(a.id, "ops", True) for a in alerts]


def test_slack_digest_fails_as_a_whole_when_one_message_fails() -> None:
    """Message 2 of 3 failing stops the digest there and fails every alert of it, temporarily."""
    alerts = many_alerts(120)
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(
            side_effect=[httpx.Response(200, text="ok"), httpx.Response(500), httpx.Response(200, text="ok")]
        )
        outcomes = slack_deliver_digest(make_digest(alerts))
    assert route.call_count == 2
    assert [o.alert_id for o in outcomes] == [a.id for a in alerts]
    assert not any(o.delivered for o in outcomes)
    assert all(o.temporary for o in outcomes)
    assert {o.error for o in outcomes} == {"message 2/3: HTTP 500"}


@pytest.mark.parametrize(
    ("response", "temporary", "retry_after"),
    [
        (httpx.Response(429, text="rate_limited", headers={"Retry-After": "12"}), True, 12.0),
        (httpx.Response(404, text="no_service"), False, None),
        (httpx.Response(410, text="channel_is_archived"), False, None),
    ],
)
def test_slack_digest_failure_applies_to_every_alert(
    response: httpx.Response, temporary: bool, retry_after: float | None
) -> None:
    """A 429's Retry-After, or a dead webhook's permanence, is every alert's outcome."""
    alerts = [make_alert(1), make_alert(2, watchlist="border", watchlist_name="Border")]
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(return_value=response)
        outcomes = slack_deliver_digest(make_digest(alerts))
    assert [(o.alert_id, o.delivered, o.temporary, o.retry_after) for o in outcomes] == [
        ("alert-1", False, temporary, retry_after),
        ("alert-2", False, temporary, retry_after),
    ]


def test_slack_digest_falls_back_to_plain_text_per_message() -> None:
    """invalid_blocks on a digest message sends that message as plain text, then goes on."""
    alerts = many_alerts(120)
    digest = make_digest(alerts)
    ok = httpx.Response(200, text="ok")
    with respx.mock() as mock:
        route = mock.post(SLACK_URL).mock(
            side_effect=[ok, httpx.Response(400, text="invalid_blocks"), ok, ok]
        )
        outcomes = slack_deliver_digest(digest)
    assert all(o.delivered for o in outcomes)
    messages = slack_digest_messages(digest)
    posted = [json.loads(c.request.content) for c in route.calls]
    assert posted == [messages[0], messages[1], plain_message(messages[1]), messages[2]]


# Pace: at most one message per second per webhook


def test_slack_posts_to_one_webhook_are_a_second_apart() -> None:
    """Three alerts in a row are posted at t, t+1 and t+2, waiting rather than bursting."""
    clock = FakeClock()
    times: list[float] = []
    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=respond_ok(times, clock))
        outcomes = slack_deliver([make_alert(1), make_alert(2), make_alert(3)], fake_pacer(clock))
    assert all(o.delivered for o in outcomes)
    assert times == [1000.0, 1001.0, 1002.0]
    assert clock.slept == [1.0, 1.0]


def test_slack_pace_holds_across_calls_notifiers_and_digests() -> None:
    """Two notifiers on one webhook share its pace across deliver and deliver_digest; another
    webhook has its own."""
    clock = FakeClock()
    pacer = fake_pacer(clock)
    times: list[float] = []
    other: list[float] = []

    async def run() -> None:
        async with notification_client(5) as client:
            first, second = slack(client, pacer), slack(client, pacer)
            elsewhere = slack(client, pacer, url=OTHER_URL)
            await first.deliver([make_alert(1)])
            clock.now += 0.25  # a little later, still within the second
            await second.deliver_digest(make_digest(many_alerts(120)))  # three messages
            await elsewhere.deliver([make_alert(2)])
            await first.deliver([make_alert(3)])

    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=respond_ok(times, clock))
        mock.post(OTHER_URL).mock(side_effect=respond_ok(other, clock))
        asyncio.run(run())
    assert times == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    assert other == [1003.0]  # posted at once, right after the digest: not held by SLACK_URL's pace


def test_slack_fallback_post_is_paced_too() -> None:
    """The plain-text retry after invalid_blocks waits its second like any other post."""
    clock = FakeClock()
    times: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.now)
        if len(times) == 1:
            return httpx.Response(400, text="invalid_blocks")
        return httpx.Response(200, text="ok")

    with respx.mock() as mock:
        mock.post(SLACK_URL).mock(side_effect=answer)
        (outcome,) = slack_deliver([make_alert()], fake_pacer(clock))
    assert outcome.delivered
    assert times == [1000.0, 1001.0]


def test_pacer_gives_concurrent_callers_distinct_slots() -> None:
    """Callers waiting at the same moment are lined up a second apart, not woken together."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = WebhookPacer(clock=lambda: 50.0, sleep=sleep)

    async def run() -> None:
        await asyncio.gather(*(pacer.wait(SLACK_URL) for _ in range(3)), pacer.wait(OTHER_URL))

    asyncio.run(run())
    assert sorted(waits) == [1.0, 2.0]


def test_pacer_does_not_wait_after_a_quiet_second() -> None:
    """A post more than a second after the last one goes at once."""
    clock = FakeClock()
    pacer = fake_pacer(clock)

    async def run() -> None:
        await pacer.wait(SLACK_URL)
        clock.now += 1.5
        await pacer.wait(SLACK_URL)

    asyncio.run(run())
    assert clock.slept == []


# A real receiver on loopback


def test_slack_to_a_loopback_receiver_with_the_shared_real_pace(receiver: Server) -> None:
    """Two notifiers with the default pacer post to one real webhook a second apart, really waiting."""
    url = receiver.url("/services/T0/B0/loopback")
    started: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        started.append(time.monotonic())

    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            client.event_hooks = {"request": [stamp], "response": []}
            channel = ChannelConfig("ops", "slack", SlackOptions(url))
            first, second = SlackNotifier(channel, client), SlackNotifier(channel, client)
            return [*await first.deliver([make_alert(1)]), *await second.deliver([make_alert(2)])]

    outcomes = asyncio.run(run())
    assert outcomes == [DeliveryOutcome("alert-1", "ops", True), DeliveryOutcome("alert-2", "ops", True)]
    assert posted_json(receiver) == [slack_message(make_alert(1)), slack_message(make_alert(2))]
    assert [r.path for r in receiver.posts()] == ["/services/T0/B0/loopback"] * 2
    assert started[1] - started[0] >= 0.99
