"""watchlists/*.toml -> Watchlist values, with every error located by file and key."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.errors import ConfigErrors, LocatedError, WatchlistError
from monitor.text import normalise
from monitor.types import Severity
from monitor.watchlists.model import FIELDS, AllOf, AnyOf, Node, Not, Term, Watchlist

_TOP_KEYS = {"name", "description", "severity", "channels", "match"}
_MATCH_KEYS = {"any", "all", "none", "fields"}


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
    known = None if channels is None else set(channels)
    watchlists: list[Watchlist] = []
    errors: list[LocatedError] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            watchlists.append(load_watchlist(path, known))
        except ConfigErrors as e:
            errors.extend(e.errors)
    return watchlists, errors


def load_watchlist(path: Path, channels: set[str] | None = None) -> Watchlist:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigErrors([WatchlistError(path, "", f"cannot read: {e}")]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigErrors([WatchlistError(path, "", f"TOML syntax error: {e}")]) from e
    return parse_watchlist(path.stem, raw, path, channels)


def parse_watchlist(
    slug: str, raw: dict[str, Any], path: Path, channels: set[str] | None = None
) -> Watchlist:
    errors: list[LocatedError] = []

    def error(key: str, message: str) -> None:
        errors.append(WatchlistError(path, key, message))

    for key in raw.keys() - _TOP_KEYS:
        error(key, f"unknown key; a watchlist has {', '.join(sorted(_TOP_KEYS))}")
    name = _string(raw, "name", error, required=True)
    description = _string(raw, "description", error, required=False)
    severity_text = _string(raw, "severity", error, required=False) or "medium"
    try:
        severity = Severity[severity_text.upper()]
    except KeyError:
        error("severity", f"{severity_text!r} is not one of: low, medium, high, critical")
        severity = Severity.MEDIUM

    routed: tuple[str, ...] | None = None
    if "channels" in raw:
        value = raw["channels"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            error("channels", "expected a list of channel names from config.toml")
        else:
            routed = tuple(value)
            for unknown in [c for c in routed if channels is not None and c not in channels]:
                error("channels", f"channel {unknown!r} is not defined in config.toml [channels]")

    match = raw.get("match")
    query: Node = AnyOf(())
    fields: tuple[str, ...] = ("title", "summary")
    if not isinstance(match, dict):
        error("match", "missing or not a table; add [match] with `any` or `all` terms")
    else:
        for key in match.keys() - _MATCH_KEYS:
            error(f"match.{key}", f"unknown key; [match] has {', '.join(sorted(_MATCH_KEYS))}")
        query = _parse_match(match, error)
        if "fields" in match:
            value = match["fields"]
            if not isinstance(value, list) or not value or any(f not in FIELDS for f in value):
                error("match.fields", f"expected a non-empty list drawn from {', '.join(FIELDS)}")
            else:
                fields = tuple(value)

    if errors:
        raise ConfigErrors(errors)
    return Watchlist(
        slug=slug,
        name=name,
        description=description,
        severity=severity,
        query=query,
        fields=fields,
        channels=routed,
    )


def _parse_match(match: dict[str, Any], error: Any) -> Node:
    required: list[Node] = []
    if "any" in match:
        group = _group(match["any"], "match.any", error)
        if group is not None:
            required.append(group)
    if "all" in match:
        value = match["all"]
        if not isinstance(value, list) or not value:
            error("match.all", 'expected a list of groups, e.g. all = [["Zahedan", "Saravan"], ["attack*"]]')
        else:
            for i, entry in enumerate(value):
                group = _group(entry if isinstance(entry, list) else [entry], f"match.all[{i}]", error)
                if group is not None:
                    required.append(group)
    if not required and "any" not in match and "all" not in match:
        error("match", "needs `any` or `all`: a watchlist with no terms would match nothing")
    if "none" in match:
        group = _group(match["none"], "match.none", error)
        if group is not None:
            required.append(Not(group))
    return AllOf(tuple(required))


def _group(value: object, key: str, error: Any) -> AnyOf | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        error(key, "expected a non-empty list of terms (strings)")
        return None
    terms: list[Node] = []
    for i, text in enumerate(value):
        term = parse_term(text)
        if term is None:
            error(f"{key}[{i}]", f"{text!r} has no letters or digits to match; remove it")
        else:
            terms.append(term)
    return AnyOf(tuple(terms))


def parse_term(text: str) -> Term | None:
    stripped = text.strip()
    prefix = stripped.endswith("*")
    normalised = normalise(stripped.rstrip("*"))
    if not normalised:
        return None
    return Term(text=stripped, normalised=normalised, prefix=prefix)


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
