"""Compiled matching of items against every watchlist at once (pure: data in, matches out)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from monitor.text import normalise
from monitor.types import Item, Match
from monitor.watchlists.model import AllOf, AnyOf, Node, Not, Term, Watchlist, terms_of


def _pattern(term: Term) -> re.Pattern[str]:
    # Normalised text has single spaces between words, so a word boundary is a space or an end.
    tail = r"\w*" if term.prefix else ""
    return re.compile(rf"(?<!\w){re.escape(term.normalised)}{tail}(?!\w)")


def item_fields(item: Item) -> dict[str, str]:
    """The text of each matchable field of an item, normalised once."""
    return {
        "title": normalise(item.title),
        "summary": normalise(item.summary),
        "link": normalise(item.link or ""),
        "source": normalise(item.feed),
    }


class Matcher:
    """All watchlists compiled once; each distinct term is searched once per field per item."""

    def __init__(self, watchlists: Iterable[Watchlist]) -> None:
        self.watchlists = tuple(watchlists)
        unique = {(t.normalised, t.prefix): t for w in self.watchlists for t in terms_of(w.query)}
        self._patterns = {key: _pattern(term) for key, term in unique.items()}

    def match(self, item: Item) -> list[Match]:
        fields = item_fields(item)
        return [m for w in self.watchlists if (m := self._match_one(w, fields)) is not None]

    def _match_one(self, watchlist: Watchlist, fields: Mapping[str, str]) -> Match | None:
        texts = [fields[f] for f in watchlist.fields]
        found: dict[tuple[str, bool], str] = {}
        for term in terms_of(watchlist.query):
            key = (term.normalised, term.prefix)
            if key not in found and any(self._patterns[key].search(text) for text in texts):
                found[key] = term.text
        if not _satisfied(watchlist.query, found.keys()):
            return None
        # Report only terms that count towards the match, not the excluded ones.
        positive = _positive_terms(watchlist.query)
        terms = tuple(dict.fromkeys(found[k] for k in found if k in positive))
        return Match(watchlist=watchlist.slug, terms=terms)


def _satisfied(node: Node, found: Iterable[tuple[str, bool]]) -> bool:
    present = set(found)

    def walk(n: Node) -> bool:
        match n:
            case Term():
                return (n.normalised, n.prefix) in present
            case Not(child):
                return not walk(child)
            case AnyOf(children):
                return any(walk(c) for c in children)
            case AllOf(children):
                return all(walk(c) for c in children)

    return walk(node)


def _positive_terms(node: Node, negated: bool = False) -> set[tuple[str, bool]]:
    match node:
        case Term():
            return set() if negated else {(node.normalised, node.prefix)}
        case Not(child):
            return _positive_terms(child, not negated)
        case AnyOf(children) | AllOf(children):
            return set().union(*(_positive_terms(c, negated) for c in children)) if children else set()
