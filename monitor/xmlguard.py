"""Feed bytes made safe to hand to feedparser (pure: bytes and headers in, bytes and headers out).

`prepare` is the entry point: it settles the charset (`prepare`'s docstring), defuses entity
declarations (`defuse`), and cuts what would cost feedparser unbounded time (`_limit_elements`,
`_shorten_people`).

Entities: feedparser parses with expat and, when expat gives up, with its own loose parser, which
expands the "safe-looking" entities it found in the prolog by itself. Neither bounds what entity
references may add to a document: one 100 KB entity referenced 2,000 times becomes a
200-million-character title. So before feedparser sees the bytes, a prolog (everything before the
root element) that declares entities is rebuilt: the XML declaration is kept as it was, the
DOCTYPE keeps its name and external identifier but loses its internal subset, and comments and
processing instructions go. The references to the small, well-formed internal entities are
replaced by their text here, within a budget of what they may add in all; references to every
other declared entity (external, parameter, over the budget, malformed, recursive) are removed.
No entity declaration reaches feedparser, and the document grows by at most the budget.

The bytes keep their encoding: every rewrite is done in whichever encoding feedparser could read
the document in (ASCII-compatible, UTF-16, UTF-32, EBCDIC), and a document that declares entities
in an encoding that can spell markup with other bytes (UTF-7, ...) is refused.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# What the references of a document may add to it in all, in characters. Real feeds declare a
# handful of one-character entities (`<!ENTITY nbsp "&#160;">`), which add nothing; an attack
# needs millions.
ENTITY_BUDGET = 1_000_000
# Declarations read from one internal subset before it counts as hostile and is dropped whole.
MAX_DECLARATIONS = 10_000
# What feedparser is given to read at most. It spends about 10 µs of Python on each element, and
# xml.sax looks each attribute up by a linear search of the element's attributes: 2.5 million
# tiny elements (10 MiB) cost 25 s, one element with 800,000 attributes never finishes. A feed is
# cut before the element past either bound (and before the entry past the entries read).
MAX_ELEMENTS = 50_000
ATTRIBUTE_BUDGET = 10_000_000  # the sum over elements of their attribute count squared
# feedparser adds each category to its entry's list after a linear search for a duplicate: 40,000
# categories in one entry cost 24 s. Each category added counts the ones before it in its entry.
TAG_BUDGET = 10_000_000
# feedparser looks for an email address in the text of author-like elements with a regular
# expression that backtracks quadratically: a 20 KB <author> costs a second, 1 MB an hour. Their
# text is cut to this many characters first (an author is a name and an address).
PERSON_LIMIT = 256
# Levels of entities referring to entities; billion laughs needs ten, real feeds one or two.
MAX_NESTING = 16
# Expansion lengths are counted up to this, so a billion laughs is a number, never a string.
_HUGE = 1 << 60
PREDEFINED = frozenset({"lt", "gt", "amp", "quot", "apos"})

_BOMS = ("\ufeff", "\xef\xbb\xbf")  # a BOM as its view shows it: decoded, or UTF-8 read as Latin-1
_S = re.compile(r"[ \t\r\n]++")
_XML_DECL = re.compile(r"<\?xml[ \t\r\n][^<>]*?\?>")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_PI = re.compile(r"<\?.*?\?>", re.S)
_NAME = r"[^\s<>\[\]\"'%&;/?!=()|,*+#]++"
_LITERAL = r"\"[^\"]*+\"|'[^']*+'"
_DOCTYPE = re.compile(rf"<!DOCTYPE[ \t\r\n]++({_NAME})")
_EXTERNAL_ID = re.compile(
    rf"[ \t\r\n]++(?:SYSTEM[ \t\r\n]*+(?P<system>{_LITERAL})"
    rf"|PUBLIC[ \t\r\n]*+(?P<public>{_LITERAL})(?:[ \t\r\n]*+(?P<public_system>{_LITERAL}))?)"
)
_ENTITY = re.compile(
    rf"<!ENTITY[ \t\r\n]++(?P<parameter>%[ \t\r\n]++)?(?P<name>{_NAME})[ \t\r\n]*+"
    rf"(?:(?P<value>{_LITERAL})|(?:SYSTEM|PUBLIC)[ \t\r\n]*+(?:{_LITERAL})(?:[ \t\r\n]*+(?:{_LITERAL}))?"
    rf"(?:[ \t\r\n]++NDATA[ \t\r\n]++{_NAME})?)[ \t\r\n]*+>"
)
_OTHER_DECL = re.compile(r"<!(?:ELEMENT|ATTLIST|NOTATION)[ \t\r\n](?:[^<>\"']++|\"[^\"]*+\"|'[^']*+')*+>")
_PE_REF = re.compile(rf"%{_NAME};")
# The root element: expat's view (a name may start with a letter, "_", ":" or any non-ASCII
# character) and feedparser's, which ends the prolog at the first `<` and word character.
_ROOT = re.compile(r"<[A-Za-z0-9_:\u0080-\U0010ffff]")
_FEEDPARSER_HEAD_END = re.compile(r"<[A-Za-z0-9_]")
_KEPT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*+")
_REF = re.compile(r"&(?:#([0-9]++)|#x([0-9A-Fa-f]++)|([A-Za-z_:][A-Za-z0-9._:-]*+));")
# Character references that would make a declared value spell new references or markup when it
# is expanded (`&#38;b;` is `&b;` again): values with them are not kept.
_RESPELLING = frozenset({ord("&"), ord("<"), ord("%")})
# Written as character references when a value is put in place of a reference: the value may
# land in an attribute value in either quotes, or next to "]]".
_QUOTED = {"'": "&#39;", '"': "&#34;", ">": "&#62;"}
_QUOTE = re.compile("['\">]")
_ENCODING = re.compile(r"^<\?.*encoding=['\"](.*?)['\"].*\?>")
# Multi-byte encodings in which every byte below 0x80 is that ASCII character and markup
# characters are never part of a longer sequence: their documents read like ASCII here.
_ASCII_TRANSPARENT = frozenset(
    {
        "utf-8", "utf-8-sig", "ascii", "shift_jis", "cp932", "shift_jis_2004", "shift_jisx0213",
        "euc_jp", "euc_jis_2004", "euc_jisx0213", "gb2312", "gbk", "gb18030", "big5",
        "big5hkscs", "cp950", "euc_kr", "cp949",
    }
)  # fmt: skip
_FIXED_WIDTH = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_MARKERS = ("<!DOCTYPE", "<!ENTITY")


class UnsafeXML(ValueError):
    """The document declares entities in a form that cannot be rewritten safely."""


@dataclass(frozen=True, slots=True)
class Defused:
    body: bytes
    notes: tuple[str, ...] = ()  # what was left out, for the feed's warning


@dataclass(frozen=True, slots=True)
class _View:
    """The document as the characters one decoding of it shows, and how to write pieces back."""

    text: str
    codec: str
    body: bytes | None  # set when each character is one byte: pieces are copied from it unchanged

    def piece(self, start: int, end: int) -> bytes:
        if self.body is not None:
            return self.body[start:end]
        return self.text[start:end].encode(self.codec)

    def encode(self, text: str) -> bytes:
        try:
            return text.encode(self.codec)
        except UnicodeEncodeError as e:
            raise UnsafeXML(f"cannot write markup back in {self.codec}") from e


@dataclass(frozen=True, slots=True)
class _Entity:
    name: str
    value: tuple[int, int] | None  # the span of an internal entity's literal value, quotes excluded
    parameter: bool


@dataclass(slots=True)
class _Prolog:
    prefix_end: int  # the BOM and the XML declaration: kept as they are
    root: int  # where the root element starts; len(text) when there is none
    complete: bool  # False: the prolog could not be read, and all of it but the prefix is dropped
    doctype: tuple[int, int] | None = None  # the span of its name
    external_id: list[tuple[int, int]] = field(default_factory=list)  # literal spans, quotes included
    subset: bool = False
    entities: list[_Entity] = field(default_factory=list)
    dropped: int = 0  # parameter entity references and other declarations left out


@dataclass(frozen=True, slots=True)
class Prepared:
    body: bytes
    headers: dict[str, str]
    notes: tuple[str, ...] = ()


# Longest first: a UTF-32 LE mark begins with the UTF-16 LE one.
_BOM_CODECS = (
    (codecs.BOM_UTF32_LE, "utf-32le"),
    (codecs.BOM_UTF32_BE, "utf-32be"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
    (codecs.BOM_UTF16_BE, "utf-16be"),
    (codecs.BOM_UTF8, "utf-8"),
)
# A well-formed UTF-8 sequence of two to four bytes.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def prepare(body: bytes, headers: Mapping[str, str], max_entries: int) -> Prepared:
    """The bytes and response headers (names in lower case) to give feedparser.

    - A byte order mark wins over the Content-Type charset (RFC 7303): feedparser otherwise
      reads a UTF-16 document whose text is all ASCII as UTF-8, NULs and all.
    - A document whose XML declaration says UTF-8, and which is valid UTF-8, is read as UTF-8
      whatever legacy charset the header names.
    - Text declared (or taken by default) as UTF-8 that is mostly UTF-8 gets U+FFFD for its
      invalid bytes, where feedparser would read all of it as windows-1252; text with no valid
      UTF-8 sequence at all is left to that fallback, which reads it right.
    - A character reference to no character (`&#xD800;`, `&#x110000;`), on which feedparser
      raises and the whole feed would be lost, becomes one to U+FFFD; an encoding name in the
      XML declaration or the header that is no encoding name (feedparser raises on a NUL in it)
      is dropped.
    - Entities are defused (`defuse`), and the document is cut short of the entry past
      `max_entries`, or of the element past MAX_ELEMENTS, ATTRIBUTE_BUDGET or TAG_BUDGET; the
      text of author-like elements is cut to PERSON_LIMIT characters.

    Raises UnsafeXML as `defuse` does.
    """
    headers = dict(headers)
    notes: list[str] = []
    media, charset = _content_type(headers.get("content-type", ""))
    if charset and not _ENCODING_NAME.fullmatch(charset):
        headers["content-type"] = media  # feedparser raises on some (a NUL in it) and loses the feed
        notes.append("a charset that is no encoding name was ignored")
        charset = ""
    bom = next((name for mark, name in _BOM_CODECS if body.startswith(mark)), None)
    if bom and _codec(charset) != _codec(bom):
        headers["content-type"] = f"{media or 'application/xml'}; charset={bom}"
        if charset:
            notes.append(f"the byte order mark ({bom}) overrides the declared charset {charset}")
        charset = bom
    found = _ENCODING.match(body[:1024].decode("latin-1").removeprefix(_BOMS[1]))
    declared = found.group(1) if found else ""
    if charset and not bom and _codec(charset) != "utf-8" and _codec(declared) == "utf-8" and _utf8(body):
        # Valid UTF-8 with non-ASCII text is almost never a legacy charset's text by chance.
        headers["content-type"] = f"{media}; charset=utf-8"
        notes.append(f"read as UTF-8, as the document declares and is, not as the header's {charset}")
        charset = "utf-8"
    if _codec(charset or declared or "utf-8") == "utf-8":
        body = _repair_utf8(body, notes)
    body = _repair_char_refs(_blank_bad_encoding_name(body, notes), notes)
    defused = defuse(body, [charset] if charset else [])
    body = _limit_elements(defused.body, max_entries, notes)
    body = _shorten_people(body, notes)
    return Prepared(body, headers, (*notes, *defused.notes))


def _content_type(value: str) -> tuple[str, str]:
    media, *params = value.split(";")
    for param in params:
        key, _, found = param.partition("=")
        if key.strip().lower() == "charset":
            return media.strip(), found.strip().strip("\"'")
    return media.strip(), ""


def _utf8(body: bytes) -> bool:
    """Whether `body` is valid UTF-8 with something beyond ASCII in it."""
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name if name else ""
    except (LookupError, ValueError):  # no such codec, or a name with a NUL in it
        return name


# Character references long enough to be a surrogate or past U+10FFFF: the only ones checked.
_LONG_CHAR_REF = re.compile(r"&#(?:[xX]0*+([0-9a-fA-F]{4,})|0*+([0-9]{5,}));")


def _repair_char_refs(body: bytes, notes: list[str]) -> bytes:
    """References to no character made references to U+FFFD, in whichever encoding the document
    is read in (ASCII-compatible, UTF-16 or 32, EBCDIC)."""
    codec = _codec_of(body)
    if codec == "latin-1" and b"&#" not in body:
        return body
    view = _view_of(body, codec)
    if view is None:
        return body
    out: list[bytes] = []
    copied = 0
    for ref in _LONG_CHAR_REF.finditer(view.text):
        digits = ref.group(1) or ref.group(2)
        code = int(digits, 16 if ref.group(1) else 10) if len(digits) <= 8 else -1
        if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            continue
        out.append(view.piece(copied, ref.start()))
        out.append(view.encode("&#xFFFD;"))
        copied = ref.end()
    if not out:
        return body
    notes.append(f"{len(out) // 2} character references to no character replaced by U+FFFD")
    return b"".join([*out, view.piece(copied, len(view.text))])


# The encoding feedparser reads from an XML declaration and tries to decode with; XML's EncName.
_DECLARED_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")
_ENCODING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*+")


def _blank_bad_encoding_name(body: bytes, notes: list[str]) -> bytes:
    """An encoding name that is no encoding name (bytes that are not UTF-8, a NUL) made empty:
    feedparser raises on it, and the whole feed would be lost."""
    found = _DECLARED_ENCODING.match(body)
    if not found or _ENCODING_NAME.fullmatch(found.group(1).decode("latin-1")):
        return body
    notes.append("an encoding name that is no encoding name was removed from the XML declaration")
    return body[: found.start(1)] + body[found.end(1) :]


def _repair_utf8(body: bytes, notes: list[str]) -> bytes:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        # subn counts without keeping the matches: a 10 MiB feed in Cyrillic has millions.
        valid = _UTF8_SEQUENCE.subn(b"", body)[1]
        if valid == 0:
            return body
        repaired = body.decode("utf-8", "replace")
        invalid = repaired.count("\ufffd") - body.count(b"\xef\xbf\xbd")
        # Legacy text makes valid sequences by chance (EUC-JP, TIS-620: one for every three
        # invalid ones in feedparser's samples); UTF-8 with stray bytes has far more valid ones.
        if 2 * invalid > valid:
            return body
        notes.append(f"invalid UTF-8 replaced by U+FFFD (first at byte {e.start})")
        return repaired.encode("utf-8")
    return body


# A start tag's name, or the opening of a span where `<` and `&` are text.
_TAG_OR_OPENER = re.compile(r"<!\[CDATA\[|<!--|<\?|<([A-Za-z_:][^\s/<>]*+)")
_CLOSERS = {"<![CDATA[": "]]>", "<!--": "-->", "<?": "?>"}
_ENTRY_NAME = re.compile(r"(?:[^:]*+:)?(?:item|entry)")
# Elements that become tags: one each, or one per comma-separated term (itunes:keywords...).
_TAG_NAMES = frozenset({"category", "subject", "keywords", "tags"})
_TAG_LISTS = frozenset({"keywords", "tags"})


def _scan(text: str, start: int, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """Matches of `pattern`, which also matches the openers of CDATA sections, comments and
    processing instructions: those are passed over whole. Linear: an opener without its closer
    ends the scan, where a regular expression would look for the closer from every opener."""
    pos = start
    while found := pattern.search(text, pos):
        closer = _CLOSERS.get(found.group())
        if closer is None:
            pos = found.end()
        else:
            end = text.find(closer, found.end())
            if end < 0:
                return
            pos = end + len(closer)
        yield found


def _codec_of(body: bytes) -> str:
    """The encoding feedparser sniffs: UTF-16 or UTF-32 when a BOM or the first characters say
    so, EBCDIC from its "<?xm"; else latin-1, which shows every ASCII-compatible encoding's
    markup as it is."""
    bom = next((name for mark, name in _BOM_CODECS if body.startswith(mark)), "")
    sniffed = {b"<\x00?\x00": "utf-16le", b"\x00<\x00?": "utf-16be", b"\x4c\x6f\xa7\x94": "cp037"}
    return bom if bom.startswith(("utf-16", "utf-32")) else sniffed.get(body[:4], "latin-1")


def _view_of(body: bytes, codec: str) -> _View | None:
    if codec == "latin-1":
        return _View(body.decode("latin-1"), codec, body)
    if codec == "cp037":  # markup characters are the same bytes in every EBCDIC code page
        return _View(body.translate(_byte_table(codec)).decode("latin-1"), codec, body)
    try:
        return _View(body.decode(codec), codec, None)
    except UnicodeDecodeError:
        return None  # feedparser reads it some other way: as bytes it holds no more than that


def _limit_elements(body: bytes, max_entries: int, notes: list[str]) -> bytes:
    """The document cut before the entry past `max_entries`, or (dropping the entry it is in)
    before the element past MAX_ELEMENTS or a budget, its root closed again."""
    codec = _codec_of(body)
    entries = sum(body.count(f"{p}{n}".encode(codec)) for p in ("<", ":") for n in ("item", "entry"))
    tags, equals, commas = (body.count(c.encode(codec)) for c in "<=,")
    # Quick bounds: no more `<` than elements allowed, and if every `=` were in one element, and
    # every `<` and `,` a category of one entry, all would still be within bounds.
    if (
        tags <= MAX_ELEMENTS
        and equals**2 <= ATTRIBUTE_BUDGET
        and (tags + commas) ** 2 <= 2 * TAG_BUDGET
        and entries <= max_entries
    ):
        return body
    view = _view_of(body, codec)
    if view is None:
        return body
    cut = _cut_point(view.text, max_entries)
    if cut is None:
        return body
    at, closing, reason = cut
    notes.append(reason)
    return view.piece(0, at) + view.encode(closing)


def _cut_point(text: str, max_entries: int) -> tuple[int, str, str] | None:
    """Where to cut `text`, what to close it with, and why; None when it is within bounds."""
    entries = attributes = categories = in_entry = 0
    counted_to = -1
    root = channel = ""
    entry_start = channel_start = -1
    # Comments and CDATA sections count as elements: each costs a step here and in feedparser.
    for nodes, tag in enumerate(_scan(text, 0, _TAG_OR_OPENER), 1):
        name = tag.group(1)
        if name is not None:
            if tag.end() > counted_to:  # each stretch of text is counted once, even in `<a <a <a>`
                end = text.find(">", tag.end())
                counted_to = len(text) if end < 0 else end
                attributes += text.count("=", tag.end(), counted_to) ** 2
            local = name.rpartition(":")[2].lower()
            if not root:
                root = name
            elif not channel and local == "channel":
                channel, channel_start = name, tag.start()
            if _ENTRY_NAME.fullmatch(name):
                entries += 1
                if entries > max_entries:
                    reason = (
                        f"feed has more than {max_entries} entries; only the first {max_entries} were read"
                    )
                    return tag.start(), _closers(text, tag.start(), root, channel, channel_start), reason
                entry_start = tag.start()
                in_entry = 0
            elif local in _TAG_NAMES:
                terms = 1
                if local in _TAG_LISTS and not text.startswith("/>", counted_to - 1):
                    close = text.find("</", tag.end())
                    terms += text.count(",", tag.end(), len(text) if close < 0 else close)
                categories += terms * in_entry + terms * terms // 2
                in_entry += terms
        if nodes > MAX_ELEMENTS or attributes > ATTRIBUTE_BUDGET or categories > TAG_BUDGET:
            what = (
                f"more than {MAX_ELEMENTS} elements"
                if nodes > MAX_ELEMENTS
                else "too many attributes"
                if attributes > ATTRIBUTE_BUDGET
                else "too many categories"
            )
            # The entry being read is left out whole, rather than read in part.
            at = entry_start if entry_start > 0 else tag.start()
            return at, _closers(text, at, root, channel, channel_start), f"feed cut short: {what}"
    return None


def _closers(text: str, cut: int, root: str, channel: str, channel_start: int) -> str:
    """End tags for what is likely still open at `cut`: RSS 2.0's channel, and the root. When the
    guess is wrong, expat fails at the end and feedparser reads the rest leniently."""
    if not root or text.find(f"<{root}", 0, cut) < 0:
        return ""
    closing = ""
    if root.rpartition(":")[2] == "rss" and channel and text.find(f"</{channel}", channel_start, cut) < 0:
        closing = f"</{channel}>"
    return f"{closing}</{root}>\n"


_PEOPLE = "author|managingeditor|webmaster|creator|publisher|owner"
# An author-like start tag, or the opening of a CDATA section, comment or PI, passed over whole.
_PERSON = re.compile(rf"<!\[CDATA\[|<!--|<\?|<((?:[A-Za-z_][\w.-]*+:)?(?i:{_PEOPLE}))(?=[\s/>])[^<>]*+>")
_PERSON_BYTES = re.compile(rf"<(?:[A-Za-z_][\w.-]*+:)?(?i:{_PEOPLE})[\s/>]".encode())
_CDATA_ONLY = re.compile(r"\s*+<!\[CDATA\[(.*)\]\]>\s*+", re.S)
_PARTIAL_REF = re.compile(r"&[^;&<>]*+$")


def _shorten_people(body: bytes, notes: list[str]) -> bytes:
    """The text of each author-like element cut to PERSON_LIMIT characters (a CDATA section
    kept whole around what is kept, anything with markup inside emptied)."""
    codec = _codec_of(body)
    if codec == "latin-1" and not _PERSON_BYTES.search(body):
        return body
    view = _view_of(body, codec)
    if view is None:
        return body
    text = view.text
    out: list[bytes] = []
    copied = searched = shortened = 0
    while found := _PERSON.search(text, searched):
        searched = found.end()
        if found.group(1) is None:  # a CDATA section, comment or PI: its text is not an author's
            end = text.find(_CLOSERS[found.group()], found.end())
            if end < 0:
                break
            searched = end
            continue
        if found.group().endswith("/>"):
            continue
        close = text.find(f"</{found.group(1)}", found.end())
        if close < 0:
            break  # unclosed: expat fails there anyway, and nothing after it is an element's text
        searched = close
        if close - found.end() <= PERSON_LIMIT:
            continue
        content = text[found.end() : close]
        cdata = _CDATA_ONLY.fullmatch(content)
        if cdata and "]]>" not in cdata.group(1):
            kept = f"<![CDATA[{_prefix(cdata.group(1), view)}]]>"
        elif "<" not in content:
            kept = _PARTIAL_REF.sub("", _prefix(content, view))
        else:
            kept = ""
        out.append(view.piece(copied, found.end()))
        out.append(view.encode(kept))
        copied = close
        shortened += 1
    if not shortened:
        return body
    out.append(view.piece(copied, len(text)))
    notes.append(f"{shortened} author fields longer than {PERSON_LIMIT} characters were cut")
    return b"".join(out)


def _prefix(text: str, view: _View) -> str:
    """At most PERSON_LIMIT characters of `text`. Read as Latin-1 a character may be one byte of
    several (UTF-8, Shift_JIS, GBK...): the cut is made after a byte below 0x40, which in all of
    them stands alone."""
    kept = text[:PERSON_LIMIT]
    if view.body is None:
        return kept
    return kept[: max((i + 1 for i, c in enumerate(kept) if c < "@"), default=0)]


def defuse(body: bytes, charsets: Iterable[str] = ()) -> Defused:
    """`body` with no entity declaration left, the references to harmless ones replaced by their text.

    `charsets` are the encodings the response declares (the Content-Type charset); the XML
    declaration's encoding and a BOM are read here. Raises UnsafeXML when the document declares
    entities in an encoding whose markup cannot be told apart byte by byte.
    """
    notes: list[str] = []
    if any(marker.encode("ascii") in body for marker in _MARKERS):
        body = _rewrite(_View(body.decode("latin-1"), "latin-1", body), notes) or body
    for codec in _FIXED_WIDTH:
        if any(marker.encode(codec) in body for marker in _MARKERS):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                continue  # feedparser cannot read it in this encoding either
            body = _rewrite(_View(text, codec, None), notes) or body
    for codec in _declared_codecs(body, charsets):
        body = _other_encoding(body, codec, notes)
    return Defused(body, tuple(dict.fromkeys(notes)))


def _declared_codecs(body: bytes, charsets: Iterable[str]) -> list[str]:
    """Encodings named by the response, the XML declaration or the EBCDIC marker, as codec names."""
    names = [*charsets]
    head = body[:1024]
    if head.startswith(b"\x4c\x6f\xa7\x94"):  # "<?xm" in EBCDIC, which feedparser recognises
        names.append("cp037")
    # The XML declaration as feedparser looks for it: in whichever of these decodings shows one.
    for codec in ("latin-1", "cp037", *_FIXED_WIDTH):
        found = _ENCODING.match(head.decode(codec, "replace").lstrip("\ufeff").removeprefix(_BOMS[1]))
        if found:
            names.append(found.group(1))
    codecs_found: list[str] = []
    for name in names:
        try:
            codec = codecs.lookup(name.strip()).name
        except (LookupError, ValueError):
            continue  # feedparser cannot decode with it either
        if codec not in codecs_found:
            codecs_found.append(codec)
    return codecs_found


def _other_encoding(body: bytes, codec: str, notes: list[str]) -> bytes:
    """Rewrite in a declared encoding that is neither ASCII-compatible nor UTF-16/32, or refuse."""
    kind = _kind(codec)
    if kind in ("ascii", "fixed"):
        return body  # read above
    try:
        text = body.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return body  # feedparser cannot read it in this encoding either
    if not any(marker in text for marker in _MARKERS):
        return body
    if kind == "single":
        return (
            _rewrite(_View(body.translate(_byte_table(codec)).decode("latin-1"), codec, body), notes) or body
        )
    prolog = _read_prolog(text)
    _check_feedparser_head(text, prolog.root)
    if _needs_rewrite(text, prolog):
        raise UnsafeXML(f"entity declarations in {codec}, which can spell markup with other bytes")
    return body


@functools.lru_cache(maxsize=64)
def _kind(codec: str) -> str:
    """ascii (read as Latin-1 above), fixed (UTF-16/32), single (one byte, one character, but not
    ASCII's), or opaque: anything else, whose markup may be spelled by other bytes."""
    if codec in _ASCII_TRANSPARENT:
        return "ascii"
    if codec.startswith(("utf-16", "utf-32")):
        return "fixed"
    try:
        chars = [bytes([b]).decode(codec, "replace") for b in range(256)]
        whole = bytes(range(256)).decode(codec, "replace")
    except (LookupError, ValueError, TypeError):
        return "opaque"
    if all(len(c) == 1 for c in chars) and whole == "".join(chars):
        latin = all(chars[b] == chr(b) for b in range(128)) and all(not c.isascii() for c in chars[128:])
        return "ascii" if latin else "single"
    return "opaque"


@functools.lru_cache(maxsize=16)
def _byte_table(codec: str) -> bytes:
    """Each byte as the ASCII character it stands for in `codec`, or 0x80 when it is none."""
    table = bytearray(256)
    for b in range(256):
        char = bytes([b]).decode(codec, "replace")
        table[b] = ord(char) if char.isascii() else 0x80
    return bytes(table)


def _rewrite(view: _View, notes: list[str]) -> bytes | None:
    """The document with its prolog rebuilt and references replaced, or None when nothing in it
    declares an entity."""
    text = view.text
    prolog = _read_prolog(text)
    _check_feedparser_head(text, prolog.root)
    if not _needs_rewrite(text, prolog):
        return None
    out = [view.piece(0, prolog.prefix_end)]
    replacements: dict[str, tuple[int, int] | None] = {}
    if not prolog.complete:
        notes.append("a DOCTYPE that could not be read was removed")
    elif prolog.doctype is not None:
        replacements = _replacements(text, prolog, notes)
        out.append(view.encode("\n<!DOCTYPE " if prolog.prefix_end else "<!DOCTYPE "))
        out.append(view.piece(*prolog.doctype))
        if prolog.external_id:
            out.append(view.encode(" PUBLIC " if len(prolog.external_id) == 2 else " SYSTEM "))
            out.append(view.encode(" ").join(view.piece(*span) for span in prolog.external_id))
        out.append(view.encode(">\n"))
    out.extend(_substituted(view, prolog, replacements))
    return b"".join(out)


def _needs_rewrite(text: str, prolog: _Prolog) -> bool:
    """Whether the prolog declares anything: it has more than one DOCTYPE without internal subset."""
    head = text[: prolog.root]
    if not any(marker in head for marker in _MARKERS):
        return False
    if not prolog.complete or prolog.subset:
        return True
    return "<!ENTITY" in head or head.count("<!DOCTYPE") > (prolog.doctype is not None)


def _check_feedparser_head(text: str, root: int) -> None:
    """feedparser takes entity declarations from the text before the first `<` and word character:
    when the root element starts otherwise, that text runs on into the document, and must not
    declare anything there either."""
    if _FEEDPARSER_HEAD_END.match(text, root):
        return
    end = _FEEDPARSER_HEAD_END.search(text, root)
    if "<!ENTITY" in text[root : end.start() if end else len(text)]:
        raise UnsafeXML("entity declarations after the prolog")


def _read_prolog(text: str) -> _Prolog:
    pos = next((len(bom) for bom in _BOMS if text.startswith(bom)), 0)
    declaration = _XML_DECL.match(text, pos)
    pos = declaration.end() if declaration else pos
    prolog = _Prolog(prefix_end=pos, root=len(text), complete=False)
    while True:
        space = _S.match(text, pos)
        pos = space.end() if space else pos
        if text.startswith("<!--", pos) or text.startswith("<?", pos):
            found = (_COMMENT if text[pos + 1] == "!" else _PI).match(text, pos)
            if found is None:
                break
            pos = found.end()
        elif text.startswith("<!DOCTYPE", pos) and prolog.doctype is None:
            end = _read_doctype(text, pos, prolog)
            if end is None:
                break
            pos = end
        elif _ROOT.match(text, pos):
            prolog.root = pos
            prolog.complete = True
            return prolog
        else:
            break
    # Unreadable: the prolog is taken to end where something like a start tag first appears, and
    # everything in it but the XML declaration is dropped.
    root = _ROOT.search(text, pos)
    prolog.root = root.start() if root else len(text)
    return prolog


def _read_doctype(text: str, pos: int, prolog: _Prolog) -> int | None:
    """Read the DOCTYPE at `pos` into `prolog`; the position after it, or None if it is malformed."""
    start = _DOCTYPE.match(text, pos)
    if start is None:
        return None
    prolog.doctype = start.span(1)
    pos = start.end()
    external = _EXTERNAL_ID.match(text, pos)
    if external:
        spans = [external.span(g) for g in ("system", "public", "public_system") if external.group(g)]
        # Written back in double quotes, where feedparser's own DOCTYPE pattern reads to the first ">".
        if all('"' not in text[a + 1 : b - 1] and ">" not in text[a:b] for a, b in spans):
            prolog.external_id = [(a + 1, b - 1) for a, b in spans]
        pos = external.end()
    space = _S.match(text, pos)
    pos = space.end() if space else pos
    if text.startswith("[", pos):
        prolog.subset = True
        end = _read_subset(text, pos + 1, prolog)
        if end is None:
            return None
        pos = end
        space = _S.match(text, pos)
        pos = space.end() if space else pos
    return pos + 1 if text.startswith(">", pos) else None


def _read_subset(text: str, pos: int, prolog: _Prolog) -> int | None:
    """Read the internal subset from `pos`; the position after its `]`, or None."""
    for _ in range(MAX_DECLARATIONS):
        space = _S.match(text, pos)
        pos = space.end() if space else pos
        if text.startswith("]", pos):
            return pos + 1
        entity = _ENTITY.match(text, pos)
        if entity:
            value = entity.span("value") if entity.group("value") else None
            if value is not None:
                value = (value[0] + 1, value[1] - 1)
            prolog.entities.append(_Entity(entity.group("name"), value, bool(entity.group("parameter"))))
            pos = entity.end()
            continue
        found = (
            _COMMENT.match(text, pos)
            or _PI.match(text, pos)
            or _OTHER_DECL.match(text, pos)
            or _PE_REF.match(text, pos)
        )
        if found is None:
            return None
        prolog.dropped += not found.group().startswith(("<!--", "<?"))
        pos = found.end()
    return None


def _replacements(text: str, prolog: _Prolog, notes: list[str]) -> dict[str, tuple[int, int] | None]:
    """Each declared general entity: the span of its value when its references are replaced by its
    text (built in `_substituted`), None when they are removed."""
    if prolog.dropped:
        notes.append("parameter entity references and element or attribute declarations were removed")
    declared: dict[str, _Entity] = {}
    for entity in prolog.entities:
        if entity.parameter:
            notes.append("parameter entities were removed")
        elif entity.name not in declared and entity.name not in PREDEFINED:
            declared[entity.name] = entity  # the first declaration of a name is the one that counts
    # The characters each entity's own text adds, and the entities it refers to.
    own: dict[str, int] = {}
    refers: dict[str, list[str]] = {}
    for name, entity in declared.items():
        if entity.value is None:
            notes.append("external entities were removed")
            continue
        parsed = _value(text[entity.value[0] : entity.value[1]])
        if parsed is not None and _KEPT_NAME.fullmatch(name):
            own[name], refers[name] = parsed
    size = {n: c for n, c in _expansions(own, refers).items() if c <= ENTITY_BUDGET}
    if len(size) < len(own):
        notes.append("malformed, recursive or oversized entities were removed")
    growth = {name: n - len(name) - 2 for name, n in size.items() if n > len(name) + 2}
    if _added(text, prolog.root, growth) > ENTITY_BUDGET:
        # Whatever adds characters goes, with what refers to it: the rest are one-character
        # stand-ins, which cannot grow a document.
        size = _expansions({n: c for n, c in own.items() if n not in growth}, refers)
        notes.append("entities whose references would expand past the budget were removed")
    return {name: entity.value if name in size else None for name, entity in declared.items()}


def _added(text: str, start: int, growth: dict[str, int]) -> int:
    """What the references in `text[start:]` to the growing entities add, counted up to the budget."""
    added = 0
    if len(growth) <= 32:  # a C-speed count per name, allocating nothing
        for name, n in growth.items():
            added += text.count(f"&{name};", start) * n
            if added > ENTITY_BUDGET:
                break
        return added
    uses = re.compile("&(" + "|".join(map(re.escape, growth)) + ");")
    for used in uses.finditer(text, start):  # each adds at least one: at most the budget's worth
        added += growth[used.group(1)]
        if added > ENTITY_BUDGET:
            break
    return added


def _value(value: str) -> tuple[int, list[str]] | None:
    """The length of a literal value as written in place of a reference (nested references not
    counted), and the entities it refers to; None when it must not be kept: markup, a parameter
    entity reference, a reference respelled by a character reference, a stray `&`."""
    if "<" in value or "%" in value:
        return None
    names: list[str] = []
    length = 0
    for ref in _REF.finditer(value):
        decimal, hexadecimal, name = ref.groups()
        if name is None:
            code = int(decimal) if decimal else int(hexadecimal, 16)
            if code in _RESPELLING or not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            length += len(ref.group())
        elif name in PREDEFINED:
            length += len(ref.group())
        else:
            names.append(name)
    rest = _REF.sub("", value)
    if "&" in rest:
        return None
    return length + len(rest) + 4 * len(_QUOTE.findall(rest)), names


def _expansions(own: dict[str, int], refers: dict[str, list[str]]) -> dict[str, int]:
    """How long each entity is once expanded (counted up to _HUGE). Entities that refer to an
    unknown, dropped or recursive entity, or nest deeper than MAX_NESTING, are left out."""
    size: dict[str, int] = {}
    pending = dict(own)
    for _ in range(MAX_NESTING):
        # Each round settles the entities whose references are all settled: one level of nesting.
        settled = {
            name: min(own[name] + sum(size[inner] for inner in refers[name]), _HUGE)
            for name in pending
            if all(inner in size for inner in refers[name])
        }
        if not settled:
            break
        size.update(settled)
        for name in settled:
            del pending[name]
    return size


def _substituted(
    view: _View, prolog: _Prolog, replacements: dict[str, tuple[int, int] | None]
) -> list[bytes]:
    """The document from its root on, with each reference to a declared entity replaced: by the
    entity's text (the value at its span, its own references replaced in turn) or by nothing."""
    text = view.text
    if not replacements:
        return [view.piece(prolog.root, len(text))]
    expanded: dict[str, bytes] = {}

    def expansion(name: str) -> bytes:
        # Nested at most MAX_NESTING deep, each built once; kept ones are within the budget.
        span = replacements[name]
        if span is None:
            return b""
        if name not in expanded:
            parts: list[bytes] = []
            pos = span[0]
            for ref in _REF.finditer(text, span[0], span[1]):
                parts.extend(_quoted(view, pos, ref.start()))
                inner = ref.group(3)
                if inner is None or inner in PREDEFINED:
                    parts.append(view.piece(*ref.span()))
                else:
                    parts.append(expansion(inner))
                pos = ref.end()
            parts.extend(_quoted(view, pos, span[1]))
            expanded[name] = b"".join(parts)
        return expanded[name]

    names = "|".join(map(re.escape, sorted(replacements, key=len, reverse=True)))
    pattern = re.compile(rf"<!\[CDATA\[|<!--|<\?|&({names});")
    out: list[bytes] = []
    pos = prolog.root
    for found in _scan(text, prolog.root, pattern):
        name = found.group(1)
        if name is not None:
            out.append(view.piece(pos, found.start()))
            out.append(expansion(name))
            pos = found.end()
    out.append(view.piece(pos, len(text)))
    return out


def _quoted(view: _View, start: int, end: int) -> list[bytes]:
    """The text of a value between references, with quotes and ">" as character references."""
    parts: list[bytes] = []
    for quote in _QUOTE.finditer(view.text, start, end):
        parts.append(view.piece(start, quote.start()))
        parts.append(view.encode(_QUOTED[quote.group()]))
        start = quote.end()
    parts.append(view.piece(start, end))
    return parts
