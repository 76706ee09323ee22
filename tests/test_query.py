"""The watchlist query language: text -> query tree, and every syntax error located by line and column."""

from __future__ import annotations

import pytest

from monitor.watchlists.model import (
    DEFAULT_FIELDS,
    And,
    Near,
    Node,
    Not,
    Or,
    Regex,
    SetRef,
    Term,
    Word,
    describe,
)
from monitor.watchlists.query import (
    DEFAULT_NEAR,
    MAX_NEAR,
    QuerySyntaxError,
    compile_regex,
    parse_query,
    parse_regex,
    parse_term,
)


def T(text: str, fields: tuple[str, ...] = DEFAULT_FIELDS) -> Term:
    """A term of plain lower-case ASCII words, built by hand (not by the parser under test)."""
    words = tuple(Word(w.rstrip("*"), w.endswith("*")) for w in text.split())
    return Term(text, words, fields)


def tree(query: str) -> str:
    return describe(parse_query(query))


def syntax_error(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    return info.value


# Precedence: OR < AND < NOT < NEAR < field


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a OR b AND c", Or((T("a"), And((T("b"), T("c")))))),
        ("a AND b OR c", Or((And((T("a"), T("b"))), T("c")))),
        ("a OR b OR c", Or((T("a"), T("b"), T("c")))),
        ("a AND b AND c", And((T("a"), T("b"), T("c")))),
        ("NOT a AND b", And((Not(T("a")), T("b")))),
        ("NOT a OR b", Or((Not(T("a")), T("b")))),
        ("a AND NOT b", And((T("a"), Not(T("b"))))),
        ("NOT NOT a", Not(Not(T("a")))),
        ("NOT a NEAR b", Not(Near(T("a"), T("b"), DEFAULT_NEAR))),
        ("a NEAR b OR c", Or((Near(T("a"), T("b"), DEFAULT_NEAR), T("c")))),
        ("a NEAR/2 b AND c", And((Near(T("a"), T("b"), 2), T("c")))),
        ("title:a NEAR b", Near(T("a", ("title",)), T("b"), DEFAULT_NEAR)),
        ("a NEAR summary:b", Near(T("a"), T("b", ("summary",)), DEFAULT_NEAR)),
        ("title:a b", And((T("a", ("title",)), T("b")))),
        ("NOT title:a", Not(T("a", ("title",)))),
        ("(a OR b) AND c", And((Or((T("a"), T("b"))), T("c")))),
        ("a OR (b OR c)", Or((T("a"), Or((T("b"), T("c")))))),
    ],
)
def test_precedence_from_loosest_or_to_tightest_field(query: str, expected: Node) -> None:
    """OR binds loosest, then AND, NOT, NEAR, and field qualifiers tightest."""
    assert parse_query(query) == expected


def test_and_is_implied_between_terms() -> None:
    """Two terms side by side are ANDed, exactly as if AND had been written."""
    assert parse_query("a b c") == parse_query("a AND b AND c") == And((T("a"), T("b"), T("c")))
    assert parse_query("a (b OR c)") == And((T("a"), Or((T("b"), T("c")))))
    assert parse_query("a NOT b") == And((T("a"), Not(T("b"))))
    assert parse_query("a OR b c") == Or((T("a"), And((T("b"), T("c")))))


@pytest.mark.parametrize(
    ("query", "same_as"),
    [
        ("a or b", "a OR b"),
        ("a Or b", "a OR b"),
        ("a oR b", "a OR b"),
        ("a and b", "a AND b"),
        ("a AnD b", "a AND b"),
        ("not a", "NOT a"),
        ("a Not b", "a NOT b"),
        ("a near b", "a NEAR b"),
        ("a Near/3 b", "a NEAR/3 b"),
        ("a nEaR/3 b", "a NEAR/3 b"),
    ],
)
def test_operators_are_case_insensitive(query: str, same_as: str) -> None:
    assert parse_query(query) == parse_query(same_as)


def test_words_that_start_with_an_operator_are_words() -> None:
    """ "oregon", "android", "notable", "nearby" are words, not OR/AND/NOT/NEAR plus a rest."""
    assert parse_query("oregon android notable nearby") == And(
        (T("oregon"), T("android"), T("notable"), T("nearby"))
    )
    assert parse_query("ORegon OR Andes") == Or(
        (Term("ORegon", (Word("oregon"),)), Term("Andes", (Word("andes"),)))
    )
    assert parse_query("NOTABLE") == Term("NOTABLE", (Word("notable"),))
    assert parse_query("nearest NEAR/2 origin") == Near(T("nearest"), T("origin"), 2)


