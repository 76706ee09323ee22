"""Structured logs (JSON lines or text) and the masking of secrets in every line."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitor import logs
from monitor.config import parse_settings
from monitor.logs import protect, redact, secrets_of, setup_logging
from tests.conftest import FIXTURES, LOOPBACK, free_port, write_config

WATCHLISTS = Path(__file__).parent.parent / "watchlists"
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXXtoken"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")

log = logging.getLogger("monitor.test")


class TtyStream(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def clean_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no registered secret and no log format in the environment, and leaves
    the root logger as it found it."""
    monkeypatch.setattr(logs, "_redactor", logs._Redactor())
    monkeypatch.delenv("MONITOR_LOG_FORMAT", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


# Formats


def test_json_lines_when_not_a_terminal() -> None:
    """Off a terminal each record is one JSON object with ts, level, logger, msg and extra fields."""
    stream = io.StringIO()
    setup_logging(False, stream=stream)
    log.info("cycle done: %d feeds", 3, extra={"feeds": 3, "channels": ["slack", "mail"], "ok": True})
    log.debug("not shown: below INFO")

    [entry] = json_lines(stream)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "monitor.test"
    assert entry["msg"] == "cycle done: 3 feeds"
    assert entry["feeds"] == 3
    assert entry["channels"] == ["slack", "mail"]
    assert entry["ok"] is True
    assert "exc" not in entry
    assert isinstance(entry["ts"], str)
    ts = datetime.fromisoformat(entry["ts"])
    assert entry["ts"].endswith("+00:00")
    assert ts.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 3600


def test_json_leaves_out_what_is_not_json_and_keeps_its_own_fields() -> None:
    """An extra value JSON cannot hold is dropped; an extra named like a core field does not replace it."""
    stream = io.StringIO()
    setup_logging(False, stream=stream, fmt="json")
    log.warning("odd extras", extra={"handle": object(), "level": "fake", "count": 2})
    [entry] = json_lines(stream)
    assert "handle" not in entry
    assert entry["level"] == "WARNING"
    assert entry["count"] == 2


def test_json_carries_the_traceback() -> None:
    """A logged exception is in `exc`, the message stays in `msg`, and it is still one line."""
    stream = io.StringIO()
    setup_logging(False, stream=stream)
    try:
        raise ValueError("bad feed body")
    except ValueError:
        log.exception("feed %s: unexpected error", "dawn")
    assert len(stream.getvalue().splitlines()) == 1
    [entry] = json_lines(stream)
    assert entry["level"] == "ERROR"
    assert entry["msg"] == "feed dawn: unexpected error"
    assert isinstance(entry["exc"], str)
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("ValueError: bad feed body")


def test_text_on_a_terminal() -> None:
    """On a terminal each record is `2026-11-21T10:00:00+0000 INFO message`."""
    stream = TtyStream()
    setup_logging(False, stream=stream)
    log.warning("feed %s: %s", "dawn", "HTTP 503")
    [line] = stream.getvalue().splitlines()
    assert TEXT_LINE.match(line), line
    assert line.endswith(" WARNING feed dawn: HTTP 503")


@pytest.mark.parametrize(
    ("setting", "tty", "expected"),
    [
        ("text", False, "text"),
        ("json", True, "json"),
        ("JSON", True, "json"),
        ("", True, "text"),
        ("", False, "json"),
    ],
)
def test_the_environment_chooses_the_format(
    monkeypatch: pytest.MonkeyPatch, setting: str, tty: bool, expected: str
) -> None:
    """MONITOR_LOG_FORMAT overrides the terminal check; unset or empty, the terminal decides."""
    monkeypatch.setenv("MONITOR_LOG_FORMAT", setting)
    stream = TtyStream() if tty else io.StringIO()
    setup_logging(False, stream=stream)
    log.info("hello")
    line = stream.getvalue().splitlines()[0]
    if expected == "json":
        assert json.loads(line)["msg"] == "hello"
    else:
        assert TEXT_LINE.match(line), line


def test_an_unknown_format_in_the_environment_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    """MONITOR_LOG_FORMAT=yaml logs a warning and falls back to the terminal check."""
    monkeypatch.setenv("MONITOR_LOG_FORMAT", "yaml")
    stream = io.StringIO()
    setup_logging(False, stream=stream)
    [entry] = json_lines(stream)
    assert entry["level"] == "WARNING"
    assert "MONITOR_LOG_FORMAT='yaml'" in str(entry["msg"])


def test_an_unknown_format_argument_is_refused() -> None:
    """fmt must be json or text."""
    with pytest.raises(ValueError, match="not one of"):
        setup_logging(False, stream=io.StringIO(), fmt="xml")


def test_a_second_setup_replaces_the_first() -> None:
    """Calling setup_logging again swaps its handler rather than adding one: each line is written once."""
    first, second = io.StringIO(), io.StringIO()
    setup_logging(False, stream=first)
    setup_logging(False, stream=second)
    log.info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._MonitorHandler)]
    assert len(ours) == 1


