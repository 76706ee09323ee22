"""parse_feed: RSS and Atom bytes -> Items, text cleaned, dates in UTC, identity by policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import feedparser.mixin
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.dedup import Identity, canonical_link, content_hash
from monitor.errors import ParseError
from monitor.parse import MAX_SUMMARY, MAX_TITLE, TRUNCATED, parse_document, parse_feed

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
URL = "https://news.example/world/feed.xml"
RSS_TYPE = {"content-type": "application/rss+xml; charset=utf-8"}
ATOM_TYPE = {"content-type": "application/atom+xml; charset=utf-8"}


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Desk</title>'
        "<link>https://news.example/</link>"
        + "".join(f"<item>{i}</item>" for i in items)
        + "</channel></rss>"
    ).encode()


def atom(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Wire</title><id>urn:wire</id><updated>2024-01-16T00:00:00Z</updated>"
        + "".join(f"<entry>{e}</entry>" for e in entries)
        + "</feed>"
    ).encode()


def parse_one(body: bytes, headers: dict[str, str] | None = None, url: str = URL):
    items, _ = parse_feed("desk", body, RSS_TYPE if headers is None else headers, url=url, now=NOW)
    assert len(items) == 1
    return items[0]


def test_rss_item_fields():
    """An RSS 2.0 item becomes an Item with every field filled."""
    item = parse_one(
        rss(
            "<title>Iran and Pakistan restore ties</title><link>https://news.example/a/1</link>"
            "<guid>tag:news.example,2024:1</guid><description>Envoys return.</description>"
            "<pubDate>Mon, 29 Jan 2024 10:00:00 GMT</pubDate><author>desk@news.example (Desk)</author>"
            "<category>Iran</category><category>Pakistan</category>"
        )
    )
    assert item.feed == "desk"
    assert item.key == "tag:news.example,2024:1"
    assert item.title == "Iran and Pakistan restore ties"
    assert item.summary == "Envoys return."
    assert item.link == "https://news.example/a/1"
    assert item.published == datetime(2024, 1, 29, 10, 0, tzinfo=UTC)
    assert item.author == "desk@news.example (Desk)"
    assert item.tags == ("Iran", "Pakistan")
    assert item.fingerprint == content_hash("Iran and Pakistan restore ties", "Envoys return.")


def test_atom_entry_fields():
    """An Atom entry becomes an Item: id, alternate link, summary, author, category terms."""
    item = parse_one(
        atom(
            "<title>China urges restraint</title><id>urn:wire:7</id>"
            '<link rel="alternate" href="https://wire.example/7"/>'
            "<published>2024-01-18T09:00:00Z</published><updated>2024-01-18T11:00:00Z</updated>"
            "<summary>Beijing calls for calm.</summary><author><name>Wire Staff</name></author>"
            '<category term="china"/><category term="diplomacy"/>'
        ),
        ATOM_TYPE,
    )
    assert item.key == "urn:wire:7"
    assert item.title == "China urges restraint"
    assert item.summary == "Beijing calls for calm."
    assert item.link == "https://wire.example/7"
    assert item.published == datetime(2024, 1, 18, 9, 0, tzinfo=UTC)
    assert item.updated == datetime(2024, 1, 18, 11, 0, tzinfo=UTC)
    assert item.author == "Wire Staff"
    assert item.tags == ("china", "diplomacy")


def test_atom_content_used_when_no_summary():
    """An Atom entry with only <content> gets its text as the summary."""
    item = parse_one(
        atom(
            '<title>t</title><id>1</id><content type="html">&lt;p&gt;First&lt;/p&gt;&lt;p&gt;Second&lt;/p&gt;'
            "</content>"
        ),
        ATOM_TYPE,
    )
    assert item.summary == "First Second"


def test_html_stripped_and_entities_decoded():
    """Markup is dropped and entities decoded in title and summary; scripts leave no text."""
    item = parse_one(
        rss(
            "<title>Tom &amp;amp; Jerry &lt;b&gt;bold&lt;/b&gt;</title><guid>1</guid>"
            "<description>&lt;p&gt;Caf&amp;eacute; &amp;ndash; talks&lt;/p&gt;"
            "&lt;script&gt;alert(1)&lt;/script&gt;"
            "&lt;p&gt;resume&lt;/p&gt;</description>"
        )
    )
    assert item.title == "Tom & Jerry bold"
    assert item.summary == "Café – talks resume"
    assert "<" not in item.title + item.summary
    assert "alert" not in item.summary


def test_cdata_html_summary():
    """HTML in CDATA is reduced to its text."""
    item = parse_one(
        rss("<title>t</title><guid>1</guid><description><![CDATA[<div>One<br>Two</div>]]></description>")
    )
    assert item.summary == "One Two"


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 16 Jan 2024 22:30:00 +0330", datetime(2024, 1, 16, 19, 0, tzinfo=UTC)),
        ("Tue, 16 Jan 2024 22:30:00 GMT", datetime(2024, 1, 16, 22, 30, tzinfo=UTC)),
        ("Tue, 16 Jan 2024 22:30:00 -0500", datetime(2024, 1, 17, 3, 30, tzinfo=UTC)),
    ],
)
def test_rss_dates_become_aware_utc(date, expected):
    """pubDate in any offset becomes the same instant in UTC."""
    item = parse_one(rss(f"<title>t</title><guid>1</guid><pubDate>{date}</pubDate>"))
    assert item.published == expected
    assert item.published.utcoffset().total_seconds() == 0


def test_atom_updated_stands_in_for_published():
    """An Atom entry with only <updated> is published at that time, in UTC."""
    item = parse_one(
        atom("<title>t</title><id>1</id><updated>2024-01-16T10:00:00+02:00</updated>"), ATOM_TYPE
    )
    assert item.published == datetime(2024, 1, 16, 8, 0, tzinfo=UTC)
    assert item.updated == item.published


@pytest.mark.parametrize("date", ["", "<pubDate>not a date</pubDate>"])
def test_no_date_uses_first_seen_time(date):
    """An item with no readable date is dated by when it was first seen (the `now` passed in)."""
    item = parse_one(rss(f"<title>t</title><guid>1</guid>{date}"))
    assert item.published == NOW
    assert item.updated is None


# Identity


def test_identity_prefers_guid():
    """A guid is the identity even when there is a link."""
    item = parse_one(
        rss('<title>t</title><guid isPermaLink="false">abc-1</guid><link>https://x.example/p</link>')
    )
    assert item.key == "abc-1"


def test_identity_falls_back_to_canonical_link():
    """With no guid, the canonical link (tracking dropped, query sorted) is the identity."""
    item = parse_one(
        rss("<title>t</title><link>HTTPS://News.Example:443/p?b=2&amp;utm_source=rss&amp;a=1#top</link>")
    )
    assert item.key == "https://news.example/p?a=1&b=2"
    assert item.key == canonical_link(item.link)


def test_identity_falls_back_to_content_hash():
    """With neither guid nor link, the hash of title and summary is the identity."""
    body = rss(
        "<title>Same</title><description>text</description>",
        "<title>Same</title><description>text</description>",
        "<title>Other</title><description>text</description>",
    )
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)
    keys = [i.key for i in items]
    assert keys[0] == keys[1] == "sha256:" + content_hash("Same", "text")
    assert keys[2] != keys[0]


def test_blank_guid_is_ignored():
    """A whitespace-only guid does not count as an identity."""
    item = parse_one(rss("<title>t</title><guid>   </guid><link>https://x.example/p</link>"))
    assert item.key == "https://x.example/p"


def test_malformed_link_does_not_break_the_feed():
    """A link with an impossible port still yields an item (its identity is the link as written)."""
    body = rss(
        "<title>Bad port</title><link>http://x.example:99999/a</link>",
        "<title>Good</title><link>https://x.example/b</link>",
    )
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)
    assert [i.title for i in items] == ["Bad port", "Good"]
    assert items[0].key == "http://x.example:99999/a"


# Identity overrides

# One item as a feed that mints a new guid on every build might list it.
TRACKED = (
    '<title>Envoys return</title><guid isPermaLink="false">build-4711-item-3</guid>'
    "<link>https://www.news.example/a/1/?utm_source=rss&amp;at_medium=RSS</link>"
    "<description>Talks resume.</description>"
)


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (Identity.GUID, "build-4711-item-3"),
        (Identity.LINK, "https://news.example/a/1"),
        (Identity.CONTENT, "sha256:" + content_hash("Envoys return", "Talks resume.")),
    ],
)
def test_identity_override(identity, expected):
    """`guid` keys by guid; `link` ignores the guid for the canonical link; `content` keys by the text."""
    items, _ = parse_feed("desk", rss(TRACKED), RSS_TYPE, url=URL, now=NOW, identity=identity)
    assert [i.key for i in items] == [expected]


def test_identity_default_is_guid():
    """Without an identity, parse_feed keys by guid."""
    assert parse_one(rss(TRACKED)).key == "build-4711-item-3"


def test_identity_link_survives_a_new_guid_per_build():
    """Under `link`, the same article with a fresh guid (and another edition's link) keeps its key."""
    rebuilt = TRACKED.replace("build-4711-item-3", "build-4712-item-1").replace(
        "https://www.news.example/a/1/", "https://www.google.com/amp/s/m.news.example/a/1/amp"
    )
    keys = [
        parse_feed("desk", rss(body), RSS_TYPE, url=URL, now=NOW, identity=Identity.LINK)[0][0].key
        for body in (TRACKED, rebuilt)
    ]
    assert keys[0] == keys[1] == "https://news.example/a/1"
    guid_keys = [parse_one(rss(body)).key for body in (TRACKED, rebuilt)]
    assert guid_keys[0] != guid_keys[1]


def test_identity_link_without_a_link_falls_back_to_content():
    """A `link` feed's item with no (safe) link is keyed by its text, never by its guid."""
    body = rss(
        '<title>t</title><guid isPermaLink="false">g-1</guid><description>s</description>',
        '<title>t</title><guid isPermaLink="false">g-2</guid><description>s</description>'
        "<link>javascript:alert(1)</link>",
    )
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW, identity=Identity.LINK)
    assert [i.key for i in items] == ["sha256:" + content_hash("t", "s")] * 2


