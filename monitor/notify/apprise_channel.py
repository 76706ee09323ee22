"""Apprise: one channel type for the many services Apprise knows (Discord, Telegram, ntfy, Teams, ...).

An Apprise URL carries its service's tokens in any of its parts, so neither the URL nor a piece of
it ever reaches an error message or the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from monitor import PROJECT_URL
from monitor.config import AppriseOptions, ChannelConfig
from monitor.digest import sections
from monitor.errors import DeliveryError
from monitor.notify.base import deliver_each, outcomes_for
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome, Digest, Severity

# Apprise's deadline for one notification, every URL of the channel together.
NOTIFY_TIMEOUT = 30.0
# Apprise normally stops at its own deadline; this much longer and we stop waiting for its thread.
_GRACE = 5.0
SUMMARY_LIMIT = 600
ERROR_LIMIT = 300
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# Shorter pieces of a URL ("api", "v1") are not tokens, and masking them would garble messages.
_MIN_SECRET = 6
_REFUSED = "the service refused or was unreachable (Apprise cannot tell whether retrying helps); see the log"

_loading: ContextVar[bool] = ContextVar("monitor_apprise_loading", default=False)
_secrets: tuple[str, ...] = ()  # pieces of every configured URL, longest first


def _scrub(text: str) -> str:
    # Longest first, so a whole URL is masked as one, not piece by piece.
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


class _ScrubTokens(logging.Filter):
    """Apprise's debug lines print request URLs, its load errors print the URL that failed, and
    some services' warnings name their endpoint. So debug lines and anything logged while a URL
    loads are dropped, and every other line has each configured URL's pieces masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO or _loading.get():
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call in a plugin: drop it rather than guess
            return False
        record.msg, record.args = _scrub(message), None
        return True


_apprise_log = logging.getLogger(apprise.LOGGER_NAME)
if not any(isinstance(f, _ScrubTokens) for f in _apprise_log.filters):
    _apprise_log.addFilter(_ScrubTokens())
# Apprise's services send through requests, whose urllib3 logs each request line, path and
# token included, at debug level (`monitor -v`). Nothing else here uses urllib3.
if logging.getLogger("urllib3").level == logging.NOTSET:
    logging.getLogger("urllib3").setLevel(logging.INFO)


def _secret_pieces(url: str) -> set[str]:
    """Every piece of `url` that may be a token: services put them in the host, the user, the
    password, path segments or query values."""
    pieces = {url}
    try:
        parts = urlsplit(url)
        pieces |= {parts.netloc, parts.hostname or "", parts.username or "", parts.password or ""}
        pieces.update(parts.path.split("/"))
        pieces.update(value for _, value in parse_qsl(parts.query))
    except ValueError:  # not a URL urllib can split; the whole string is still masked
        pass
    pieces |= {unquote(p) for p in pieces}
    return {p for p in pieces if len(p) >= _MIN_SECRET}


def _remember_secrets(urls: Iterable[str]) -> None:
    global _secrets
    pieces = set(_secrets).union(*(_secret_pieces(u) for u in urls))
    _secrets = tuple(sorted(pieces, key=len, reverse=True))


def _asset() -> apprise.AppriseAsset:
    # Services that show a sender name or link show ours, not Apprise's.
    return apprise.AppriseAsset(app_id="monitor", app_desc="monitor news alerts", app_url=PROJECT_URL)


