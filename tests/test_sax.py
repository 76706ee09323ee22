"""The SAX driver feedparser is given: the same items as expat's stock reader, in fewer pieces."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser.api
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse import SAX_DRIVER, parse_document

NOW = datetime(2024, 1, 20, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
STOCK = "xml.sax.expatreader"


def parsed_with(driver: str, body: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(feedparser.api, "PREFERRED_XML_PARSERS", [driver])
        try:
            return parse_document("desk", body, {}, url="https://desk.example/feed", now=NOW)
        except ParseError as e:
            return str(e)


def test_feedparser_parses_with_the_buffered_driver() -> None:
    assert feedparser.api.PREFERRED_XML_PARSERS == [SAX_DRIVER]


@pytest.mark.parametrize("fixture", ["frontier.xml", "gulf-desk.xml", "wire.atom"])
def test_fixtures_read_the_same(fixture: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (FIXTURES / fixture).read_bytes()
    buffered = parsed_with(SAX_DRIVER, body, monkeypatch)
    assert buffered == parsed_with(STOCK, body, monkeypatch)
    assert buffered.items


# Text in the pieces expat splits it at: line breaks, character and entity references, CDATA,
# runs longer than its 8 KiB buffer.
_PIECES = st.sampled_from(
    ["a", " ", "\n", "\r\n", "&amp;", "&lt;p&gt;", "&#233;", "é", "<![CDATA[x<b>]]>", "z" * 9000, "\t"]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_PIECES, max_size=30))
def test_text_in_pieces_reads_the_same(pieces: list[str]) -> None:
    text = "".join(pieces)
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{text[:500]}</title><description>{text}</description><guid>g</guid></item>"
        "</channel></rss>"
    ).encode()
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert parsed_with(SAX_DRIVER, body, monkeypatch) == parsed_with(STOCK, body, monkeypatch)
