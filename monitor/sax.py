"""The SAX driver feedparser parses with (`monitor.parse` names it): the standard library's expat
reader, reporting each run of text once.

Without `buffer_text`, expat hands over an element's text in pieces: at every line break and
every character reference, so an HTML summary escaped as `&lt;p&gt;...` comes in dozens of pieces,
each a trip through xml.sax and feedparser's handlers that feedparser joins again. Buffered, the
text is the same and parsing a feed takes a tenth less time. `xml.sax.make_parser` loads a driver
by module name and calls its `create_parser`.
"""

from __future__ import annotations

from typing import Any
from xml.sax.expatreader import ExpatParser


class BufferedExpatParser(ExpatParser):
    """expat's SAX reader with buffered text."""

    def reset(self) -> None:
        super().reset()  # a new expat parser for each document
        self._parser.buffer_text = True  # type: ignore[attr-defined]  # the expat parser reset made


def create_parser(*args: Any, **kwargs: Any) -> BufferedExpatParser:
    return BufferedExpatParser(*args, **kwargs)
