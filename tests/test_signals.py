"""The shipped watchlists against the labelled corpora and the seed analyses."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.tuning import read_items, score
from monitor.watchlists import Matcher
from monitor.watchlists.loader import load_watchlists

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus"
SIGNALS = ("chinese-diplomacy", "sistan-baluchestan", "ambassador-returns")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    watchlists, errors = load_watchlists(ROOT / "watchlists")
    assert errors == []
    return Matcher(watchlists)


# The signal corpora; seeds.jsonl is tested below, and stories*.jsonl label events, not watchlists.
SIGNAL_CORPORA = sorted(
    p.name for p in CORPUS.glob("*.jsonl") if p.name != "seeds.jsonl" and not p.name.startswith("stories")
)


@pytest.mark.parametrize("corpus", SIGNAL_CORPORA)
def test_each_signal_has_precision_and_recall_of_at_least_0_9(matcher: Matcher, corpus: str) -> None:
    samples = read_items(CORPUS / corpus)
    assert len(samples) >= 100
    results = {r.watchlist: r for r in score(matcher, samples)}
    for slug in SIGNALS:
        scores = results[slug]
        assert scores.true_positives + len(scores.false_negatives) >= 15, f"{corpus}: too few {slug} items"
        assert scores.precision >= 0.9, (slug, scores.false_positives)
        assert scores.recall >= 0.9, (slug, scores.false_negatives)


def test_the_corpora_hold_hard_negatives_and_several_labels() -> None:
    samples = [s for name in SIGNAL_CORPORA for s in read_items(CORPUS / name)]
    assert len(samples) >= 150
    assert sum(len(s.labels or ()) >= 2 for s in samples) >= 12
    assert sum(not s.labels for s in samples) >= 100  # negatives, most of them near misses


def test_the_seed_articles_match_their_signals(matcher: Matcher) -> None:
    """Each seed article, as an item, matches the signals it reports (labels in seeds.jsonl).

    Seeds 001 and 004 discuss ambassadors only to report their recall, the move whose reversal
    ambassador-returns watches; a recall is out of that watchlist's scope, so those two are not
    labelled with it.
    """
    for sample in read_items(CORPUS / "seeds.jsonl"):
        matched = {m.watchlist for m in matcher.match(sample.item)}
        assert sample.labels is not None
        assert set(sample.labels) <= matched, sample.id
        assert set(SIGNALS) & matched == set(sample.labels), sample.id
