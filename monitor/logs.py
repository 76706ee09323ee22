"""Logging set-up: JSON lines for machines, readable lines for people, secrets masked in both.

Every line the installed handler writes, from any logger, goes through `redact`: the secrets
registered with `protect` (webhook URLs, passwords, service tokens from the configuration) are
replaced by `[redacted]`, and so are URL passwords and secret-looking query parameters wherever
they come from, such as a receiver's error page echoing the request.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qsl, quote, urlsplit

if TYPE_CHECKING:
    from monitor.config import Settings

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter strings are too likely to occur by chance and mask ordinary text
FORMAT_VARIABLE = "MONITOR_LOG_FORMAT"
FORMATS = ("json", "text")
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler")  # their INFO lines repeat what monitor logs

# Query parameter names, or their last part after `_`, `-` or `.`, that carry credentials.
_SECRET_PARAMS = frozenset(
    {"token", "key", "secret", "password", "passwd", "pwd", "sig", "signature", "apikey", "auth"}
)
_SECRET_PARAM_ENDINGS = ("token", "secret", "password", "passwd", "signature", "apikey")
# scheme://user:PASSWORD@host; the user part may be empty, the password stops at '@', '/' or space.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#@]+)(?=@)")
# ?name=value or &name=value; the value stops where a URL would (or at a quote or bracket around it).
_QUERY_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#\s?]+)=)(?P<value>[^&;#\s'\"<>()\[\]]+)")


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    parts = re.split(r"[_.\-]", lowered)
    return any(p in _SECRET_PARAMS for p in parts) or lowered.endswith(_SECRET_PARAM_ENDINGS)


class _Redactor:
    """The registered secrets, as one pattern matching any of them (longest first, so a whole URL
    is masked as one rather than piece by piece)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for secret in secrets:
                if len(secret) < MIN_SECRET_LENGTH:
                    continue
                self._secrets.add(secret)
                # As a URL or query would carry it, should a message quote it that way.
                encoded = quote(secret, safe="")
                if encoded != secret:
                    self._secrets.add(encoded)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        pattern = self._pattern  # read once: another thread may replace it
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
        return _QUERY_PARAM.sub(
            lambda m: m["head"] + REDACTED if _secret_param(m["name"]) else m[0],
            text,
        )


_redactor = _Redactor()


def protect(secrets: Iterable[str]) -> None:
    """Mask these strings in every log line from now on (empty and very short ones are ignored)."""
    _redactor.add(secrets)


def redact(text: str) -> str:
    """`text` with every registered secret, URL password and secret query value replaced by [redacted]."""
    return _redactor.redact(text)


def secrets_of(settings: Settings) -> set[str]:
    """Every secret string of the configuration: channel URLs, tokens, passwords, and feed URLs
    that carry credentials."""
    from monitor.config import AppriseOptions, EmailOptions, SlackOptions, WebhookOptions

    found: set[str] = set()
    for channel in settings.channels.values():
        options = channel.options
        if isinstance(options, SlackOptions):
            found |= {options.webhook_url, *_slack_pieces(options.webhook_url)}
        elif isinstance(options, WebhookOptions):
            # Webhook services put their tokens in the path as often as in the query.
            found |= _url_secrets(options.url) | _path_of(options.url) | {options.url}
            if options.secret:
                # Only the decoded key is kept; its base64 is how the environment spells it.
                encoded = base64.b64encode(options.secret).decode("ascii")
                found |= {encoded, "whsec_" + encoded}
            for _, value in options.headers:
                # "Bearer abc..." may also be logged as just its token.
                found |= {value, value.split()[-1]} if value.strip() else set()
        elif isinstance(options, EmailOptions):
            if options.password:
                found.add(options.password)
        elif isinstance(options, AppriseOptions):
            for url in options.urls:
                # Apprise URLs hold their tokens in the host and path: the part after :// is secret.
                found |= {url, url.partition("://")[2]} | _url_secrets(url)
    for feed in settings.feeds:
        secrets = _url_secrets(feed.url)
        if secrets:
            found |= secrets | {feed.url}
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


def _slack_pieces(url: str) -> set[str]:
    """The path after /services/ (T…/B…/token) and the token alone: each lets anyone post."""
    path = urlsplit(url).path
    _, sep, rest = path.partition("/services/")
    if not sep or not rest:
        return set()
    return {rest, rest.rstrip("/").rsplit("/", 1)[-1]}


def _path_of(url: str) -> set[str]:
    """The path of a URL, and with its query, as a receiver's error page may quote them."""
    parts = urlsplit(url)
    if len(parts.path) <= 1:
        return set()
    return {parts.path, f"{parts.path}?{parts.query}"} if parts.query else {parts.path}


def _url_secrets(url: str) -> set[str]:
    """The password and the secret-looking query values of a URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an invalid port or bracket: nothing can be read from it
        return set()
    found = {password} if password else set()
    found |= {value for name, value in parse_qsl(parts.query) if value and _secret_param(name)}
    return found


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, exc (if any) and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        for key, value in record.__dict__.items():
            if key in _RECORD_FIELDS or key in entry or key.startswith("_"):
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):  # not JSON: left out rather than guessed at
                continue
            entry[key] = _redact_value(value)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _redact_value(value: Any) -> Any:
    """A JSON value with every string in it redacted, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, dict):
        return {redact(str(k)): _redact_value(v) for k, v in value.items()}
    return value


class TextFormatter(logging.Formatter):
    """`2026-11-21T10:00:00+0000 INFO message`, the traceback below it, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _MonitorHandler(logging.StreamHandler[TextIO]):
    """The handler setup_logging installs; recognised by its class so a second call replaces it."""


def setup_logging(verbose: bool, *, stream: TextIO | None = None, fmt: str | None = None) -> None:
    """Send every log record to `stream` (standard error by default) as JSON lines or text.

    `fmt` is "json" or "text"; None means $MONITOR_LOG_FORMAT if set, else text on a terminal
    and JSON otherwise (a container's log collector, a pipe, a file).
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of: {', '.join(FORMATS)}")
    stream = sys.stderr if stream is None else stream
    unknown_setting = None
    if fmt is None:
        setting = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
        if setting in FORMATS:
            fmt = setting
        else:
            unknown_setting = setting or None
            fmt = "text" if _isatty(stream) else "json"
    handler = _MonitorHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _MonitorHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if unknown_setting is not None:
        logging.getLogger("monitor").warning(
            "%s=%r is not one of %s; using %s", FORMAT_VARIABLE, unknown_setting, ", ".join(FORMATS), fmt
        )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
