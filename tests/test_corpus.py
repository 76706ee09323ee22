"""feedparser's own test corpus through parse and match: a sample of its nastiest files always
(tests/fixtures/hostile/feedparser, BSD licence beside them), the whole corpus once `make corpus`
has downloaded it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.corpus import CACHE, body_of, corpus_files, run, shipped_matcher
from monitor.parse import ParsedFeed, parse_document

SAMPLE = Path(__file__).parent / "fixtures" / "hostile" / "feedparser"
NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)


def parse(name: str) -> ParsedFeed:
    body, headers = body_of(SAMPLE / name)
    return parse_document("corpus", body, headers, url=f"http://corpus.example/{name}", now=NOW)


def test_the_sample_parses_with_no_exception_escaping() -> None:
    """Every sample file yields items or a recorded ParseError, never another exception."""
    report = run(corpus_files(SAMPLE), shipped_matcher(), base=SAMPLE)
    assert report.escaped == ()
    assert report.files == 36
    # The two refused: a gzip body that is not gzip, and an empty document.
    assert (report.parsed, report.refused) == (34, 2)
    assert report.items == 15
    assert (SAMPLE / "LICENSE").read_text(encoding="utf-8").startswith("feedparser and its unit tests")


@pytest.mark.parametrize(
    ("name", "feed_title", "summary"),
    [
        ("encoding/x80_cp037.xml", "Ø", None),
        ("encoding/x80_cp500.xml", "Ø", None),
        ("encoding/x80_windows-1252.xml", "€", None),
        ("encoding/demoronize-1.xml", None, "don’t"),
        # Invalid UTF-8 beside valid UTF-8: replaced visibly, where feedparser alone gives mojibake.
        ("encoding/bozo_invalid-bytes-with-bom.xml", "Valid UTF8: ѨInvalid UTF8: Espa\ufffda", None),
        ("encoding/bozo_linenoise.xml", None, "’<>”\ufffd"),
        ("illformed/always_strip_doctype.xml", "found", None),
        ("wellformed/rss/item_description_not_a_doctype2.xml", None, "<!DOCTYPE"),
        ("wellformed/sanitize/item_fullitem_script_map_summary.xml", None, "safe description"),
        # Script text is not news: html_to_text leaves it out (feedparser's sanitiser kept it).
        (
            "wellformed/sanitize/entry_content_crazy.xml",
            None,
            "Crazy HTML -- Can Your Regex Parse This? Did The Javascript Execute? "
            "I will execute here, too, if you mouse over me",
        ),
    ],
)
def test_sample_files_read_as_they_should(name: str, feed_title: str | None, summary: str | None) -> None:
    """Files whose expected text is known come out exactly so."""
    parsed = parse(name)
    if feed_title is not None:
        assert parsed.title == feed_title
    if summary is not None:
        assert [i.summary for i in parsed.items] == [summary]


def test_an_entity_declared_in_the_doctype_still_builds_the_guid() -> None:
    """`<!ENTITY id "tag:example.com,">` then `&id;2006-05-04:/blog/`: the declared entity works."""
    assert [i.key for i in parse("wellformed/rss/entity_in_doctype.xml").items] == [
        "tag:example.com,2006-05-04:/blog/"
    ]


def test_legacy_text_without_a_charset_is_not_replaced_by_u_fffd() -> None:
    """Shift_JIS bytes with no charset make some valid UTF-8 by chance, but far more invalid:
    they are left to feedparser's fallback, not blanked into U+FFFD."""
    (item,) = parse("illformed/chardet/shiftjis.xml").items
    assert "\ufffd" not in item.title + item.summary
    assert "invalid UTF-8" not in (parse("illformed/chardet/shiftjis.xml").warning or "")


def test_an_external_parameter_entity_in_a_real_feed_is_removed() -> None:
    """A real RDF feed pulls the XHTML Latin-1 entities in by a PUBLIC parameter entity: removed,
    never fetched, and the note says so."""
    warning = parse("wellformed/rdf/doctype_contains_entity_decl.xml").warning or ""
    assert "parameter entities were removed" in warning


@pytest.mark.skipif(
    not (CACHE / "tests").is_dir(),
    reason="feedparser's corpus is not downloaded: `make corpus` fetches it into .cache/feedparser-corpus",
)
def test_the_whole_corpus_parses_with_no_exception_escaping() -> None:
    """All of feedparser's test feeds (about 2,250): each yields a result or a recorded error."""
    report = run(corpus_files(CACHE), shipped_matcher(), base=CACHE)
    assert report.escaped == ()
    assert report.files >= 2200
    assert report.parsed + report.refused == report.files
    assert report.parsed >= report.files * 0.99
