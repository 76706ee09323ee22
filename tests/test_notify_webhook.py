"""Webhook channel: payload version 2, Standard Webhooks signing (checked with the reference
package and with a reimplementation of the spec), failure classification, time limits, digests
and the channel's config keys."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from monitor.config import ChannelConfig, WebhookOptions, parse_settings
from monitor.digest import SECTION_LIMIT
from monitor.errors import ConfigErrors
from monitor.notify import notification_client
from monitor.notify.webhook import (
    PAYLOAD_VERSION,
    WebhookNotifier,
    digest_payload,
    encode_payload,
    webhook_payload,
)
from monitor.types import Alert, DeliveryOutcome, Digest, Severity, StoryEntry
from tests.conftest import LOOPBACK, Server
from tests.test_notify import make_alert as notify_alert

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
HOOK_URL = "https://hooks.example/monitor"
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()


def make_alert(n: int = 1, **changes: Any) -> Alert:
    return notify_alert(
        n, **{"channel": "hook", "published": datetime(2024, 1, 29, 10, 5, tzinfo=UTC), **changes}
    )


def fixed_clock(*times: datetime) -> Callable[[], datetime]:
    """A clock returning `times` in turn, then the last one for ever."""
    queue = list(times)

    def now() -> datetime:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return now


def notifier(
    client: httpx.AsyncClient,
    url: str = HOOK_URL,
    secret: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    clock: Callable[[], datetime] = lambda: NOW,
) -> WebhookNotifier:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None
    channel = ChannelConfig("hook", "webhook", WebhookOptions(url, headers, key))
    return WebhookNotifier(channel, client, clock=clock)


def deliver(alerts: Sequence[Alert], *, timeout: float = 5.0, **options: Any) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(timeout) as client:
            return await notifier(client, **options).deliver(alerts)

    return asyncio.run(run())


def deliver_digest(digest: Digest, *, timeout: float = 5.0, **options: Any) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with notification_client(timeout) as client:
            return await notifier(client, **options).deliver_digest(digest)

    return asyncio.run(run())


def spec_verify(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Standard Webhooks verification written from the spec: HMAC-SHA256 keyed with the base64-decoded
    secret over `{webhook-id}.{webhook-timestamp}.{body}`, base64, any of the space-separated `v1,` values."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    lower = {k.lower(): v for k, v in headers.items()}
    signed = f"{lower['webhook-id']}.{lower['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = lower.get("webhook-signature", "").split(" ")
    return any(c.startswith("v1,") and hmac.compare_digest(c[3:], expected) for c in candidates)


def reference_verifies(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        return False
    return True


@dataclasses.dataclass
class Hook:
    """A loopback webhook receiver with the behaviours the shared `receiver` has not: it verifies
    signatures the way a real receiver would (401 when they fail), answers slowly or byte by byte,
    and answers with chosen statuses and headers."""

    secret: str | None = None
    status: int = 204
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    trickle: float = 0.0  # send the answer one byte every this many seconds
    requests: list[tuple[str, dict[str, str], bytes]] = dataclasses.field(default_factory=list)
    stopping: threading.Event = dataclasses.field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def serve(self) -> ThreadingHTTPServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                hook.requests.append((self.path, headers, body))
                status = hook.status
                if hook.secret is not None and not reference_verifies(hook.secret, body, headers):
                    status = 401
                hook.stopping.wait(hook.delay)
                head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hook.headers.items())
                answer = (head + "Content-Length: 0\r\n\r\n").encode()
                try:
                    if hook.trickle:
                        for byte in answer:
                            if hook.stopping.wait(hook.trickle):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                    else:
                        self.wfile.write(answer)
                except OSError:  # the client gave up first, as the timeout tests intend
                    pass

        server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def hook() -> Iterator[Hook]:
    hook = Hook()
    server = hook.serve()
    yield hook
    hook.stopping.set()
    server.shutdown()
    server.server_close()


# Payload


def test_payload_shape() -> None:
    """Version 2: watchlist, item, terms and the story, whose items fall back to the alert's own item."""
    alert = make_alert(severity=Severity.CRITICAL)
    payload = webhook_payload(alert)
    assert payload == {
        "version": 2,
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
        "story": {
            "id": None,
            "sources": ["wire"],
            "min_sources": 1,
            "items": [
                {
                    "outlet": "wire",
                    "title": "Envoy returns to Tehran (1)",
                    "link": "https://wire.example/1",
                    "published": "2024-01-29T10:05:00+00:00",
                }
            ],
        },
    }
    assert PAYLOAD_VERSION == 2
    assert json.loads(encode_payload(payload)) == payload


