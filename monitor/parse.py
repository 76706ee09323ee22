"""Feed bytes -> Items, with feedparser (pure: no I/O, the clock passed in)."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.dedup import Identity, content_hash, item_key
from monitor.errors import ParseError
from monitor.polling import feed_ttl
from monitor.text import collapse_space, html_to_text
from monitor.types import Item

MAX_TITLE = 500
MAX_SUMMARY = 4000
MAX_ITEMS = 1000
TRUNCATED = " […]"


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: list[Item]
    warning: str | None  # the feed was malformed but still readable, or cut short
    ttl: float | None = None  # seconds the feed says it stays fresh (RSS <ttl>)


def parse_feed(
    feed: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    now: datetime,
    identity: Identity = Identity.GUID,
) -> tuple[list[Item], str | None]:
    """Items of a feed body, and a warning when the feed was malformed but still readable.

    Raises ParseError when nothing in the body can be read as RSS or Atom.
    """
    parsed = parse_document(feed, body, headers, url=url, now=now, identity=identity)
    return parsed.items, parsed.warning


def parse_document(
    feed: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    now: datetime,
    identity: Identity = Identity.GUID,
) -> ParsedFeed:
    """parse_feed, with what the feed says about itself (its <ttl>)."""
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    # A stream, never a str: given a string feedparser may treat it as a URL or file name to open.
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    except Exception as e:  # feedparser raises on some hostile input (lone surrogates, ...)
        raise ParseError(feed, f"feed could not be parsed: {_describe(e)}") from e
    problem = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        reason = f": {_describe(problem)}" if problem else ""
        raise ParseError(feed, f"not an RSS or Atom feed{reason}")
    entries = parsed.entries[:MAX_ITEMS]
    items = [_item(feed, entry, now, identity) for entry in entries]
    warning = (
        f"malformed feed read leniently: {_describe(problem)}" if parsed.get("bozo") and problem else None
    )
    if len(parsed.entries) > MAX_ITEMS:
        warning = f"feed has {len(parsed.entries)} entries; only the first {MAX_ITEMS} were read"
    return ParsedFeed(items, warning, feed_ttl(parsed.feed.get("ttl")))


def _describe(problem: object) -> str:
    text = collapse_space(str(problem)) or type(problem).__name__
    return text[:200]


def _item(feed: str, entry: Any, now: datetime, identity: Identity) -> Item:
    title = _truncate(html_to_text(entry.get("title", "")), MAX_TITLE)
    summary_html = entry.get("summary") or ""
    if not summary_html and entry.get("content"):
        summary_html = entry.content[0].get("value", "")
    summary = _truncate(html_to_text(summary_html), MAX_SUMMARY)
    link = _safe_link(entry.get("link"))
    # dict.get: feedparser's own .get maps updated <-> published with a DeprecationWarning.
    updated = _datetime(dict.get(entry, "updated_parsed"))
    published = _datetime(dict.get(entry, "published_parsed")) or updated or now
    return Item(
        feed=feed,
        key=item_key(entry.get("id"), link, title, summary, identity),
        title=title or "(untitled)",
        summary=summary,
        link=link,
        published=published,
        updated=updated,
        author=collapse_space(entry.get("author", "")) or None,
        tags=tuple(t for t in (collapse_space(tag.get("term") or "") for tag in entry.get("tags", [])) if t),
        fingerprint=content_hash(title, summary),
        outlet=_outlet(entry),
    )


def _outlet(entry: Any) -> str | None:
    """The publisher an aggregator names in <source> (Google News does), so its items count apart."""
    source = entry.get("source")
    title = collapse_space(source.get("title") or "") if isinstance(source, dict) else ""
    return title[:100] or None


def _safe_link(link: object) -> str | None:
    """Only http(s) links reach an alert: javascript:, data: and file: links are dropped."""
    if not isinstance(link, str):
        return None
    link = link.strip()
    return link if link.lower().startswith(("http://", "https://")) else None


def _datetime(value: time.struct_time | None) -> datetime | None:
    # feedparser normalises dates to UTC struct_time; anything it cannot read is None.
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED
