"""Tuning watchlists: items from files, scores on a labelled corpus, a backtest's differences.

Reading files is the only I/O here; scoring and comparing are functions of data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from monitor.dedup import canonical_link, content_hash
from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.stories import PairScores, fingerprint, group, score_pairs
from monitor.text import normalise
from monitor.types import Hit, Item, Match, StoredItem
from monitor.watchlists import Matcher
from monitor.watchlists.model import And, Near, Not, Or, Regex, Term, describe
from monitor.watchlists.reference import Trace


@dataclass(frozen=True, slots=True)
class SampleItem:
    """An item read from a file, its id there, and its labels (slugs) when the file has them."""

    id: str
    item: Item
    labels: frozenset[str] | None = None
    story: str | None = None  # story corpora: which event the item reports
    family: str | None = None  # ... and which family of look-alike events it belongs to


def read_items(path: Path, now: datetime | None = None) -> list[SampleItem]:
    """Items of an RSS or Atom file, or of a JSON Lines file (id, title, summary, link, published)."""
    try:
        body = path.read_bytes()
    except OSError as e:
        raise ParseError(str(path), f"{path}: cannot read: {e}") from e
    now = now or datetime.now(UTC)
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        items, _ = parse_feed(path.name, body, {}, url=path.resolve().as_uri(), now=now)
        return [SampleItem(item.key, item) for item in items]
    return [_json_item(path, number, line, now) for number, line in _lines(path, body)]


def _lines(path: Path, body: bytes) -> Iterable[tuple[int, str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ParseError(str(path), f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _json_item(path: Path, number: int, line: str, now: datetime) -> SampleItem:
    where = f"{path}: line {number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise ParseError(str(path), f"{where}: not JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(raw, dict):
        raise ParseError(str(path), f"{where}: expected an object with title and summary")
    title, summary = raw.get("title", ""), raw.get("summary", "")
    if not isinstance(title, str) or not isinstance(summary, str) or not (title or summary):
        raise ParseError(str(path), f"{where}: needs a `title` or a `summary` (strings)")
    labels = raw.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        raise ParseError(str(path), f"{where}: `labels` must be a list of watchlist slugs")
    link = raw.get("link") if isinstance(raw.get("link"), str) else None
    published = now
    if isinstance(raw.get("published"), str):
        try:
            published = datetime.fromisoformat(raw["published"].replace("Z", "+00:00"))
        except ValueError as e:
            raise ParseError(str(path), f"{where}: `published` is not an ISO 8601 date") from e
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
    given_id = raw.get("id")
    key = str(given_id) if given_id not in (None, "") else link or content_hash(title, summary)
    source = raw["source"] if isinstance(raw.get("source"), str) else path.stem
    outlet = raw["outlet"] if isinstance(raw.get("outlet"), str) else None
    item = Item(
        feed=outlet or source,
        key=key,
        title=title,
        summary=summary,
        link=link,
        published=published,
        outlet=outlet,
    )
    story, family = (str(raw[k]) if raw.get(k) is not None else None for k in ("story", "family"))
    return SampleItem(key, item, None if labels is None else frozenset(labels), story, family)


def story_scores(samples: Sequence[SampleItem], window: timedelta, *, shingles: bool = False) -> PairScores:
    """Pairing precision and recall of the story grouping on a labelled story corpus.

    `shingles` scores the word-shingle baseline instead (what MinHash estimates), for comparison.
    """
    labelled = [s for s in samples if s.story]
    items = [s.item for s in labelled]
    if shingles:
        groups = shingle_groups(items, window)
    else:
        fingerprints = [fingerprint(i.title, i.summary, i.published) for i in items]
        groups = group(fingerprints, window, [canonical_link(i.link) if i.link else None for i in items])
    return score_pairs(
        [s.story or "" for s in labelled], [s.family or s.story or "" for s in labelled], groups
    )


DEFAULT_STORY_CORPUS = Path("tests/corpus/stories.jsonl")
SHINGLE = 3
SHINGLE_THRESHOLD = 0.5


def shingle_groups(items: Sequence[Item], window: timedelta) -> list[int]:
    """The baseline: items whose word 3-shingles have a Jaccard similarity of 0.5 or more, linked."""
    sets = []
    for item in items:
        words = normalise(f"{item.title} {item.summary}").split()
        sets.append({tuple(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))})
    parent = list(range(len(items)))
    for i in range(len(items)):
        for j in range(i):
            union = len(sets[i] | sets[j])
            close = abs(items[i].published - items[j].published) <= window
            if close and union and len(sets[i] & sets[j]) / union >= SHINGLE_THRESHOLD:
                a, b = parent[i], parent[j]
                parent = [min(a, b) if p in (a, b) else p for p in parent]
    return parent


@dataclass(frozen=True, slots=True)
class Miss:
    """An item the watchlist got wrong, with the terms that made it match (false positives)."""

    id: str
    title: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scores:
    watchlist: str
    true_positives: int
    false_positives: tuple[Miss, ...]
    false_negatives: tuple[Miss, ...]

    @property
    def precision(self) -> float:
        found = self.true_positives + len(self.false_positives)
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + len(self.false_negatives)
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(matcher: Matcher, corpus: Sequence[SampleItem]) -> list[Scores]:
    """Precision and recall of each watchlist against the corpus labels (unlabelled items skipped)."""
    labelled = [sample for sample in corpus if sample.labels is not None]
    matched = [{m.watchlist: m for m in matcher.match(sample.item, spans=False)} for sample in labelled]
    results = []
    for watchlist in matcher.watchlists:
        slug = watchlist.slug
        true_positives = 0
        false_positives: list[Miss] = []
        false_negatives: list[Miss] = []
        for sample, found in zip(labelled, matched, strict=True):
            wanted = slug in (sample.labels or ())
            if slug in found and wanted:
                true_positives += 1
            elif slug in found:
                false_positives.append(Miss(sample.id, sample.item.title, found[slug].terms))
            elif wanted:
                false_negatives.append(Miss(sample.id, sample.item.title))
        results.append(Scores(slug, true_positives, tuple(false_positives), tuple(false_negatives)))
    return results


@dataclass(frozen=True, slots=True)
class DayCounts:
    items: int = 0
    then: int = 0
    now: int = 0
    added: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Backtest:
    items: int
    matched_then: int
    matched_now: int
    added: tuple[tuple[StoredItem, Match], ...]
    dropped: tuple[StoredItem, ...]
    days: dict[date, DayCounts] = field(default_factory=dict)


def backtest(
    matcher: Matcher, slug: str, stored: Sequence[StoredItem], on_item: Callable[[], None] | None = None
) -> Backtest:
    """What the watchlist as it is now would add and drop against what matched at the time.
    `on_item` hears of each item matched (a progress bar)."""
    added: list[tuple[StoredItem, Match]] = []
    dropped: list[StoredItem] = []
    counts: dict[date, Counter[str]] = {}
    now_total = 0
    for row in stored:
        match = next((m for m in matcher.match(row.item, spans=False) if m.watchlist == slug), None)
        if on_item is not None:
            on_item()
        day = counts.setdefault(row.first_seen.date(), Counter())
        day["items"] += 1
        day["then"] += row.matched_then
        day["now"] += match is not None
        now_total += match is not None
        if match is not None and not row.matched_then:
            added.append((row, match))
            day["added"] += 1
        elif match is None and row.matched_then:
            dropped.append(row)
            day["dropped"] += 1
    days = {day: DayCounts(**c) for day, c in sorted(counts.items())}
    return Backtest(
        len(stored), sum(r.matched_then for r in stored), now_total, tuple(added), tuple(dropped), days
    )


DEFAULT_CORPUS = Path("tests/corpus/signals.jsonl")


def scores_json(scores: Scores) -> dict[str, object]:
    return {
        "watchlist": scores.watchlist,
        "true_positives": scores.true_positives,
        "false_positives": [
            {"id": m.id, "title": m.title, "terms": list(m.terms)} for m in scores.false_positives
        ],
        "false_negatives": [{"id": m.id, "title": m.title} for m in scores.false_negatives],
        "precision": round(scores.precision, 4),
        "recall": round(scores.recall, 4),
        "f1": round(scores.f1, 4),
    }


def render_highlighted(text: str, hits: Sequence[Hit], *, ansi: bool) -> str:
    """`text` with each hit marked: bold yellow on a terminal, [brackets] elsewhere."""
    spans = sorted({(h.start, h.end) for h in hits})
    out: list[str] = []
    position = 0
    for start, end in spans:
        if start < position:  # overlapping hits: the earlier one already covers this part
            start = position
        if start >= end:
            continue
        out.append(text[position:start])
        marked = text[start:end]
        out.append(f"\x1b[1;33m{marked}\x1b[0m" if ansi else f"[{marked}]")
        position = end
    out.append(text[position:])
    return "".join(out)


def render_trace(node: Trace, depth: int = 0) -> list[str]:
    """The query as a tree, each node marked ✓ (satisfied) or ✗, with what it found."""
    mark = "✓" if node.satisfied else "✗"
    pad = "  " * depth
    found = _found_words(node)
    match node.node:
        case Or(label=label) if label:
            # A term set: one line, not one per entry (sets run to dozens of spellings).
            if node.satisfied:
                terms = [describe(kid.node) for kid in node.children if kid.satisfied]
                return [f"{pad}{mark} {label}: {', '.join(terms)}{found}"]
            return [f"{pad}{mark} {label} (none of {len(node.children)} terms)"]
        case Term() | Regex():
            return [f"{pad}{mark} {describe(node.node)}{found}"]
        case And():
            head = "AND"
        case Or():
            head = "OR"
        case Not():
            head = "NOT"
        case Near(distance=distance):
            head = f"NEAR/{distance}"
        case _:
            head = type(node.node).__name__
    lines = [f"{pad}{mark} {head}{found if isinstance(node.node, Near) else ''}"]
    for kid in node.children:
        lines.extend(render_trace(kid, depth + 1))
    return lines


def _found_words(node: Trace) -> str:
    if not node.satisfied or not node.spans:
        return ""
    places = [
        f"{name} words {a + 1}-{b + 1}" if a != b else f"{name} word {a + 1}"
        for name, spans in node.spans.items()
        for a, b in sorted(set(spans))[:3]
    ]
    return f"  ({'; '.join(places)})"
