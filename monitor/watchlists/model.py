"""Watchlists and the query tree their `query` parses to.

A query is a tree of frozen nodes. Leaves are `Term` (a word or phrase, possibly ending in a
wildcard) and `Regex`; `SetRef` names a term set and is replaced by the set's terms when the
watchlist is loaded, so a loaded watchlist's tree holds only `Term`, `Regex`, `And`, `Or`, `Not`
and `Near`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import re2

from monitor.types import Severity

FIELDS = ("title", "summary", "source", "link")
DEFAULT_FIELDS = ("title", "summary")


@dataclass(frozen=True, slots=True)
class Word:
    """One normalised word of a term; `prefix` when it was written with a trailing `*`."""

    text: str
    prefix: bool = False

    def __str__(self) -> str:
        return self.text + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase as written (`text`), its normalised words, and the fields it looks in."""

    text: str
    words: tuple[Word, ...]
    fields: tuple[str, ...] = DEFAULT_FIELDS

    @property
    def key(self) -> str:
        """The normalised phrase, e.g. "return* to post": equal keys match the same places."""
        return " ".join(map(str, self.words))


@dataclass(frozen=True, slots=True)
class Regex:
    """A regular expression run on the normalised text of each field (RE2 syntax: linear time)."""

    pattern: str
    fields: tuple[str, ...] = DEFAULT_FIELDS


@dataclass(frozen=True, slots=True)
class SetRef:
    """`@name`: any term of a term set. Resolved away when the watchlist loads."""

    name: str
    fields: tuple[str, ...] = DEFAULT_FIELDS
    column: int = 0
    line: int = 1  # where it is in the query, for the error when no set has that name


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    label: str = ""  # "@name" when the group is a resolved term set


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides occur in the same field with at most `distance` words between them."""

    left: Node
    right: Node
    distance: int


Node = Term | Regex | SetRef | And | Or | Not | Near


@dataclass(frozen=True, slots=True)
class Watchlist:
    slug: str  # the file's stem: how alerts, commands and tests refer to it
    name: str
    description: str
    severity: Severity
    query: Node
    source: str = ""  # the query as written, for `explain`
    channels: tuple[str, ...] | None = None  # None: every configured channel
    # How each channel gets this watchlist's alerts: "immediate" or a digest schedule ("daily at
    # 08:00"); `delivery` for every channel not named in `delivery_by_channel`.
    delivery: str = "immediate"
    delivery_by_channel: Mapping[str, str] = field(default_factory=dict)
    min_sources: int = 1  # distinct outlets that must carry a story before it alerts

    def delivery_for(self, channel: str) -> str:
        return self.delivery_by_channel.get(channel, self.delivery)


def leaves(node: Node) -> list[Term | Regex]:
    """Every term and regex in a tree, in reading order."""
    match node:
        case Term() | Regex():
            return [node]
        case SetRef():
            return []
        case Not(child):
            return leaves(child)
        case Near(left, right, _):
            return leaves(left) + leaves(right)
        case And(children) | Or(children):
            return [leaf for c in children for leaf in leaves(c)]


def positive_leaves(node: Node, negated: bool = False) -> list[Term | Regex]:
    """The leaves that count towards a match: everything not under an odd number of NOTs."""
    match node:
        case Term() | Regex():
            return [] if negated else [node]
        case SetRef():
            return []
        case Not(child):
            return positive_leaves(child, not negated)
        case Near(left, right, _):
            return positive_leaves(left, negated) + positive_leaves(right, negated)
        case And(children) | Or(children):
            return [leaf for c in children for leaf in positive_leaves(c, negated)]


def describe(node: Node) -> str:
    """A node written back in query syntax (normalised), for explanations and errors."""
    match node:
        case Term(text, _, fields):
            return _qualified(f'"{text}"' if " " in text else text, fields)
        case Regex(pattern, fields):
            return _qualified(f"/{pattern}/", fields)
        case SetRef(name, fields):
            return _qualified(f"@{name}", fields)
        case Not(child):
            return f"NOT {describe(child)}"
        case Near(left, right, distance):
            return f"{describe(left)} NEAR/{distance} {describe(right)}"
        case Or(children, label):
            return label or "(" + " OR ".join(describe(c) for c in children) + ")"
        case And(children):
            return "(" + " AND ".join(describe(c) for c in children) + ")"


def _qualified(text: str, fields: tuple[str, ...]) -> str:
    return text if fields == DEFAULT_FIELDS else f"{'|'.join(fields)}:{text}"


@functools.cache
def compile_regex(pattern: str) -> re2._Regexp:
    # Text is lower-cased before matching, so the pattern is too: /Zahedan/ still finds "zahedan".
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is raised and reported with its position instead
    options.max_mem = 8 << 20  # a pathological pattern is refused, not allowed to eat memory
    return re2.compile(pattern, options)
