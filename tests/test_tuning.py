"""Tuning: items read from files, scores on a labelled corpus, backtest differences, explanations."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.dedup import content_hash
from monitor.errors import ParseError
from monitor.tuning import (
    DayCounts,
    Miss,
    SampleItem,
    Scores,
    backtest,
    read_items,
    render_highlighted,
    render_trace,
    score,
    scores_json,
    story_scores,
)
from monitor.types import Hit, Item, StoredItem
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.loader import parse_watchlist
from monitor.watchlists.reference import trace

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)


def jsonl(path: Path, *rows: dict[str, Any] | str) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_error(path: Path) -> str:
    with pytest.raises(ParseError) as info:
        read_items(path, NOW)
    assert info.value.feed == str(path)
    return str(info.value)


def watchlist(slug: str, query: str, **terms: list[str]) -> Watchlist:
    raw: dict[str, Any] = {"name": slug.title(), "query": query}
    if terms:
        raw["terms"] = terms
    return parse_watchlist(slug, raw, Path(f"{slug}.toml"))


# read_items: JSON Lines


def test_json_lines_give_ids_text_links_sources_and_labels(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "items.jsonl",
        {
            "id": "sig-001",
            "title": "Gunmen attack police in Rask",
            "summary": "Eleven killed.",
            "link": "https://example.com/rask",
            "published": "2024-01-18T04:05:00Z",
            "source": "dawn",
            "labels": ["sistan-baluchestan", "jaish-al-adl"],
        },
        {"id": 7, "title": "A numbered item", "labels": []},
        {"title": "No id, a link", "link": "https://example.com/b"},
        {"title": "No id, no link", "summary": "Only text"},
    )
    first, second, third, fourth = read_items(path, NOW)
    assert first.id == "sig-001"
    assert first.item == Item(
        feed="dawn",
        key="sig-001",
        title="Gunmen attack police in Rask",
        summary="Eleven killed.",
        link="https://example.com/rask",
        published=datetime(2024, 1, 18, 4, 5, tzinfo=UTC),
    )
    assert first.labels == frozenset({"sistan-baluchestan", "jaish-al-adl"})
    assert (second.id, second.labels, second.item.summary) == ("7", frozenset(), "")
    assert (third.id, third.item.link, third.labels) == (
        "https://example.com/b",
        "https://example.com/b",
        None,
    )
    assert fourth.id == content_hash("No id, no link", "Only text")
    assert fourth.item.link is None
    assert fourth.item.feed == "items"  # no source: the file's stem
    assert fourth.item.published == NOW  # no date: now


def test_an_id_of_zero_is_an_id(tmp_path: Path) -> None:
    (sample,) = read_items(jsonl(tmp_path / "i.jsonl", {"id": 0, "title": "t", "link": "https://x/"}), NOW)
    assert sample.id == "0"


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2024-01-18T04:05:00Z", datetime(2024, 1, 18, 4, 5, tzinfo=UTC)),
        ("2024-01-18T04:05:00+00:00", datetime(2024, 1, 18, 4, 5, tzinfo=UTC)),
        ("2024-01-18T09:05:00+05:00", datetime(2024, 1, 18, 4, 5, tzinfo=UTC)),
        ("2024-01-18T04:05:00", datetime(2024, 1, 18, 4, 5, tzinfo=UTC)),  # naive: UTC
        ("2024-01-18", datetime(2024, 1, 18, tzinfo=UTC)),
    ],
)
def test_published_dates_are_parsed_as_aware_datetimes(
    tmp_path: Path, published: str, expected: datetime
) -> None:
    (sample,) = read_items(jsonl(tmp_path / "i.jsonl", {"title": "t", "published": published}), NOW)
    assert sample.item.published == expected
    assert sample.item.published.tzinfo is not None


def test_a_non_string_published_or_link_is_ignored(tmp_path: Path) -> None:
    (sample,) = read_items(jsonl(tmp_path / "i.jsonl", {"title": "t", "published": 3, "link": 4}), NOW)
    assert sample.item.published == NOW
    assert sample.item.link is None


def test_blank_lines_are_skipped_and_a_bom_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "title": "A"}\n\n   \n{"id": "b", "title": "B"}\n')
    assert [s.id for s in read_items(path, NOW)] == ["a", "b"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ['{"id": "a", "title": "A"}', "", '{"id": 1,'],
            "line 3: not JSON (Expecting property name enclosed in double quotes at column 10)",
        ),
        (['{"title": "A"}', "not json"], "line 2: not JSON (Expecting value at column 1)"),
        (["[1, 2]"], "line 1: expected an object with title and summary"),
        (['{"id": "a"}'], "line 1: needs a `title` or a `summary` (strings)"),
        (['{"title": "", "summary": ""}'], "line 1: needs a `title` or a `summary` (strings)"),
        (['{"title": 3}'], "line 1: needs a `title` or a `summary` (strings)"),
        (['{"title": "t", "summary": ["x"]}'], "line 1: needs a `title` or a `summary` (strings)"),
        (
            ['{"title": "t", "labels": "sistan-baluchestan"}'],
            "line 1: `labels` must be a list of watchlist slugs",
        ),
        (['{"title": "t", "labels": ["a", 1]}'], "line 1: `labels` must be a list of watchlist slugs"),
        (['{"title": "t", "published": "last Tuesday"}'], "line 1: `published` is not an ISO 8601 date"),
    ],
)
def test_bad_lines_are_reported_with_file_and_line_number(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    path = jsonl(tmp_path / "items.jsonl", *rows)
    assert parse_error(path) == f"{path}: {message}"


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"title": "caf\xe9"}\n')
    assert parse_error(path) == f"{path}: not UTF-8 (invalid continuation byte at byte 14)"


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    assert parse_error(path).startswith(f"{path}: cannot read: ")


# read_items: RSS and Atom


def test_an_rss_file_gives_its_items_keyed_by_guid() -> None:
    samples = read_items(FIXTURES / "frontier.xml", NOW)
    assert [s.id for s in samples] == ["frontier-rask-1", "frontier-psl-1"]
    rask = samples[0]
    assert rask.labels is None
    assert rask.item.feed == "frontier.xml"
    assert rask.item.title == "Gunmen attack police station in Rask, Sistan-Baluchestan"
    assert (
        rask.item.summary
        == "Militants of Jaish al-Adl killed 11 police officers in an overnight attack in Rask."
    )
    assert rask.item.link is not None
    assert rask.item.link.startswith("https://news.example.com/2023/12/15/rask-police-station-attack")
    assert rask.item.published == datetime(2023, 12, 15, 4, 30, tzinfo=UTC)


def test_an_atom_file_gives_its_entries_keyed_by_id() -> None:
    samples = read_items(FIXTURES / "wire.atom", NOW)
    assert [s.id for s in samples] == [
        "urn:example:regional-wire:ambassadors-return",
        "urn:example:regional-wire:markets-0126",
    ]
    envoys = samples[0]
    assert envoys.item.title == "Iran and Pakistan ambassadors return to their posts"
    assert envoys.item.summary == "Tehran and Islamabad said their envoys resumed duties on Friday."
    assert envoys.item.link == "https://wire.example.net/2024/01/26/ambassadors-return"
    assert envoys.item.published == datetime(2024, 1, 26, 11, 0, tzinfo=UTC)
    assert all(s.labels is None for s in samples)


def test_a_feed_with_leading_whitespace_and_a_bom_is_still_xml(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"\xef\xbb\xbf\n  " + (FIXTURES / "frontier.xml").read_bytes())
    assert [s.id for s in read_items(path, NOW)] == ["frontier-rask-1", "frontier-psl-1"]


# score


def sample(sample_id: str, title: str, labels: list[str] | None) -> SampleItem:
    item = Item(feed="f", key=sample_id, title=title, summary="", link=None, published=NOW)
    return SampleItem(sample_id, item, None if labels is None else frozenset(labels))


CORPUS = [
    sample("1", "Attack in Rask", ["rask"]),  # rask: true positive
    sample("2", "Rask attack claims denied", []),  # rask: false positive
    sample("3", "Gunmen in Rask", ["rask"]),  # rask: false negative
    sample("4", "Ambassador returns", ["envoys"]),  # envoys: true positive
    sample("5", "Rask attack, ambassador returns", None),  # unlabelled: skipped by every watchlist
    sample("6", "Ambassador returns to Rask after attack", ["envoys", "rask"]),  # both: true positives
    sample("7", "Ambassador to Rask", ["envoys"]),  # envoys: false negative
]


def test_score_counts_true_and_false_positives_and_false_negatives() -> None:
    matcher = Matcher(
        [
            watchlist("rask", "rask AND attack*"),
            watchlist("envoys", "ambassador* NEAR/3 return*"),
            watchlist("quiet", "cricket"),
        ]
    )
    rask, envoys, quiet = score(matcher, CORPUS)

    assert rask.watchlist == "rask"
    assert rask.true_positives == 2
    assert rask.false_positives == (Miss("2", "Rask attack claims denied", ("rask", "attack*")),)
    assert rask.false_negatives == (Miss("3", "Gunmen in Rask"),)
    assert rask.precision == pytest.approx(2 / 3)
    assert rask.recall == pytest.approx(2 / 3)
    assert rask.f1 == pytest.approx(2 / 3)

    assert envoys.true_positives == 2
    assert envoys.false_positives == ()
    assert envoys.false_negatives == (Miss("7", "Ambassador to Rask"),)
    assert (envoys.precision, envoys.recall) == (1.0, pytest.approx(2 / 3))
    assert envoys.f1 == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))

    # Nothing labelled, nothing found: nothing to get wrong.
    assert (quiet.true_positives, quiet.false_positives, quiet.false_negatives) == (0, (), ())
    assert (quiet.precision, quiet.recall, quiet.f1) == (1.0, 1.0, 1.0)


def test_unlabelled_items_are_not_scored() -> None:
    matcher = Matcher([watchlist("rask", "rask")])
    (only_unlabelled,) = score(matcher, [sample("5", "Rask", None), sample("8", "Rask again", None)])
    assert (only_unlabelled.true_positives, only_unlabelled.false_positives) == (0, ())
    (labelled,) = score(matcher, [sample("5", "Rask", None), sample("8", "Rask again", [])])
    assert [m.id for m in labelled.false_positives] == ["8"]


def test_no_positives_in_the_corpus_means_recall_1() -> None:
    (result,) = score(
        Matcher([watchlist("rask", "rask")]), [sample("1", "Rask", []), sample("2", "Zahedan", [])]
    )
    assert result.recall == 1.0
    assert result.precision == 0.0
    assert result.f1 == 0.0


def test_scores_arithmetic() -> None:
    misses = tuple(Miss(str(i), "t") for i in range(3))
    result = Scores("w", 3, misses[:1], misses[1:])  # 3 TP, 1 FP, 2 FN
    assert result.precision == 0.75
    assert result.recall == 0.6
    assert result.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert Scores("w", 0, (), misses).f1 == 0.0  # nothing found, everything missed


def test_scores_json() -> None:
    result = Scores("w", 2, (Miss("fp", "False", ("a", '"b c"')),), (Miss("fn", "Missed"),))
    assert scores_json(result) == {
        "watchlist": "w",
        "true_positives": 2,
        "false_positives": [{"id": "fp", "title": "False", "terms": ["a", '"b c"']}],
        "false_negatives": [{"id": "fn", "title": "Missed"}],
        "precision": 0.6667,
        "recall": 0.6667,
        "f1": 0.6667,
    }


# backtest


DAY1 = datetime(2024, 1, 17, 9, 0, tzinfo=UTC)
DAY2 = datetime(2024, 1, 18, 23, 59, tzinfo=UTC)


def stored(row_id: int, title: str, first_seen: datetime, matched_then: bool) -> StoredItem:
    item = Item(feed="dawn", key=str(row_id), title=title, summary="", link=None, published=first_seen)
    return StoredItem(row_id, item, first_seen, matched_then)


def test_backtest_lists_added_and_dropped_items_and_counts_per_day() -> None:
    rows = [
        stored(1, "Attack in Rask", DAY1, matched_then=False),  # added
        stored(2, "Attack in Zahedan", DAY1, matched_then=True),  # dropped
        stored(3, "Rask again", DAY1 + timedelta(hours=1), matched_then=True),  # unchanged match
        stored(4, "Nothing here", DAY2, matched_then=False),  # unchanged non-match
        stored(5, "Rask", DAY2, matched_then=False),  # added
    ]
    matcher = Matcher([watchlist("other", "Zahedan"), watchlist("rask", "rask")])
    result = backtest(matcher, "rask", rows)
    assert (result.items, result.matched_then, result.matched_now) == (5, 2, 3)
    assert [(row.id, match.watchlist, match.terms) for row, match in result.added] == [
        (1, "rask", ("rask",)),
        (5, "rask", ("rask",)),
    ]
    assert [row.id for row in result.dropped] == [2]  # "other" matching it does not count
    assert result.days == {
        date(2024, 1, 17): DayCounts(items=3, then=2, now=2, added=1, dropped=1),
        date(2024, 1, 18): DayCounts(items=2, then=0, now=1, added=1, dropped=0),
    }
    assert list(result.days) == [date(2024, 1, 17), date(2024, 1, 18)]


def test_backtest_days_are_utc_days_in_order() -> None:
    late = datetime(2024, 1, 18, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # 2024-01-17 20:00 UTC
    rows = [stored(2, "Rask", DAY2, True), stored(1, "Rask", late.astimezone(UTC), False)]
    result = backtest(Matcher([watchlist("rask", "rask")]), "rask", rows)
    assert list(result.days) == [date(2024, 1, 17), date(2024, 1, 18)]
    assert result.days[date(2024, 1, 17)] == DayCounts(items=1, then=0, now=1, added=1, dropped=0)


def test_backtest_of_nothing() -> None:
    result = backtest(Matcher([watchlist("rask", "rask")]), "rask", [])
    assert (result.items, result.matched_then, result.matched_now, result.added, result.dropped) == (
        0,
        0,
        0,
        (),
        (),
    )
    assert result.days == {}


# render_highlighted


def hit(start: int, end: int, term: str = "t") -> Hit:
    return Hit(term, "title", start, end)


def test_hits_are_bracketed_off_a_terminal_and_coloured_on_one() -> None:
    text = "Gunmen attack police in Rask"
    hits = [hit(24, 28, "Rask"), hit(7, 13, "attack*")]  # any order
    assert render_highlighted(text, hits, ansi=False) == "Gunmen [attack] police in [Rask]"
    assert render_highlighted(text, hits, ansi=True) == (
        "Gunmen \x1b[1;33mattack\x1b[0m police in \x1b[1;33mRask\x1b[0m"
    )


def test_highlighting_edge_cases() -> None:
    assert render_highlighted("Rask", [], ansi=False) == "Rask"
    assert render_highlighted("Rask", [hit(0, 4), hit(0, 4, "other")], ansi=False) == "[Rask]"
    assert render_highlighted("in Rask", [hit(3, 7)], ansi=False) == "in [Rask]"
    assert render_highlighted("Rask x", [hit(2, 2)], ansi=False) == "Rask x"  # empty span: nothing to mark


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        (
            [(0, 6), (3, 9)],
            "[abcdef][ghi]j",
        ),  # overlapping: the later one is marked from where the first ends
        ([(0, 9), (2, 4)], "[abcdefghi]j"),  # nested: already covered
        ([(0, 3), (0, 8)], "[abc][defgh]ij"),  # same start
        ([(2, 5), (1, 3), (4, 6)], "a[bc][de][f]ghij"),
    ],
)
def test_overlapping_hits_mark_each_character_once(spans: list[tuple[int, int]], expected: str) -> None:
    text = "abcdefghij"
    rendered = render_highlighted(text, [hit(s, e) for s, e in spans], ansi=False)
    assert rendered == expected
    assert rendered.replace("[", "").replace("]", "") == text
    inside, depth = set(), 0
    position = 0
    for char in rendered:
        if char in "[]":
            depth += 1 if char == "[" else -1
            assert depth in (0, 1)
            continue
        if depth:
            inside.add(position)
        position += 1
    assert inside == {i for s, e in spans for i in range(s, e)}


# render_trace


def trace_lines(w: Watchlist, **fields: str) -> list[str]:
    return render_trace(trace(w.query, fields))


RASK = watchlist("rask", "@towns AND (attack* OR killed) AND NOT title:cricket", towns=["Rask", "Zahedan"])


def test_the_trace_marks_each_node_and_says_where_it_found_words() -> None:
    assert trace_lines(RASK, title="Gunmen attack police station in Rask") == [
        "✓ AND",
        "  ✓ @towns: Rask  (title word 6)",
        "  ✓ OR",
        "    ✓ attack*  (title word 2)",
        "    ✗ killed",
        "  ✓ NOT",
        "    ✗ title:cricket",
    ]


def test_a_term_set_is_one_line_listing_the_terms_found() -> None:
    lines = trace_lines(RASK, title="Cricket attack in Zahedan", summary="Rask attack")
    assert lines == [
        "✗ AND",
        "  ✓ @towns: Rask, Zahedan  (summary word 1; title word 4)",
        "  ✓ OR",
        "    ✓ attack*  (title word 2; summary word 2)",
        "    ✗ killed",
        "  ✗ NOT",
        "    ✓ title:cricket  (title word 1)",
    ]
    assert trace_lines(RASK, title="Attack in Quetta")[1] == "  ✗ @towns (none of 2 terms)"


def test_near_phrases_and_regexes_in_the_trace() -> None:
    w = watchlist("envoys", '(ambassador* OR "high commissioner") NEAR/3 /return(s|ed)?/')
    assert trace_lines(w, title="The new high commissioner has returned") == [
        "✓ NEAR/3  (title words 3-6)",
        "  ✓ OR",
        "    ✗ ambassador*",
        '    ✓ "high commissioner"  (title words 3-4)',
        "  ✓ /return(s|ed)?/  (title word 6)",
    ]
    assert trace_lines(w, title="The ambassador", summary="returned")[0] == "✗ NEAR/3"


def test_the_trace_lists_at_most_three_places_per_field() -> None:
    w = watchlist("w", "rask")
    (line,) = trace_lines(w, title="Rask rask RASK Rask")
    assert line == "✓ rask  (title word 1; title word 2; title word 3)"


# Story grouping on the labelled story corpora. The thresholds in monitor/stories.py were chosen
# on stories.jsonl; stories_holdout.jsonl was written separately and scored once they were fixed.
# The floors are the README's figures rounded down: a change that merges more wrongly fails here.
STORY_CORPORA = Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("corpus", "min_precision", "min_recall"),
    [("stories.jsonl", 0.95, 0.30), ("stories_holdout.jsonl", 0.90, 0.12)],
)
def test_story_grouping_on_labelled_corpora(corpus: str, min_precision: float, min_recall: float) -> None:
    samples = read_items(STORY_CORPORA / corpus)
    assert len({s.story for s in samples}) >= 39
    result = story_scores(samples, timedelta(hours=72))
    baseline = story_scores(samples, timedelta(hours=72), shingles=True)
    assert result.hard_negatives >= 200
    assert result.precision >= min_precision
    assert result.recall >= min_recall
    assert result.recall > baseline.recall  # rewrites defeat word shingles; salient tokens do better


def test_story_scores_reads_story_and_family() -> None:
    samples = read_items(STORY_CORPORA / "stories.jsonl")
    assert all(s.story and s.family and s.item.outlet for s in samples)


def test_a_zero_window_pairs_only_identical_links() -> None:
    """With no window, only copies published at the same instant or sharing a link could pair."""
    samples = read_items(STORY_CORPORA / "stories.jsonl")
    wide = story_scores(samples, timedelta(hours=72))
    none = story_scores(samples, timedelta(0))
    assert none.found < wide.found
