"""Slack incoming webhooks, with Block Kit messages: one per alert, or a digest in a few numbered ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from monitor.config import ChannelConfig, SlackOptions
from monitor.digest import DigestSection, sections
from monitor.errors import DeliveryError
from monitor.notify.base import deliver_each, http_failure, outcomes_for
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome, Digest

# Block Kit's limits: Slack answers `invalid_blocks` to a message past any of them.
HEADER_LIMIT = 150  # a header block's plain text
TEXT_LIMIT = 3000  # a section's or context element's text, and the top-level `text`
BLOCK_LIMIT = 50  # blocks in one message
# Slack also refuses a message whose blocks carry about 13,000 characters in all
# (`msg_blocks_too_long`), though no such limit is documented: a digest message stays under this.
MESSAGE_BUDGET = 12_000
SUMMARY_LIMIT = 600
DIGEST_TITLE_LIMIT = 300
OUTLET_LIMIT = 100
NOTE_LIMIT = 300
# A longer URL is shown as no link at all, so a title and its link always fit in one section.
URL_LIMIT = 2000
# Slack allows about one message per second per incoming webhook, and answers 429 past short bursts.
MIN_INTERVAL = 1.0

# Slack answers these when the webhook itself is dead: retrying cannot help.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_payload",
        "posting_to_general_channel_denied",
    }
)
# Slack could not read the blocks: the same content as plain text may still get through.
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})
LINK_SCHEMES = frozenset({"http", "https"})
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"

Block = dict[str, Any]
Message = dict[str, Any]  # a webhook payload: `text`, and `blocks` unless it is the plain fallback
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def escape(text: str) -> str:
    """Escape feed text for mrkdwn, so `<!channel>` or `<url|label>` in a title stays literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape_cut(text: str, limit: int) -> str:
    """`escape(text)` in at most `limit` characters, cut between entities, never inside `&amp;`."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    used = 0
    for char in text:
        piece = escape(char)
        if used + len(piece) > limit - 1:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + "…"


def slack_url(url: str | None) -> str | None:
    """The URL as it may stand inside `<url|label>`, or None when it must not be a link at all.

    Only http and https link anywhere: a `javascript:`, `data:` or `file:` link from a feed is
    dropped. In `<url|label>` a `|` would end the URL and a `>` the link, so they (and `<` and
    whitespace) are percent-encoded; `&` is escaped like any mrkdwn text.
    """
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.netloc:
        return None
    encoded = "".join(
        quote(c, safe="") if c in "|<>" or c.isspace() or not c.isprintable() else c for c in url
    ).replace("&", "&amp;")
    return encoded if len(encoded) <= URL_LIMIT else None


def _linked(title: str, url: str | None, limit: int, title_limit: int = TEXT_LIMIT) -> str:
    """The escaped title (at most `title_limit` characters), linked to the URL when it is a safe
    one; at most `limit` characters in all."""
    link = slack_url(url)
    if link is None:
        return _escape_cut(title, min(limit, title_limit))
    return f"<{link}|{_escape_cut(title, min(limit - len(link) - 3, title_limit))}>"


def _mrkdwn(text: str) -> Block:
    # verbatim: Slack does not turn bare URLs, #channels or @names in feed text into links and
    # mentions; our own `<url|label>` links still work.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _header(text: str) -> Block:
    # plain_text is never parsed as markup, so it is cut but not escaped.
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, HEADER_LIMIT)}}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _outlet(alert: Alert) -> str:
    return alert.outlet or alert.feed


def slack_message(alert: Alert) -> Message:
    """The Block Kit message for one alert: watchlist header, linked title, summary, context line."""
    blocks = [
        _header(alert.watchlist_name),
        _section(f"*{_linked(alert.title, alert.link, TEXT_LIMIT - 2)}*"),
    ]
    if alert.summary:
        blocks.append(_section(_escape_cut(alert.summary, SUMMARY_LIMIT)))
    context = (
        f"{_outlet(alert)} · {alert.published.strftime(TIME_FORMAT)} · severity {alert.severity.label}"
        f" · matched: {', '.join(alert.terms)}"
    )
    note = corroboration_note(alert.sources, _outlet(alert), alert.min_sources)
    if note:
        context += f" · {note}"
    blocks.append(_context(_escape_cut(context, TEXT_LIMIT)))
    # `text` is the notification fallback, and Slack reads it as mrkdwn too: escaped like the blocks.
    return {"text": _escape_cut(f"{alert.watchlist_name}: {alert.title}", TEXT_LIMIT), "blocks": blocks}


def _digest_line(alert: Alert) -> Block:
    """One alert of a digest, on one line: linked title, outlet, time, who else reported it."""
    parts = [
        "• " + _linked(alert.title, alert.link, URL_LIMIT + DIGEST_TITLE_LIMIT + 3, DIGEST_TITLE_LIMIT),
        _escape_cut(_outlet(alert), OUTLET_LIMIT),
        alert.published.strftime(TIME_FORMAT),
    ]
    note = corroboration_note(alert.sources, _outlet(alert), alert.min_sources)
    if note:
        parts.append(_escape_cut(note, NOTE_LIMIT))
    return _section(" · ".join(parts))


def _section_title(section: DigestSection, continued: bool = False) -> Block:
    severity = max(a.severity for a in section.alerts).label
    count = f"{section.total} alert" + ("" if section.total == 1 else "s")
    name = _escape_cut(section.watchlist_name, HEADER_LIMIT)
    return _section(f"*{name}* · {count} · severity {severity}" + (" (continued)" if continued else ""))


def _block_size(block: Block) -> int:
    """Characters of text a block carries, as Slack counts towards a message's size."""
    if block["type"] == "context":
        return sum(len(e["text"]) for e in block["elements"])
    return len(block["text"]["text"])


