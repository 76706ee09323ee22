"""The email channel: message content and headers, delivery over a real loopback SMTP server
(aiosmtpd) with scripted replies, and the HTML part as headless Chromium renders it."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from monitor.config import ChannelConfig, EmailOptions
from monitor.digest import SECTION_LIMIT
from monitor.notify.email import (
    SUBJECT_LIMIT,
    EmailNotifier,
    build_digest_message,
    build_message,
    subject,
    web_link,
)
from monitor.types import Alert, DeliveryOutcome, Digest, Severity
from tests.conftest import LOOPBACK, Smtp, body_text, free_port
from tests.render_email import (
    WINDOW,
    chromium_missing_reason,
    decode_png,
    dump_dom,
    read_page,
    screenshot,
)
from tests.test_notify import make_alert as notify_alert

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
OPTIONS = EmailOptions(host="smtp.example", sender="monitor@desk.example", recipients=("a@desk.example",))
# Each of these would set the page title if the browser ran it.
SCRIPT_TITLE = "<script>document.title='pwned'</script>Envoy <b>returns</b>"
IMG_SUMMARY = "<img src=x onerror=\"document.title='pwned'\"> details & more"
SVG_OUTLET = "<svg onload=\"document.title='pwned'\">Dawn</svg>"
SCRIPT_LINK = "javascript:document.title='pwned'"


def make_alert(n: int = 1, **changes: Any) -> Alert:
    return notify_alert(
        n, **{"channel": "mail", "published": datetime(2024, 1, 19, 10, 5, tzinfo=UTC), **changes}
    )


def make_digest(alerts: Sequence[Alert], digest_id: str = "mail/2024-01-20T12:00Z") -> Digest:
    return Digest(digest_id, "mail", tuple(alerts), NOW)


def parts(message: EmailMessage) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in message.iter_parts()}


# The message


def test_email_is_multipart_alternative_with_text_and_html() -> None:
    """One message with a plain-text and an HTML part, addressed from the options."""
    options = dataclasses.replace(OPTIONS, recipients=("a@desk.example", "b@desk.example"))
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


def test_email_html_escapes_feed_text() -> None:
    """A <script> in a title or summary is inert text in the HTML part."""
    alert = make_alert(title="<b>bold</b> title", summary="<script>alert('x')</script> & more")
    body = parts(build_message([alert], OPTIONS))
    html = body["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert('x')</script> &" in body["text/plain"]  # plain text is not HTML: left as is


def test_email_link_attribute_escaped() -> None:
    """A quote in a link cannot break out of the href attribute."""
    html = parts(build_message([make_alert(link='https://wire.example/"onmouseover="x')], OPTIONS))[
        "text/html"
    ]
    assert '"onmouseover="' not in html


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "https:no-host",
        "//wire.example/relative",
    ],
)
def test_email_links_only_http_and_https(link: str) -> None:
    """A link of any other scheme is not linked; the title is still shown, as plain text."""
    assert web_link(link) is None
    body = parts(build_message([make_alert(link=link, title="Unlinked headline")], OPTIONS))
    page = read_page(body["text/html"])
    assert page.elements("a") == []
    assert "Unlinked headline" in page.text
    assert link not in body["text/plain"]


def test_email_web_links_are_linked() -> None:
    """http and https links (any case) become the title's href, and appear in the text part."""
    for link in ("http://wire.example/1", "HTTPS://wire.example/2?a=1&b=2"):
        assert web_link(link) == link
        body = parts(build_message([make_alert(link=link)], OPTIONS))
        assert read_page(body["text/html"]).elements("a") == [{"href": link, "style": "color: #0b57d0;"}]
        assert link in body["text/plain"]


def test_email_subject_format() -> None:
    """Subject: `[monitor] N new: A (2), B (1)`, most frequent watchlist first."""
    alerts = [
        make_alert(1, watchlist="china", watchlist_name="Chinese diplomacy"),
        make_alert(2, watchlist="sb", watchlist_name="Sistan-Baluchestan incidents"),
        make_alert(3, watchlist="sb", watchlist_name="Sistan-Baluchestan incidents"),
    ]
    expected = "[monitor] 3 new: Sistan-Baluchestan incidents (2), Chinese diplomacy (1)"
    assert subject(alerts) == expected
    assert build_message(alerts, OPTIONS)["Subject"] == expected
    assert build_digest_message(make_digest(alerts), OPTIONS)["Subject"] == expected