def test_identity_content_ignores_guid_and_link():
    """Under `content`, two entries with one text are one identity whatever their guids and links."""
    body = rss(
        "<title>Same</title><guid>1</guid><link>https://a.example/1</link><description>text</description>",
        "<title>Same</title><guid>2</guid><link>https://b.example/2</link><description>text</description>",
    )
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW, identity=Identity.CONTENT)
    assert items[0].key == items[1].key == "sha256:" + items[0].fingerprint


def test_identity_content_uses_the_cleaned_text():
    """The content key hashes the text after markup and entities are resolved: re-styled HTML keeps it."""
    plain = rss("<title>Tom &amp;amp; Jerry</title><description>Caf&amp;eacute; talks</description>")
    styled = rss(
        "<title>&lt;b&gt;Tom&lt;/b&gt; &amp;amp; Jerry</title>"
        "<description>&lt;p&gt;Caf&amp;eacute; &lt;i&gt;talks&lt;/i&gt;&lt;/p&gt;</description>"
    )
    keys = [
        parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW, identity=Identity.CONTENT)[0][0].key
        for body in (plain, styled)
    ]
    assert keys[0] == keys[1] == "sha256:" + content_hash("Tom & Jerry", "Café talks")


FIXTURES = sorted(p for p in (Path(__file__).parent / "fixtures").glob("*.*") if p.suffix != ".opml")


