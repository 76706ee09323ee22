"""OPML: feeds and tags read from subscription lists, hostile files refused, export round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import FeedConfig
from monitor.errors import OpmlError
from monitor.opml import OpmlFeed, export_opml, parse_opml
from tests.conftest import fixture_bytes


def opml(body: str) -> bytes:
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>t</title></head>'
    return f"{prolog}<body>{body}</body></opml>".encode()


def test_nested_folders_become_tags() -> None:
    """Each enclosing outline without a feed adds its name, slugified, as a tag."""
    feeds = parse_opml(
        opml(
            '<outline text="World News">'
            '  <outline title="Middle East &amp; Iran">'
            '    <outline text="Deep" type="rss" xmlUrl="https://deep.example/rss"/>'
            "  </outline>"
            '  <outline text="Top" type="rss" xmlUrl="https://top.example/rss"/>'
            "</outline>"
            '<outline text="Loose" type="rss" xmlUrl="https://loose.example/rss"/>'
        ),
        "subs.opml",
    )
    assert feeds == [
        OpmlFeed("Deep", "https://deep.example/rss", ("world-news", "middle-east-iran")),
        OpmlFeed("Top", "https://top.example/rss", ("world-news",)),
        OpmlFeed("Loose", "https://loose.example/rss", ()),
    ]


def test_category_attribute_adds_tags() -> None:
    """`category` is comma-separated, each a tag or a slash path whose steps are tags; no repeats."""
    [feed] = parse_opml(
        opml(
            '<outline text="Iran"><outline text="x" xmlUrl="https://x.example/rss"'
            ' category="/News/World,iran, Region "/></outline>'
        ),
        "s.opml",
    )
    assert feed.tags == ("iran", "news", "world", "region")


def test_attribute_names_are_case_insensitive_and_title_falls_back() -> None:
    """`xmlurl`, `XMLURL` and `htmlurl` are read as `xmlUrl` and `htmlUrl`; `title` stands in for `text`."""
    feeds = parse_opml(
        opml(
            '<outline xmlurl=" https://a.example/rss " htmlurl="https://a.example/" title="A"/>'
            '<outline XMLURL="https://b.example/rss" text="B"/>'
        ),
        "s.opml",
    )
    assert feeds == [
        OpmlFeed("A", "https://a.example/rss", (), "https://a.example/"),
        OpmlFeed("B", "https://b.example/rss"),
    ]


def test_outlines_without_xmlurl_are_not_feeds() -> None:
    """Links, empty folders and blank xmlUrl attributes give no feed."""
    feeds = parse_opml(
        opml(
            '<outline text="bookmark" type="link" url="https://example.org/"/>'
            '<outline text="empty folder"/>'
            '<outline text="blank" xmlUrl="  "/>'
            '<outline text="real" xmlUrl="https://real.example/rss"/>'
        ),
        "s.opml",
    )
    assert [f.url for f in feeds] == ["https://real.example/rss"]


def test_opml_1_0_without_head() -> None:
    """An OPML 1.0 file with no <head> is read."""
    data = b'<opml version="1.0"><body><outline text="a" xmlUrl="https://a.example/rss"/></body></opml>'
    assert parse_opml(data, "old.opml") == [OpmlFeed("a", "https://a.example/rss")]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><body><outline text="&lol9;" xmlUrl="https://x.example/&lol9;"/></body></opml>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://x.example/rss"/></body></opml>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_doctype_is_refused_before_any_entity_is_declared(data: bytes) -> None:
    """A DOCTYPE is refused where it starts, so no entity is ever declared, expanded or fetched."""
    with pytest.raises(OpmlError) as caught:
        parse_opml(data, "evil.opml")
    assert str(caught.value) == "evil.opml: line 2: DOCTYPE declarations are not allowed in an OPML file"


def test_undeclared_entity_is_an_error() -> None:
    """With no DOCTYPE, an entity reference other than XML's own five cannot be resolved."""
    with pytest.raises(OpmlError, match=r"^s\.opml: line 1: not well-formed XML: undefined entity"):
        parse_opml(b'<opml><body><outline xmlUrl="&x;"/></body></opml>', "s.opml")