def test_payload_lists_the_story_sources_and_items() -> None:
    """A story carried by several outlets lists them all, and every item read from the store."""
    later = datetime(2024, 1, 29, 11, 0, tzinfo=UTC)
    alert = dataclasses.replace(
        make_alert(),
        story_id=7,
        outlet="Dawn",
        sources=("Dawn", "Al Jazeera"),
        min_sources=2,
        story_items=(
            StoryEntry("Dawn", "Envoy returns", "https://dawn.example/a", NOW),
            StoryEntry("Al Jazeera", "Ambassador back in Tehran", None, later),
        ),
    )
    payload = webhook_payload(alert)
    assert payload["item"]["outlet"] == "Dawn"
    assert payload["story"] == {
        "id": 7,
        "sources": ["Dawn", "Al Jazeera"],
        "min_sources": 2,
        "items": [
            {
                "outlet": "Dawn",
                "title": "Envoy returns",
                "link": "https://dawn.example/a",
                "published": "2024-01-20T12:00:00+00:00",
            },
            {
                "outlet": "Al Jazeera",
                "title": "Ambassador back in Tehran",
                "link": None,
                "published": "2024-01-29T11:00:00+00:00",
            },
        ],
    }


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", "ftp://files.example/a", ""],
)
def test_only_http_links_reach_the_payload(link: str) -> None:
    """A link that is not http(s) becomes null, in the item and in the story's items."""
    alert = dataclasses.replace(make_alert(link=link), story_items=(StoryEntry("wire", "t", link, NOW),))
    payload = webhook_payload(alert)
    assert payload["item"]["link"] is None
    assert payload["story"]["items"][0]["link"] is None


@pytest.mark.parametrize("link", ["http://wire.example/a", "HTTPS://wire.example/b?x=1&y=2"])
def test_http_links_are_kept(link: str) -> None:
    """http and https links pass unchanged, whatever the scheme's case."""
    assert webhook_payload(make_alert(link=link))["item"]["link"] == link


def test_hostile_text_is_encoded_as_inert_json() -> None:
    """Quotes, newlines, </script>, RTL and line-separator characters survive as data and nothing else."""
    hostile = 'He said "stop"\n</script><script>alert(1)</script> & \\ \u2028 سفیر ایران 🇮🇷'
    alert = make_alert(title=hostile, summary=hostile, terms=(hostile,))
    body = encode_payload(webhook_payload(alert))
    decoded = json.loads(body.decode("utf-8"))
    assert decoded["item"]["title"] == decoded["item"]["summary"] == hostile
    assert decoded["terms"] == [hostile]
    for raw in (b"</script>", b"<", b">", b"&", b"\n", "\u2028".encode()):
        assert raw not in body
    assert "سفیر ایران".encode() in body  # non-ASCII text is sent as UTF-8, not \u escapes


def test_lone_surrogate_still_makes_valid_utf8_json() -> None:
    """A lone surrogate (which no UTF-8 can hold) is replaced rather than failing the delivery."""
    body = encode_payload(webhook_payload(make_alert(title="broken \ud800 text")))
    assert json.loads(body.decode("utf-8"))["item"]["title"] == "broken ? text"


# Headers and signatures


def test_signed_delivery_verifies_with_the_reference_package(receiver: Server) -> None:
    """A real loopback receiver gets a POST whose signature standardwebhooks and the spec both accept."""
    alert = make_alert(title="سفیر ایران")
    before = int(time.time())
    (outcome,) = deliver([alert], url=receiver.url("/hook"), secret=SECRET, clock=lambda: datetime.now(UTC))
    assert outcome == DeliveryOutcome("alert-1", "hook", True)
    (request,) = receiver.posts()
    assert Webhook(SECRET).verify(request.body, request.headers) == webhook_payload(alert)
    assert spec_verify(SECRET, request.body, request.headers)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["webhook-id"] == "alert-1"
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["content-type"] == "application/json"


