"""Adding feeds to config.toml: appended as text, so every comment and byte already there stays.

A TOML library would rewrite the whole file and lose the user's comments and layout; appending
`[[feeds]]` blocks is enough, because an array of tables may continue anywhere in the file. The
result is validated as `monitor check` would, and the original restored if it does not pass.
Candidates are fetched once first (`check_feed`) to make sure they are feeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import tomllib
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from monitor.config import FeedConfig, Settings, load_settings
from monitor.errors import MonitorError
from monitor.fetch import Fetcher
from monitor.parse import parse_document
from monitor.types import FetchStatus, Validators

MAX_NAME = 40
_NON_NAME = re.compile(r"[^a-z0-9]+")
_ENV_REF = re.compile(r"\$\{")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


@dataclass(frozen=True, slots=True)
class NewFeed:
    name: str
    url: str
    interval: str | None = None  # as written in config.toml: "30m"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    feed: NewFeed
    reason: str


@dataclass(frozen=True, slots=True)
class Appended:
    """What append_feeds wrote, and what it left out and why."""

    added: tuple[NewFeed, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class FeedCheck:
    """What one fetch of a candidate feed showed."""

    url: str  # where the feed lives: the address given, or where a permanent redirect moved it
    title: str | None = None
    error: str | None = None  # why it is not a usable feed; None when it is one


async def check_feed(fetcher: Fetcher, url: str, now: datetime) -> FeedCheck:
    """Fetch `url` once and read it as the daemon would: is it a feed, and what is its title?"""
    name = "new-feed"
    result = await fetcher.fetch(FeedConfig(name, url), Validators())
    if result.status is FetchStatus.FAILED:
        return FeedCheck(url, error=result.error or "the fetch failed")
    try:
        parsed = parse_document(name, result.body, result.headers, url=result.url or url, now=now)
    except MonitorError as e:
        return FeedCheck(url, error=str(e))
    # The title comes from the same guarded parse: hostile bytes are never read twice.
    return FeedCheck(result.moved_to or url, title=parsed.title)


def exportable(settings: Settings) -> list[FeedConfig]:
    """The configured feeds, each URL holding a ${VAR} as the file writes it, not as expanded:
    a secret in a feed's address (an API token) is not copied into an export."""
    try:
        raw = tomllib.loads(settings.path.read_text(encoding="utf-8")).get("feeds", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raw = []
    written = [entry.get("url") if isinstance(entry, dict) else None for entry in raw]
    if len(written) != len(settings.feeds):  # the file changed since it was loaded
        written = [None] * len(settings.feeds)
    return [
        dataclasses.replace(feed, url=url) if isinstance(url, str) and has_env_reference(url) else feed
        for feed, url in zip(settings.feeds, written, strict=True)
    ]


def feed_name(title: str, url: str, taken: Collection[str]) -> str:
    """A config name for a feed: its title as a slug, else its URL's host and path, made unique.

    Names are compared without case, so "Dawn" is not added beside "dawn".
    """
    base = _slug(title) or _slug(_url_words(url)) or "feed"
    used = {name.lower() for name in taken}
    name, n = base, 1
    while name in used:
        n += 1
        suffix = f"-{n}"
        name = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    return name


def feed_address(text: str, base: Path) -> str | None:
    """The address to write for a feed given as `text`: an http(s) or file:// URL as it is, a path
    made absolute against `base` (config.toml would read a relative one against its own folder).
    None when `text` cannot be a feed's address, or holds what config.toml would take for an
    environment variable."""
    text = text.strip()
    if not text or has_env_reference(text):
        return None
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return text if parts.hostname else None
    if scheme == "file":
        return text if parts.path else None
    if len(scheme) > 1:  # another scheme; a single letter is a Windows drive
        return None
    return str((base / text).resolve())


def normalise_url(url: str) -> str:
    """The form in which two addresses of one feed compare equal: scheme and host lowercased,
    default port and fragment dropped, no trailing slash. Paths are compared as written."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url.strip()
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        host = f"{userinfo}@{host}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def configured(feeds: Sequence[FeedConfig], url: str) -> FeedConfig | None:
    """The configured feed at the same address as `url`, if there is one."""
    key = normalise_url(url)
    return next((feed for feed in feeds if normalise_url(feed.url) == key), None)


def append_feeds(
    config_path: Path, feeds: Sequence[NewFeed], env: Mapping[str, str] | None = None
) -> Appended:
    """Append a `[[feeds]]` block per feed to the config file, in one atomic write.

    A feed whose address is already configured, or given twice, is skipped. The file is then
    loaded as the daemon would load it (with `env`, default the process environment); if it
    does not validate, the original bytes are put back and the ConfigErrors raised. Raises
    ConfigErrors too when the file is invalid before anything is added.
    """
    path = config_path.resolve()  # a symlinked config.toml is edited where it lives
    settings = load_settings(path, env)
    known = {normalise_url(feed.url): feed.name for feed in settings.feeds}
    added: list[NewFeed] = []
    skipped: list[Skipped] = []
    for feed in feeds:
        key = normalise_url(feed.url)
        if key in known:
            skipped.append(Skipped(feed, f"already configured as {known[key]}"))
        else:
            known[key] = feed.name
            added.append(feed)
    if not added:
        return Appended((), tuple(skipped))
    original = path.read_bytes()
    separator = b"" if not original or original.endswith(b"\n") else b"\n"
    blocks = "".join(feed_block(feed) for feed in added)
    _write_atomically(path, original + separator + blocks.encode("utf-8"))
    try:
        load_settings(path, env)
    except BaseException:
        _write_atomically(path, original)
        raise
    return Appended(tuple(added), tuple(skipped))


def feed_block(feed: NewFeed) -> str:
    """The TOML text of one feed, preceded by a blank line."""
    lines = ["", "[[feeds]]", f"name = {toml_string(feed.name)}", f"url = {toml_string(feed.url)}"]
    if feed.interval is not None:
        lines.append(f"interval = {toml_string(feed.interval)}")
    if feed.tags:
        lines.append(f"tags = [{', '.join(toml_string(tag) for tag in feed.tags)}]")
    return "\n".join(lines) + "\n"


def toml_string(text: str) -> str:
    """A TOML basic string. TOML forbids raw control characters (DEL included) and accepts only
    Unicode scalar values in escapes, so JSON's escaping (surrogate pairs) is not quite right."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate cannot be written in UTF-8 at all
            out.append("\\uFFFD")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def has_env_reference(text: str) -> bool:
    """Whether config.toml would read part of `text` as an environment variable (`${NAME}`)."""
    return bool(_ENV_REF.search(text))


def _slug(text: str) -> str:
    # casefold first: "Straße" becomes "strasse", where dropping what is not ASCII would give "strae".
    ascii_text = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode("ascii")
    slug = _NON_NAME.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_NAME:
        # Cut at a word's end when there is one: "al-jazeera-breaking-news", not "al-jazeera-brea".
        cut = slug[: MAX_NAME + 1].rfind("-")
        slug = slug[: cut if cut > 0 else MAX_NAME]
    return slug.rstrip("-")


def _url_words(url: str) -> str:
    """The host (without `www.`) and path of a URL; a local file's name without its extension."""
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return parts.hostname.removeprefix("www.") + " " + parts.path
    return Path(parts.path or url).stem


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` by `data` in one step: a crash leaves the old file or the new, never half of one.
    The file keeps its permissions (and its owner, where we are allowed to set it)."""
    stat = path.stat()
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.chmod(stat.st_mode & 0o7777)
        # Not root: the file becomes ours, as any edit we made would make it.
        with contextlib.suppress(PermissionError):
            os.chown(temp, stat.st_uid, stat.st_gid)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
