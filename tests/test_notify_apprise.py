"""The apprise channel: alerts and digests through Apprise's json:// and form:// services to a real
loopback receiver, failures as retries, URL validation at load, and tokens kept out of the log."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from monitor.config import AppriseOptions, ChannelConfig, Settings, load_settings
from monitor.digest import SECTION_LIMIT
from monitor.errors import ConfigError, ConfigErrors
from monitor.notify import build_notifiers, notification_client
from monitor.notify.apprise_channel import AppriseNotifier, alert_body
from monitor.types import Alert, DeliveryOutcome, Digest, Severity
from tests.conftest import LOOPBACK, Server, free_port, posted_json
from tests.test_notify import NOW, make_alert

TOKEN = "s3cr3tTokenValue"
HOSTILE = "<script>alert(1)</script> **bold** [click](https://evil.example) @everyone <!channel> &amp;"


def json_url(server: Server, path: str = f"/hook/{TOKEN}") -> str:
    return f"json://{LOOPBACK}:{server.port}{path}"


def notifier(*urls: str, timeout: float = 5.0) -> AppriseNotifier:
    return AppriseNotifier(ChannelConfig("ap", "apprise", AppriseOptions(urls)), timeout=timeout)


def deliver(alerts: Sequence[Alert], *urls: str, timeout: float = 5.0) -> list[DeliveryOutcome]:
    return asyncio.run(notifier(*urls, timeout=timeout).deliver(alerts))


def deliver_digest(digest: Digest, *urls: str) -> list[DeliveryOutcome]:
    return asyncio.run(notifier(*urls).deliver_digest(digest))


def digest_of(alerts: Sequence[Alert]) -> Digest:
    return Digest("digest-ap-1", "ap", tuple(alerts), NOW)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen(8)
        yield int(s.getsockname()[1])


# Delivery


def test_alert_arrives_with_title_and_body(receiver: Server) -> None:
    """An alert is one notification: watchlist and headline as its title, the details as its body."""
    alert = make_alert(1, severity=Severity.HIGH, sources=("wire", "Dawn"), outlet="wire")
    outcomes = deliver([alert], json_url(receiver))
    assert outcomes == [DeliveryOutcome("alert-1", "ap", True)]
    (request,) = receiver.posts()
    assert request.path == f"/hook/{TOKEN}"
    (payload,) = posted_json(receiver)
    assert payload["title"] == "Ambassadors return: Envoy returns to Tehran (1)"
    assert payload["message"] == alert_body(alert)
    assert payload["type"] == "warning"
    body = str(payload["message"])
    for part in (
        "wire · 2024-01-29 10:05 UTC · severity high",
        "https://wire.example/1",
        "Pakistan's ambassador resumed duties.",
        "matched: ambassador*, return*",
        "Also reported by Dawn",
    ):
        assert part in body


def test_each_alert_is_its_own_notification(receiver: Server) -> None:
    """Immediate delivery sends one notification per alert, in order, and reports each delivered."""
    alerts = [make_alert(n) for n in range(3)]
    outcomes = deliver(alerts, json_url(receiver))
    assert [(o.alert_id, o.delivered) for o in outcomes] == [(a.id, True) for a in alerts]
    assert [p["title"] for p in posted_json(receiver)] == [f"Ambassadors return: {a.title}" for a in alerts]


def test_form_url_delivers(receiver: Server) -> None:
    """A form:// URL posts the same title and body as form fields."""
    alert = make_alert(1)
    assert deliver([alert], f"form://{LOOPBACK}:{receiver.port}/form")[0].delivered
    (request,) = receiver.posts()
    fields = parse_qs(request.body.decode())
    assert fields["title"] == [f"Ambassadors return: {alert.title}"]
    assert fields["message"] == [alert_body(alert)]


def test_every_url_of_a_channel_is_notified(receiver: Server) -> None:
    """With `urls`, one alert reaches every listed service."""
    outcomes = deliver([make_alert(1)], json_url(receiver, "/one"), json_url(receiver, "/two"))
    assert outcomes[0].delivered
    assert sorted(r.path for r in receiver.posts()) == ["/one", "/two"]


def test_hostile_text_arrives_as_plain_text(receiver: Server) -> None:
    """Markup, mentions and entities in feed text reach the service exactly as written."""
    alert = make_alert(1, title=HOSTILE, summary=HOSTILE, watchlist_name=HOSTILE)
    assert deliver([alert], json_url(receiver))[0].delivered
    (payload,) = posted_json(receiver)
    assert payload["title"] == f"{HOSTILE}: {HOSTILE}"
    assert f"\n{HOSTILE}\n" in str(payload["message"])


def test_markup_is_escaped_for_markdown_services(receiver: Server) -> None:
    """A service rendering Markdown (ntfy, format=markdown) gets feed text escaped, shown as written."""
    alert = make_alert(1, summary="**bold** [click](https://evil.example)")
    assert deliver([alert], f"ntfy://{LOOPBACK}:{receiver.port}/topic?format=markdown")[0].delivered
    (payload,) = posted_json(receiver)
    message = str(payload["message"])
    assert "**bold**" not in message
    assert r"\*\*bold\*\* \[click\]" in message


