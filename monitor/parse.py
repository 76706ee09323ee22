"""Feed bytes -> Items, with feedparser (pure: no I/O, the clock passed in)."""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import feedparser
import feedparser.api
import feedparser.mixin

from monitor.dedup import Identity, canonical_link, content_hash, item_key
from monitor.errors import ParseError
from monitor.polling import feed_ttl
from monitor.text import collapse_space, html_to_text
from monitor.types import Item
from monitor.xmlguard import UnsafeXML, prepare

MAX_TITLE = 500
MAX_SUMMARY = 4000
MAX_ITEMS = 1000
MAX_AUTHOR = 200
MAX_TAGS = 50
MAX_TAG = 100
# A link or identity longer than this is no real one; a link is dropped, a key is hashed.
MAX_LINK = 4096
MAX_KEY = 1024
# Markup past this many characters cannot change a text cut at its limit much, and turning
# megabytes of it into text costs seconds: it is cut first (and the text marked as cut).
MARKUP_FACTOR = 16
TRUNCATED = " […]"
SAX_DRIVER = "monitor.sax"  # see monitor/sax.py
# Browsers drop tabs and newlines anywhere in a URL ("java\tscript:" is "javascript:") and
# leading or trailing controls and spaces; what is left must be http(s) with a host.
_URL_IGNORED = re.compile(r"[\t\n\r]|^[\x00-\x20\x7f-\x9f\s]+|[\x00-\x20\x7f-\x9f\s]+$")
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\s<>\"`{}|\\^]")


def _tune_feedparser() -> None:
    """Two changes to how feedparser works, neither to what it returns.

    - At every element it joins the document's base URI with itself, or with the element's
      xml:base (`make_safe_absolute_uri`, two `urlparse`s and a `urlunparse`): a sixth of its
      time on a feed, for an answer that changes only at an xml:base. The function is pure (str
      in, str out), so its answers are kept: all but the first element of a feed reuse one.
    - It asks `xml.sax` for libxml2's driver first, an import that fails (a quarter of a
      millisecond a feed searching sys.path), then takes expat's. It is given expat's with
      buffered text instead (`monitor.sax`).
    """
    join = getattr(feedparser.mixin, "make_safe_absolute_uri", None)
    if callable(join) and not hasattr(join, "cache_info"):
        feedparser.mixin.make_safe_absolute_uri = functools.lru_cache(maxsize=64)(join)
    drivers = getattr(feedparser.api, "PREFERRED_XML_PARSERS", None)
    if isinstance(drivers, list):
        drivers[:] = [SAX_DRIVER]


