"""config.toml and the environment -> validated, immutable settings.

Every problem is collected rather than raised at the first one, so `monitor check` can list them
all; each names the file, the key path and what to do about it.
"""

from __future__ import annotations

import base64
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor import USER_AGENT
from monitor.dedup import Identity
from monitor.errors import ConfigError, ConfigErrors
from monitor.schedule import QuietHours, parse_quiet_hours

T = TypeVar("T")

DEFAULT_CONFIG = Path("config.toml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 2**20}
_SIZE_UNITS |= {"GB": 10**9, "GiB": 2**30}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Defaults:
    poll_interval: float = 900.0
    deliver_interval: float = 60.0
    jitter: float = 0.1  # each feed's polls spread by up to this share of its interval
    user_agent: str = USER_AGENT
    timeout: float = 20.0  # per connect/read/write
    fetch_deadline: float = 30.0  # whole fetch, however slowly the body trickles in
    max_concurrency: int = 16
    max_feed_bytes: int = 10 * 2**20
    max_redirects: int = 5
    state_path: Path = Path("state/monitor.db")
    watchlists_dir: Path = Path("watchlists")
    story_window: float = 72 * 3600.0  # copies published this close together may be one story
    retention_days: int = 90  # items older than this are pruned; their identities are kept longer
    timezone: str = "UTC"  # for digest schedules and quiet hours
    delivery_max_age: float = 7 * 86400.0  # an alert still failing after this long is given up
    status_address: str | None = None  # HOST:PORT of the /healthz and /metrics endpoint; None: off
    # Off by default: a feed or a redirect must not lead into the intranet or a metadata service.
    allow_private_networks: bool = False
    # Parsing and matching in a process of their own, so they run beside fetching and storing.
    worker_process: bool = True


@dataclass(frozen=True, slots=True)
class FeedConfig:
    name: str
    url: str  # http(s) URL, file:// URL or absolute path
    interval: float | None = None
    tags: tuple[str, ...] = ()
    identity: Identity = Identity.GUID
    outlet: str | None = None  # who publishes it, for "also reported by"; several feeds may share one

    @property
    def is_local(self) -> bool:
        return not self.url.lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    pass


@dataclass(frozen=True, slots=True)
class SlackOptions:
    webhook_url: str


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    # The decoded Standard Webhooks signing key; None sends unsigned requests. Kept out of repr so
    # printing the settings never shows it.
    secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class EmailOptions:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class AppriseOptions:
    urls: tuple[str, ...]  # Apprise service URLs; each carries its service's tokens


ChannelOptions = ConsoleOptions | SlackOptions | WebhookOptions | EmailOptions | AppriseOptions


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    type: str
    options: ChannelOptions
    quiet_hours: QuietHours | None = None  # non-critical alerts wait for the end of these
    timezone: str = "UTC"  # of its quiet hours and digest schedules


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    defaults: Defaults = Defaults()
    feeds: tuple[FeedConfig, ...] = ()
    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)

    def interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.defaults.poll_interval


