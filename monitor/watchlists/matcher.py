"""Every watchlist compiled into one matcher (pure: data in, matches out).

Item text is normalised (`monitor.text.normalise`) so words are separated by single spaces, and
padded with a space at each end. Every distinct term becomes one key of an Aho-Corasick
automaton: " sistan baluchestan " for a phrase, " baluch" for `Baluch*`. The spaces in the keys
make every hit a whole-word hit, so one pass over the text finds every term of every watchlist,
and the cost per item does not grow with the number of terms. Only the watchlists whose terms
were found (plus the few that could match without any: pure NOT, regexes) are then evaluated.

`monitor.watchlists.reference` evaluates the same trees the slow, obvious way; a property test
checks that the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import ahocorasick

from monitor.text import normalise, normalise_with_offsets
from monitor.types import Hit, Item, Match
from monitor.watchlists.model import (
    FIELDS,
    And,
    Near,
    Node,
    Not,
    Or,
    Regex,
    SetRef,
    Term,
    Watchlist,
    compile_regex,
    leaves,
    positive_leaves,
)

FIELD_WEIGHTS = {"title": 2.0, "summary": 1.0, "source": 0.5, "link": 0.5}

Span = tuple[int, int]  # first and last word index, inclusive
Spans = dict[str, list[Span]]  # per field


def item_fields(item: Item) -> dict[str, str]:
    """The raw text of each matchable field of an item."""
    return {"title": item.title, "summary": item.summary, "source": item.feed, "link": item.link or ""}


def near_spans(left: Spans, right: Spans, distance: int) -> Spans:
    """Pairs of spans in the same field with at most `distance` words between them, each joined."""
    joined: Spans = {}
    for name, lefts in left.items():
        for a_start, a_end in lefts:
            for b_start, b_end in right.get(name, ()):
                if max(b_start - a_end, a_start - b_end) - 1 <= distance:
                    joined.setdefault(name, []).append((min(a_start, b_start), max(a_end, b_end)))
    return joined


@dataclass(frozen=True, slots=True)
class _Pattern:
    id: int
    words: int  # how many words the term spans
    key_length: int  # of its automaton key, to find where a hit starts
    verify: re.Pattern[str] | None  # for a wildcard before the last word: checked after the key


@dataclass(slots=True)
class _Scan:
    """One item's normalised fields and what the automaton found in them."""

    texts: dict[str, str]  # normalised, unpadded
    found: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # field -> pattern -> starts
    ids: list[set[int]] = field(default_factory=list)  # patterns found, per field combination
    offsets: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # for hits: once per item

    def term_spans(self, pattern: _Pattern, fields: Iterable[str]) -> Spans:
        spans: Spans = {}
        for name in fields:
            starts = self.found.get(name, {}).get(pattern.id)
            if starts:
                text = self.texts[name]
                # A start is the index of the term's first character in the unpadded text.
                spans[name] = [(w := text.count(" ", 0, s), w + pattern.words - 1) for s in starts]
        return spans

    def regex_spans(self, regex: Regex) -> Spans:
        compiled = compile_regex(regex.pattern)
        spans: Spans = {}
        for name in regex.fields:
            text = self.texts[name]
            found = [
                (text.count(" ", 0, m.start()), text.count(" ", 0, max(m.end() - 1, m.start())))
                for m in compiled.finditer(text)
            ]
            if found:
                spans[name] = found
        return spans


Test = Callable[[_Scan], bool]


