"""The one error hierarchy of monitor.

    MonitorError
    ├── ConfigError          config.toml is wrong (file, key path, what to do)
    ├── WatchlistError       a watchlist file is wrong (file, key path)
    ├── OpmlError            an OPML subscription list is unreadable (file, line)
    ├── FetchError           a feed could not be fetched (feed)
    ├── ParseError           a feed's body is not a feed (feed)
    ├── StoreError           the database cannot be used (path)
    └── DeliveryError        a channel refused or failed an alert (channel)
        temporary=True means "retry later", False means "retrying will not help"

Every message is meant to be read by the person who can fix the problem, so it names the
file, key, feed or channel at fault and, where there is one, the fix.
"""

from __future__ import annotations

from pathlib import Path


class MonitorError(Exception):
    """Base class of every error monitor raises on purpose."""


class LocatedError(MonitorError):
    """An error at a key path inside a file: `config.toml: channels.ops.url: <message>`."""

    def __init__(self, file: Path | str, key: str, message: str) -> None:
        self.file = str(file)
        self.key = key
        self.message = message
        location = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(location + message)


class ConfigError(LocatedError):
    """config.toml is missing, unreadable or invalid."""


class WatchlistError(LocatedError):
    """A watchlist file is unreadable or invalid."""


class OpmlError(LocatedError):
    """An OPML file is not well-formed, is not OPML, or carries declarations we refuse."""

    def __init__(self, file: Path | str, line: int | None, message: str) -> None:
        self.line = line
        super().__init__(file, f"line {line}" if line else "", message)


class ConfigErrors(MonitorError):
    """Several configuration or watchlist errors, reported together so they can be fixed at once."""

    def __init__(self, errors: list[LocatedError], partial: object = None) -> None:
        self.errors = errors
        # What could be read despite the errors (a Settings for config.toml), so a checker can
        # go on to validate what depends on it, such as the watchlists.
        self.partial = partial
        super().__init__("\n".join(str(e) for e in errors))


class FetchError(MonitorError):
    """A feed could not be fetched: network error, timeout, HTTP error status, oversize body."""

    def __init__(self, feed: str, message: str, *, status: int | None = None) -> None:
        self.feed = feed
        self.status = status
        super().__init__(message)


class ParseError(MonitorError):
    """A feed's body could not be read as RSS or Atom."""

    def __init__(self, feed: str, message: str) -> None:
        self.feed = feed
        super().__init__(message)


class StoreError(MonitorError):
    """The state database cannot be opened, migrated or written.

    `kind` tells callers which fault it is, so they can react without reading the message:
    "full" (no space left), "readonly" (no write access), "corrupt" (the file is damaged),
    "busy" (another process holds a lock) or "other".
    """

    def __init__(self, message: str, *, kind: str = "other") -> None:
        self.kind = kind
        super().__init__(message)


class DeliveryError(MonitorError):
    """A channel did not accept an alert.

    `temporary` tells the outbox whether trying again later can help (a 503, a timeout) or not
    (a revoked webhook, an unknown recipient).
    """

    def __init__(
        self, channel: str, message: str, *, temporary: bool = True, retry_after: float | None = None
    ) -> None:
        self.channel = channel
        self.temporary = temporary
        # Seconds the receiver asked us to wait (Retry-After on a 429 or 503), if it said.
        self.retry_after = retry_after
        super().__init__(message)
