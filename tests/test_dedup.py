"""Item identity: canonical links, content hashes and the guid > link > hash policy."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monitor.dedup import canonical_link, content_hash, item_key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example/a", "https://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("http://news.example:443/a", "http://news.example:443/a"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("https://news.example/a?utm_source=rss&utm_Medium=x&UTM_campaign=y", "https://news.example/a"),
        ("https://news.example/a?id=7&fbclid=abc&gclid=def", "https://news.example/a?id=7"),
        ("https://news.example/a?b=2&a=1&c=3", "https://news.example/a?a=1&b=2&c=3"),
        ("https://news.example", "https://news.example/"),
        ("  https://news.example/a  ", "https://news.example/a"),
        ("https://user:pw@news.example/a", "https://news.example/a"),
        ("https://news.example/Path/Case", "https://news.example/Path/Case"),
        ("https://news.example/a?q=", "https://news.example/a?q="),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
    ],
)
def test_canonical_link(url, expected):
    """Scheme and host lowercased, default port, fragment and tracking dropped, query sorted."""
    assert canonical_link(url) == expected


def test_canonical_link_equates_variants_of_one_article():
    """Different spellings of one article's URL share a canonical form."""
    variants = [
        "https://news.example/world/1?a=1&b=2",
        "HTTPS://NEWS.EXAMPLE:443/world/1?b=2&a=1#top",
        "https://news.example/world/1?utm_source=twitter&b=2&a=1&fbclid=xyz",
    ]
    assert len({canonical_link(v) for v in variants}) == 1


def test_canonical_link_keeps_distinct_articles_distinct():
    """Path and meaningful query parameters still tell articles apart."""
    assert canonical_link("https://news.example/a?id=1") != canonical_link("https://news.example/a?id=2")
    assert canonical_link("https://news.example/a") != canonical_link("https://news.example/b")
    assert canonical_link("http://news.example/a") != canonical_link("https://news.example/a")


@pytest.mark.parametrize("url", ["http://x.example:99999/a", "http://x.example:port/a", "http://[not-ipv6/a"])
def test_canonical_link_of_malformed_url_does_not_raise(url):
    """A URL urllib cannot split (bad port, bad IPv6) is its own canonical form, not an exception."""
    assert canonical_link(url) == url
    assert canonical_link(f"  {url} ") == url


_hosts = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?(\.[A-Za-z]{2,6}){1,2}", fullmatch=True)
_segments = st.text(alphabet="abcXYZ019-_.~%", min_size=0, max_size=8)
_params = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "id", "utm_source", "UTM_Medium", "fbclid", "q", "x y", "é"]),
        st.text(alphabet="ab1 =&+%é/?", max_size=6),
    ),
    max_size=5,
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(_hosts)
    port = draw(st.one_of(st.none(), st.sampled_from([80, 443, 8080]), st.integers(1, 65535)))
    path = "/".join(draw(st.lists(_segments, max_size=4)))
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in draw(_params))
    fragment = draw(st.text(alphabet="abc#?", max_size=4))
    netloc = host if port is None else f"{host}:{port}"
    return (
        f"{scheme}://{netloc}/{path}" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
    )


@given(urls())
@example("http://[::1]:8080/a")
@example("https://news.example/?a=b+c&z=%2B")
def test_canonical_link_is_idempotent_on_urls(url):
    """Canonicalising a canonical link changes nothing."""
    once = canonical_link(url)
    assert canonical_link(once) == once


@given(st.text(max_size=60))
def test_canonical_link_is_idempotent_on_any_text(text):
    """Whatever a feed puts in <link>, canonicalising is total and idempotent."""
    once = canonical_link(text)
    assert canonical_link(once) == once


@given(urls())
def test_canonical_link_drops_every_tracking_parameter(url):
    """No utm_* or click-id parameter survives canonicalisation."""
    keys = [k.lower() for k, _ in parse_qsl(urlsplit(canonical_link(url)).query, keep_blank_values=True)]
    assert not [k for k in keys if k.startswith("utm_") or k == "fbclid"]
    assert keys == sorted(keys)


def test_content_hash_is_stable_and_separates_parts():
    """The hash depends on each part, not just their concatenation."""
    assert content_hash("a", "b") == content_hash("a", "b")
    assert content_hash("ab", "") != content_hash("a", "b")
    assert content_hash("a", "b") != content_hash("b", "a")
    assert len(content_hash("x")) == 32


def test_content_hash_accepts_lone_surrogates():
    """Text with a lone surrogate (broken feeds) still hashes."""
    assert content_hash("\ud800", "x") != content_hash("x")


@pytest.mark.parametrize(
    ("guid", "link", "expected"),
    [
        ("guid-1", "https://x.example/a", "guid-1"),
        ("  guid-1\n", "https://x.example/a", "guid-1"),
        (None, "HTTPS://X.example/a?utm_source=rss#f", "https://x.example/a"),
        ("", "https://x.example/a", "https://x.example/a"),
        ("   ", "https://x.example/a", "https://x.example/a"),
        (None, None, "sha256:" + content_hash("Title", "Summary")),
        ("", "", "sha256:" + content_hash("Title", "Summary")),
    ],
)
def test_item_key_precedence(guid, link, expected):
    """guid wins, then the canonical link, then a hash of title and summary."""
    assert item_key(guid, link, "Title", "Summary") == expected


@given(st.text(min_size=1).filter(str.strip), st.one_of(st.none(), urls()), st.text(), st.text())
def test_item_key_prefers_guid_whatever_else(guid, link, title, summary):
    """A non-blank guid is always the key, stripped."""
    assert item_key(guid, link, title, summary) == guid.strip()


@given(urls(), st.text(), st.text())
def test_item_key_of_link_ignores_text(link, title, summary):
    """Without a guid, editing the title or summary does not change an item's identity."""
    assert item_key(None, link, title, summary) == item_key(None, link, "other", "text")