def load_settings(path: Path | str = DEFAULT_CONFIG, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; raise ConfigErrors listing every problem found."""
    path = Path(path)
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigErrors(
            [ConfigError(path, "", "file not found; copy config.toml from the repository or pass --config")]
        ) from None
    except OSError as e:
        raise ConfigErrors([ConfigError(path, "", f"cannot read: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigErrors([ConfigError(path, "", f"not UTF-8 text ({e.reason} at byte {e.start})")]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigErrors([ConfigError(path, "", f"TOML syntax error: {e}")]) from e
    return parse_settings(raw, path, env)


def parse_settings(raw: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> Settings:
    errors: list[ConfigError] = []
    root = Table(raw, "", path, errors, env)
    base = path.parent
    defaults = _parse_defaults(root.table("defaults"), base)
    feeds = _parse_feeds(root, base)
    channels = _parse_channels(root.table("channels"), ZoneInfo(defaults.timezone))
    root.finish()
    settings = Settings(path=path, defaults=defaults, feeds=feeds, channels=channels)
    if errors:
        raise ConfigErrors(list(errors), partial=settings)
    return settings


def _parse_defaults(t: Table, base: Path) -> Defaults:
    from monitor.status import parse_address

    d = Defaults()
    # An empty value (such as an unset `${STATUS_ADDRESS:-}`) leaves the endpoint off.
    status_address = t.string("status_address", None) or None
    if status_address is not None:
        try:
            parse_address(status_address)
        except ValueError as e:
            t.error("status_address", str(e))
            status_address = None
    result = Defaults(
        poll_interval=t.duration("poll_interval", d.poll_interval, minimum=1),
        deliver_interval=t.duration("deliver_interval", d.deliver_interval, minimum=1),
        jitter=t.number("jitter", d.jitter, minimum=0, maximum=0.5),
        user_agent=t.string("user_agent", d.user_agent),
        timeout=t.duration("timeout", d.timeout, minimum=0.1),
        fetch_deadline=t.duration("fetch_deadline", d.fetch_deadline, minimum=0.1),
        max_concurrency=int(t.number("max_concurrency", d.max_concurrency, minimum=1, maximum=1000)),
        max_feed_bytes=t.size("max_feed_bytes", d.max_feed_bytes),
        max_redirects=int(t.number("max_redirects", d.max_redirects, minimum=0, maximum=20)),
        state_path=_relative_path(t.string("state_path", None), base, d.state_path),
        watchlists_dir=_relative_path(t.string("watchlists_dir", None), base, d.watchlists_dir),
        story_window=t.duration("story_window", d.story_window, minimum=0),
        retention_days=int(t.number("retention_days", d.retention_days, minimum=1, maximum=36500)),
        timezone=_timezone(t, "timezone", d.timezone),
        delivery_max_age=t.duration("delivery_max_age", d.delivery_max_age, minimum=60),
        status_address=status_address,
        allow_private_networks=t.boolean("allow_private_networks", d.allow_private_networks),
        worker_process=t.boolean("worker_process", d.worker_process),
    )
    t.finish()
    return result


def _relative_path(value: str | None, base: Path, default: Path) -> Path:
    """Set in the file: relative to the file. Unset: the default, in the working directory."""
    return default if value is None else base / value


def _parse_feeds(root: Table, base: Path) -> tuple[FeedConfig, ...]:
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for t in root.tables("feeds"):
        name = t.string("name", required=True)
        url = t.string("url", required=True)
        checked = _check_feed_url(url, base) if url else None
        if url and checked is None:
            # The value as written, before ${VAR} interpolation: a token in a feed URL stays secret.
            written = t.written("url")
            t.error(
                "url", f"{written!r} is not a feed address; use an http(s):// URL, a file:// URL or a path"
            )
        url = checked or url
        if name and not _NAME.match(name):
            t.error("name", f"{name!r}: use letters, digits, '.', '_' or '-' (no spaces)")
        elif name in seen:
            t.error("name", f"{name!r} is used by another feed; feed names must be unique")
        seen.add(name)
        interval = t.duration("interval", None, minimum=1)
        tags = tuple(t.strings("tags", []))
        identity = Identity(t.choice("identity", tuple(Identity), Identity.GUID))
        outlet = t.string("outlet", None)
        t.finish()
        feeds.append(
            FeedConfig(name=name, url=url, interval=interval, tags=tags, identity=identity, outlet=outlet)
        )
    return tuple(feeds)


def _check_feed_url(url: str, base: Path) -> str | None:
    """The URL to fetch (paths made absolute), or None when `url` cannot be a feed address."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return url if parts.hostname else None
    if parts.scheme == "file":
        return url if parts.path else None
    if parts.scheme and len(parts.scheme) > 1:  # a Windows drive letter is not a scheme
        return None
    return str((base / url).resolve())


def _timezone(t: Table, key: str, default: str) -> str:
    name = t.string(key, default) or default
    try:
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # OSError: a folder such as "Europe"
        t.error(key, f"{name!r} is not a time zone; use an IANA name such as 'Europe/London' or 'UTC'")
        return default
    return name


def _quiet_hours(c: Table, zone: ZoneInfo) -> QuietHours | None:
    text = c.string("quiet_hours", None)
    if not text:
        return None
    try:
        return parse_quiet_hours(text, zone)
    except ValueError as e:
        c.error("quiet_hours", str(e))
        return None


def _parse_channels(t: Table, zone: ZoneInfo) -> dict[str, ChannelConfig]:
    channels: dict[str, ChannelConfig] = {}
    for name in t.keys():  # noqa: SIM118 (Table.keys marks keys as read)
        c = t.table(name)
        if not _NAME.match(name):
            t.error(name, "channel names use letters, digits, '.', '_' or '-'")
        kind = c.string("type", required=True)
        parser = _CHANNEL_PARSERS.get(kind)
        if parser is None:
            if kind:
                c.error("type", f"unknown channel type {kind!r}; use one of {', '.join(_CHANNEL_PARSERS)}")
            continue
        options = parser(c)
        timezone = _timezone(c, "timezone", zone.key)
        quiet_hours = _quiet_hours(c, ZoneInfo(timezone))
        c.finish()
        channels[name] = ChannelConfig(name, kind, options, quiet_hours, timezone)
    return channels


def _console(c: Table) -> ConsoleOptions:
    return ConsoleOptions()


def _slack(c: Table) -> SlackOptions:
    return SlackOptions(webhook_url=c.url("webhook_url", required=True))


def _webhook(c: Table) -> WebhookOptions:
    url = c.url("url", required=True)
    headers = c.table("headers")
    pairs = []
    for name in headers.keys():  # noqa: SIM118 (Table.keys marks keys as read)
        value = headers.string(name, required=True)
        # A configured copy would be sent beside (or instead of) the one that is signed.
        if name.lower() in ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature"):
            headers.error(name, "is set by monitor on every request; remove it from the headers table")
        else:
            pairs.append((name, value))

    def signing_key(secret: str) -> bytes | str:
        """The Standard Webhooks key of `whsec_<base64>` (the prefix is optional, as in the
        reference libraries), or what is wrong with it. Never quotes the secret itself."""
        text = secret.removeprefix("whsec_")
        where = "after the 'whsec_' prefix" if text != secret else "(expected whsec_<base64>)"
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        if not text:
            return "is empty; set a Standard Webhooks secret (whsec_<base64>) or remove the key"
        offset = len(secret) - len(text) + 1  # positions count from 1, in the whole secret
        for i, ch in enumerate(text):
            if ch not in alphabet and ch != "=":
                problem = f"is not valid base64 {where}: character {i + offset} is {ch!r}"
                if ch in "-_":
                    return problem + "; that is URL-safe base64: use the standard alphabet (+ and /)"
                if ch in " \t\r\n'\"":
                    return problem + "; stray spaces or quotes come from how the variable was set"
                return problem
        digits = text.rstrip("=")
        if "=" in digits:
            position = digits.index("=") + offset
            return f"is not valid base64 {where}: character {position} is '='; '=' may only pad the end"
        padding = len(text) - len(digits)
        if len(digits) % 4 == 1 or padding > 2 or (padding and len(text) % 4):
            return f"is not valid base64 {where}: its length is wrong (a character missing or extra?)"
        key = base64.b64decode(digits + "=" * (-len(digits) % 4))
        if not 24 <= len(key) <= 64:
            return (
                f"decodes to {len(key)} bytes; a Standard Webhooks key is 24 to 64 random bytes "
                "(for example whsec_ and the base64 of secrets.token_bytes(32))"
            )
        return key

    secret = c.string("secret", None)
    key = signing_key(secret) if secret is not None else None
    if isinstance(key, str):
        c.error("secret", key)
        key = None
    return WebhookOptions(url=url, headers=tuple(pairs), secret=key)


def _email(c: Table) -> EmailOptions:
    security = c.choice("security", ("starttls", "tls", "none"), "starttls")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    recipients = c.strings("recipients", None, required=True)
    if recipients == []:
        c.error("recipients", "list at least one address")
    return EmailOptions(
        host=c.string("host", required=True),
        port=int(c.number("port", default_port, minimum=1, maximum=65535)),
        security=security,  # type: ignore[arg-type]
        username=c.string("username", None),
        password=c.string("password", None),
        sender=c.string("sender", required=True),
        recipients=tuple(recipients or ()),
    )


def _apprise(c: Table) -> AppriseOptions:
    # Imported here, not at the top: the notify package imports this module.
    from monitor.notify.apprise_channel import url_problem

    single = c.string("url", None)
    several = c.strings("urls", None)
    if single is not None and several is not None:
        c.error("urls", "set either `url` or `urls`, not both")
    elif single is None and c.written("urls") is None:
        c.error("url", "missing; set `url` (one service) or `urls` (a list of them)")
    elif several == []:
        c.error("urls", "list at least one URL")
    if single is not None:
        keyed = [("url", single)]
    else:
        keyed = [(f"urls[{i}]", url) for i, url in enumerate(several or ())]
    for key, url in keyed:
        problem = url_problem(url)
        if problem:
            c.error(key, problem)
    return AppriseOptions(urls=tuple(url for _, url in keyed))


_CHANNEL_PARSERS: dict[str, Callable[[Table], ChannelOptions]] = {
    "console": _console,
    "slack": _slack,
    "webhook": _webhook,
    "email": _email,
    "apprise": _apprise,
}


class Table:
    """A view of one TOML table that reads typed keys and records errors with their key path."""

    def __init__(
        self,
        data: Mapping[str, Any],
        path: str,
        file: Path,
        errors: list[ConfigError],
        env: Mapping[str, str],
    ) -> None:
        self._data = data
        self._path = path
        self._file = file
        self._errors = errors
        self._env = env
        self._read: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def error(self, key: str, message: str) -> None:
        self._errors.append(ConfigError(self._file, self.key_path(key), message))

    def keys(self) -> list[str]:
        self._read.update(self._data)
        return list(self._data)

    def written(self, key: str) -> object:
        """A value exactly as the file has it, ${VAR} references not replaced."""
        return self._data.get(key)

    def finish(self) -> None:
        """Report every key that was never read: a typo must not be silently ignored."""
        for key in self._data:
            if key not in self._read:
                self.error(
                    key, "unknown key; check its spelling against the README's configuration reference"
                )

    def _get(self, key: str, required: bool) -> Any:
        self._read.add(key)
        if key not in self._data:
            if required:
                self.error(key, "missing; this key is required")
            return None
        return self._data[key]

    def table(self, key: str) -> Table:
        value = self._get(key, False)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            self.error(key, f"expected a table ([{self.key_path(key)}]), got {_kind(value)}")
            value = {}
        return Table(value, self.key_path(key), self._file, self._errors, self._env)

    def tables(self, key: str) -> list[Table]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.error(key, f"expected an array of tables ([[{self.key_path(key)}]]), got {_kind(value)}")
            return []
        return [
            Table(v, f"{self.key_path(key)}[{i}]", self._file, self._errors, self._env)
            for i, v in enumerate(value)
        ]

    def string(self, key: str, default: T = "", *, required: bool = False) -> str | T:  # type: ignore[assignment]
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(key, f"expected a string, got {_kind(value)}")
            return default
        return self._interpolate(key, value)

    def strings(self, key: str, default: T, *, required: bool = False) -> list[str] | T:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(key, f"expected a list of strings, got {_kind(value)}")
            return default
        return [self._interpolate(key, v) for v in value]

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def number(
        self, key: str, default: T, *, minimum: float | None = None, maximum: float | None = None
    ) -> float | T:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"expected a number, got {_kind(value)}")
            return default
        return self._bounded(key, float(value), minimum, maximum, default)

    def duration(self, key: str, default: T, *, minimum: float = 0) -> float | T:
        """Seconds as a number, or a string such as "90s", "15m", "1h30m", "1d"."""
        value = self._get(key, False)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            self.error(key, f'{value!r} is not a duration; write seconds (90) or a string like "15m", "1h"')
            return default
        return self._bounded(key, seconds, minimum, None, default)

    def size(self, key: str, default: int) -> int:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        m = _SIZE.match(value) if isinstance(value, str) else None
        if m is None or int(m.group(1)) == 0:
            self.error(key, f'{value!r} is not a size; write bytes (1048576) or a string like "10MiB"')
            return default
        return int(m.group(1)) * _SIZE_UNITS[m.group(2)]

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            self.error(key, f"{value!r} is not one of: {', '.join(choices)}")
            return default
        return value

    def url(self, key: str, *, required: bool = False) -> str:
        value = self.string(key, "", required=required)
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            self.error(key, f"{_redact(value)!r} is not an http(s) URL")
        return value

    def _bounded(
        self, key: str, value: float, minimum: float | None, maximum: float | None, default: T
    ) -> float | T:
        if minimum is not None and value < minimum:
            self.error(key, f"{value:g} is too small; the minimum is {minimum:g}")
            return default
        if maximum is not None and value > maximum:
            self.error(key, f"{value:g} is too large; the maximum is {maximum:g}")
            return default
        return value

    def _interpolate(self, key: str, value: str) -> str:
        """Replace ${VAR} (or ${VAR:-default}) by the environment; secrets live only there."""

        def replace(m: re.Match[str]) -> str:
            name, fallback = m.group(1), m.group(2)
            if name in self._env:
                return self._env[name]
            if fallback is not None:
                return fallback
            self.error(
                key, f"${{{name}}} is not set; export {name} in the environment (or use ${{{name}:-default}})"
            )
            return ""

        return _ENV_REF.sub(replace, value)


def parse_duration(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if text.replace(".", "", 1).isdigit():
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def _kind(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _redact(url: str) -> str:
    """A URL fit for an error message: webhook paths and credentials are secrets."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url[:3] + "..." if len(url) > 3 else url
    bare = f"{parts.scheme}://{parts.hostname or ''}"
    return bare if url.rstrip("/") == bare else bare + "/..."