def _load(url: str, asset: apprise.AppriseAsset) -> apprise.NotifyBase | None:
    """The service `url` describes, or None when Apprise cannot use it; nothing is logged."""
    token = _loading.set(True)
    try:
        with warnings.catch_warnings():
            # Apprise imports its plugins on first use, and one of them imports a deprecated
            # standard module: its maintainers' to fix, and no reason to refuse a channel.
            warnings.simplefilter("ignore", DeprecationWarning)
            return apprise.Apprise.instantiate(url, asset=asset)
    finally:
        _loading.reset(token)


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use `url`, in words that never repeat it; None when it can."""
    if not url:
        return "empty; write the service's Apprise URL (or set the environment variable it names)"
    if _load(url, _asset()) is not None:
        return None
    m = _SCHEME.match(url)
    if m is None:
        return "not an Apprise URL; write it as service://... (for example discord://, tgram://, ntfy://)"
    scheme = m.group(1).lower()
    plugins = apprise.NotificationManager()  # type: ignore[no-untyped-call]
    if scheme not in plugins:
        return (
            f"Apprise has no {scheme}:// service and does not recognise the URL as a service's own "
            "address; see Apprise's list of services for the URL to write"
        )
    if not plugins[scheme].enabled:
        return f"{scheme}:// needs packages not installed here (`apprise --details` lists them)"
    return f"not a valid {scheme}:// URL; compare it with Apprise's page for that service"


def _notify_type(severity: Severity) -> apprise.NotifyType:
    # Services colour or badge by type: the severe alerts stand out, and none reads as "failure".
    return apprise.NotifyType.WARNING if severity >= Severity.HIGH else apprise.NotifyType.INFO


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(alert: Alert) -> str:
    return alert.published.strftime("%Y-%m-%d %H:%M UTC")


def alert_title(alert: Alert) -> str:
    return f"{alert.watchlist_name}: {alert.title}"


def alert_body(alert: Alert) -> str:
    """The alert as plain text; the title goes separately (services without one prepend it)."""
    lines = [f"{alert.outlet or alert.feed} · {_when(alert)} · severity {alert.severity.label}"]
    if alert.link:
        lines.append(alert.link)
    if alert.summary:
        lines.append(_cut(alert.summary, SUMMARY_LIMIT))
    lines.append(f"matched: {', '.join(alert.terms)}")
    note = corroboration_note(alert.sources, alert.outlet or alert.feed, alert.min_sources)
    if note:
        lines.append(note)
    return "\n".join(lines)


def digest_title(digest: Digest) -> str:
    count = len(digest.alerts)
    return f"monitor digest: {count} alert{'s' if count != 1 else ''}, {digest.period_end:%Y-%m-%d %H:%M} UTC"


def digest_body(digest: Digest) -> str:
    blocks = []
    for section in sections(digest.alerts):
        lines = [f"{section.watchlist_name} ({section.total})"]
        for a in section.alerts:
            lines.append(f"- [{a.severity.label.upper()}] {a.title}")
            lines.append(f"  {a.outlet or a.feed} · {_when(a)}" + (f" · {a.link}" if a.link else ""))
            note = corroboration_note(a.sources, a.outlet or a.feed, a.min_sources)
            if note:
                lines.append(f"  {note}")
        if section.more:
            lines.append(f"  and {section.more} more")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _failure(result: apprise.AppriseResult, timeout: float) -> str:
    """What went wrong, from Apprise's per-service results (their log lines are already masked)."""
    if result.status == apprise.AppriseResultStatus.TIMEOUT:
        return f"no answer within {timeout:g} s"
    reasons = []
    for service in result.results:
        if service:
            continue
        said = [e.message for e in service.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        reasons.append(f"{service.name}: {said[-1] if said else service.status.name.lower()}")
    return _cut(_scrub("; ".join([*reasons, _REFUSED])), ERROR_LIMIT)


class AppriseNotifier:
    def __init__(self, channel: ChannelConfig, timeout: float = NOTIFY_TIMEOUT) -> None:
        assert isinstance(channel.options, AppriseOptions)
        self.name = channel.name
        self._timeout = timeout
        _remember_secrets(channel.options.urls)
        asset = _asset()
        self._apprise = apprise.Apprise(asset=asset)
        self._unusable = 0
        for url in channel.options.urls:
            service = _load(url, asset)
            if service is None:
                self._unusable += 1
                continue
            if not any(key == "overflow" for key, _ in parse_qsl(urlsplit(url).query)):
                # Past a service's size limit (a long digest on Discord) a message is sent in
                # parts rather than refused by the service, and then retried forever.
                service.overflow_mode = apprise.OverflowMode.SPLIT
            self._apprise.add(service)

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._send)

    async def _send(self, alert: Alert) -> None:
        await self._notify(alert_title(alert), alert_body(alert), alert.severity)

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        if not digest.alerts:
            return []
        severity = max(a.severity for a in digest.alerts)
        try:
            await self._notify(digest_title(digest), digest_body(digest), severity)
        except DeliveryError as e:
            return outcomes_for(digest.alerts, self.name, e)
        except Exception as e:  # a bug in rendering the digest: retried, never dropped
            error = DeliveryError(self.name, _cut(_scrub(f"unexpected error: {e!r}"), ERROR_LIMIT))
            return outcomes_for(digest.alerts, self.name, error)
        return [DeliveryOutcome(a.id, self.name, True) for a in digest.alerts]

    async def _notify(self, title: str, body: str, severity: Severity) -> None:
        """One notification to every URL of the channel; DeliveryError unless all accepted it.

        Every failure is temporary: Apprise reports only that a service did not accept, not
        whether it ever will.
        """
        if self._unusable or not self._apprise:
            raise DeliveryError(self.name, "a URL of this channel does not load; run `monitor check`")
        call = asyncio.to_thread(
            self._apprise.notify,
            body=body,
            title=title,
            notify_type=_notify_type(severity),
            # Feed text is text: markup in a title must not become a link or a heading.
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self._timeout,
        )
        try:
            result = await asyncio.wait_for(call, self._timeout + _GRACE)
        except TimeoutError:
            raise DeliveryError(self.name, f"no answer within {self._timeout:g} s") from None
        except Exception as e:  # a failure inside Apprise: retried, and described without its URL
            raise DeliveryError(self.name, _cut(_scrub(f"unexpected error: {e!r}"), ERROR_LIMIT)) from e
        if not result:
            raise DeliveryError(self.name, _failure(result, self._timeout))