def test_signature_is_over_id_timestamp_and_the_exact_body() -> None:
    """With a fixed clock the headers are exactly what the spec and the reference signer compute."""
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).respond(200)
        deliver([make_alert()], secret=SECRET)
    request = route.calls.last.request
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp())) == "1705752000"
    expected = Webhook(SECRET).sign("alert-1", NOW, request.content.decode("utf-8"))
    assert request.headers["webhook-signature"] == expected
    assert spec_verify(SECRET, request.content, request.headers)


def test_tampered_body_or_wrong_secret_fails_verification(receiver: Server) -> None:
    """Changing one byte of the body, the id or the timestamp, or verifying with another secret, fails."""
    deliver([make_alert()], url=receiver.url("/hook"), secret=SECRET, clock=lambda: datetime.now(UTC))
    (request,) = receiver.posts()
    body, headers = request.body, request.headers
    assert reference_verifies(SECRET, body, headers)
    assert spec_verify(SECRET, body, headers)
    tampered = body.replace(b"Tehran", b"Kabul!")
    assert tampered != body
    other_id = {**headers, "webhook-id": "alert-2"}
    other_time = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    for check in (reference_verifies, spec_verify):
        assert not check(SECRET, tampered, headers)
        assert not check(SECRET, body, other_id)
        assert not check(SECRET, body, other_time)
        assert not check(OTHER_SECRET, body, headers)


def test_receiver_with_another_secret_refuses_and_the_failure_is_permanent(hook: Hook) -> None:
    """A receiver verifying with a different secret answers 401: permanent, since retrying cannot help."""
    hook.secret = OTHER_SECRET
    (outcome,) = deliver([make_alert()], url=hook.url(), secret=SECRET, clock=lambda: datetime.now(UTC))
    assert (outcome.delivered, outcome.temporary) == (False, False)
    assert "HTTP 401" in (outcome.error or "")
    hook.secret = SECRET
    (outcome,) = deliver([make_alert()], url=hook.url(), secret=SECRET, clock=lambda: datetime.now(UTC))
    assert outcome.delivered


def test_without_a_secret_there_is_no_signature() -> None:
    """Unsigned channels send webhook-id and webhook-timestamp only."""
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).respond(200)
        deliver([make_alert()])
    headers = route.calls.last.request.headers
    assert headers["webhook-id"] == "alert-1"
    assert headers["webhook-timestamp"] == "1705752000"
    assert "webhook-signature" not in headers


def test_sends_configured_headers_and_payload() -> None:
    """Configured headers go along; the body is the encoded payload."""
    alert = make_alert(title="سفیر ایران")
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).respond(204)
        outcomes = deliver([alert], headers=(("Authorization", "Bearer t0k"),), secret=SECRET)
    assert outcomes == [DeliveryOutcome("alert-1", "hook", True)]
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == encode_payload(webhook_payload(alert))


def test_retry_keeps_the_id_and_signs_a_new_timestamp() -> None:
    """A retried alert has the same webhook-id, the time of the new attempt, and a valid signature."""
    first, second = NOW, NOW + timedelta(minutes=10)
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
        failed = deliver([make_alert()], secret=SECRET, clock=fixed_clock(first))
        sent = deliver([make_alert()], secret=SECRET, clock=fixed_clock(second))
    assert (failed[0].delivered, failed[0].temporary, sent[0].delivered) == (False, True, True)
    requests = [call.request for call in route.calls]
    assert [r.headers["webhook-id"] for r in requests] == ["alert-1", "alert-1"]
    assert [r.headers["webhook-timestamp"] for r in requests] == [
        str(int(first.timestamp())),
        str(int(second.timestamp())),
    ]
    assert all(spec_verify(SECRET, r.content, r.headers) for r in requests)
    assert requests[0].headers["webhook-signature"] != requests[1].headers["webhook-signature"]


# Failures


