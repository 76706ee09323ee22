"""watchlists/*.toml -> Watchlist values, with every error located by file, key and column.

    watchlists/
      sistan-baluchestan.toml     a watchlist: slug = file stem
      terms/places.toml           shared term sets, usable as @name by every watchlist

A watchlist may also define its own sets under [terms]. A set entry is a word or phrase
(wildcards allowed), a /regex/, or @another_set.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigErrors, LocatedError, WatchlistError
from monitor.schedule import IMMEDIATE, UTC_ZONE, parse_schedule
from monitor.types import Severity
from monitor.watchlists.model import And, Near, Node, Not, Or, SetRef, Watchlist
from monitor.watchlists.query import QuerySyntaxError, parse_query, parse_regex, parse_term

TERMS_DIR = "terms"
_TOP_KEYS = {"name", "description", "severity", "channels", "delivery", "min_sources", "query", "terms"}
MAX_SOURCES = 20


@dataclass(frozen=True, slots=True)
class TermSet:
    """A named list of terms, where it was defined, and the entries as written."""

    name: str
    entries: tuple[str, ...]
    file: Path
    key: str  # "terms.sistan_places" in a watchlist, "sistan_places" in a shared file


def load_watchlists(
    directory: Path, channels: Iterable[str] | None = None
) -> tuple[list[Watchlist], list[LocatedError]]:
    """Load every watchlist in `directory`; a broken file is reported and the others still load.

    `channels`, when given, are the configured channel names a watchlist may route to.
    """
    if not directory.is_dir():
        error = WatchlistError(
            directory, "", "watchlist directory not found; create it or set defaults.watchlists_dir"
        )
        return [], [error]
    shared, errors = load_term_sets(directory / TERMS_DIR)
    known = None if channels is None else set(channels)
    watchlists: list[Watchlist] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            watchlists.append(load_watchlist(path, known, shared))
        except ConfigErrors as e:
            # A broken shared set fails every watchlist that uses it: report it once.
            reported = {str(error) for error in errors}
            errors.extend(error for error in e.errors if str(error) not in reported)
    return watchlists, errors


def load_term_sets(directory: Path) -> tuple[dict[str, TermSet], list[LocatedError]]:
    """The shared term sets: every `name = [terms]` in `directory/*.toml`."""
    sets: dict[str, TermSet] = {}
    errors: list[LocatedError] = []
    if not directory.is_dir():
        return sets, errors
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = _read_toml(path)
        except ConfigErrors as e:
            errors.extend(e.errors)
            continue
        for name, value in raw.items():
            entries = _entries(value, path, name, errors)
            if name in sets:
                errors.append(WatchlistError(path, name, f"term set also defined in {sets[name].file}"))
            elif entries is not None:
                sets[name] = TermSet(name, entries, path, name)
    return sets, errors


def load_watchlist(
    path: Path, channels: set[str] | None = None, shared: dict[str, TermSet] | None = None
) -> Watchlist:
    return parse_watchlist(path.stem, _read_toml(path), path, channels, shared or {})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigErrors([WatchlistError(path, "", f"cannot read: {e}")]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigErrors([WatchlistError(path, "", f"TOML syntax error: {e}")]) from e


def parse_watchlist(
    slug: str,
    raw: dict[str, Any],
    path: Path,
    channels: set[str] | None = None,
    shared: dict[str, TermSet] | None = None,
) -> Watchlist:
    errors: list[LocatedError] = []
    shared = shared or {}

    def error(key: str, message: str) -> None:
        errors.append(WatchlistError(path, key, message))

    if "match" in raw:
        error("match", "[match] groups were replaced by `query`, e.g. query = '@places AND attack*'")
    for key in raw.keys() - _TOP_KEYS - {"match"}:
        error(key, f"unknown key; a watchlist has {', '.join(sorted(_TOP_KEYS))}")
    name = _string(raw, "name", error, required=True)
    description = _string(raw, "description", error, required=False)
    severity_text = _string(raw, "severity", error, required=False) or "medium"
    try:
        severity = Severity[severity_text.upper()]
    except KeyError:
        error("severity", f"{severity_text!r} is not one of: low, medium, high, critical")
        severity = Severity.MEDIUM
    delivery, delivery_by_channel = _delivery(raw.get("delivery", IMMEDIATE), channels, error)

    min_sources = raw.get("min_sources", 1)
    if (
        isinstance(min_sources, bool)
        or not isinstance(min_sources, int)
        or not 1 <= min_sources <= MAX_SOURCES
    ):
        error(
            "min_sources",
            f"expected a whole number from 1 to {MAX_SOURCES} (distinct outlets that must carry a story "
            f"before it alerts), got {min_sources!r}",
        )
        min_sources = 1

    routed: tuple[str, ...] | None = None
    if "channels" in raw:
        value = raw["channels"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            error("channels", "expected a list of channel names from config.toml")
        else:
            routed = tuple(value)
            for unknown in [c for c in routed if channels is not None and c not in channels]:
                error("channels", f"channel {unknown!r} is not defined in config.toml [channels]")

    local: dict[str, TermSet] = {}
    terms = raw.get("terms", {})
    if not isinstance(terms, dict):
        error("terms", "expected a table of term sets, e.g. [terms] towns = ['Zahedan', 'Saravan']")
    else:
        for set_name, value in terms.items():
            entries = _entries(value, path, f"terms.{set_name}", errors)
            if set_name in shared:
                error(
                    f"terms.{set_name}", f"already a shared term set in {shared[set_name].file}; rename one"
                )
            elif entries is not None:
                local[set_name] = TermSet(set_name, entries, path, f"terms.{set_name}")

    query_text = _string(raw, "query", error, required=True)
    query: Node = Or(())
    if "query" in raw and isinstance(raw["query"], str):
        try:
            query = _Resolver({**shared, **local}).resolve(parse_query(query_text))
        except QuerySyntaxError as e:
            error("query", str(e))
        except _SetError as e:
            errors.append(
                WatchlistError(e.term_set.file if e.term_set else path, e.key or "query", e.message)
            )

    if errors:
        raise ConfigErrors(errors)
    return Watchlist(
        slug=slug,
        name=name,
        description=description,
        severity=severity,
        query=query,
        source=query_text,
        channels=routed,
        delivery=delivery,
        delivery_by_channel=delivery_by_channel,
        min_sources=min_sources,
    )


def _delivery(
    value: object, channels: set[str] | None, error: Callable[[str, str], None]
) -> tuple[str, dict[str, str]]:
    """`delivery = "daily at 08:00"` for every channel, or a table naming channels, with `default`
    for the others: `delivery = { default = "immediate", mail = "daily at 08:00" }`."""
    table = value if isinstance(value, dict) else {"default": value}
    by_channel: dict[str, str] = {}
    default = IMMEDIATE
    for channel, text in table.items():
        key = "delivery" if not isinstance(value, dict) else f"delivery.{channel}"
        if not isinstance(text, str):
            error(key, "expected 'immediate' or a digest schedule such as 'daily at 08:00' or 'every 4h'")
            continue
        try:
            schedule = parse_schedule(text, UTC_ZONE).text  # checked here; run in each channel's zone
        except ValueError as e:
            error(key, str(e))
            continue
        if channel == "default":
            default = schedule
        elif channels is not None and channel not in channels:
            error(key, f"channel {channel!r} is not defined in config.toml [channels]")
        else:
            by_channel[channel] = schedule
    return default, by_channel


def _entries(value: object, path: Path, key: str, errors: list[LocatedError]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        errors.append(WatchlistError(path, key, "expected a non-empty list of terms (strings)"))
        return None
    return tuple(value)


class _SetError(Exception):
    def __init__(self, message: str, term_set: TermSet | None = None, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.term_set = term_set
        self.key = key


class _Resolver:
    """Replaces each @name in a query with the terms of that set, under the reference's fields."""

    def __init__(self, sets: dict[str, TermSet]) -> None:
        self.sets = sets
        self._resolving: list[str] = []

    def resolve(self, node: Node) -> Node:
        match node:
            case SetRef(name, fields, column, line):
                if name not in self.sets:
                    where = f"column {column}" if line == 1 else f"line {line}, column {column}"
                    raise _SetError(
                        f"unknown term set @{name} at {where}; define it under [terms] or in {TERMS_DIR}/"
                    )
                return self._expand(self.sets[name], fields)
            case Not(child):
                return Not(self.resolve(child))
            case And(children):
                return And(tuple(self.resolve(c) for c in children))
            case Or(children, label):
                return Or(tuple(self.resolve(c) for c in children), label)
            case Near(left, right, distance):
                return Near(self.resolve(left), self.resolve(right), distance)
        return node

    def _expand(self, term_set: TermSet, fields: tuple[str, ...]) -> Or:
        if term_set.name in self._resolving:
            cycle = " -> @".join([*self._resolving, term_set.name])
            raise _SetError(f"term sets refer to each other in a loop: @{cycle}", term_set, term_set.key)
        self._resolving.append(term_set.name)
        try:
            return Or(
                tuple(self._entry(term_set, i, fields) for i in range(len(term_set.entries))),
                f"@{term_set.name}",
            )
        finally:
            self._resolving.pop()

    def _entry(self, term_set: TermSet, index: int, fields: tuple[str, ...]) -> Node:
        text = term_set.entries[index].strip()
        key = f"{term_set.key}[{index}]"
        if text.startswith("@"):
            name = text[1:]
            if name not in self.sets:
                raise _SetError(f"unknown term set {text}", term_set, key)
            return self._expand(self.sets[name], fields)
        try:
            if len(text) > 2 and text.startswith("/") and text.endswith("/"):
                return parse_regex(text[1:-1], fields)
            return parse_term(text, fields)
        except QuerySyntaxError as e:
            raise _SetError(e.reason, term_set, key) from None


def _string(raw: dict[str, Any], key: str, error: Any, *, required: bool) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            error(key, "missing; this key is required")
        return ""
    if not isinstance(value, str):
        error(key, "expected a string")
        return ""
    return value