def test_verbose_logs_debug_but_keeps_libraries_quiet() -> None:
    """-v shows monitor's debug lines; httpx, httpcore and apscheduler stay at WARNING."""
    stream = io.StringIO()
    setup_logging(True, stream=stream)
    log.debug("detail")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.org")
    logging.getLogger("apscheduler.scheduler").info("Added job")
    assert [e["msg"] for e in json_lines(stream)] == ["detail"]
    for noisy in ("httpx", "httpcore", "apscheduler"):
        assert logging.getLogger(noisy).level == logging.WARNING


# Redaction


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_registered_secret_is_masked_in_message_args_and_traceback(fmt: str) -> None:
    """A protected Slack URL never reaches the stream, whether in the message, its args or a traceback."""
    protect([SLACK_URL])
    stream = io.StringIO()
    setup_logging(False, stream=stream, fmt=fmt)
    log.warning(f"posting to {SLACK_URL} failed")
    log.warning("posting to %s failed", SLACK_URL)
    try:
        raise ConnectionError(f"cannot reach {SLACK_URL}")
    except ConnectionError:
        log.exception("channel %s failed", "slack")

    output = stream.getvalue()
    assert "XXXXsecretXXXXtoken" not in output
    assert "hooks.slack.com" not in output
    assert output.count("posting to [redacted] failed") == 2
    assert "ConnectionError: cannot reach [redacted]" in output


def test_other_loggers_are_masked_too() -> None:
    """Records of libraries (not only `monitor`) go through the same masking."""
    protect(["hunter2-smtp-password"])
    stream = io.StringIO()
    setup_logging(False, stream=stream)
    logging.getLogger("mail.server").warning("AUTH PLAIN user hunter2-smtp-password refused")
    [entry] = json_lines(stream)
    assert entry["msg"] == "AUTH PLAIN user [redacted] refused"


def test_extra_fields_are_masked() -> None:
    """A secret passed as a structured field is masked like the message."""
    protect([SLACK_URL])
    stream = io.StringIO()
    setup_logging(False, stream=stream)
    log.info("sent", extra={"url": SLACK_URL, "urls": [SLACK_URL], "attempts": 2})
    [entry] = json_lines(stream)
    assert entry["url"] == "[redacted]"
    assert entry["urls"] == ["[redacted]"]
    assert entry["attempts"] == 2


def test_redact_registered_secrets() -> None:
    """Registered strings are masked, longest first; short and empty ones are ignored."""
    path = "T0001/B0002/XXXXsecretXXXXtoken"
    protect([SLACK_URL, path, "", "abc12"])
    assert redact(f"POST {SLACK_URL} -> 404") == "POST [redacted] -> 404"
    assert redact(f"path /services/{path}") == "path /services/[redacted]"
    assert redact("abc12 stays: too short to be told from ordinary text") == (
        "abc12 stays: too short to be told from ordinary text"
    )
    assert redact("T0001%2FB0002%2FXXXXsecretXXXXtoken") == "[redacted]"  # percent-encoded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://analyst:s3cr3t-pw@feeds.example.org/x.xml",
            "https://analyst:[redacted]@feeds.example.org/x.xml",
        ),
        ("smtp://:p4ss@mail.example.org:587", "smtp://:[redacted]@mail.example.org:587"),
        (
            "GET https://api.example.org/feed?token=abc123&page=2",
            "GET https://api.example.org/feed?token=[redacted]&page=2",
        ),
        ("https://x.example/f?page=2&API_KEY=zzz", "https://x.example/f?page=2&API_KEY=[redacted]"),
        (
            "https://x.example/f?apikey=zzz&access_token=yyy",
            "https://x.example/f?apikey=[redacted]&access_token=[redacted]",
        ),
        (
            "https://s3.example/o?X-Amz-Signature=beef&X-Amz-Date=2024",
            "https://s3.example/o?X-Amz-Signature=[redacted]&X-Amz-Date=2024",
        ),
        ("'https://x.example/f?Password=pw1'", "'https://x.example/f?Password=[redacted]'"),
        (
            "https://x.example/f?sig=1&auth=2&secret=3&passwd=4",
            "https://x.example/f?sig=[redacted]&auth=[redacted]&secret=[redacted]&passwd=[redacted]",
        ),
        ("https://x.example/f?page=2&sort=new&q=token", "https://x.example/f?page=2&sort=new&q=token"),
        ("https://feeds.example.org:8443/rss", "https://feeds.example.org:8443/rss"),
        ("nothing to see here", "nothing to see here"),
    ],
)
def test_redact_url_passwords_and_secret_parameters(text: str, expected: str) -> None:
    """URL passwords and secret-looking query values are masked with nothing registered."""
    assert redact(text) == expected