@pytest.mark.parametrize("identity", list(Identity))
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_identity_stable_across_reparsing_fixtures(path, identity):
    """The same bytes give the same keys, whenever they are parsed and whatever headers came with them."""
    body = path.read_bytes()
    first, _ = parse_feed("desk", body, {}, url=URL, now=NOW, identity=identity)
    again, _ = parse_feed(
        "desk",
        body,
        {"content-type": "application/xml"},
        url=URL,
        now=NOW + timedelta(days=400),
        identity=identity,
    )
    assert first
    assert [i.key for i in first] == [i.key for i in again]
    for item in first:
        if identity is Identity.CONTENT or (identity is Identity.LINK and item.link is None):
            assert item.key == "sha256:" + item.fingerprint
        elif identity is Identity.LINK:
            assert item.key == canonical_link(item.link)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
_links = st.one_of(
    st.none(),
    st.builds(
        "https://{}{}.example/{}{}".format,
        st.sampled_from(["", "www.", "m.", "amp."]),
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z0-9/-]{0,12}", fullmatch=True),
        st.sampled_from(["", "?utm_source=rss", "?id=3", "/amp", "#top"]),
    ),
)


@given(
    st.lists(st.tuples(st.one_of(st.none(), _text), _links, _text, _text), min_size=1, max_size=4),
    st.sampled_from(list(Identity)),
)
def test_identity_stable_across_reparsing(entries, identity):
    """Whatever an entry holds, parsing the same bytes twice (at other times) gives the same keys."""
    body = rss(
        *(
            f"<title>{escape(title)}</title><description>{escape(summary)}</description>"
            + (f"<guid isPermaLink={quoteattr('false')}>{escape(guid)}</guid>" if guid is not None else "")
            + (f"<link>{escape(link)}</link>" if link else "")
            for guid, link, title, summary in entries
        )
    )
    first, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW, identity=identity)
    again, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW + timedelta(hours=1), identity=identity)
    assert [i.key for i in first] == [i.key for i in again]
    assert len(first) == len(entries)


