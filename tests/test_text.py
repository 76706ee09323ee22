"""Text helpers: HTML to plain text, and the normalisation both terms and items go through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import collapse_space, html_to_text, normalise

# html_to_text


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("<script>alert('x')</script>Visible", "Visible"),
        ("<style>p { color: red }</style><p>Styled</p>", "Styled"),
        ("<noscript>enable js</noscript><template><p>t</p></template>Shown", "Shown"),
        ("<SCRIPT type='text/javascript'>var a = '<p>';</SCRIPT>After", "After"),
        ("<p>One</p><p>Two</p>", "One Two"),
        ("Line<br>break<br/>here", "Line break here"),
        ("<ul><li>a</li><li>b</li></ul><h2>Head</h2>text", "a b Head text"),
        ("<td>cell</td><td>next</td>", "cell next"),
        ("in<b>line</b>d", "inlined"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&lt;not a tag&gt;", "<not a tag>"),
        ("caf&eacute; &#8211; &#x2014; &nbsp;end", "café – — end"),
        ("  lots \n\t of   space  ", "lots of space"),
        ("", ""),
        ("a < b and c > d", "a < b and c > d"),
    ],
)
def test_html_to_text(markup, expected):
    """Tags dropped (script and style with their content), blocks spaced, entities decoded."""
    assert html_to_text(markup) == expected


def test_html_to_text_unclosed_script_hides_the_rest():
    """An unclosed script hides what follows rather than leaking code as text."""
    assert html_to_text("Before<script>evil()") == "Before"


def test_html_to_text_nested_skipped_tags():
    """Text resumes only after every skipped tag is closed."""
    assert html_to_text("<noscript><style>x</style>still hidden</noscript>shown") == "shown"


def test_collapse_space():
    """Runs of any whitespace become one space; ends are trimmed."""
    assert collapse_space(" a\u00a0\n b\u2003c ") == "a b c"


@given(st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=50))
def test_html_to_text_of_plain_text_only_collapses_space(text):
    """Text without markup or entities comes back unchanged but for whitespace."""
    assert html_to_text(text) == collapse_space(text)


# normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sīstān–Baluchestān", "sistan baluchestan"),
        ("SISTAN BALUCHESTAN", "sistan baluchestan"),
        ("Sistan & Baluchestan", "sistan baluchestan"),
        ("Sistan-Baluchestan", "sistan baluchestan"),
        ("Sistan—Baluchestan", "sistan baluchestan"),
        ("Jaish al-'Adl", "jaish al adl"),
        ("Jaish–al–Adl", "jaish al adl"),
        ("Ümit Çağlar", "umit caglar"),
        ("STRASSE Straße", "strasse strasse"),
        ("  Iran's   envoy... returns!  ", "iran s envoy returns"),
        ("snake_case_word", "snake case word"),
        ("", ""),
    ],
)
def test_normalise(text, expected):
    """Case, accents, punctuation and dashes are erased; words joined by one space."""
    assert normalise(text) == expected


def test_sistan_spellings_are_equal():
    """'Sistan & Baluchestan' and 'Sistan-Baluchestan' normalise to the same text."""
    assert (
        normalise("Sistan & Baluchestan")
        == normalise("Sistan-Baluchestan")
        == normalise("sistan baluchestan")
    )


def test_arabic_letters_become_persian():
    """Arabic yeh and kaf (and alef maksura) are matched as Persian yeh and keheh."""
    assert normalise("\u064a") == "\u06cc"  # ي -> ی
    assert normalise("\u0649") == "\u06cc"  # ى -> ی
    assert normalise("\u0643") == "\u06a9"  # ك -> ک
    assert normalise("پاكستان") == normalise("پاکستان")
    assert normalise("ايران") == normalise("ایران")
    assert normalise("سيستان") == "سیستان"


def test_zero_width_non_joiner_matches_as_a_space():
    """ZWNJ separates word parts like a space: 'اسلام‌آباد' is 'اسلام آباد', 'بازمی‌گردد' is 'بازمی گردد'."""
    assert normalise("اسلام\u200cآباد") == normalise("اسلام آباد") == "اسلام اباد"
    assert normalise("بازمی\u200cگردد") == normalise("بازمی گردد")
    assert normalise("سفیر\u200cها") == "سفیر ها"
    assert normalise("a\u200c\u200cb") == "a b"


def test_zero_width_joiner_removed():
    """ZWJ only shapes letters: it vanishes."""
    assert normalise("a\u200db") == "ab"
    assert normalise("ایران\u200d") == "ایران"


def test_persian_punctuation_splits_words():
    """The Persian comma and question mark are word breaks like their Latin forms."""
    assert normalise("تهران، اسلام آباد؟") == "تهران اسلام اباد"


@given(st.text(max_size=80))
def test_normalise_is_idempotent(text):
    """Normalising normalised text changes nothing."""
    once = normalise(text)
    assert normalise(once) == once


@given(st.text(max_size=80))
def test_normalise_has_single_spaces_and_no_edges(text):
    """Normalised text never has double spaces or spaces at the ends."""
    result = normalise(text)
    assert "  " not in result
    assert result == result.strip()


def test_collapse_space_drops_control_characters():
    """Terminal escapes, NUL and other controls never survive into item text."""
    assert collapse_space("A\x1b[2J title\x00 with\x07 bell\x9b and \ttab") == "A[2J title with bell and tab"
