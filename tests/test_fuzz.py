"""Fuzzing parse, normalise and match with generated hostile feeds.

The feeds are built, not random noise: RSS, Atom and RDF skeletons whose titles, summaries,
links and guids mix news text that the shipped watchlists match, HTML, entity and character
references (good, undefined, to no character), odd Unicode and control characters; a DOCTYPE
from a set of attacks or with random declarations; an encoding declaration and a Content-Type
charset that may contradict the bytes; random bytes spliced in anywhere. The properties: nothing
but ParseError escapes; every item has an http(s) link or none, a title and summary within their
limits, no control characters and no lone surrogates; normalising and matching never fail.

CI runs the short `ci` settings (200 feeds). `make fuzz` sets MONITOR_FUZZ_SECONDS=600: the
property then runs batch after batch, each with fresh random seeds, until the time is up, and
prints how many feeds it tried.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse import MAX_ITEMS, MAX_SUMMARY, MAX_TITLE, parse_document
from monitor.text import normalise
from monitor.watchlists import Matcher
from monitor.watchlists.loader import load_watchlists

FUZZ_SECONDS = float(os.environ.get("MONITOR_FUZZ_SECONDS") or 0)
NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).parent.parent
# What collapse_space leaves out of text: C0 and C1 controls, and every line break.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CI = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

NEWS = [
    "Jaish al-Adl", "Sistan and Baluchestan", "سیستان و بلوچستان", "Rask", "Zahedan", "Pakistan",
    "Iran", "ambassador returns to Tehran", "王毅", "Wang Yi", "border guards killed", "Islamabad",
    "Sīstān–Baluchestān", "IRGC", "strike", "envoy", "'s", "l'Iran",
]  # fmt: skip
MARKUP = [
    "<b>", "</b>", "<p>", "<br/>", "<script>alert(1)</script>", "<style>x{}</style>",
    "<a href='javascript:alert(1)'>x</a>", "<img src=x onerror=alert(1)>", "<![CDATA[", "]]>",
    "<!--", "-->", "<?pi x?>", "<", ">", '"', "'", "<!DOCTYPE x>", "<!ENTITY a 'x'>", "</title>",
    "<title>", "<item>", "</item>", "<entry>", "<x:y xmlns:x='urn:x'>", "</x:y>",
]  # fmt: skip
REFERENCES = [
    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&eacute;", "&a;", "&b;", "&lol2;",
    "&xxe;", "&undefined;", "&", "&#", "&#x;", "&#38;", "&#38;#38;", "&#0;", "&#xD800;",
    "&#55296;", "&#x110000;", "&#147;", "&#x202E;", "&#65;", "&amp;lt;script&amp;gt;",
]  # fmt: skip
ODD = [
    "\u202e", "\u2028", "\u2029", "\ufeff", "\x00", "\x1b[31m", "\r\n", "\t", "e\u0301", "😀",
    "\u200b", "\u200c", "\x85", "\x93\x94", "\x80", "\ufffd", "\U0001d400", "ي", "ك",
]  # fmt: skip
LINKS = [
    "https://news.example/a?utm_source=x&amp;b=1", "http://news.example/", "/relative/path",
    "javascript:alert(1)", " JaVaScRiPt:alert(1)", "java&#9;script:alert(1)", "&#106;avascript:x",
    "data:text/html,x", "file:///etc/passwd", "vbscript:x", "//evil.example/x", "http://",
    "https://[::1", "https://a b.example/<x>", "feed:https://x.example/", "https://x.example/" + "a" * 300,
]  # fmt: skip
DOCTYPES = [
    "",
    '<!DOCTYPE rss [<!ENTITY a "A"><!ENTITY b "&a;&a;">]>',
    '<!DOCTYPE rss [<!ENTITY lol0 "lol"><!ENTITY lol1 "&lol0;&lol0;&lol0;"><!ENTITY lol2 "&lol1;&lol1;">]>',
    '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',
    '<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/rss.dtd">',
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://x/rss-0.91.dtd">',
    '<!DOCTYPE rss [<!ENTITY a "' + "x" * 5000 + '">]>',
    "<!DOCTYPE rss [<!ELEMENT rss ANY><!ATTLIST item x CDATA 'y'><!-- c --><?pi?>]>",
    "<!DOCTYPE rss [",
]
ENCODINGS = [
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "iso-8859-1", "windows-1252", "cp500",
    "shift_jis", "koi8-r", "utf-7", "ascii", "gb18030",
]  # fmt: skip
DECLARED = [*ENCODINGS, "no-such-charset", "utf-8; x", ""]
CONTENT_TYPES = [
    "application/rss+xml",
    "application/atom+xml",
    "application/xml",
    "text/xml",
    "text/html",
    "",
]

pieces = st.one_of(
    st.sampled_from(NEWS),
    st.sampled_from(MARKUP),
    st.sampled_from(REFERENCES),
    st.sampled_from(ODD),
    st.text(max_size=12),
)
texts = st.lists(pieces, max_size=12).map(" ".join)
declarations = st.builds(
    "<!ENTITY {}{} {}>".format,
    st.sampled_from(["", "% "]),
    st.sampled_from(["a", "b", "lol2", "xxe", "nbsp"]),
    st.one_of(
        texts.map(lambda t: '"' + t.replace('"', "") + '"'),
        st.sampled_from(['SYSTEM "file:///etc/hostname"', 'PUBLIC "x" "http://127.0.0.1:9/"']),
    ),
)
doctypes = st.one_of(
    st.sampled_from(DOCTYPES),
    st.lists(declarations, max_size=4).map(lambda ds: "<!DOCTYPE rss [" + "".join(ds) + "]>"),
)


@st.composite
def entries(draw: st.DrawFn, form: str) -> str:
    title, summary, link, guid = draw(texts), draw(texts), draw(st.sampled_from(LINKS)), draw(texts)
    if form == "atom":
        return (
            f"<entry><title type='html'>{title}</title><summary>{summary}</summary>"
            f"<link rel='alternate' href='{link}'/><id>{guid}</id><author><name>{draw(texts)}</name></author>"
            "<updated>2024-01-18T09:00:00Z</updated></entry>"
        )
    return (
        f"<item><title>{title}</title><description>{summary}</description><link>{link}</link>"
        f"<guid>{guid}</guid><author>{draw(texts)}</author><category>{draw(texts)}</category>"
        "<pubDate>Mon, 29 Jan 2024 10:00:00 GMT</pubDate></item>"
    )


@st.composite
def hostile_feeds(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """Feed bytes and response headers."""
    if draw(st.integers(0, 19)) == 0:  # now and then, bytes with no structure at all
        return draw(st.binary(max_size=300)), {"content-type": draw(st.sampled_from(CONTENT_TYPES))}
    form = draw(st.sampled_from(["rss", "atom", "rdf"]))
    items = "".join(draw(st.lists(entries(form), max_size=4)))
    if form == "atom":
        document = f"<feed xmlns='http://www.w3.org/2005/Atom'><title>{draw(texts)}</title>{items}</feed>"
    elif form == "rdf":
        document = (
            "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' xmlns='http://purl.org/rss/1.0/'>"
            f"<channel><title>{draw(texts)}</title></channel>{items}</rdf:RDF>"
        )
    else:
        document = f"<rss version='2.0'><channel><title>{draw(texts)}</title>{items}</channel></rss>"
    declared = draw(st.sampled_from(DECLARED))
    prolog = f'<?xml version="1.0" encoding="{declared}"?>\n' if declared else ""
    text = prolog + draw(doctypes) + "\n" + document
    encoding = draw(st.sampled_from(ENCODINGS))
    body = text.encode(encoding, "xmlcharrefreplace" if encoding != "utf-7" else "strict")
    for _ in range(draw(st.integers(0, 3))):  # random bytes spliced in anywhere
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]
    media = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(DECLARED))
    headers = {"content-type": f"{media}; charset={charset}" if charset and media else media}
    return body, headers


MATCHER = Matcher(load_watchlists(ROOT / "watchlists")[0])


def check(feed: tuple[bytes, dict[str, str]]) -> None:
    """The properties every feed must keep, however broken or hostile."""
    body, headers = feed
    try:
        parsed = parse_document("fuzz", body, headers, url="https://feeds.example/world.xml", now=NOW)
    except ParseError:
        return
    assert len(parsed.items) <= MAX_ITEMS
    for item in parsed.items:
        assert item.link is None or item.link.startswith(("http://", "https://")), item.link
        assert len(item.title) <= MAX_TITLE
        assert len(item.summary) <= MAX_SUMMARY
        for text in (item.title, item.summary, item.author or "", *item.tags, item.outlet or ""):
            assert not FORBIDDEN.search(text), text
        for text in (item.title, item.summary, item.key, item.link or "", item.author or "", *item.tags):
            text.encode("utf-8")  # no lone surrogate: the store and every channel write UTF-8
        normalise(item.title)
        normalise(item.summary)
        MATCHER.match(item)


@CI
@given(hostile_feeds())
def test_generated_hostile_feeds_never_break_parse_normalise_or_match(
    feed: tuple[bytes, dict[str, str]],
) -> None:
    """Generated feeds: only ParseError escapes, and every item is sanitised and bounded."""
    check(feed)


@pytest.mark.skipif(not FUZZ_SECONDS, reason="a long run: `make fuzz` sets MONITOR_FUZZ_SECONDS")
def test_fuzz_for_the_time_given() -> None:
    """The same property, batch after batch with fresh seeds, for MONITOR_FUZZ_SECONDS."""
    deadline = time.monotonic() + FUZZ_SECONDS
    tried = 0

    @settings(CI, max_examples=500)
    @given(hostile_feeds())
    def batch(feed: tuple[bytes, dict[str, str]]) -> None:
        nonlocal tried
        tried += 1
        check(feed)

    batches = 0
    while time.monotonic() < deadline:
        batch()
        batches += 1
    print(f"\nfuzz: {tried} generated feeds in {batches} batches over {FUZZ_SECONDS:.0f} s, no failure")