def test_malformed_amp_cache_link_does_not_break_the_feed():
    """A Google AMP link around a malformed host is one odd item, not a feed that cannot be read."""
    body = rss(
        "<title>Bad</title><link>https://www.google.com/amp/s/[news.example/a</link>",
        "<title>Good</title><link>https://x.example/b</link>",
    )
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)
    assert [i.title for i in items] == ["Bad", "Good"]


# Outlet


def test_outlet_from_google_news_source():
    """An aggregator's <source url="...">Dawn</source> names the item's publisher."""
    item = parse_one(
        rss(
            "<title>Pakistan, Iran agree to de-escalate - Dawn</title>"
            "<link>https://news.google.com/rss/articles/CBMiX2h0dHBz?oc=5</link>"
            '<guid isPermaLink="false">CBMiX2h0dHBz</guid>'
            "<pubDate>Fri, 19 Jan 2024 08:00:00 GMT</pubDate>"
            '<source url="https://www.dawn.com">Dawn</source>'
        ),
        url="https://news.google.com/rss/search?q=iran",
    )
    assert item.outlet == "Dawn"
    assert item.key == "CBMiX2h0dHBz"


def test_outlet_absent_without_source():
    """A feed's own items name no outlet: the pipeline falls back to the feed's `outlet` or name."""
    assert parse_one(rss("<title>t</title><guid>1</guid>")).outlet is None
    assert parse_one(atom("<title>t</title><id>1</id>"), ATOM_TYPE).outlet is None


@pytest.mark.parametrize(
    ("source", "outlet"),
    [
        ('<source url="https://tribune.com.pk">  The Express\n   Tribune </source>', "The Express Tribune"),
        ('<source url="https://www.aljazeera.com">Al &amp; Jazeera</source>', "Al & Jazeera"),
        ('<source url="https://x.example"></source>', None),
        ('<source url="https://x.example">   </source>', None),
        ('<source url="https://x.example">' + "A" * 300 + "</source>", "A" * 100),
    ],
    ids=["spaces-collapsed", "entities", "empty", "blank", "long"],
)
def test_outlet_text_cleaned(source, outlet):
    """The outlet is the source's text with space collapsed, at most 100 characters; blank is none."""
    assert parse_one(rss(f"<title>t</title><guid>1</guid>{source}")).outlet == outlet