@pytest.mark.parametrize("operator", ["or", "OR", "and", "And", "not", "NOT", "near", "NEAR"])
def test_a_quoted_operator_is_a_word(operator: str) -> None:
    """Quoting is how to search for the words "and", "or", "not" and "near" themselves."""
    word = Term(operator, (Word(operator.lower()),))
    assert parse_query(f'"{operator}"') == word
    assert parse_query(f'a "{operator}" b') == And((T("a"), word, T("b")))


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("OR a", "expected a term, found 'OR'", 1),
        ("and a", "expected a term, found 'and'", 1),
        ("a OR OR b", "expected a term, found 'OR'", 6),
        ("a AND AND b", "expected a term, found 'AND'", 7),
        ("NEAR", "expected a term, found 'NEAR'", 1),
        ("near b", "expected a term, found 'near'", 1),
        ("NEAR/5 b", "expected a term, found 'NEAR/5'", 1),
        ("a NOT OR b", "expected a term, found 'OR'", 7),
    ],
)
def test_an_unquoted_operator_is_never_taken_for_a_word(query: str, message: str, column: int) -> None:
    """An operator where a term belongs is an error, not a search for the word "or"."""
    error = syntax_error(query)
    assert error.reason == message
    assert (error.line, error.column) == (1, column)


# Field qualifiers


@pytest.mark.parametrize("field", ["title", "summary", "source", "link"])
def test_a_field_qualifier_limits_a_term_to_that_field(field: str) -> None:
    assert parse_query(f"{field}:zahedan") == T("zahedan", (field,))
    assert parse_query(f"{field.upper()}:zahedan") == T("zahedan", (field,))


def test_unqualified_terms_look_in_title_and_summary() -> None:
    assert DEFAULT_FIELDS == ("title", "summary")
    assert parse_query("zahedan") == T("zahedan")


def test_a_qualifier_applies_to_a_whole_group_and_to_every_kind_of_leaf() -> None:
    title = ("title",)
    assert parse_query('title:(a OR "b c" OR /d+/ OR @towns OR ee*)') == Or(
        (T("a", title), T("b c", title), Regex("d+", title), SetRef("towns", title, 30), T("ee*", title))
    )
    assert parse_query("link:dawn.com") == Term("dawn.com", (Word("dawn"), Word("com")), ("link",))


def test_an_inner_qualifier_wins() -> None:
    """title:(a OR summary:b) looks for b in the summary only."""
    assert parse_query("title:(a OR summary:b)") == Or((T("a", ("title",)), T("b", ("summary",))))
    assert parse_query("summary:(title:a)") == T("a", ("title",))
    assert parse_query("title:title:a") == T("a", ("title",))
    assert parse_query("source:(a NEAR link:b)") == Near(T("a", ("source",)), T("b", ("link",)), DEFAULT_NEAR)
    assert tree("title:(a OR summary:b) c") == "((title:a OR summary:b) AND c)"


@pytest.mark.parametrize(("query", "column"), [("body:x", 5), (":x", 1), ("a : b", 3), ("a title :b", 9)])
def test_a_colon_after_anything_but_a_field_name_is_an_error(query: str, column: int) -> None:
    error = syntax_error(query)
    assert error.reason == "':' follows a field name: title, summary, source or link"
    assert (error.line, error.column) == (1, column)


# NEAR


def test_near_with_a_distance_and_bare_near_is_near_10() -> None:
    assert parse_query("ambassador NEAR/8 return*") == Near(T("ambassador"), T("return*"), 8)
    assert parse_query("a NEAR b") == Near(T("a"), T("b"), 10)
    assert DEFAULT_NEAR == 10
    assert parse_query("a NEAR/0 b") == Near(T("a"), T("b"), 0)
    assert parse_query(f"a NEAR/{MAX_NEAR} b") == Near(T("a"), T("b"), 100)


def test_near_chains_from_the_left() -> None:
    assert parse_query("a NEAR/3 b NEAR/5 c") == Near(Near(T("a"), T("b"), 3), T("c"), 5)


def test_near_joins_words_phrases_sets_regexes_and_or_groups() -> None:
    assert parse_query('@envoys NEAR/8 "back to post*"') == Near(
        SetRef("envoys", DEFAULT_FIELDS, 1), T("back to post*"), 8
    )
    assert parse_query("/zah[ae]dan/ NEAR/2 (attack* OR killed)") == Near(
        Regex("zah[ae]dan"), Or((T("attack*"), T("killed"))), 2
    )
    assert parse_query("(a OR (b OR c NEAR d)) NEAR e") == Near(
        Or((T("a"), Or((T("b"), Near(T("c"), T("d"), 10))))), T("e"), 10
    )