@pytest.mark.parametrize(
    ("status", "temporary"),
    [(500, True), (503, True), (408, True), (400, False), (401, False), (404, False), (410, False)],
)
def test_failures_are_classified(status: int, temporary: bool) -> None:
    """5xx and 408 are retried; 410 Gone and other 4xx are permanent."""
    with respx.mock() as mock:
        mock.post(HOOK_URL).respond(status)
        (outcome,) = deliver([make_alert()])
    assert (outcome.delivered, outcome.temporary) == (False, temporary)
    assert f"HTTP {status}" in (outcome.error or "")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_passed_on(status: int) -> None:
    """A 429 or 503 with Retry-After is temporary and carries the wait the receiver asked for."""
    with respx.mock() as mock:
        mock.post(HOOK_URL).respond(status, headers={"Retry-After": "120"})
        (outcome,) = deliver([make_alert()])
    assert (outcome.delivered, outcome.temporary, outcome.retry_after) == (False, True, 120.0)


def test_temporary_failure_leaves_the_rest_of_the_batch_untried() -> None:
    """After a 503 the next alerts wait for the next run instead of each costing a request."""
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).respond(503)
        outcomes = deliver([make_alert(1), make_alert(2), make_alert(3)])
    assert route.call_count == 1
    assert [o.alert_id for o in outcomes] == ["alert-1"]


def test_redirect_is_a_failure_not_followed() -> None:
    """A redirected webhook is a failure, never a re-send elsewhere."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(HOOK_URL).respond(307, headers={"Location": "https://elsewhere.example/"})
        other = mock.post("https://elsewhere.example/").respond(200)
        (outcome,) = deliver([make_alert()])
    assert not outcome.delivered
    assert not other.called
    assert "redirects are not followed" in (outcome.error or "")


def test_redirect_from_a_real_receiver_is_not_followed(hook: Hook) -> None:
    """Over real HTTP a 302 is one POST and a failure; the Location is never requested."""
    hook.status = 302
    hook.headers = {"Location": hook.url("/elsewhere")}
    (outcome,) = deliver([make_alert()], url=hook.url())
    assert not outcome.delivered
    assert "HTTP 302" in (outcome.error or "")
    assert [path for path, _, _ in hook.requests] == ["/hook"]


def test_slow_receiver_times_out_as_a_temporary_failure(hook: Hook) -> None:
    """A receiver slower than the client timeout costs that timeout, and the alert is retried later."""
    hook.delay = 3.0
    started = time.monotonic()
    (outcome,) = deliver([make_alert()], url=hook.url(), timeout=0.2)
    assert time.monotonic() - started < 2.0
    assert (outcome.delivered, outcome.temporary) == (False, True)
    assert "timed out" in (outcome.error or "")


def test_trickling_receiver_is_cut_off_at_the_deadline(hook: Hook) -> None:
    """An answer sent a byte at a time, each within the read timeout, is still bounded in all."""
    hook.trickle = 0.1  # the whole answer would take about 4 s
    started = time.monotonic()
    (outcome,) = deliver([make_alert()], url=hook.url(), timeout=0.2)  # deadline 4 x 0.2 s
    elapsed = time.monotonic() - started
    assert (outcome.delivered, outcome.temporary) == (False, True)
    assert "timed out" in (outcome.error or "")
    assert 0.7 < elapsed < 2.0


def test_connection_refused_is_temporary() -> None:
    """Nothing listening is a temporary failure."""
    server = ThreadingHTTPServer((LOOPBACK, 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    (outcome,) = deliver([make_alert()], url=f"http://{LOOPBACK}:{port}/hook")
    assert (outcome.delivered, outcome.temporary) == (False, True)
    assert "connection failed" in (outcome.error or "")


# Digests


def digest_of(alerts: Sequence[Alert]) -> Digest:
    return Digest("digest-hook-2024-01-20T12", "hook", tuple(alerts), NOW)


def test_digest_payload_orders_alerts_by_section() -> None:
    """The most severe watchlist first; in each, most severe then newest; each alert without `version`."""
    old, new = datetime(2024, 1, 19, tzinfo=UTC), datetime(2024, 1, 20, tzinfo=UTC)
    a_old = make_alert(1, watchlist="a", watchlist_name="A", severity=Severity.HIGH, published=old)
    a_new = make_alert(2, watchlist="a", watchlist_name="A", severity=Severity.HIGH, published=new)
    a_low = make_alert(3, watchlist="a", watchlist_name="A", severity=Severity.LOW, published=new)
    b = make_alert(4, watchlist="b", watchlist_name="B", severity=Severity.CRITICAL, published=old)
    payload = digest_payload(digest_of([a_old, a_low, b, a_new]))
    assert {k: v for k, v in payload.items() if k != "alerts"} == {
        "version": 2,
        "type": "digest",
        "id": "digest-hook-2024-01-20T12",
        "period_end": "2024-01-20T12:00:00+00:00",
    }
    assert [a["id"] for a in payload["alerts"]] == ["alert-4", "alert-2", "alert-1", "alert-3"]
    expected = webhook_payload(b)
    del expected["version"]
    assert payload["alerts"][0] == expected


def test_digest_payload_is_not_capped() -> None:
    """Every alert of a digest is in the payload, even past the section limit other channels use."""
    alerts = [make_alert(n) for n in range(SECTION_LIMIT + 5)]
    payload = digest_payload(digest_of(alerts))
    assert len(payload["alerts"]) == SECTION_LIMIT + 5
    assert "more" not in json.dumps(payload)


def test_digest_is_one_signed_post_with_the_digest_id(receiver: Server) -> None:
    """A digest is one POST whose webhook-id is the digest's id, signed, every alert marked delivered."""
    alerts = [make_alert(n) for n in range(3)]
    outcomes = deliver_digest(
        digest_of(alerts), url=receiver.url("/hook"), secret=SECRET, clock=lambda: datetime.now(UTC)
    )
    assert outcomes == [DeliveryOutcome(a.id, "hook", True) for a in alerts]
    (request,) = receiver.posts()
    assert request.headers["webhook-id"] == "digest-hook-2024-01-20T12"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert spec_verify(SECRET, request.body, request.headers)
    assert payload["type"] == "digest"
    assert sorted(a["id"] for a in payload["alerts"]) == ["alert-0", "alert-1", "alert-2"]


