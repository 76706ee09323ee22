"""The compiled matcher: agreement with the reference evaluator, hits, spans and scores."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.types import Severity
from monitor.watchlists.matcher import Matcher
from monitor.watchlists.model import FIELDS, And, Near, Node, Not, Or, Regex, Term, Watchlist, Word
from monitor.watchlists.query import parse_query
from monitor.watchlists.reference import evaluate

VOCABULARY = ["iran", "iranian", "pak", "pakistan", "zahedan", "ab", "abc", "x1", "border", "guards"]
# How the vocabulary may be written in item text: case, accents, dashes, apostrophes, script.
SPELLINGS = {
    "iran": ["Iran", "IRAN", "Īrān", "iran's", "ایران"],
    "iranian": ["Iranian", "iranians", "IRANIAN"],
    "pak": ["Pak", "pak-", "PAK"],
    "pakistan": ["Pakistan", "Pak-istan", "pakistan’s", "پاکستان"],
    "zahedan": ["Zahedan", "Zāhedān", "zahedan."],
    "ab": ["ab", "AB", "a-b"],
    "abc": ["abc", "ABC", "a'bc"],
    "x1": ["x1", "X1", "x-1"],
    "border": ["border", "Border—", "borders"],
    "guards": ["guards", "Guard", "guards:"],
}
REGEXES = ["ira?n", r"\bpak", "guards?", "(zah|bor)[a-z]+", "x[0-9]"]


def watchlist(query: Node, slug: str = "w") -> Watchlist:
    return Watchlist(slug=slug, name=slug, description="", severity=Severity.MEDIUM, query=query)


fields_st = st.sampled_from([("title", "summary"), ("title",), ("summary",), ("link",), ("source", "title")])
word_st = st.builds(Word, st.sampled_from([*VOCABULARY, "ira", "pa", "bo", "gu"]), st.booleans())


@st.composite
def terms(draw: st.DrawFn) -> Term:
    words = tuple(draw(st.lists(word_st, min_size=1, max_size=3)))
    text = " ".join(str(w) for w in words)
    return Term(text, words, draw(fields_st))


regexes = st.builds(Regex, st.sampled_from(REGEXES), fields_st)
positional = st.recursive(
    st.one_of(terms(), regexes),
    lambda inner: st.one_of(
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=1, max_size=3)),
        st.builds(Near, inner, inner, st.integers(0, 4)),
    ),
    max_leaves=4,
)
queries = st.recursive(
    positional,
    lambda inner: st.one_of(
        st.builds(lambda cs: And(tuple(cs)), st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=1, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=8,
)
spelled_words = st.sampled_from([s for spellings in SPELLINGS.values() for s in spellings] + ["the", "of"])
field_texts = st.lists(spelled_words, max_size=12).map(" ".join)
items = st.fixed_dictionaries(dict.fromkeys(FIELDS, field_texts))


@settings(max_examples=400, deadline=None)
@given(st.lists(queries, min_size=1, max_size=4), items)
def test_compiled_matcher_agrees_with_the_reference_evaluator(
    trees: list[Node], item: dict[str, str]
) -> None:
    matcher = Matcher([watchlist(q, f"w{i}") for i, q in enumerate(trees)])
    matched = {m.watchlist for m in matcher.match_fields(item)}
    expected = {f"w{i}" for i, q in enumerate(trees) if evaluate(q, item)}
    assert matched == expected


SMALL = ["iran", "iranian", "pak", "pakistan", "the"]
small_items = st.fixed_dictionaries(
    {name: st.lists(st.sampled_from(SMALL), max_size=10).map(" ".join) for name in ("title", "summary")}
)
small_terms = st.builds(
    lambda words, fields: Term(" ".join(map(str, words)), tuple(words), fields),
    st.lists(st.builds(Word, st.sampled_from(SMALL), st.booleans()), min_size=1, max_size=2),
    st.sampled_from([("title", "summary"), ("title",)]),
)
small_positional = st.recursive(
    small_terms,
    lambda inner: st.one_of(
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=1, max_size=2)),
        st.builds(Near, inner, inner, st.integers(0, 3)),
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(small_positional, min_size=1, max_size=3), small_items)
def test_word_positions_agree_with_the_reference_evaluator(trees: list[Node], item: dict[str, str]) -> None:
    # A small vocabulary makes terms meet often, which exercises NEAR distances and overlaps.
    matcher = Matcher([watchlist(q, f"w{i}") for i, q in enumerate(trees)])
    matched = {m.watchlist for m in matcher.match_fields(item)}
    assert matched == {f"w{i}" for i, q in enumerate(trees) if evaluate(q, item)}


@settings(max_examples=200, deadline=None)
@given(queries, items)
def test_every_reported_hit_points_at_its_term_in_the_original_text(tree: Node, item: dict[str, str]) -> None:
    for match in Matcher([watchlist(tree)]).match_fields(item):
        for hit in match.hits:
            assert 0 <= hit.start < hit.end <= len(item[hit.field])


def match(query: str, **fields: str) -> list[str]:
    return [m.watchlist for m in Matcher([watchlist(parse_query(query))]).match_fields(fields)]


def test_words_match_whole_words_only() -> None:
    assert match("iran", title="Iran and Pakistan") == ["w"]
    assert match("iran", title="Iranian strikes") == []
    assert match("iran*", title="Iranian strikes") == ["w"]
    assert match("stan", title="Pakistan") == []


def test_a_wildcard_inside_a_phrase() -> None:
    assert match('"return* to post*"', title="Envoys returning to posts in Tehran") == ["w"]
    assert match('"return* to post*"', title="Envoys returning home to posts") == []


def test_near_counts_the_words_between() -> None:
    query = "ambassador NEAR/2 (return* OR resum*)"
    assert match(query, title="Ambassador Mudassir Tipu returns") == ["w"]
    assert match(query, title="Ambassador Mudassir Tipu will return") == []
    assert match(query, title="Returned: the new Iranian ambassador") == []
    assert match(query, title="Returned the ambassador") == ["w"]


def test_near_needs_both_sides_in_the_same_field() -> None:
    assert match("ambassador NEAR/3 return*", title="Ambassador", summary="returns") == []


def test_field_qualifiers() -> None:
    assert match("title:zahedan", summary="Zahedan") == []
    assert match("source:dawn", title="x", source="Dawn") == ["w"]
    assert match("link:dawn.com", title="x", link="https://www.dawn.com/news/1") == ["w"]
    assert match("zahedan", link="https://example.com/zahedan") == []  # title and summary by default


def test_a_query_of_only_not_matches_items_without_the_term() -> None:
    assert match("NOT cricket", title="Zahedan") == ["w"]
    assert match("NOT cricket", title="Cricket in Zahedan") == []


def test_a_regex_runs_on_normalised_text() -> None:
    assert match("/zah[ae]dan/", title="ZĀHEDĀN") == ["w"]
    assert match("/(a+)+b/", title="a" * 5000 + "c") == []  # linear time: this would hang `re`


def test_hits_give_field_spans_in_the_original_text_and_a_score() -> None:
    title = "Gunmen kill 4 in Sīstān-o-Baluchestan"
    query = parse_query('"sistan o baluchestan" AND (gunmen OR cricket) AND NOT flood*')
    (result,) = Matcher([watchlist(query)]).match_fields({"title": title, "summary": "gunmen again"})
    spans = [
        (h.term, h.field, title[h.start : h.end] if h.field == "title" else h.start) for h in result.hits
    ]
    assert spans == [
        ("gunmen", "title", "Gunmen"),
        ('"sistan o baluchestan"', "title", "Sīstān-o-Baluchestan"),
        ("gunmen", "summary", 0),
    ]
    assert result.terms == ("gunmen", '"sistan o baluchestan"')
    assert result.score == 4.0  # two terms, each best found in the title


def test_excluded_terms_are_not_reported() -> None:
    (result,) = Matcher([watchlist(parse_query("zahedan NOT (cricket NOT zahedan)"))]).match_fields(
        {"title": "Zahedan", "summary": ""}
    )
    assert result.terms == ("zahedan",)


def test_no_watchlists_match_nothing() -> None:
    assert Matcher([]).match_fields({"title": "anything"}) == []