@pytest.mark.parametrize(
    ("query", "bad", "line", "column"),
    [
        ("a NEAR (b AND c)", "AND", 1, 8),
        ("a NEAR (b c)", "AND", 1, 8),
        ("(a b) NEAR c", "AND", 1, 1),
        ("a NEAR (NOT b)", "NOT", 1, 8),
        ("a NEAR (b OR (c AND d))", "AND", 1, 8),
        ("a NEAR (b OR NOT c)", "NOT", 1, 8),
        ("x OR\na NEAR/3 (b AND c)", "AND", 2, 10),
    ],
)
def test_near_over_and_or_not_is_rejected_with_its_position(
    query: str, bad: str, line: int, column: int
) -> None:
    error = syntax_error(query)
    assert error.reason == f"NEAR joins words, phrases, @sets, /regexes/ or OR-groups of them, not {bad}"
    assert (error.line, error.column) == (line, column)


@pytest.mark.parametrize(("distance", "column"), [(101, 3), (999, 3)])
def test_near_beyond_100_is_rejected(distance: int, column: int) -> None:
    error = syntax_error(f"a NEAR/{distance} b")
    assert str(error) == f"NEAR/{distance} is too far; use at most NEAR/100 at column {column}"
    assert (error.line, error.column) == (1, column)


# Terms: wildcards, phrases, hyphens


def test_a_trailing_wildcard_matches_word_starts() -> None:
    assert parse_query("Baluch*") == Term("Baluch*", (Word("baluch", True),))
    assert parse_query("ab*") == Term("ab*", (Word("ab", True),))
    assert parse_query("Zā*") == Term("Zā*", (Word("za", True),))


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("a*", "'a*': a wildcard needs at least two letters before the *", 1),
        ("x 1*", "'1*': a wildcard needs at least two letters before the *", 3),
        ("é*", "'é*': a wildcard needs at least two letters before the *", 1),
        ('title:"x y*"', "'x y*': a wildcard needs at least two letters before the *", 7),
        ("Za*hedan", "'Za*hedan': a wildcard * may only end a word", 1),
        ("x *zahedan", "'*zahedan': a wildcard * may only end a word", 3),
        ('"re*turn to post"', "'re*turn': a wildcard * may only end a word", 1),
        ("*", "'*' has no letters or digits to match", 1),
        ("a - b", "'-' has no letters or digits to match", 3),
        ('x ""', "an empty phrase matches nothing", 3),
    ],
)
def test_bad_terms_are_errors_at_their_column(query: str, message: str, column: int) -> None:
    error = syntax_error(query)
    assert error.reason == message
    assert (error.line, error.column) == (1, column)
    assert str(error) == f"{message} at column {column}"


def test_a_phrase_matches_words_in_order_with_wildcards_inside() -> None:
    assert parse_query('"border guards"') == Term("border guards", (Word("border"), Word("guards")))
    assert parse_query('"return* to post*"') == Term(
        "return* to post*", (Word("return", True), Word("to"), Word("post", True))
    )
    assert parse_query('"  border   guards "') == Term("border guards", (Word("border"), Word("guards")))


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("Sistan-Baluchestan", ("sistan", "baluchestan")),
        ("Sistan-o-Baluchestan", ("sistan", "o", "baluchestan")),
        ("Jaish-al-Adl", ("jaish", "al", "adl")),
        ("link:dawn.com", ("dawn", "com")),
    ],
)
def test_an_unquoted_hyphenated_word_is_a_phrase(written: str, words: tuple[str, ...]) -> None:
    term = parse_query(written)
    assert isinstance(term, Term)
    assert term.words == tuple(Word(w) for w in words)
    quoted = parse_query(f'"{" ".join(words)}"')
    assert isinstance(quoted, Term)
    assert term.key == quoted.key  # the same phrase: they match the same places


def test_punctuation_between_the_words_of_a_phrase_is_a_word_break() -> None:
    """Terms are normalised like text: "Sistan & Baluchestan" is the phrase "sistan baluchestan"."""
    for written in ('"Sistan & Baluchestan"', '"Sistan — Baluchestan"', '"Sistan - Baluchestan"'):
        term = parse_query(written)
        assert isinstance(term, Term)
        assert term.words == (Word("sistan"), Word("baluchestan"))