_tune_feedparser()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: list[Item]
    warning: str | None  # the feed was malformed but still readable, or cut short
    ttl: float | None = None  # seconds the feed says it stays fresh (RSS <ttl>)
    title: str | None = None  # the feed's own title, as plain text


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
    # Before feedparser (expat, and its loose parser) sees anything: entity declarations defused,
    # the charset settled, what would cost it unbounded time cut (monitor/xmlguard.py). The bytes
    # keep their encoding.
    try:
        prepared = prepare(body, response_headers, MAX_ITEMS)
    except UnsafeXML as e:
        raise ParseError(feed, f"refused: {e}") from e
    # A stream, never a str: given a string feedparser may treat it as a URL or file name to open.
    # Items keep plain text only (html_to_text), so feedparser's HTML sanitizer and its rewriting
    # of links inside HTML would be work thrown away: two thirds of its time on a large summary.
    try:
        parsed = feedparser.parse(
            io.BytesIO(prepared.body),
            response_headers=prepared.headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as e:  # feedparser raises on some hostile input (lone surrogates, ...)
        raise ParseError(feed, f"feed could not be parsed: {_describe(e)}") from e
    problem = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        reason = f": {_describe(problem)}" if problem else ""
        raise ParseError(feed, f"not an RSS or Atom feed{reason}")
    entries = parsed.entries[:MAX_ITEMS]
    items = _distinct_keys([_item(feed, entry, now, identity) for entry in entries])
    warnings = list(prepared.notes)
    if parsed.get("bozo") and problem:
        warnings.insert(0, f"malformed feed read leniently: {_describe(problem)}")
    if len(parsed.entries) > MAX_ITEMS:
        warnings.insert(0, f"feed has {len(parsed.entries)} entries; only the first {MAX_ITEMS} were read")
    title = _text(parsed.feed.get("title"), MAX_TITLE) or None
    return ParsedFeed(items, "; ".join(warnings) or None, feed_ttl(parsed.feed.get("ttl")), title)


def _describe(problem: object) -> str:
    text = collapse_space(str(problem)) or type(problem).__name__
    return text[:200]


def _item(feed: str, entry: Any, now: datetime, identity: Identity) -> Item:
    title = _text(entry.get("title"), MAX_TITLE)
    summary_html = entry.get("summary") or ""
    if not summary_html and entry.get("content"):
        summary_html = entry.content[0].get("value", "")
    summary = _text(summary_html, MAX_SUMMARY)
    link = _safe_link(entry.get("link"))
    # dict.get: feedparser's own .get maps updated <-> published with a DeprecationWarning.
    updated = _datetime(dict.get(entry, "updated_parsed"))
    published = _datetime(dict.get(entry, "published_parsed")) or updated or now
    guid = entry.get("id")
    key = item_key(guid if isinstance(guid, str) else None, link, title, summary, identity)
    if len(key) > MAX_KEY:
        key = "sha256:" + content_hash(key)
    tags = (_plain(tag.get("term"), MAX_TAG) for tag in entry.get("tags", [])[:MAX_TAGS])
    return Item(
        feed=feed,
        key=key,
        title=title or "(untitled)",
        summary=summary,
        link=link,
        published=published,
        updated=updated,
        author=_plain(entry.get("author"), MAX_AUTHOR) or None,
        tags=tuple(t for t in tags if t),
        fingerprint=content_hash(title, summary),
        outlet=_outlet(entry),
    )


def _text(markup: object, limit: int) -> str:
    """Visible text of feed markup, at most `limit` characters; marked when cut."""
    if not isinstance(markup, str):
        return ""
    cap = limit * MARKUP_FACTOR
    if len(markup) <= cap:
        return _truncate(_visible(markup), limit)
    return _visible(markup[:cap])[: limit - len(TRUNCATED)] + TRUNCATED


def _visible(markup: str) -> str:
    # The standard library's HTMLParser raises AssertionError on a malformed marked section
    # (`<![ `, `<![CDAT\x00A[`, Python 3.11 to 3.13): such text is shown as text instead.
    try:
        return html_to_text(markup)
    except AssertionError:
        return html_to_text(markup.replace("<![", "&lt;!["))


def _plain(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return _truncate(collapse_space(value[: limit * MARKUP_FACTOR]), limit)


def _distinct_keys(items: list[Item]) -> list[Item]:
    """Entries that share a key but differ are told apart: a feed reusing one guid for several
    entries (a CMS bug) keeps them all. Each gets the key plus its canonical link, or plus a hash
    of its text when the links do not tell them apart; the same bytes always give the same keys.
    An entry listed twice with the same text keeps one key (the pipeline keeps one of them)."""
    if len({item.key for item in items}) == len(items):
        return items  # no key is shared (the usual case), so none clashes
    texts: dict[str, dict[str, set[str | None]]] = defaultdict(lambda: defaultdict(set))
    for item in items:
        texts[item.key][item.fingerprint].add(item.link and canonical_link(item.link))
    clashing = {key for key, seen in texts.items() if len(seen) > 1}
    if not clashing:
        return items
    result = []
    for item in items:
        if item.key in clashing:
            # The link tells the entry apart when each text under this key has its own one link.
            links = [next(iter(found)) for found in texts[item.key].values() if len(found) == 1]
            own = item.link and canonical_link(item.link)
            by_link = own is not None and len(links) == len(texts[item.key]) and links.count(own) == 1
            key = f"{item.key}#{own if by_link else 'sha256:' + item.fingerprint}"
            if len(key) > MAX_KEY:
                key = "sha256:" + content_hash(key)
            item = dataclasses.replace(item, key=key)
        result.append(item)
    return result


def _outlet(entry: Any) -> str | None:
    """The publisher an aggregator names in <source> (Google News does), so its items count apart."""
    source = entry.get("source")
    title = collapse_space(source.get("title") or "") if isinstance(source, dict) else ""
    return title[:100] or None


def _safe_link(link: object) -> str | None:
    """Only http(s) links with a host reach an alert: javascript:, data:, file: and the rest are
    dropped, however they are spelled (feedparser has already decoded entities such as
    `&#106;avascript:`). Spaces, quotes and angle brackets left inside are percent-encoded."""
    if not isinstance(link, str) or len(link) > MAX_LINK:
        return None
    link = _URL_IGNORED.sub("", link)
    if not link.lower().startswith(("http://", "https://")):
        return None
    try:
        if not urlsplit(link).hostname:
            return None
    except ValueError:
        return None
    return _URL_UNSAFE.sub(lambda c: quote(c.group(), safe=""), link)


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