def test_secrets_of_settings() -> None:
    """Every channel secret and every credential in a feed URL is collected; nothing public is."""
    raw = {
        "feeds": [
            {"name": "public", "url": "https://www.dawn.com/feeds/home"},
            {"name": "private", "url": "https://reader:feedpass99@feeds.example.org/private.xml"},
            {"name": "keyed", "url": "https://api.example.org/rss?key=feedkey123&lang=en"},
        ],
        "channels": {
            "ops": {"type": "slack", "webhook_url": SLACK_URL},
            "hook": {
                "type": "webhook",
                "url": "https://hooks.example.org/in/hookpath-77",
                "headers": {"Authorization": "Bearer bearer-token-42", "X-Team": "analysts"},
            },
            "mail": {
                "type": "email",
                "host": "smtp.example.org",
                "sender": "monitor@example.org",
                "recipients": ["analyst@example.org"],
                "username": "monitor-user",
                "password": "mail-password-1",
            },
            "push": {
                "type": "apprise",
                "urls": ["ntfy://secret-topic-9", "tgram://123456789:AAbbCCddEEff/987654"],
            },
            "screen": {"type": "console"},
        },
    }
    settings = parse_settings(raw, Path("config.toml"), env={})
    found = secrets_of(settings)

    expected = {
        SLACK_URL,
        "T0001/B0002/XXXXsecretXXXXtoken",
        "XXXXsecretXXXXtoken",
        "https://hooks.example.org/in/hookpath-77",
        "/in/hookpath-77",
        "Bearer bearer-token-42",
        "bearer-token-42",
        "analysts",
        "mail-password-1",
        "ntfy://secret-topic-9",
        "secret-topic-9",
        "tgram://123456789:AAbbCCddEEff/987654",
        "123456789:AAbbCCddEEff/987654",
        "https://reader:feedpass99@feeds.example.org/private.xml",
        "feedpass99",
        "https://api.example.org/rss?key=feedkey123&lang=en",
        "feedkey123",
    }
    assert expected <= found
    for public in (
        "https://www.dawn.com/feeds/home",
        "monitor-user",
        "smtp.example.org",
        "analyst@example.org",
    ):
        assert public not in found
    assert all(len(s) >= 6 for s in found)


def test_secrets_of_a_signed_webhook_include_its_key() -> None:
    """A webhook signing secret is protected in the form the environment holds it."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    raw = {"channels": {"hook": {"type": "webhook", "url": "https://h.example/in", "secret": secret}}}
    found = secrets_of(parse_settings(raw, Path("config.toml"), env={}))
    assert secret in found
    assert secret.removeprefix("whsec_") in found


# The CLI


class EchoingReceiver:
    """A webhook receiver whose error page quotes the request back, credentials included, as real
    ones do: what a naive log line would copy into the log."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = f"no route for {self.path} ({self.headers.get('Authorization')})".encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echoing_receiver() -> Iterator[EchoingReceiver]:
    receiver = EchoingReceiver()
    yield receiver
    receiver.close()


def test_cli_logs_json_without_secrets(tmp_path: Path, echoing_receiver: EchoingReceiver) -> None:
    """`monitor poll --once` with stderr on a pipe logs JSON lines, and no configured secret appears
    in them, though delivery fails and a receiver echoes its URL and token into the error."""
    closed = free_port()
    config = write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{WATCHLISTS}"
timeout = "5s"

[[feeds]]
name = "frontier"
url = "{FIXTURES / "frontier.xml"}"

[channels.slack]
type = "slack"
webhook_url = "http://{LOOPBACK}:{closed}/services/T000/B000/SECRETSECRET"

[channels.hook]
type = "webhook"
url = "http://{LOOPBACK}:{echoing_receiver.port}/hooks/PATHSECRET99?token=QUERYSECRET99"

[channels.hook.headers]
Authorization = "Bearer BEARERSECRET99"
""",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_LOG_FORMAT", "MONITOR_CONFIG")}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "alerts pending: " in result.stdout

    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries), result.stderr
    messages = "\n".join(str(e["msg"]) for e in entries)
    # Both channels failed, and the log says so: the path under test was taken.
    assert "to slack failed (will retry)" in messages
    assert "to hook failed (will retry): HTTP 500: no route for [redacted] ([redacted])" in messages
    for secret in ("SECRETSECRET", "PATHSECRET99", "QUERYSECRET99", "BEARERSECRET99"):
        assert secret not in result.stderr
    assert "[redacted]" in result.stderr