class Matcher:
    """All watchlists compiled once; `match` finds every watchlist an item satisfies."""

    def __init__(self, watchlists: Iterable[Watchlist]) -> None:
        self.watchlists = tuple(watchlists)
        self._patterns: dict[str, _Pattern] = {}
        self._combos: dict[tuple[str, ...], int] = {}  # the field tuples terms look in, numbered
        keys: dict[str, list[_Pattern]] = {}
        for watchlist in self.watchlists:
            for term in _terms(watchlist.query):
                if term.key not in self._patterns:
                    key, verify = _automaton_key(term)
                    pattern = _Pattern(len(self._patterns), len(term.words), len(key), verify)
                    self._patterns[term.key] = pattern
                    keys.setdefault(key, []).append(pattern)
        self._automaton = ahocorasick.Automaton()
        for key, patterns in keys.items():
            self._automaton.add_word(key, tuple(patterns))
        if keys:
            self._automaton.make_automaton()
        self._tests = [self._compile(w.query) for w in self.watchlists]
        self._positive = [
            tuple((leaf, _label(leaf)) for leaf in dict.fromkeys(positive_leaves(w.query)))
            for w in self.watchlists
        ]
        self._by_pattern: dict[int, list[int]] = {}
        self._always: list[int] = []
        for index, watchlist in enumerate(self.watchlists):
            necessary = _necessary(watchlist.query)
            if necessary is None:
                self._always.append(index)
                continue
            for term in necessary:
                listed = self._by_pattern.setdefault(self._patterns[term.key].id, [])
                if not listed or listed[-1] != index:
                    listed.append(index)
        used = {name for w in self.watchlists for leaf in leaves(w.query) for name in leaf.fields}
        self._fields = tuple(name for name in FIELDS if name in used)

    def match(self, item: Item, *, spans: bool = True) -> list[Match]:
        """The watchlists `item` satisfies, in watchlist order, each with its terms and score.

        With `spans`, each match also lists its hits located in the original text; that mapping
        costs more than the matching itself, so callers that need only terms turn it off.
        """
        return self.match_fields(item_fields(item), spans=spans)

    def match_fields(self, raw: Mapping[str, str], *, spans: bool = True) -> list[Match]:
        scan = self._scan(raw)
        candidates = set(self._always)
        for per_field in scan.found.values():
            for pattern_id in per_field:
                candidates.update(self._by_pattern.get(pattern_id, ()))
        return [self._explain(i, scan, raw, spans) for i in sorted(candidates) if self._tests[i](scan)]

    def _scan(self, raw: Mapping[str, str]) -> _Scan:
        texts = {name: normalise(raw.get(name, "")) for name in self._fields}
        scan = _Scan({**dict.fromkeys(FIELDS, ""), **texts})
        for name, text in texts.items():
            if not text or not self._patterns:
                continue
            padded = f" {text} "
            found: dict[int, list[int]] = {}
            for end, patterns in self._automaton.iter(padded):
                for pattern in patterns:
                    if pattern.verify is None or pattern.verify.match(padded, end + 1):
                        # The key starts with the padding space, so this is the term's first
                        # character in the unpadded text.
                        found.setdefault(pattern.id, []).append(end - pattern.key_length + 1)
            if found:
                scan.found[name] = found
        scan.ids = [set().union(*(scan.found.get(name, ()) for name in combo)) for combo in self._combos]
        return scan

    def _combo(self, fields: tuple[str, ...]) -> int:
        return self._combos.setdefault(fields, len(self._combos))

    def _compile(self, node: Node) -> Test:
        match node:
            case Term(fields=fields):
                return _found_any(frozenset([self._patterns[node.key].id]), self._combo(fields))
            case Regex(pattern, fields):
                compiled = compile_regex(pattern)
                return lambda scan: any(compiled.search(scan.texts[name]) for name in fields)
            case Not(child):
                inner = self._compile(child)
                return lambda scan: not inner(scan)
            case And(children):
                return _all_of([self._compile(c) for c in children])
            case Or(children):
                # The terms of an OR that look in the same fields (a term set) are tested at once.
                ids: dict[int, set[int]] = {}
                tests: list[Test] = []
                for child in children:
                    if isinstance(child, Term):
                        ids.setdefault(self._combo(child.fields), set()).add(self._patterns[child.key].id)
                    else:
                        tests.append(self._compile(child))
                return _any_of([*(_found_any(frozenset(s), combo) for combo, s in ids.items()), *tests])
            case Near(left, right):
                # Both sides found is necessary, and cheap to test; only then compare positions.
                both = _all_of([self._compile(left), self._compile(right)])
                return lambda scan: both(scan) and bool(self._spans(node, scan))
            case SetRef(name):
                raise AssertionError(f"unresolved term set @{name}")

    def _spans(self, node: Node, scan: _Scan) -> Spans:
        match node:
            case Term(fields=fields):
                return scan.term_spans(self._patterns[node.key], fields)
            case Regex():
                return scan.regex_spans(node)
            case Or(children):
                merged: Spans = {}
                for child in children:
                    for name, spans in self._spans(child, scan).items():
                        merged.setdefault(name, []).extend(spans)
                return merged
            case Near(left, right, distance):
                return near_spans(self._spans(left, scan), self._spans(right, scan), distance)
        raise AssertionError(f"not positional: {node}")

    def _explain(self, index: int, scan: _Scan, raw: Mapping[str, str], spans: bool) -> Match:
        """The match: the counting terms in reading order, the score, and (with `spans`) the hits."""
        found = sorted(
            (FIELDS.index(name), start, end, label)
            for leaf, label in self._positive[index]
            for name, char_spans in self._char_spans(leaf, scan).items()
            for start, end in char_spans
        )
        terms = tuple(dict.fromkeys(label for *_, label in found))
        best: dict[str, float] = {}
        for field_index, _, _, label in found:
            best[label] = max(best.get(label, 0.0), FIELD_WEIGHTS[FIELDS[field_index]])
        hits = tuple(self._located(found, scan, raw)) if spans else ()
        return Match(self.watchlists[index].slug, terms, round(sum(best.values()), 2), hits)

    def _located(
        self, found: Iterable[tuple[int, int, int, str]], scan: _Scan, raw: Mapping[str, str]
    ) -> Iterable[Hit]:
        """Hits in normalised text mapped to the original text, each field mapped once per item."""
        offsets = scan.offsets  # shared by the watchlists an item matches
        for field_index, start, end, label in found:
            name = FIELDS[field_index]
            if name not in offsets:
                offsets[name] = normalise_with_offsets(raw.get(name, ""))
            text, origins = offsets[name]
            if text == scan.texts[name]:  # if the normalisers disagreed, no span beats a wrong one
                yield Hit(label, name, origins[start], origins[end - 1] + 1)

    def _char_spans(self, leaf: Term | Regex, scan: _Scan) -> dict[str, list[tuple[int, int]]]:
        """Character spans of a leaf in each field's normalised text."""
        result: dict[str, list[tuple[int, int]]] = {}
        if isinstance(leaf, Regex):
            compiled = compile_regex(leaf.pattern)
            for name in leaf.fields:
                spans = [m.span() for m in compiled.finditer(scan.texts[name]) if m.end() > m.start()]
                if spans:
                    result[name] = spans
            return result
        pattern = self._patterns[leaf.key]
        for name in leaf.fields:
            text = scan.texts[name]
            for start in scan.found.get(name, {}).get(pattern.id, ()):
                end = start
                for i in range(pattern.words):
                    space = text.find(" ", end + 1 if i else end)
                    end = len(text) if space < 0 else space
                result.setdefault(name, []).append((start, end))
        return result


