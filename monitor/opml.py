"""OPML subscription lists: read the feeds out of one, write the configured feeds into one (pure).

Readers export their subscriptions as OPML: folders are outlines without an `xmlUrl`, feeds are
outlines with one. Folder names and `category` attributes become tags.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from monitor.config import FeedConfig
from monitor.errors import OpmlError

_TAG_JUNK = re.compile(r"[^\w]+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    title: str
    url: str
    tags: tuple[str, ...] = ()
    html_url: str | None = None  # the site the feed belongs to, when the file says


def parse_opml(data: bytes, source: str) -> list[OpmlFeed]:
    """Every outline with an `xmlUrl`, at any depth, in document order.

    `source` names the file in error messages. Raises OpmlError when the bytes are not
    well-formed XML, not OPML, or declare a DOCTYPE or entities.
    """
    root = _parse_xml(data, source)
    if _local(root.tag) != "opml":
        raise OpmlError(source, None, f"not an OPML file: the root element is <{root.tag}>, not <opml>")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError(source, None, "not an OPML file: there is no <body> element")
    return list(_feeds(body, ()))


def export_opml(feeds: Sequence[FeedConfig], title: str) -> str:
    """An OPML 2.0 document with one flat outline per feed; tags go in `category`.

    A tag containing ',' or '/' is split into several when the file is read back: those are the
    separators of OPML's category syntax.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{escape(_xml_chars(title))}</title>",
        "  </head>",
        "  <body>",
    ]
    for feed in feeds:
        attrs = {"text": feed.name, "title": feed.name, "type": "rss", "xmlUrl": feed.url}
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        # quoteattr also escapes tabs and newlines, which a parser would otherwise read as spaces.
        rendered = " ".join(f"{k}={quoteattr(_xml_chars(v))}" for k, v in attrs.items())
        lines.append(f"    <outline {rendered}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _xml_chars(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry at all, even escaped."""
    return _NOT_XML.sub("", text)


def _parse_xml(data: bytes, source: str) -> ET.Element:
    """Build the element tree with expat, refusing DOCTYPE and ENTITY declarations.

    An OPML file has no use for either, and refusing the DOCTYPE as soon as it starts means no
    entity is ever declared, so none can be expanded (billion laughs) or fetched (external ones).
    """
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()

    def refuse(what: str) -> None:
        raise OpmlError(
            source, parser.CurrentLineNumber, f"{what} declarations are not allowed in an OPML file"
        )

    def doctype(*_: object) -> None:
        refuse("DOCTYPE")

    def entity(*_: object) -> None:
        refuse("ENTITY")

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        builder.end(tag)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        problem = f"not well-formed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})"
        raise OpmlError(source, e.lineno, problem) from None
    return builder.close()


def _feeds(parent: ET.Element, folders: tuple[str, ...]) -> Iterator[OpmlFeed]:
    for outline in parent:
        if _local(outline.tag) != "outline":
            continue
        attrs = _attributes(outline.attrib)
        label = (attrs.get("text") or attrs.get("title") or "").strip()
        url = (attrs.get("xmlurl") or "").strip()
        if url:
            tags = _unique([*folders, *_categories(attrs.get("category", ""))])
            yield OpmlFeed(title=label, url=url, tags=tags, html_url=attrs.get("htmlurl", "").strip() or None)
            nested = folders
        else:
            # An outline without a feed is a folder: its name tags every feed inside it.
            tag = slug_tag(label)
            nested = (*folders, tag) if tag else folders
        yield from _feeds(outline, nested)


def _attributes(attrib: Mapping[str, str]) -> dict[str, str]:
    """Attribute names lowercased: exporters write `xmlUrl`, `xmlurl` and `XMLURL`."""
    return {_local(name).lower(): value for name, value in attrib.items()}


def _categories(value: str) -> list[str]:
    """OPML's `category`: comma-separated, each a tag or a slash-delimited path ("/news/world")."""
    return [tag for part in value.split(",") for step in part.split("/") if (tag := slug_tag(step))]


def slug_tag(text: str) -> str:
    """A tag from a folder or category name: lowercase words joined by '-' ("World News" -> "world-news")."""
    return _TAG_JUNK.sub("-", text.casefold()).replace("_", "-").strip("-")


def _unique(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))


def _local(name: str) -> str:
    """A name without its namespace, in either form expat or ElementTree may give it."""
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
