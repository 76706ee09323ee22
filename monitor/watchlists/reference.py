"""The query tree evaluated the plain way: word by word, node by node (pure).

This is the definition the compiled `Matcher` must agree with (a property test checks it), and
it keeps the result of every node, which is what `monitor explain` shows. It shares nothing
with the matcher but the normaliser and the regex engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.text import normalise
from monitor.watchlists.model import FIELDS, And, Near, Node, Not, Or, Regex, SetRef, Term, compile_regex

Spans = dict[str, list[tuple[int, int]]]  # field -> (first word, last word), inclusive


@dataclass(frozen=True, slots=True)
class Trace:
    """One node's result: satisfied or not, where (for words and NEAR), and its children's."""

    node: Node
    satisfied: bool
    spans: Spans
    children: tuple[Trace, ...] = ()


def evaluate(node: Node, raw: Mapping[str, str]) -> bool:
    return trace(node, raw).satisfied


def trace(node: Node, raw: Mapping[str, str]) -> Trace:
    texts = {name: normalise(raw.get(name, "")) for name in FIELDS}
    words = {name: text.split() for name, text in texts.items()}
    return _trace(node, texts, words)


def _trace(node: Node, texts: dict[str, str], words: dict[str, list[str]]) -> Trace:
    match node:
        case Term(fields=fields):
            spans = {name: found for name in fields if (found := _term_spans(node, words[name]))}
            return Trace(node, bool(spans), spans)
        case Regex(pattern, fields):
            compiled = compile_regex(pattern)
            found_in: Spans = {}
            for name in fields:
                text = texts[name]
                found = [_word_span(text, m.start(), m.end()) for m in compiled.finditer(text)]
                if found:
                    found_in[name] = found
            return Trace(node, bool(found_in), found_in)
        case Not(child):
            inner = _trace(child, texts, words)
            return Trace(node, not inner.satisfied, {}, (inner,))
        case And(children):
            kids = tuple(_trace(c, texts, words) for c in children)
            return Trace(node, all(k.satisfied for k in kids), {}, kids)
        case Or(children):
            kids = tuple(_trace(c, texts, words) for c in children)
            merged: Spans = {}
            for kid in kids:
                for name, kid_spans in kid.spans.items():
                    merged.setdefault(name, []).extend(kid_spans)
            return Trace(node, any(k.satisfied for k in kids), merged, kids)
        case Near(left, right, distance):
            a, b = _trace(left, texts, words), _trace(right, texts, words)
            joined: Spans = {}
            for name in FIELDS:
                for a_first, a_last in a.spans.get(name, ()):
                    for b_first, b_last in b.spans.get(name, ()):
                        between = b_first - a_last - 1 if a_last < b_first else a_first - b_last - 1
                        if between <= distance:
                            joined.setdefault(name, []).append((min(a_first, b_first), max(a_last, b_last)))
            return Trace(node, bool(joined), joined, (a, b))
        case SetRef(name):
            raise ValueError(f"unresolved term set @{name}")


def _term_spans(term: Term, words: list[str]) -> list[tuple[int, int]]:
    size = len(term.words)
    return [
        (i, i + size - 1)
        for i in range(len(words) - size + 1)
        if all(
            word == want.text or (want.prefix and word.startswith(want.text))
            for word, want in zip(words[i : i + size], term.words, strict=True)
        )
    ]


def _word_span(text: str, start: int, end: int) -> tuple[int, int]:
    return text.count(" ", 0, start), text.count(" ", 0, max(end - 1, start))