def test_a_hyphenated_word_with_a_wildcard_keeps_the_wildcard_on_its_last_word() -> None:
    term = parse_query("Sistan-Baluch*")
    assert isinstance(term, Term)
    assert term.words == (Word("sistan"), Word("baluch", True))


# Term sets


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("@towns", SetRef("towns", DEFAULT_FIELDS, 1, 1)),
        ("attack* AND @sistan_towns", And((T("attack*"), SetRef("sistan_towns", DEFAULT_FIELDS, 13, 1)))),
        ("title:@towns", SetRef("towns", ("title",), 7, 1)),
        ("x OR\n   @my-set2", Or((T("x"), SetRef("my-set2", DEFAULT_FIELDS, 4, 2)))),
    ],
)
def test_set_references_keep_their_name_fields_and_position(query: str, expected: Node) -> None:
    assert parse_query(query) == expected


@pytest.mark.parametrize(("query", "column"), [("@a.b", 1), ("x @-x", 3), ("@é", 1), ("a OR @x!", 6)])
def test_an_invalid_set_name_is_an_error(query: str, column: int) -> None:
    error = syntax_error(query)
    name = query.split()[-1]
    assert error.reason == f"{name!r} is not a term-set name (letters, digits, _ and -)"
    assert (error.line, error.column) == (1, column)


def test_a_lone_at_sign_is_an_error() -> None:
    error = syntax_error("a @")
    assert error.reason == "unexpected '@'"
    assert error.column == 3


# Regexes


def test_a_regex_is_a_leaf_with_its_pattern() -> None:
    assert parse_query("/zah[ae]dan/") == Regex("zah[ae]dan")
    assert parse_query(r"/a\/b/") == Regex(r"a\/b")
    assert parse_query("a /x+/ b") == And((T("a"), Regex("x+"), T("b")))
    assert parse_regex("zah[ae]dan", ("link",)) == Regex("zah[ae]dan", ("link",))


def test_an_invalid_regex_is_an_error_at_its_column() -> None:
    """The README's example, word for word."""
    error = syntax_error("Zahedan OR /(a/")
    assert str(error) == "/(a/ is not a valid regular expression (missing ): (a) at column 12"
    assert (error.line, error.column) == (1, 12)
    with pytest.raises(QuerySyntaxError, match=r"^/\[a/ is not a valid regular expression \("):
        parse_regex("[a")


@pytest.mark.parametrize("pattern", ["a*", "x?", "^", "$", "(a|)", "(?:)", "a{0,3}"])
def test_a_regex_that_matches_empty_text_is_an_error(pattern: str) -> None:
    """It would match every item."""
    error = syntax_error(f"zahedan OR /{pattern}/")
    assert error.reason == f"/{pattern}/ matches empty text, so it would match every item"
    assert error.column == 12


def test_a_catastrophic_pattern_compiles_and_runs_in_linear_time() -> None:
    """/(a+)+b/ hangs a backtracking engine on "aaaa...c"; RE2 answers at once."""
    assert parse_query("/(a+)+b/") == Regex("(a+)+b")
    compiled = compile_regex("(a+)+b")
    assert compiled.search("a" * 50_000 + "c") is None
    assert compiled.search("a" * 50_000 + "b") is not None


def test_regexes_ignore_case() -> None:
    assert compile_regex("Zahedan").search("in zahedan today") is not None


# Syntax errors: exact messages and positions