def test_email_subject_is_capped() -> None:
    """Many watchlists make a long subject: it is cut with an ellipsis; the body lists them all."""
    alerts = [make_alert(n, watchlist=f"w{n}", watchlist_name=f"Watchlist number {n:03}") for n in range(40)]
    text = subject(alerts)
    assert len(text) == SUBJECT_LIMIT
    assert text.endswith("…")
    assert text.startswith("[monitor] 40 new: Watchlist number 000 (1), ")


HOSTILE_HEADER_TEXT = [
    "Evil\r\nBcc: victim@example.org\r\nX-Injected: yes",
    "Evil\nBcc: victim@example.org\nX-Injected: yes",
    "Evil\rBcc: victim@example.org\rX-Injected: yes",
    "Evil\u2028Bcc: victim@example.org\x85X-Injected: yes\x0b\x0c\x00",
]


@pytest.mark.parametrize("hostile", HOSTILE_HEADER_TEXT)
@pytest.mark.parametrize("kind", ["immediate", "digest"])
def test_no_cr_or_lf_from_feed_or_watchlist_text_reaches_a_header(hostile: str, kind: str) -> None:
    """CR, LF and other line breaks in a watchlist name, title or outlet cannot inject headers."""
    alert = make_alert(watchlist_name=hostile, title=hostile, outlet=hostile, summary=hostile)
    message = (
        build_message([alert], OPTIONS)
        if kind == "immediate"
        else build_digest_message(make_digest([alert]), OPTIONS)
    )
    for name, value in message.items():
        assert not any(c in str(value) for c in "\r\n\u2028\x85\x0b\x0c\x00"), name
    assert message["Subject"] == "[monitor] 1 new: Evil Bcc: victim@example.org X-Injected: yes (1)"
    parsed = email.message_from_bytes(message.as_bytes())
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert set(parsed.keys()) == {
        "Subject",
        "From",
        "To",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    }


def test_email_message_id_is_deterministic() -> None:
    """The same alerts, in any order, get the same Message-ID; different alerts a different one."""
    a, b, c = make_alert(1), make_alert(2), make_alert(3)
    first = build_message([a, b], OPTIONS)["Message-ID"]
    assert build_message([b, a], OPTIONS)["Message-ID"] == first
    assert build_message([a, c], OPTIONS)["Message-ID"] != first
    assert first.startswith("<")
    assert first.endswith("@desk.example>")


def test_digest_message_id_comes_from_the_digest_id() -> None:
    """A digest's Message-ID depends on its id only: the same after alerts joined it, different
    for another digest, and never that of an immediate message with the same alerts."""
    a, b = make_alert(1), make_alert(2)
    first = build_digest_message(make_digest([a]), OPTIONS)["Message-ID"]
    assert build_digest_message(make_digest([a, b]), OPTIONS)["Message-ID"] == first
    assert build_digest_message(make_digest([a], "mail/2024-01-21T12:00Z"), OPTIONS)["Message-ID"] != first
    assert build_message([a], OPTIONS)["Message-ID"] != first
    assert first.endswith("@desk.example>")


def test_message_id_domain_from_a_sender_with_a_display_name() -> None:
    """`Monitor <monitor@desk.example>` gives a Message-ID at desk.example, not `desk.example>`."""
    options = dataclasses.replace(OPTIONS, sender="Monitor <monitor@desk.example>")
    assert build_message([make_alert()], options)["Message-ID"].endswith("@desk.example>")
    odd = dataclasses.replace(OPTIONS, sender="monitor")
    assert build_message([make_alert()], odd)["Message-ID"].endswith("@monitor.invalid>")


def test_email_orders_by_severity() -> None:
    """Critical alerts come first in the message."""
    low = make_alert(1, severity=Severity.LOW, title="low one")
    critical = make_alert(2, severity=Severity.CRITICAL, title="critical one")
    text = parts(build_message([low, critical], OPTIONS))["text/plain"]
    assert text.index("critical one") < text.index("low one")
    assert "[CRITICAL] critical one" in text