def _found_any(ids: frozenset[int], combo: int) -> Test:
    """Whether any of these patterns was found in the fields of field combination `combo`."""
    if len(ids) == 1:
        (only,) = ids
        return lambda scan: only in scan.ids[combo]
    return lambda scan: not ids.isdisjoint(scan.ids[combo])


# AND and OR of one or two tests, the common sizes, without a generator per call.
def _all_of(tests: list[Test]) -> Test:
    match tests:
        case [one]:
            return one
        case [a, b]:
            return lambda scan: a(scan) and b(scan)
    return lambda scan: all(each(scan) for each in tests)


def _any_of(tests: list[Test]) -> Test:
    match tests:
        case [one]:
            return one
        case [a, b]:
            return lambda scan: a(scan) or b(scan)
    return lambda scan: any(each(scan) for each in tests)


def _automaton_key(term: Term) -> tuple[str, re.Pattern[str] | None]:
    """The automaton key of a term, and a check for wildcards before its last word."""
    words = term.words
    first_wildcard = next((i for i, w in enumerate(words) if w.prefix), len(words))
    literal = " ".join(w.text for w in words[: first_wildcard + 1])
    if first_wildcard == len(words):
        return f" {literal} ", None
    if first_wildcard == len(words) - 1:
        return f" {literal}", None
    # The check runs from just after the key: the rest of the wildcard word, then the other words.
    rest = "".join(
        f" {re.escape(w.text)}" + (r"[^ ]*" if w.prefix else "") for w in words[first_wildcard + 1 :]
    )
    return f" {literal}", re.compile(r"[^ ]*" + rest + "(?= )")


def _terms(node: Node) -> list[Term]:
    return [leaf for leaf in leaves(node) if isinstance(leaf, Term)]


def _label(leaf: Term | Regex) -> str:
    if isinstance(leaf, Regex):
        return f"/{leaf.pattern}/"
    return f'"{leaf.text}"' if " " in leaf.text else leaf.text


def _necessary(node: Node) -> list[Term] | None:
    """Terms one of which is found in every item the query matches; None if there are none.

    A watchlist is evaluated only for items in which one of these was found, so the smallest
    such group is chosen: of an AND (or NEAR), the conjunct with the fewest terms. None when the
    query could match with no term found (NOT, regexes): such a watchlist is always evaluated.
    """
    match node:
        case Term():
            return [node]
        case And(children):
            options = [terms for c in children if (terms := _necessary(c)) is not None]
            return min(options, key=len) if options else None
        case Near(left, right, _):
            options = [terms for c in (left, right) if (terms := _necessary(c)) is not None]
            return min(options, key=len) if options else None
        case Or(children):
            union: list[Term] = []
            for child in children:
                terms = _necessary(child)
                if terms is None:
                    return None
                union.extend(terms)
            return union
    return None