def test_digest_failure_is_every_alert_s_outcome() -> None:
    """A refused digest gives each of its alerts the failure, with the receiver's Retry-After."""
    alerts = [make_alert(n) for n in range(3)]
    with respx.mock() as mock:
        mock.post(HOOK_URL).respond(429, headers={"Retry-After": "30"})
        outcomes = deliver_digest(digest_of(alerts))
    assert [o.alert_id for o in outcomes] == ["alert-0", "alert-1", "alert-2"]
    assert all((o.delivered, o.temporary, o.retry_after) == (False, True, 30.0) for o in outcomes)


def test_digest_timeout_is_temporary_for_every_alert(hook: Hook) -> None:
    """A digest to a receiver that does not answer in time is retried, all of it."""
    hook.delay = 3.0
    outcomes = deliver_digest(digest_of([make_alert(1), make_alert(2)]), url=hook.url(), timeout=0.2)
    assert [(o.delivered, o.temporary) for o in outcomes] == [(False, True), (False, True)]


def test_unexpected_error_in_a_digest_is_temporary_for_every_alert() -> None:
    """A bug while sending a digest becomes a retry for each alert in it, not an exception."""

    def broken_clock() -> datetime:
        raise RuntimeError("clock stopped")

    with respx.mock(assert_all_called=False) as mock:
        mock.post(HOOK_URL).respond(200)
        outcomes = deliver_digest(digest_of([make_alert(1), make_alert(2)]), clock=broken_clock)
    assert [(o.delivered, o.temporary) for o in outcomes] == [(False, True), (False, True)]
    assert all("clock stopped" in (o.error or "") for o in outcomes)


def test_empty_digest_sends_nothing() -> None:
    """A digest with no alerts is not posted."""
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(HOOK_URL).respond(200)
        assert deliver_digest(digest_of([])) == []
    assert not route.called


# Config


def load(text: str, env: Mapping[str, str] | None = None) -> WebhookOptions:
    settings = parse_settings(tomllib.loads(text), Path("config.toml"), env or {})
    options = settings.channels["hook"].options
    assert isinstance(options, WebhookOptions)
    return options