class _Pages:
    """Blocks laid out on messages of at most BLOCK_LIMIT blocks (one kept for the header) and
    MESSAGE_BUDGET characters."""

    def __init__(self) -> None:
        self.pages: list[list[Block]] = []
        self._page: list[Block] = []
        self._size = HEADER_LIMIT

    def fits(self, *blocks: Block) -> bool:
        size = self._size + sum(_block_size(b) for b in blocks)
        return len(self._page) + len(blocks) <= BLOCK_LIMIT - 1 and size <= MESSAGE_BUDGET

    def add(self, *blocks: Block) -> None:
        self._page.extend(blocks)
        self._size += sum(_block_size(b) for b in blocks)

    def turn(self) -> None:
        if self._page:
            self.pages.append(self._page)
        self._page = []
        self._size = HEADER_LIMIT


def slack_digest_messages(digest: Digest) -> list[Message]:
    """A digest as Block Kit messages, in order, each within Slack's limits: numbered "(1/3)"...
    when it takes several. Empty when the digest has no alerts."""
    grouped = sections(digest.alerts)
    pages = _Pages()
    for section in grouped:
        body = [_digest_line(a) for a in section.alerts]
        if section.more:
            body.append(_context(f"and {section.more} more"))
        first, *rest = body
        # A watchlist's title is never the last block of a message: it goes with its first alert.
        if not pages.fits(_section_title(section), first):
            pages.turn()
        pages.add(_section_title(section), first)
        for block in rest:
            if not pages.fits(block):
                pages.turn()
                pages.add(_section_title(section, continued=True))
            pages.add(block)
    pages.turn()

    count = len(digest.alerts)
    title = f"Digest: {count} alert" + ("" if count == 1 else "s") + f", {digest.period_end:{TIME_FORMAT}}"
    names = ", ".join(f"{s.watchlist_name} ({s.total})" for s in grouped)
    messages = []
    for number, blocks in enumerate(pages.pages, start=1):
        numbered = title + (f" ({number}/{len(pages.pages)})" if len(pages.pages) > 1 else "")
        messages.append(
            {
                "text": _escape_cut(f"{numbered}: {names}", TEXT_LIMIT),
                "blocks": [_header(numbered), *blocks],
            }
        )
    return messages


def _block_lines(block: Block) -> Iterable[str]:
    if block["type"] == "header":
        yield "*" + escape(block["text"]["text"]) + "*"
    elif block["type"] == "context":
        yield " · ".join(e["text"] for e in block["elements"])
    elif "text" in block:
        yield block["text"]["text"]