def test_malformed_xml_names_file_and_line() -> None:
    """A broken file is reported with its name, the line and expat's reason."""
    data = b'<?xml version="1.0"?>\n<opml>\n<body>\n<outline text="a">\n</body>\n</opml>\n'
    with pytest.raises(OpmlError) as caught:
        parse_opml(data, "broken.opml")
    assert caught.value.line == 5
    assert str(caught.value).startswith("broken.opml: line 5: not well-formed XML: mismatched tag")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<rss><channel/></rss>", "not an OPML file: the root element is <rss>, not <opml>"),
        (b"<opml><head/></opml>", "not an OPML file: there is no <body> element"),
    ],
    ids=["a-feed", "no-body"],
)
def test_well_formed_but_not_opml(data: bytes, message: str) -> None:
    """XML that is not an OPML subscription list says what it is instead."""
    with pytest.raises(OpmlError) as caught:
        parse_opml(data, "x.opml")
    assert str(caught.value) == f"x.opml: {message}"


def test_real_world_export() -> None:
    """An Inoreader-style export: folders (nested too), a category, lowercase attributes, a link."""
    feeds = parse_opml(fixture_bytes("subscriptions.opml"), "subscriptions.opml")
    assert len(feeds) == 10
    by_url = {f.url: f for f in feeds}
    assert by_url["https://www.dawn.com/feeds/home"] == OpmlFeed(
        "Dawn - Home", "https://www.dawn.com/feeds/home", ("pakistan",), "https://www.dawn.com"
    )
    assert by_url["https://gulfnews.com/rss/world/mena"].title == "Gulf News – Middle East"
    assert by_url["https://gulfnews.com/rss/world/mena"].tags == ("iran-gulf",)
    assert by_url["https://thediplomat.com/feed/"].tags == ("china", "asia")
    assert by_url["https://feeds.bbci.co.uk/news/world/middle_east/rss.xml"].tags == (
        "news",
        "world",
        "region",
    )
    assert by_url["https://www.aljazeera.com/xml/rss/all.xml"].html_url == "https://www.aljazeera.com"


def test_export_escapes_and_round_trips() -> None:
    """Quotes, ampersands, angle brackets and newlines survive export and parse; local paths too."""
    feeds = [
        FeedConfig("odd", 'https://x.example/rss?a=1&b="2"&c=<3>\'', tags=("iran", "middle-east")),
        FeedConfig("local", "/srv/feeds/replay.xml"),
        FeedConfig("tagged", "file:///srv/feeds/wire.atom", tags=("line\nbreak",)),
    ]
    text = export_opml(feeds, 'Mine & "yours" <ok>')
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert '<title>Mine &amp; "yours" &lt;ok&gt;</title>' in text
    back = parse_opml(text.encode("utf-8"), "export.opml")
    assert [(f.title, f.url) for f in back] == [(f.name, f.url) for f in feeds]
    assert [f.tags for f in back] == [("iran", "middle-east"), (), ("line-break",)]


_tags = st.lists(st.from_regex(r"[a-z0-9]+(-[a-z0-9]+)*", fullmatch=True), max_size=4, unique=True)
_urls = st.builds(
    "https://{}.example/{}".format,
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
        max_size=20,
    ),
)


@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True), _urls, _tags)))
def test_round_trip_keeps_urls_titles_and_tags(
    rows: list[tuple[str, str, list[str]]],
) -> None:
    """parse_opml(export_opml(feeds)) gives back every feed's URL, name (as title) and tags."""
    feeds = [FeedConfig(name, url.strip(), tags=tuple(tags)) for name, url, tags in rows]
    back = parse_opml(export_opml(feeds, "t").encode("utf-8"), "t.opml")
    assert [(f.title, f.url, f.tags) for f in back] == [(f.name, f.url, f.tags) for f in feeds]