def digest_alerts() -> list[Alert]:
    """22 medium alerts on one watchlist (two over the cap), one critical on another, one high."""
    sb = {"watchlist": "sb", "watchlist_name": "Sistan-Baluchestan incidents"}
    alerts = [
        make_alert(n, **sb, title=f"Border incident {n:02}", published=NOW - timedelta(hours=n))
        for n in range(1, SECTION_LIMIT + 3)
    ]
    alerts.append(
        make_alert(
            90,
            **sb,
            severity=Severity.HIGH,
            title="Border guards attacked",
            outlet="Dawn",
            sources=("Dawn", "Al Jazeera", "BBC"),
            min_sources=2,
            published=NOW - timedelta(days=2),
        )
    )
    alerts.append(
        make_alert(
            91,
            watchlist="china",
            watchlist_name="Chinese diplomacy",
            severity=Severity.CRITICAL,
            title="Wang Yi visits Islamabad",
            terms=("Wang Yi",),
        )
    )
    return alerts


def test_digest_layout_follows_the_sections() -> None:
    """Per watchlist a heading with its count, most severe watchlist first; in each the most
    severe then newest alerts; linked title, outlet, time, terms, corroboration; "and N more"."""
    message = build_digest_message(make_digest(digest_alerts()), OPTIONS)
    body = parts(message)
    page = read_page(body["text/html"])
    for content in body.values():
        china = content.index("Chinese diplomacy (1)")
        sb = content.index("Sistan-Baluchestan incidents (23)")
        assert china < sb
        assert content.index("Border guards attacked") < content.index("Border incident 01")
        assert content.index("Border incident 01") < content.index("Border incident 02")
        shown = [f"Border incident {n:02}" for n in range(1, SECTION_LIMIT)]
        assert all(title in content for title in shown)
        assert "Border incident 20" not in content  # past the cap, counted instead
        assert "Border incident 21" not in content
        assert "and 3 more" in content
        assert "Dawn · 2024-01-18 12:00 UTC" in content
        assert "wire · 2024-01-20 11:00 UTC" in content  # no outlet: the feed's name
        assert "Held until 2 outlets carried it; also reported by Al Jazeera and BBC" in content
        assert "Matched: Wang Yi" in content
        assert "Matched: ambassador*, return*" in content
        assert "Digest of 24 alerts, due 2024-01-20 12:00 UTC" in content
    links = [a["href"] for a in page.elements("a")]
    assert links[0] == "https://wire.example/91"
    assert len(links) == 1 + SECTION_LIMIT
    assert "alert-21" in body["text/plain"]  # every id is listed, shown or not


def test_immediate_message_lists_every_alert() -> None:
    """An immediate message holds every alert of the call: no "and N more" cap."""
    alerts = [make_alert(n, title=f"Headline {n:02}") for n in range(SECTION_LIMIT + 5)]
    text = parts(build_message(alerts, OPTIONS))["text/plain"]
    assert all(f"Headline {n:02}" in text for n in range(SECTION_LIMIT + 5))
    assert "more" not in text
    assert "Ambassadors return (25)" in text


# Delivery over SMTP


