"""Text helpers shared by parsing and matching: HTML to plain text, and match normalisation."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")
# C0 and C1 controls other than whitespace: an ESC in a title must not reach a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NON_WORD = re.compile(r"[\W_]+")
_POSSESSIVE = re.compile(r"'s(?![^\W_])")  # not followed by a letter or digit ("_" is a break)
_APOSTROPHES = "'\u2019\u2018\u02bc\u02bb\u02be\u02bf`\u00b4\u2032\uff07"


def _nonspacing_marks() -> re.Pattern[str]:
    # Accents, Arabic short vowels and hamza signs: every nonspacing or enclosing mark in the
    # Basic and Supplementary Multilingual Planes, plus the variation selectors.
    ranges: list[str] = []
    start = previous = -2
    for code in range(0x20000):
        if unicodedata.category(chr(code)) in ("Mn", "Me"):
            if code != previous + 1:
                if start >= 0:
                    ranges.append(f"{chr(start)}-{chr(previous)}")
                start = code
            previous = code
    ranges.append(f"{chr(start)}-{chr(previous)}\U000e0100-\U000e01ef")
    return re.compile("[" + "".join(ranges) + "]")


_MARKS = _nonspacing_marks()
# Chinese and Japanese write words without spaces between them; each ideograph is made a word of
# its own, so a term such as "王毅" is the phrase "王 毅" and still matches only whole characters.
_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff"
_IDEOGRAPH = re.compile(f"[{_IDEOGRAPHS}]")
# Arabic-script letters that Persian, Urdu and Arabic write differently: one spelling for matching
# ("ي"/"ی", "ك"/"ک", Urdu "ہ"/"ے"). The zero-width non-joiner separates the parts of a word where
# a space may also be written ("اسلام‌آباد" / "اسلام آباد"), so it matches as a space; the
# joiner and the tatweel (a stretching stroke) carry no meaning. Digits become ASCII digits, and
# every apostrophe-like mark becomes "'" (handled below).
_SCRIPT_VARIANTS = str.maketrans(
    {
        "ي": "ی",
        "ى": "ی",
        "ے": "ی",
        "ك": "ک",
        "ة": "ه",
        "ۃ": "ه",
        "ہ": "ه",
        "ھ": "ه",
        "ٱ": "ا",
        "\u200c": " ",
        "\u200d": None,
        "\u0640": None,
        **{chr(0x0660 + d): str(d) for d in range(10)},
        **{chr(0x06F0 + d): str(d) for d in range(10)},
        **dict.fromkeys(_APOSTROPHES[1:], "'"),
    }
)
# Applied before NFKD, which would otherwise turn the acute accent "´" into a space and a mark.
_APOSTROPHE_FORMS = str.maketrans(dict.fromkeys(_APOSTROPHES[1:], "'"))
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

    Compatibility forms, case, diacritics, punctuation, dashes and Arabic-script letter variants
    are erased, so "Sīstān–Baluchestan", "SISTAN BALUCHESTAN" and "sistan & baluchestan" all
    become "sistan baluchestan". A possessive "'s" stays a separate word ("China's" -> "china s")
    and any other apostrophe joins ("Ja'ish" -> "jaish"). Words are separated by exactly one
    space, which makes word boundaries plain spaces.
    """
    if text.isascii():
        folded = text.lower()
    else:
        folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHE_FORMS)).casefold()
        if not folded.isascii():
            folded = _MARKS.sub("", folded).translate(_SCRIPT_VARIANTS)
            folded = _IDEOGRAPH.sub(r" \g<0> ", folded)
    if "`" in folded:  # the one apostrophe-like mark in ASCII, which skips the translation above
        folded = folded.replace("`", "'")
    if "'" in folded:
        folded = _POSSESSIVE.sub(" s", folded).replace("'", "")
    return _NON_WORD.sub(" ", folded).strip()


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """`normalise(text)`, and for each of its characters the index in `text` it came from.

    Slower than `normalise` (one character at a time), so it is used only to show where a match
    is in the original text.
    """
    chars: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        form = unicodedata.normalize("NFKD", char.translate(_APOSTROPHE_FORMS)).casefold()
        form = _MARKS.sub("", form).translate(_SCRIPT_VARIANTS)
        chars.extend(form)
        origins.extend([index] * len(form))
    out: list[str] = []
    out_origins: list[int] = []
    pending_space = -1  # origin of a run of non-word characters not yet written
    for i, char in enumerate(chars):
        if char == "'":
            possessive = i + 1 < len(chars) and chars[i + 1] == "s"
            # As in `normalise`: the "s" ends a word (an ideograph is a word of its own).
            after = chars[i + 2] if i + 2 < len(chars) else " "
            if possessive and (not after.isalnum() or _IDEOGRAPH.match(after)):
                pending_space = origins[i] if pending_space < 0 else pending_space
            continue
        if char.isalnum():
            ideograph = _IDEOGRAPH.match(char) is not None
            if ideograph and out and out[-1] != " " and pending_space < 0:
                pending_space = origins[i]
            if pending_space >= 0 and out:
                out.append(" ")
                out_origins.append(pending_space)
            pending_space = origins[i] if ideograph else -1
            out.append(char)
            out_origins.append(origins[i])
        elif pending_space < 0:
            pending_space = origins[i]
    return "".join(out), out_origins