def test_digest_arrives_as_one_notification(receiver: Server) -> None:
    """A digest is one notification: a heading per watchlist, most severe first, capped with "and N more"."""
    busy = [make_alert(n, watchlist="busy", watchlist_name="Busy") for n in range(SECTION_LIMIT + 3)]
    urgent = make_alert(99, watchlist="urgent", watchlist_name="Urgent", severity=Severity.CRITICAL)
    digest = digest_of([*busy, urgent])
    outcomes = deliver_digest(digest, json_url(receiver))
    assert outcomes == [DeliveryOutcome(a.id, "ap", True) for a in digest.alerts]
    (payload,) = posted_json(receiver)
    assert payload["title"] == f"monitor digest: {SECTION_LIMIT + 4} alerts, 2024-01-20 12:00 UTC"
    assert payload["type"] == "warning"
    body = str(payload["message"])
    assert body.index("Urgent (1)") < body.index(f"Busy ({SECTION_LIMIT + 3})")
    assert "- [CRITICAL] Envoy returns to Tehran (99)" in body
    assert body.count("- [MEDIUM] ") == SECTION_LIMIT
    assert body.rstrip().endswith("and 3 more")


@pytest.mark.parametrize(("query", "posts"), [("", 2), ("?overflow=upstream", 1)])
def test_digest_past_the_service_limit_is_split(receiver: Server, query: str, posts: int) -> None:
    """A digest longer than the service takes arrives in parts, unless the URL chooses otherwise."""
    alerts = [make_alert(n, title=f"{n} " + "x" * 2000) for n in range(SECTION_LIMIT)]
    outcomes = deliver_digest(digest_of(alerts), json_url(receiver, "/hook" + query))
    assert all(o.delivered for o in outcomes)
    assert len(receiver.posts()) == posts
    received = "".join(str(p["message"]) for p in posted_json(receiver))
    assert all(f"{n} xxxx" in received for n in range(SECTION_LIMIT))


def test_empty_digest_sends_nothing(receiver: Server) -> None:
    """A digest without alerts is not sent."""
    assert deliver_digest(digest_of([]), json_url(receiver)) == []
    assert receiver.posts() == []


def test_channel_type_is_registered(receiver: Server) -> None:
    """`type = "apprise"` builds an Apprise notifier through the channel registry."""
    channel = ChannelConfig("ap", "apprise", AppriseOptions((json_url(receiver),)))

    async def run() -> list[DeliveryOutcome]:
        async with notification_client(5) as client:
            notifiers = build_notifiers(Settings(Path("config.toml"), channels={"ap": channel}), client)
            assert isinstance(notifiers["ap"], AppriseNotifier)
            return await notifiers["ap"].deliver([make_alert(1)])

    assert asyncio.run(run())[0].delivered


# Failures


def test_refusing_receiver_is_a_temporary_failure(receiver: Server) -> None:
    """A 500 is a temporary failure naming the service, and the rest of the batch waits untried."""
    receiver.post_status = 500
    outcomes = deliver([make_alert(1), make_alert(2)], json_url(receiver))
    (outcome,) = outcomes
    assert (outcome.alert_id, outcome.delivered, outcome.temporary) == ("alert-1", False, True)
    error = outcome.error or ""
    assert "JSON" in error
    assert "500" in error
    assert "refused or was unreachable" in error
    assert len(receiver.posts()) == 1


def test_refused_digest_fails_every_alert(receiver: Server) -> None:
    """A refused digest gives every alert in it the same temporary failure."""
    receiver.post_status = 503
    alerts = [make_alert(n) for n in range(3)]
    outcomes = deliver_digest(digest_of(alerts), json_url(receiver))
    assert [(o.alert_id, o.delivered, o.temporary) for o in outcomes] == [(a.id, False, True) for a in alerts]


def test_one_unreachable_url_fails_the_alert(receiver: Server) -> None:
    """With several URLs, the alert counts as delivered only when every service accepted it."""
    port = free_port()
    (outcome,) = deliver([make_alert(1)], json_url(receiver), f"json://{LOOPBACK}:{port}/down")
    assert (outcome.delivered, outcome.temporary) == (False, True)


def test_connection_refused_is_temporary() -> None:
    """Nothing listening is a temporary failure."""
    (outcome,) = deliver([make_alert(1)], f"json://{LOOPBACK}:{free_port()}/hook")
    assert (outcome.delivered, outcome.temporary) == (False, True)


def test_silent_receiver_times_out_within_the_bound(black_hole: int) -> None:
    """A service that never answers is a temporary failure after the channel's timeout, not later."""
    start = time.monotonic()
    (outcome,) = deliver([make_alert(1)], f"json://{LOOPBACK}:{black_hole}/hook", timeout=0.5)
    elapsed = time.monotonic() - start
    assert (outcome.delivered, outcome.temporary) == (False, True)
    assert "no answer within 0.5 s" in (outcome.error or "")
    assert elapsed < 3.0