def plain_message(message: Message) -> Message:
    """The message without blocks: their texts as mrkdwn lines in `text`, for a Slack that refused
    the blocks. Whole lines are kept while they fit in TEXT_LIMIT, then a line says how many are left."""
    lines = [line for block in message.get("blocks", []) for line in _block_lines(block)]
    kept: list[str] = []
    size = 0
    for number, line in enumerate(lines):
        left = len(lines) - number
        room = TEXT_LIMIT if left == 1 else TEXT_LIMIT - 40  # leaves room for the "more lines" line
        if size + len(line) > room:
            kept.append(f"… ({left} more lines)")
            break
        kept.append(line)
        size += len(line) + 1
    return {"text": "\n".join(kept) or message["text"]}


class WebhookPacer:
    """Spaces posts to each webhook URL at least `interval` seconds apart.

    Each caller reserves the next free slot for its URL before it waits, with no await in
    between, so concurrent callers (several notifiers sharing a URL, a digest and an alert) get
    distinct slots instead of all waking at once.
    """

    def __init__(
        self, interval: float = MIN_INTERVAL, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, url: str) -> None:
        now = self._clock()
        slot = max(now, self._next.get(url, now))
        self._next[url] = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)


# Shared by every SlackNotifier, so two channels posting to one webhook are spaced too.
PACER = WebhookPacer()


class SlackNotifier:
    def __init__(
        self, channel: ChannelConfig, client: httpx.AsyncClient, pacer: WebhookPacer | None = None
    ) -> None:
        assert isinstance(channel.options, SlackOptions)
        self.name = channel.name
        self._url = channel.options.webhook_url
        self._client = client
        self._pacer = pacer or PACER

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._send)

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        messages = slack_digest_messages(digest)
        sent = 0
        try:
            for message in messages:
                await self._post(message)
                sent += 1
        except DeliveryError as e:
            # The digest fails as a whole and a retry starts again from message 1, so the messages
            # before the failed one are posted again: at least once, never lost.
            where = f"message {sent + 1}/{len(messages)}: " if len(messages) > 1 else ""
            error = DeliveryError(self.name, where + str(e), temporary=e.temporary, retry_after=e.retry_after)
            return outcomes_for(digest.alerts, self.name, error)
        except Exception as e:  # a bug must cost a retry, not the digest
            error = self._scrubbed(DeliveryError(self.name, f"unexpected error: {e!r}"))
            return outcomes_for(digest.alerts, self.name, error)
        return [DeliveryOutcome(a.id, self.name, True) for a in digest.alerts]

    async def _send(self, alert: Alert) -> None:
        await self._post(slack_message(alert))

    async def _post(self, message: Message) -> None:
        """Post a message; if Slack cannot read its blocks, post it once more as plain text."""
        response = await self._post_once(message)
        if response.status_code == 200:
            return
        code = response.text.strip()
        if code not in BLOCK_ERRORS:
            raise self._failure(response)
        fallback = await self._post_once(plain_message(message))
        if fallback.status_code == 200:
            return
        error = self._failure(fallback)
        raise DeliveryError(
            self.name,
            f"Slack refused the blocks ({code}), then the plain-text message: {error}",
            temporary=error.temporary,
            retry_after=error.retry_after,
        )

    async def _post_once(self, message: Message) -> httpx.Response:
        await self._pacer.wait(self._url)
        try:
            return await self._client.post(self._url, json=message)
        except httpx.HTTPError as e:
            raise self._scrubbed(http_failure(self.name, e)) from e

    def _failure(self, response: httpx.Response) -> DeliveryError:
        code = response.text.strip()
        if code in PERMANENT_ERRORS:
            return DeliveryError(self.name, f"Slack refused the webhook: {code}", temporary=False)
        return self._scrubbed(http_failure(self.name, response))

    def _scrubbed(self, error: DeliveryError) -> DeliveryError:
        """The error without the webhook URL or its path: they are the secret that lets anyone post."""
        message = str(error)
        path = urlsplit(self._url).path
        for secret in (self._url, path if len(path) > 1 else ""):
            if secret:
                message = message.replace(secret, "<webhook URL>")
        if message == str(error):
            return error
        return DeliveryError(self.name, message, temporary=error.temporary, retry_after=error.retry_after)