def config_errors(text: str, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(key path, message) of every error in a config."""
    with pytest.raises(ConfigErrors) as caught:
        parse_settings(tomllib.loads(text), Path("config.toml"), env or {})
    return [(e.key, e.message) for e in caught.value.errors]


HOOK = '[channels.hook]\ntype = "webhook"\nurl = "https://hooks.example/x"\n'


@pytest.mark.parametrize(
    "secret",
    [
        SECRET,
        SECRET.removeprefix("whsec_"),  # the prefix is optional, as in the reference libraries
        "whsec_" + base64.b64encode(KEY[:25]).decode().rstrip("="),  # padding is optional
    ],
    ids=["prefixed", "bare", "unpadded"],
)
def test_secret_loads_as_the_decoded_key(secret: str) -> None:
    """`secret` from the environment becomes the key the reference package would use."""
    options = load(HOOK + 'secret = "${HOOK_SECRET}"\n', {"HOOK_SECRET": secret})
    assert options.secret == base64.b64decode(secret.removeprefix("whsec_") + "==")
    assert options.secret == Webhook(secret)._whsecret


def test_no_secret_means_unsigned() -> None:
    """Without `secret` the channel has no key."""
    assert load(HOOK).secret is None


def test_key_is_not_in_the_repr() -> None:
    """Printing the settings does not print the key."""
    options = load(HOOK + f'secret = "{SECRET}"\n')
    assert "secret" not in repr(options)
    assert repr(KEY) not in repr(options)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_", "is empty"),
        ("", "is empty"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode(), "character 7 is '-'; that is URL-safe"),
        ("whsec_" + SECRET[6:20] + " " + SECRET[20:], "character 21 is ' '; stray spaces or quotes"),
        (SECRET + "\n", "character 51 is '\\n'; stray spaces"),
        (SECRET.replace("=", "\t"), "character 50 is '\\t'; stray spaces"),
        ('"' + SECRET + '"', "(expected whsec_<base64>): character 1 is '\"'"),
        ("whsec_AAAA=AAAA", "character 11 is '='; '=' may only pad the end"),
        ("whsec_ÄÖÜ" + SECRET[6:], "not valid base64 after the 'whsec_' prefix: character 7 is 'Ä'"),
        ("whsec_" + "A" * 37, "its length is wrong"),
        ("whsec_" + "A" * 40 + "===", "its length is wrong"),
        (
            "whsec_" + base64.b64encode(KEY[:16]).decode(),
            "decodes to 16 bytes; a Standard Webhooks key is 24 to 64",
        ),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "decodes to 65 bytes"),
        ("hunter2hunter2", "decodes to 10 bytes"),
    ],
    ids=[
        "empty-after-prefix",
        "empty",
        "url-safe",
        "space",
        "newline",
        "tab",
        "quoted",
        "inner-padding",
        "non-ascii",
        "truncated",
        "over-padded",
        "too-short",
        "too-long",
        "passphrase",
    ],
)
def test_bad_secret_is_a_config_error_at_its_key_path(secret: str, message: str) -> None:
    """A secret that is not whsec_ and 24 to 64 bytes of base64 is reported at channels.hook.secret,
    saying what is wrong and never quoting the secret."""
    ((key, text),) = config_errors(HOOK + 'secret = "${HOOK_SECRET}"\n', {"HOOK_SECRET": secret})
    assert key == "channels.hook.secret"
    assert message in text
    if len(secret) > 8:
        assert secret.strip().removeprefix("whsec_")[2:] not in text


def test_unset_secret_variable_is_reported_at_the_key() -> None:
    """`${HOOK_SECRET}` unset names the variable at channels.hook.secret."""
    errors = config_errors(HOOK + 'secret = "${HOOK_SECRET}"\n')
    assert errors[0][0] == "channels.hook.secret"
    assert errors[0][1].startswith("${HOOK_SECRET} is not set; export HOOK_SECRET")
    assert {key for key, _ in errors} == {"channels.hook.secret"}


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Signature", "webhook-timestamp", "content-type"])
def test_headers_monitor_sets_cannot_be_configured(name: str) -> None:
    """A configured webhook-* or Content-Type header is an error: it would contradict the signed ones."""
    errors = config_errors(HOOK + f'[channels.hook.headers]\n"{name}" = "x"\nAuthorization = "Bearer t"\n')
    assert len(errors) == 1
    assert errors[0][0] == f"channels.hook.headers.{name}"
    assert "set by monitor" in errors[0][1]


def test_other_headers_load() -> None:
    """Other configured headers are kept, with ${VAR} replaced."""
    options = load(HOOK + '[channels.hook.headers]\nAuthorization = "Bearer ${T}"\n', {"T": "t0k"})
    assert options.headers == (("Authorization", "Bearer t0k"),)