def test_unloadable_url_fails_deliveries_temporarily() -> None:
    """Built from a URL Apprise cannot load (config validation bypassed), the channel only fails."""
    (outcome,) = deliver([make_alert(1)], f"nope://{TOKEN}")
    assert (outcome.delivered, outcome.temporary) == (False, True)
    assert "monitor check" in (outcome.error or "")
    assert TOKEN not in (outcome.error or "")


def test_tokens_never_reach_the_log_or_the_error(receiver: Server, caplog: pytest.LogCaptureFixture) -> None:
    """Even at debug level, neither the log nor the recorded error shows any piece of the URL's token."""
    caplog.set_level(logging.DEBUG)
    receiver.post_status = 500
    url = f"json://user:{TOKEN}pw@{LOOPBACK}:{receiver.port}/hook/{TOKEN}?-X-Api-Key={TOKEN}key"
    (outcome,) = deliver([make_alert(1)], url)
    assert not outcome.delivered
    assert any(r.name == "apprise" and "500" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    assert TOKEN not in (outcome.error or "")


# Configuration


def write(tmp_path: Path, channel: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("[channels.ap]\n" + channel, encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        load_settings(path, env=env or {})
    return info.value.errors  # type: ignore[return-value]


def only_error(errors: list[ConfigError], path: Path, key: str) -> ConfigError:
    (error,) = errors
    assert (error.key, error.file) == (key, str(path)), str(error)
    return error


def test_config_url_loads(tmp_path: Path) -> None:
    """`url` with a secret from the environment loads as a one-URL channel."""
    path = write(tmp_path, 'type = "apprise"\nurl = "discord://${DISCORD_WEBHOOK}"\n')
    settings = load_settings(path, env={"DISCORD_WEBHOOK": f"1234567890/{TOKEN}"})
    channel = settings.channels["ap"]
    assert channel.type == "apprise"
    assert channel.options == AppriseOptions((f"discord://1234567890/{TOKEN}",))


def test_config_urls_load(tmp_path: Path) -> None:
    """`urls` lists several services for one channel."""
    path = write(tmp_path, 'type = "apprise"\nurls = ["ntfy://alerts-topic", "json://localhost/hook"]\n')
    options = load_settings(path, env={}).channels["ap"].options
    assert options == AppriseOptions(("ntfy://alerts-topic", "json://localhost/hook"))


@pytest.mark.parametrize(
    ("channel", "key", "words"),
    [
        ('url = "discord://1234"\n', "channels.ap.url", "not a valid discord:// URL"),
        (f'url = "nope://{TOKEN}"\n', "channels.ap.url", "Apprise has no nope:// service"),
        (f'url = "{TOKEN}"\n', "channels.ap.url", "not an Apprise URL"),
        (f'url = "https://hooks.example/{TOKEN}"\n', "channels.ap.url", "no https:// service"),
        (f'urls = ["json://localhost/ok", "discord://{TOKEN}"]\n', "channels.ap.urls[1]", "discord://"),
        ('url = ""\n', "channels.ap.url", "empty"),
        ("", "channels.ap.url", "missing"),
        ("urls = []\n", "channels.ap.urls", "at least one"),
        ('url = "json://localhost/a"\nurls = ["json://localhost/b"]\n', "channels.ap.urls", "not both"),
        ('url = "json://localhost/a"\ntopic = "x"\n', "channels.ap.topic", "unknown key"),
    ],
    ids=[
        "bad-discord",
        "unknown-scheme",
        "no-scheme",
        "plain-https",
        "bad-in-list",
        "empty",
        "missing",
        "empty-list",
        "both",
        "unknown-key",
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, channel: str, key: str, words: str) -> None:
    """Each problem is one error at its key path, saying what is wrong."""
    path = write(tmp_path, 'type = "apprise"\n' + channel)
    error = only_error(errors_of(path), path, key)
    assert words in error.message


# Apprise masks what looks like a long token when it logs a URL it cannot load, but not these.
@pytest.mark.parametrize("url", ["discord://12345hunter2", "nope://abc/hunter2"])
def test_config_error_and_log_never_show_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    """A rejected URL is named by its key only: no part of it in the error, none in Apprise's log."""
    caplog.set_level(logging.DEBUG)
    path = write(tmp_path, 'type = "apprise"\nurl = "${HOOK}"\n')
    error = only_error(errors_of(path, {"HOOK": url}), path, "channels.ap.url")
    assert "hunter2" not in str(error)
    assert "hunter2" not in caplog.text


def test_shipped_example_is_valid(tmp_path: Path) -> None:
    """The commented apprise example in config.toml loads once uncommented."""
    shipped = (Path(__file__).parent.parent / "config.toml").read_text(encoding="utf-8")
    lines = shipped[shipped.index("# [channels.alerts]") :].splitlines()
    block = []
    for line in lines:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    path = tmp_path / "config.toml"
    path.write_text("\n".join(block) + "\n", encoding="utf-8")
    settings = load_settings(path, env={"DISCORD_WEBHOOK": f"1234567890/{TOKEN}"})
    assert settings.channels["alerts"].type == "apprise"