class ScriptedSink:
    """An aiosmtpd handler that records every MAIL and DATA and answers as scripted: DATA with
    `data_replies` in turn and then 250, MAIL with `mail_reply`, some RCPTs with a refusal."""

    def __init__(
        self,
        data_replies: Sequence[str] = (),
        mail_reply: str | None = None,
        refuse: dict[str, str] | None = None,
    ) -> None:
        self.data_replies = list(data_replies)
        self.mail_reply = mail_reply
        self.refuse = refuse or {}
        self.mail_froms: list[str] = []
        self.attempts: list[Message] = []  # every DATA received, accepted or not
        self.delivered: list[tuple[list[str], Message]] = []  # accepted: recipients and message

    async def handle_MAIL(
        self, server: object, session: object, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        self.mail_froms.append(address)
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: object, session: object, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        self.attempts.append(message)
        if self.data_replies:
            return self.data_replies.pop(0)
        self.delivered.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


StartSmtp = Callable[[ScriptedSink], int]  # starts a server with this handler; its port


@pytest.fixture
def scripted_smtp() -> Iterator[StartSmtp]:
    """Start an SMTP server on loopback with the given handler; returns its port."""
    controllers: list[Controller] = []

    def start(sink: ScriptedSink) -> int:
        port = free_port()
        controller = Controller(sink, hostname=LOOPBACK, port=port)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def notifier(port: int, **options: Any) -> EmailNotifier:
    values: dict[str, Any] = {
        "host": LOOPBACK,
        "port": port,
        "security": "none",
        "sender": "monitor@desk.example",
        "recipients": ("a@desk.example", "b@desk.example"),
    }
    values.update(options)
    return EmailNotifier(ChannelConfig("mail", "email", EmailOptions(**values)))


def deliver(target: EmailNotifier, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
    return asyncio.run(target.deliver(alerts))


def deliver_digest(target: EmailNotifier, digest: Digest) -> list[DeliveryOutcome]:
    return asyncio.run(target.deliver_digest(digest))


def test_delivers_one_message_to_every_recipient(smtp_server: Smtp) -> None:
    """Immediate delivery: one message holding the call's alerts, to every recipient; each delivered."""
    alerts = [make_alert(1), make_alert(2)]
    outcomes = deliver(notifier(smtp_server.port), alerts)
    assert outcomes == [DeliveryOutcome("alert-1", "mail", True), DeliveryOutcome("alert-2", "mail", True)]
    assert smtp_server.sink.envelopes == [("monitor@desk.example", ["a@desk.example", "b@desk.example"])]
    (mail,) = smtp_server.sink.messages
    assert mail["Message-ID"] == build_message(alerts, OPTIONS)["Message-ID"]
    assert "Envoy returns to Tehran (2)" in body_text(mail)


def test_delivers_a_digest_as_one_message(smtp_server: Smtp) -> None:
    """deliver_digest sends one message with the digest's sections; one outcome per alert."""
    alerts = digest_alerts()
    digest = make_digest(alerts)
    outcomes = deliver_digest(notifier(smtp_server.port), digest)
    assert [o.alert_id for o in outcomes] == [a.id for a in alerts]
    assert all(o.delivered and o.error is None and o.refused == () for o in outcomes)
    (mail,) = smtp_server.sink.messages
    assert mail["Message-ID"] == build_digest_message(digest, OPTIONS)["Message-ID"]
    # A subject this long is folded onto a continuation line; a reader unfolds it.
    unfolded = " ".join(mail["Subject"].split())
    assert unfolded == "[monitor] 24 new: Sistan-Baluchestan incidents (23), Chinese diplomacy (1)"
    assert "and 3 more" in body_text(mail)


def test_nothing_to_deliver_sends_nothing(scripted_smtp: StartSmtp) -> None:
    """No alerts, or an empty digest: no connection, no outcomes."""
    sink = ScriptedSink()
    target = notifier(scripted_smtp(sink))
    assert deliver(target, []) == []
    assert deliver_digest(target, make_digest([])) == []
    assert sink.mail_froms == []


@pytest.mark.parametrize("kind", ["immediate", "digest"])
def test_451_then_250_retries_the_same_message(scripted_smtp: StartSmtp, kind: str) -> None:
    """A 451 on DATA is a temporary failure; the retry is delivered under the same Message-ID."""
    sink = ScriptedSink(data_replies=["451 4.3.0 Mail server temporarily rejected message"])
    target = notifier(scripted_smtp(sink))
    alerts = [make_alert(1), make_alert(2)]

    def attempt() -> list[DeliveryOutcome]:
        return deliver(target, alerts) if kind == "immediate" else deliver_digest(target, make_digest(alerts))

    first = attempt()
    assert [(o.delivered, o.temporary) for o in first] == [(False, True), (False, True)]
    assert first[0].error is not None
    assert "451" in first[0].error
    assert "temporarily rejected" in first[0].error
    assert sink.delivered == []

    second = attempt()
    assert second == [DeliveryOutcome("alert-1", "mail", True), DeliveryOutcome("alert-2", "mail", True)]
    assert len(sink.attempts) == 2
    assert len(sink.delivered) == 1
    ids = [m["Message-ID"] for m in sink.attempts]
    assert ids[0] == ids[1]
    assert ids[0].endswith("@desk.example>")


def test_550_on_data_is_permanent_and_says_why(scripted_smtp: StartSmtp) -> None:
    """A 550 on DATA is a permanent failure whose error carries the server's reply."""
    sink = ScriptedSink(data_replies=["550 5.7.1 Message rejected as spam"])
    outcomes = deliver_digest(notifier(scripted_smtp(sink)), make_digest([make_alert(1), make_alert(2)]))
    assert [(o.delivered, o.temporary) for o in outcomes] == [(False, False), (False, False)]
    error = outcomes[0].error
    assert error is not None
    assert "SMTP 550" in error
    assert "rejected as spam" in error
    assert "refusing the message" in error
    assert len(sink.attempts) == 1
    assert sink.delivered == []


@pytest.mark.parametrize(
    ("reply", "temporary"),
    [("451 4.7.1 Sender greylisted, try later", True), ("553 5.7.1 Sender address rejected", False)],
)
def test_mail_from_refusal_is_classified(scripted_smtp: StartSmtp, reply: str, temporary: bool) -> None:
    """A 4xx to MAIL FROM is temporary, a 5xx permanent; no DATA is sent."""
    sink = ScriptedSink(mail_reply=reply)
    (outcome,) = deliver(notifier(scripted_smtp(sink)), [make_alert()])
    assert not outcome.delivered
    assert outcome.temporary is temporary
    assert outcome.error is not None
    assert reply.split()[0] in outcome.error
    assert "refusing the sender" in outcome.error
    assert sink.attempts == []


def test_one_refused_recipient_is_recorded_and_the_other_receives_it(scripted_smtp: StartSmtp) -> None:
    """One of two recipients refused at RCPT: delivered, the refusal recorded in `refused` and
    named in the error; the accepted recipient gets the message."""
    sink = ScriptedSink(refuse={"b@desk.example": "550 5.1.1 No such user here"})
    outcomes = deliver(notifier(scripted_smtp(sink)), [make_alert(1), make_alert(2)])
    for outcome in outcomes:
        assert outcome.delivered
        assert outcome.refused == ("b@desk.example",)
        assert outcome.error is not None
        assert "b@desk.example (550 5.1.1 No such user here)" in outcome.error
        assert "1 of 2 recipients" in outcome.error
    assert [recipients for recipients, _ in sink.delivered] == [["a@desk.example"]]


@pytest.mark.parametrize(
    ("replies", "temporary"),
    [
        (("550 5.1.1 No such user", "550 5.1.1 No such user"), False),
        (("452 4.2.2 Mailbox full", "550 5.1.1 No such user"), True),
    ],
)
def test_every_recipient_refused_is_a_failure(
    scripted_smtp: StartSmtp, replies: tuple[str, str], temporary: bool
) -> None:
    """All recipients refused: not delivered; permanent if every refusal is 5xx, else temporary."""
    sink = ScriptedSink(refuse=dict(zip(("a@desk.example", "b@desk.example"), replies, strict=True)))
    (outcome,) = deliver(notifier(scripted_smtp(sink)), [make_alert()])
    assert not outcome.delivered
    assert outcome.temporary is temporary
    assert outcome.refused == ()
    assert outcome.error is not None
    assert "a@desk.example" in outcome.error
    assert "b@desk.example" in outcome.error
    assert sink.attempts == []


def test_starttls_not_offered_sends_nothing(scripted_smtp: StartSmtp) -> None:
    """security = "starttls" and a server without STARTTLS: a permanent failure, nothing sent."""
    sink = ScriptedSink()
    (outcome,) = deliver(notifier(scripted_smtp(sink), security="starttls"), [make_alert()])
    assert not outcome.delivered
    assert not outcome.temporary
    assert outcome.error is not None
    assert "does not offer STARTTLS; refusing to send in plaintext" in outcome.error
    assert sink.mail_froms == []
    assert sink.attempts == []


def test_implicit_tls_to_a_plaintext_server_sends_nothing(scripted_smtp: StartSmtp) -> None:
    """security = "tls" and a server that does not speak TLS: a permanent failure, nothing sent."""
    sink = ScriptedSink()
    (outcome,) = deliver(notifier(scripted_smtp(sink), security="tls"), [make_alert()])
    assert not outcome.delivered
    assert not outcome.temporary
    assert outcome.error is not None
    assert "refusing to send in plaintext" in outcome.error
    assert sink.mail_froms == []
    assert sink.attempts == []


def test_unreachable_server_is_temporary() -> None:
    """Nothing listening on the port: a temporary failure naming the server."""
    port = free_port()
    (outcome,) = deliver(notifier(port), [make_alert()])
    assert not outcome.delivered
    assert outcome.temporary
    assert outcome.error is not None
    assert f"cannot reach SMTP server {LOOPBACK}:{port}" in outcome.error


# The HTML part in a browser


def tiny_png(rows: list[tuple[int, bytes]], width: int) -> bytes:
    """An 8-bit RGB PNG from (filter type, filtered scanline) rows."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    raw = b"".join(bytes([kind]) + line for kind, line in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_png_decoder_counts_non_white_pixels() -> None:
    """The decoder undoes PNG filters: a black pixel repeated by an "up" row counts twice."""
    white, black = b"\xff\xff\xff", b"\x00\x00\x00"
    first = white + black + white
    png = tiny_png([(0, first), (2, bytes(9)), (1, white + b"\x01\x01\x01" + b"\x00\x00\x00")], 3)
    image = decode_png(png)
    assert (image.width, image.height) == (3, 3)
    assert image.rows[1] == first
    assert image.rows[2] == white + black + black
    assert image.non_white() == 4


@pytest.fixture
def chromium() -> None:
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)


def hostile_digest() -> Digest:
    hostile = make_alert(
        1,
        title=SCRIPT_TITLE,
        summary=IMG_SUMMARY,
        outlet=SVG_OUTLET,
        link=SCRIPT_LINK,
        severity=Severity.CRITICAL,
        watchlist_name="<iframe src=\"javascript:document.title='pwned'\"></iframe>Sistan",
    )
    return make_digest([hostile, *digest_alerts()])


@pytest.mark.usefixtures("chromium")
def test_email_html_renders_in_chromium_with_feed_markup_inert(tmp_path: Path) -> None:
    """Chromium draws the HTML part (a non-blank screenshot); feed markup shows as text, creates no
    element, and runs nothing: the page title is still the one the template wrote."""
    html = parts(build_digest_message(hostile_digest(), OPTIONS))["text/html"]
    page_file = tmp_path / "email.html"
    page_file.write_text(html, encoding="utf-8")

    image = decode_png(screenshot(page_file, tmp_path / "email.png", tmp_path / "profile-1"))
    assert (image.width, image.height) == WINDOW
    inked = image.non_white() / (image.width * image.height)
    assert 0.005 < inked < 0.5, f"{inked:.2%} of the screenshot is not white"

    source = read_page(html)
    dom = read_page(dump_dom(page_file, tmp_path / "profile-2"))
    assert source.title == "monitor: Digest of 25 alerts, due 2024-01-20 12:00 UTC"
    assert dom.title == source.title
    for name in ("script", "img", "svg", "iframe", "b"):
        assert dom.elements(name) == [], name
    handlers = [key for _, attrs in dom.tags for key in attrs if key.startswith("on")]
    assert handlers == []
    hrefs = [a["href"] or "" for a in dom.elements("a")]
    assert hrefs
    assert all(href.startswith("https://") for href in hrefs)
    for text in (SCRIPT_TITLE, IMG_SUMMARY, SVG_OUTLET):
        assert text in dom.text
    assert "pwned" not in dom.title


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("markup", [SCRIPT_TITLE, IMG_SUMMARY, SVG_OUTLET])
def test_chromium_runs_feed_markup_when_it_is_not_escaped(tmp_path: Path, markup: str) -> None:
    """Control for the test above: the same markup unescaped does run and change the title, so an
    unchanged title there means escaping worked, not that scripts were off."""
    page_file = tmp_path / "raw.html"
    page_file.write_text(
        f"<!DOCTYPE html><html><head><title>monitor</title></head><body>{markup}</body></html>",
        encoding="utf-8",
    )
    assert read_page(dump_dom(page_file, tmp_path / "profile")).title == "pwned"