def test_outlet_from_atom_source():
    """An Atom entry's <source><title> names its publisher too."""
    item = parse_one(
        atom("<title>t</title><id>1</id><source><id>urn:reuters</id><title>Reuters</title></source>"),
        ATOM_TYPE,
    )
    assert item.outlet == "Reuters"


def test_outlet_per_item():
    """Each item of an aggregator's feed has its own outlet."""
    body = rss(
        '<title>a</title><guid>1</guid><source url="https://www.dawn.com">Dawn</source>',
        '<title>b</title><guid>2</guid><source url="https://www.bbc.co.uk">BBC News</source>',
        "<title>c</title><guid>3</guid>",
    )
    items, _ = parse_feed("gn", body, RSS_TYPE, url=URL, now=NOW)
    assert [i.outlet for i in items] == ["Dawn", "BBC News", None]


# Links


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<b>hi</b>",
        "file:///etc/passwd",
    ],
)
def test_unsafe_links_dropped(link):
    """Only http(s) links survive; the item is kept and identified by its text."""
    item = parse_one(rss(f"<title>t</title><description>s</description><link>{escape(link)}</link>"))
    assert item.link is None
    assert item.key == "sha256:" + content_hash("t", "s")


def test_relative_links_resolved_against_the_feed_url():
    """A relative link is made absolute against the URL the feed was fetched from."""
    body = rss("<title>a</title><link>/a/1</link>", "<title>b</title><link>b/2</link>")
    items, _ = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)
    assert [i.link for i in items] == ["https://news.example/a/1", "https://news.example/world/b/2"]


def test_relative_atom_link_resolved():
    """Atom hrefs are resolved against the feed URL too."""
    item = parse_one(
        atom('<title>t</title><id>1</id><link href="rel/2"/>'), ATOM_TYPE, "https://atom.example/dir/feed"
    )
    assert item.link == "https://atom.example/dir/rel/2"


def test_xml_base_resolves_the_links_under_it_and_no_others():
    """An entry's xml:base applies to its own links; the next entry's resolve against the feed URL."""
    body = atom(
        '<title>a</title><id>1</id><link href="rel/2"/>',
        '<title>b</title><id>2</id><link href="rel/3"/>',
    ).replace(b"<entry>", b'<entry xml:base="https://other.example/dir/">', 1)
    items, _ = parse_feed("desk", body, ATOM_TYPE, url="https://atom.example/dir/feed", now=NOW)
    assert [i.link for i in items] == ["https://other.example/dir/rel/2", "https://atom.example/dir/rel/3"]


def test_base_uri_joins_are_remembered_and_answered_as_feedparser_does():
    """feedparser's base-URI join is kept in a cache (monitor.parse): same answers as the original."""
    remembered = feedparser.mixin.make_safe_absolute_uri
    original = remembered.__wrapped__
    cases = [
        ("https://a.example/feed", "https://a.example/feed"),
        ("https://a.example/x/feed", "rel/"),
        ("https://a.example/", "javascript:alert(1)"),
        ("", "https://b.example/"),
        ("https://a.example/", ""),
        ("https://a.example/", None),
        ("http://[::1", "x"),
        ("https://a.example/", "http://[bad"),
    ]
    for base, rel in cases * 2:
        assert remembered(base, rel) == original(base, rel)


# Bad input


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"this is not a feed",
        b"<html><body><p>hello</p></body></html>",
        b'{"json": true}',
        b"\x00\xff\xfe\x01",
    ],
)
def test_garbage_raises_parse_error(body):
    """A body that is neither RSS nor Atom raises ParseError naming the feed."""
    with pytest.raises(ParseError, match="not an RSS or Atom feed") as info:
        parse_feed("desk", body, {"content-type": "application/xml"}, url=URL, now=NOW)
    assert info.value.feed == "desk"


def test_body_that_is_a_file_path_is_not_opened(tmp_path):
    """Bytes naming an existing feed file are treated as content, never opened."""
    path = tmp_path / "feed.xml"
    path.write_bytes(rss("<title>Secret from disk</title><guid>1</guid>"))
    assert parse_feed("desk", path.read_bytes(), RSS_TYPE, url=URL, now=NOW)[0]  # the file is a valid feed
    for body in (str(path).encode(), path.as_uri().encode()):
        with pytest.raises(ParseError):
            parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)


