"""Text helpers shared by parsing and matching: HTML to plain text, and match normalisation."""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

# C0 and C1 controls other than whitespace: an ESC in a title must not reach a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_POSSESSIVE = re.compile(r"'s(?![^\W_])")  # not followed by a letter or digit ("_" is a break)
_APOSTROPHES = "'\u2019\u2018\u02bc\u02bb\u02be\u02bf`\u00b4\u2032\uff07"


def _nonspacing_marks() -> list[tuple[int, int]]:
    # Accents, Arabic short vowels and hamza signs: every nonspacing or enclosing mark in the
    # Basic and Supplementary Multilingual Planes, plus the variation selectors.
    ranges: list[tuple[int, int]] = []
    start = previous = -2
    for code in range(0x20000):
        if unicodedata.category(chr(code)) in ("Mn", "Me"):
            if code != previous + 1:
                if start >= 0:
                    ranges.append((start, previous))
                start = code
            previous = code
    return [*ranges, (start, previous), (0xE0100, 0xE01EF)]


def _character_class(ranges: list[tuple[int, int]]) -> re.Pattern[str]:
    return re.compile("[" + "".join(f"{chr(first)}-{chr(last)}" for first, last in ranges) + "]")


_MARK_RANGES = _nonspacing_marks()
_MARKS = _character_class(_MARK_RANGES)
# `re` tests a character against the BMP part of a class in one step, but against its astral
# ranges (over a hundred here) one by one: whole texts lose their BMP marks in one pass, and their
# astral marks in a second pass only when they have astral characters.
_MARKS_BMP = _character_class([(a, min(b, 0xFFFF)) for a, b in _MARK_RANGES if a <= 0xFFFF])
_MARKS_ASTRAL = _character_class([(max(a, 0x10000), b) for a, b in _MARK_RANGES if b > 0xFFFF])
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
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
# The same two tables for whole texts: `str.translate` with a dict looks up every character of a
# non-ASCII text (slow); a regex finds the few characters to replace.
_APOSTROPHE_LIKE = re.compile(f"[{re.escape(_APOSTROPHES[1:])}]")
_VARIANT_OF = {chr(code): value or "" for code, value in _SCRIPT_VARIANTS.items()}
_VARIANT = re.compile("[" + "".join(map(re.escape, _VARIANT_OF)) + "]")
# Word breaks: every ASCII character but letters and digits (a 1:1 ASCII table, which CPython
# translates fast), and in other text whatever is neither a word character nor a space, and "_".
_ASCII_BREAKS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_CHUNK = re.compile(r"\S+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
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
# Tags whose content is not plain markup: skipped here, or raw text to `HTMLParser` (script and
# style; textarea and title too in some Python versions), and the rest of the HTML raw text
# elements, which its future versions may treat so as well.
_APART_TAGS = _SKIPPED_TAGS | {"textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
# A start tag (attribute values quoted, without "<" or ">" in them) or an end tag, with HTML's own
# spaces only (`HTMLParser` versions differ in whether other Unicode spaces count).
_PLAIN_TAG = re.compile(
    r"<(?:([a-zA-Z][a-zA-Z0-9]*)"
    r"""(?:[ \t\n\r\f]+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:"[^"<>]*"|'[^'<>]*'))?)*"""
    r"[ \t\n\r\f]*/?|/([a-zA-Z][a-zA-Z0-9]*)[ \t\n\r\f]*)>"
)


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
    if "<" not in markup:
        # Without tags the parser would only decode the entities (`html.unescape`).
        return collapse_space(unescape(markup) if "&" in markup else markup)
    text = _plain_markup_text(markup)
    if text is None:
        parser = _TextExtractor()
        parser.feed(_defused_tail(markup))
        parser.close()
        text = "".join(parser.parts)
    return collapse_space(text)


# More "<" than this that can open nothing are given to the parser as text (see `_defused_tail`).
_UNCLOSABLE_TAGS = 32


def _defused_tail(markup: str) -> str:
    """`markup`, with each "<" after its last ">", and each "<!--" after its last "-->", escaped
    when there are many of them.

    Such a "<" can open no tag (or comment), and `HTMLParser` scans to the end of the input for
    each one before giving it up: quadratic, 25 s for the 64 KB of "<a <a <a ..." a summary may
    carry. Python 3.11 and 3.12 then read it as text, which is what escaping it gives at once
    (newer versions drop an unclosed tag at the end instead; a few are left to the parser, so
    ordinary markup reads as the parser reads it on every version).
    """
    for opening, closing in (("<", ">"), ("<!--", "-->")):
        end = markup.rfind(closing) + len(closing) if closing in markup else 0
        if markup.count(opening, end) > _UNCLOSABLE_TAGS:
            markup = markup[:end] + markup[end:].replace(opening, "&lt;" + opening[1:])
    return markup


def _plain_markup_text(markup: str) -> str | None:
    """What `_TextExtractor` gives for markup of plain tags only, in one pass; None for other markup.

    Most feed markup is paragraphs, links and emphasis: tags with a name of letters and digits and
    quoted attribute values, which `HTMLParser` reads in one way only. Between them is text, which
    it passes on with its entities decoded. Any other "<" (comments, declarations, broken tags), or
    a tag whose content the parser or `_TextExtractor` treats apart, leaves the markup to the parser.
    """
    pieces = _PLAIN_TAG.split(markup)  # text, start tag name, end tag name, text, ...
    parts: list[str] = []
    for index in range(0, len(pieces) - 1, 3):
        text = pieces[index]
        if "<" in text:
            return None
        parts.append(unescape(text) if "&" in text else text)
        name = (pieces[index + 1] or pieces[index + 2]).lower()
        if name in _APART_TAGS:
            return None
        if name in _BLOCK_TAGS:
            parts.append(" ")
    text = pieces[-1]
    if "<" in text:
        return None
    parts.append(unescape(text) if "&" in text else text)
    return "".join(parts)


def collapse_space(text: str) -> str:
    """One space between words, and no control characters (terminal escapes, NUL) left in."""
    if not text.isprintable():  # no control character is printable, and most text has none
        text = _CONTROL.sub("", text)
    # str.split() splits at exactly the characters regex "\s" matches.
    return " ".join(text.split())


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
        try:
            folded = text.encode("ascii", _FOLD_TO_ASCII).decode("ascii").lower()
        except UnicodeEncodeError:  # a character with no ASCII form (Arabic, Chinese, ...)
            folded = _fold(text)
    return _words(folded)


def _words(folded: str) -> str:
    """A folded text's words, joined by single spaces; a possessive "'s" a word of its own."""
    if "`" in folded:  # the one apostrophe-like mark in ASCII, which skips the translation above
        folded = folded.replace("`", "'")
    if "'" in folded:
        folded = _POSSESSIVE.sub(" s", folded).replace("'", "")
    # Words are the runs of letters and digits ([^\W_]+), joined by single spaces.
    if folded.isascii():
        return " ".join(folded.translate(_ASCII_BREAKS).split())
    return " ".join(_PUNCTUATION.sub(" ", folded).split())


def _fold(text: str) -> str:
    """Compatibility forms, case, marks and script variants of a whole text folded (`normalise`)."""
    folded = unicodedata.normalize("NFKD", _APOSTROPHE_LIKE.sub("'", text)).casefold()
    if not folded.isascii():
        folded = _MARKS_BMP.sub("", folded)
        if _ASTRAL.search(folded):
            folded = _MARKS_ASTRAL.sub("", folded)
        folded = _VARIANT.sub(_variant, folded)
        folded = _IDEOGRAPH.sub(r" \g<0> ", folded)
    return folded


def _ascii_forms(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: the forms of a run of non-ASCII characters, when each is ASCII.

    Most news in Latin script is ASCII but for its quotes, dashes and accented names, and each of
    `_fold`'s steps scans the whole text in Python's `re` (a dozen µs a kilobyte each). Encoding
    to ASCII copies the ASCII at C speed and calls this for the rest only. Folding a character at
    a time gives the words folding the text gives: NFKD and case folding work a character at a
    time, and the only characters they reorder are marks, dropped or made breaks.
    """
    if not isinstance(error, UnicodeEncodeError):
        raise error
    forms = [_ascii_form(char) for char in error.object[error.start : error.end]]
    if None in forms:
        raise error
    return "".join(forms), error.end  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _ascii_form(char: str) -> str | None:
    """A character folded, with what is neither a letter, a digit nor an apostrophe made a break
    (a space, as `_words` would); None unless that is ASCII."""
    form = "".join(c if c.isalnum() or c == "'" else " " for c in _character_form(char))
    return form if form.isascii() else None


_FOLD_TO_ASCII = "monitor.fold-to-ascii"
codecs.register_error(_FOLD_TO_ASCII, _ascii_forms)


def _variant(match: re.Match[str]) -> str:
    return _VARIANT_OF[match.group()]


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """`normalise(text)`, and for each of its characters the index in `text` it came from.

    Slower than `normalise`, so it is used only to show where a match is in the original text.
    The text is taken one whitespace-separated chunk at a time: an ASCII chunk without
    apostrophes is lower case letters and digits between breaks, the rest goes one character at
    a time. Whitespace is a break; a run of breaks becomes one space, from the first of them.
    """
    out: list[str] = []  # words, and single spaces between them
    out_origins: list[int] = []
    pending_space = -1  # origin of a run of non-word characters not yet written
    previous_end = 0
    for chunk in _CHUNK.finditer(text):
        start = chunk.start()
        if start > previous_end and pending_space < 0:
            pending_space = previous_end
        word = chunk.group()
        if word.isascii() and "'" not in word and "`" not in word:
            position = 0
            for run in _ASCII_WORD.finditer(word.lower()):
                if run.start() > position and pending_space < 0:
                    pending_space = start + position
                if pending_space >= 0 and out:
                    out.append(" ")
                    out_origins.append(pending_space)
                pending_space = -1
                out.append(run.group())
                out_origins.extend(range(start + run.start(), start + run.end()))
                position = run.end()
            if position < len(word) and pending_space < 0:
                pending_space = start + position
        else:
            pending_space = _chunk_offsets(word, start, out, out_origins, pending_space)
        previous_end = chunk.end()
    return "".join(out), out_origins


@functools.lru_cache(maxsize=4096)
def _character_form(char: str) -> str:
    form = unicodedata.normalize("NFKD", char.translate(_APOSTROPHE_FORMS)).casefold()
    return _MARKS.sub("", form).translate(_SCRIPT_VARIANTS)


def _chunk_offsets(text: str, offset: int, out: list[str], out_origins: list[int], pending_space: int) -> int:
    """`normalise_with_offsets` of one chunk, one character at a time; the new pending space."""
    chars: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text, offset):
        form = _character_form(char)
        chars.extend(form)
        origins.extend([index] * len(form))
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
    return pending_space
