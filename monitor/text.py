"""Text helpers shared by parsing and matching: HTML to plain text, and match normalisation."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")
# C0 and C1 controls other than whitespace: an ESC in a title must not reach a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NON_WORD = re.compile(r"[\W_]+")
# Arabic-script letters that Persian and Urdu write differently: one spelling for matching.
# The zero-width non-joiner separates the parts of a word where a space may also be written
# ("اسلام‌آباد" / "اسلام آباد", "بازمی‌گردد" / "بازمی گردد"), so it matches as a space.
_SCRIPT_VARIANTS = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "\u200c": " ", "\u200d": None})
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in markup and "&" not in markup:
        return collapse_space(markup)
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return collapse_space("".join(parser.parts))


def collapse_space(text: str) -> str:
    """One space between words, and no control characters (terminal escapes, NUL) left in."""
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()


def normalise(text: str) -> str:
    """The form both watchlist terms and item text take before matching.

    Case, accents, punctuation and script variants are erased, so "Sīstān–Baluchestan",
    "SISTAN BALUCHESTAN" and "sistan & baluchestan" all become "sistan baluchestan".
    Words are separated by exactly one space, which makes word boundaries plain spaces.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = stripped.casefold().translate(_SCRIPT_VARIANTS)
    return _NON_WORD.sub(" ", unicodedata.normalize("NFC", folded)).strip()