def test_body_that_is_a_url_is_not_fetched():
    """Bytes that look like a URL are not fetched (no network in parsing)."""
    with pytest.raises(ParseError):
        parse_feed("desk", b"http://127.0.0.1:9/feed.xml", RSS_TYPE, url=URL, now=NOW)


def test_oversized_title_and_summary_truncated():
    """Titles and summaries beyond their limits are cut and marked."""
    item = parse_one(
        rss(f"<title>{'a' * 5000}</title><guid>1</guid><description>{'b ' * 5000}</description>")
    )
    assert len(item.title) == MAX_TITLE
    assert item.title.endswith(TRUNCATED)
    assert len(item.summary) == MAX_SUMMARY
    assert item.summary.endswith(TRUNCATED)


def test_short_title_not_truncated():
    """A title at the limit is kept whole."""
    item = parse_one(rss(f"<title>{'a' * MAX_TITLE}</title><guid>1</guid>"))
    assert item.title == "a" * MAX_TITLE


def test_untitled_item():
    """An item without a title gets a placeholder title."""
    item = parse_one(rss("<guid>1</guid><description>body</description>"))
    assert item.title == "(untitled)"


PERSIAN = "سفیر ایران – café"


def declared(encoding: str, title: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>T</title>'
        f'<item><title>{title}</title><guid isPermaLink="false">1</guid></item></channel></rss>'
    ).encode(encoding)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (declared("utf-8", PERSIAN), {"content-type": "text/xml; charset=windows-1256"}),
        (declared("utf-8", PERSIAN), {"content-type": "application/xml; charset=no-such-charset"}),
        (declared("windows-1252", "café “quoted”"), {"content-type": "application/rss+xml; charset=utf-8"}),
    ],
    ids=["header-1256-prolog-utf8", "unknown-header-charset", "header-utf8-prolog-1252"],
)
def test_conflicting_charsets_do_not_crash(body, headers):
    """Header and prolog disagreeing on the charset still yields the item."""
    items, _ = parse_feed("desk", body, headers, url=URL, now=NOW)
    assert len(items) == 1
    assert items[0].key == "1"
    assert items[0].title


def test_prolog_charset_used_without_header():
    """With no charset in the headers (a local file), the prolog's encoding is used."""
    item = parse_one(declared("windows-1252", "café “quoted”"), {"content-type": "application/xml"})
    assert item.title == "café “quoted”"


def test_malformed_but_readable_feed_warns():
    """A feed with an XML error that feedparser can still read yields items and a warning."""
    body = rss(
        '<title>ok &nbsp; then</title><guid isPermaLink="false">1</guid>'
    )  # &nbsp; is not defined in XML
    items, warning = parse_feed("desk", body, RSS_TYPE, url=URL, now=NOW)
    assert [i.key for i in items] == ["1"]
    assert warning is not None
    assert warning.startswith("malformed feed read leniently")


def test_well_formed_feed_has_no_warning():
    """A clean feed with a proper content type produces no warning."""
    _, warning = parse_feed("desk", rss("<title>t</title><guid>1</guid>"), RSS_TYPE, url=URL, now=NOW)
    assert warning is None


def test_feed_title_is_plain_text():
    """parse_document also gives the feed's own title, as plain text, for `monitor feeds add`."""
    body = rss("<title>t</title><guid>1</guid>").replace(
        b"<title>Desk</title>", b"<title>World &amp;amp; &lt;b&gt;Region&lt;/b&gt;\n desk</title>"
    )
    parsed = parse_document("desk", body, RSS_TYPE, url=URL, now=NOW)
    assert parsed.title == "World & Region desk"


def test_feed_title_absent():
    """A feed without a title has none."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>t</title></item></channel></rss>'
    assert parse_document("desk", body, RSS_TYPE, url=URL, now=NOW).title is None