@pytest.mark.parametrize(
    ("query", "message", "line", "column"),
    [
        # unclosed parenthesis
        ("(Zahedan OR Saravan", "expected ')', the query ends", 1, 20),
        ("(@sistan_places OR Baluch*) AND (att", "expected ')', the query ends", 1, 37),
        ("title:(a OR b", "expected ')', the query ends", 1, 14),
        # trailing operator
        ("Zahedan OR", "expected a term, the query ends", 1, 11),
        ("Zahedan AND", "expected a term, the query ends", 1, 12),
        ("Zahedan AND NOT", "expected a term, the query ends", 1, 16),
        ("Zahedan NEAR", "expected a term, the query ends", 1, 13),
        ("Zahedan NEAR/5", "expected a term, the query ends", 1, 15),
        ("Zahedan OR   ", "expected a term, the query ends", 1, 11),
        ("title:", "expected a term, the query ends", 1, 7),
        ("(", "expected a term, the query ends", 1, 2),
        # stray closing parenthesis
        ("Zahedan)", "expected the end of the query, found ')'", 1, 8),
        ("(a OR b))", "expected the end of the query, found ')'", 1, 9),
        (")", "expected a term, found ')'", 1, 1),
        ("a ()", "expected a term, found ')'", 1, 4),
        # unclosed quote and regex, stray colon
        ('a "border guards', 'unclosed quote: a phrase needs a closing "', 1, 3),
        ("a /zah[ae]dan", "unclosed regex: write it as /pattern/", 1, 3),
        ("/a\nb/", "unclosed regex: write it as /pattern/", 1, 1),
        ("a :b", "':' follows a field name: title, summary, source or link", 1, 3),
        # several lines
        ("Zahedan\nAND (attack*\nOR killed", "expected ')', the query ends", 3, 10),
        ("Zahedan\nAND (attack*\nOR killed\n\n", "expected ')', the query ends", 3, 10),
        ("Zahedan OR\r\n(attack*", "expected ')', the query ends", 2, 9),
        ("Zahedan\nAND\n", "expected a term, the query ends", 2, 4),
        ("a\n\n  )", "expected the end of the query, found ')'", 3, 3),
        ('a\n  "open', 'unclosed quote: a phrase needs a closing "', 2, 3),
        ("a\n  Za*hedan", "'Za*hedan': a wildcard * may only end a word", 2, 3),
        ("a\nb NEAR/500 c", "NEAR/500 is too far; use at most NEAR/100", 2, 3),
    ],
)
def test_syntax_errors_say_what_and_where(query: str, message: str, line: int, column: int) -> None:
    error = syntax_error(query)
    assert error.reason == message
    assert (error.line, error.column) == (line, column)
    where = f"column {column}" if line == 1 else f"line {line}, column {column}"
    assert str(error) == f"{message} at {where}"


@pytest.mark.parametrize("query", ["", "   ", "\n\t\n"])
def test_an_empty_query_is_an_error(query: str) -> None:
    error = syntax_error(query)
    assert str(error) == "the query is empty; write what to match, e.g. 'Zahedan AND attack*' at column 1"
    assert (error.line, error.column) == (1, 1)


def test_a_query_over_several_lines_parses_like_one_line() -> None:
    """The shape the shipped watchlists use: a TOML multi-line string."""
    written = '\n(@places OR "Jaish al-Adl")\n  AND (attack* OR killed)\n  AND NOT title:flood*\n'
    flat = '(@places OR "Jaish al-Adl") AND (attack* OR killed) AND NOT title:flood*'
    assert describe(parse_query(written)) == describe(parse_query(flat))
    assert describe(parse_query(flat)) == (
        '((@places OR "Jaish al-Adl") AND (attack* OR killed) AND NOT title:flood*)'
    )


def test_query_syntax_error_carries_line_column_and_reason() -> None:
    error = QuerySyntaxError("something is off", 3, 7)
    assert (error.line, error.column, error.reason) == (3, 7, "something is off")
    assert str(error) == "something is off at line 3, column 7"
    assert str(QuerySyntaxError("x", 1, 2)) == "x at column 2"
    assert isinstance(error, ValueError)


# parse_term and parse_regex on their own (term-set entries use them)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Zahedan", (Word("zahedan"),)),
        ("ZĀHEDĀN", (Word("zahedan"),)),
        ("  border   guards  ", (Word("border"), Word("guards"))),
        ("Sistan & Baluchestan", (Word("sistan"), Word("baluchestan"))),
        ("China's", (Word("china"), Word("s"))),
        ("Ja'ish al-Adl", (Word("jaish"), Word("al"), Word("adl"))),
        ("return* to post*", (Word("return", True), Word("to"), Word("post", True))),
        ("سیستان و بلوچستان", (Word("سیستان"), Word("و"), Word("بلوچستان"))),
        ("سيستان", (Word("سیستان"),)),
    ],
)
def test_parse_term_normalises_each_word(text: str, words: tuple[Word, ...]) -> None:
    term = parse_term(text)
    assert term.words == words
    assert term.text == " ".join(text.split())
    assert term.fields == DEFAULT_FIELDS


def test_parse_term_keeps_the_given_fields_and_a_key() -> None:
    term = parse_term("Return* to Post*", ("title",))
    assert term.fields == ("title",)
    assert term.key == "return* to post*"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty phrase matches nothing"),
        ("   ", "an empty phrase matches nothing"),
        ("--", "'--' has no letters or digits to match"),
        ("a*", "'a*': a wildcard needs at least two letters before the *"),
        ("Za*hedan", "'Za*hedan': a wildcard * may only end a word"),
        ("x *", "'*' has no letters or digits to match"),
        ("- -", "'- -' has no letters or digits to match"),
    ],
)
def test_parse_term_errors(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_term(text)
    assert info.value.reason == message
