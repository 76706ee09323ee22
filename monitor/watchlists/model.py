"""Watchlists and the query tree they compile to.

The tree is the seam between how a watchlist is written (today: any/all/none term groups) and
how it is matched; a richer query syntax only has to produce the same nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.types import Severity

FIELDS = ("title", "summary", "link", "source")
DEFAULT_FIELDS = ("title", "summary")


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase; `text` is as written, `prefix` when it ended in `*`."""

    text: str
    normalised: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | AnyOf | AllOf | Not


@dataclass(frozen=True, slots=True)
class Watchlist:
    slug: str  # the file's stem: how alerts, commands and tests refer to it
    name: str
    description: str
    severity: Severity
    query: Node
    fields: tuple[str, ...] = DEFAULT_FIELDS
    channels: tuple[str, ...] | None = None  # None: every configured channel


def terms_of(node: Node) -> list[Term]:
    """Every term in a tree, in reading order."""
    match node:
        case Term():
            return [node]
        case Not(child):
            return terms_of(child)
        case AnyOf(children) | AllOf(children):
            return [t for c in children for t in terms_of(c)]
