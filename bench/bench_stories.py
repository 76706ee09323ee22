"""Story benchmark: is deciding "new item, or part of a story" an index lookup at a million items?

    python -m bench.bench_stories            # or: make bench (1,000 against 1,000,000 stored items)
    python -m bench.bench_stories --quick    # 1,000 against 20,000, fewer decisions
    python -m bench.bench_stories --help     # sizes, decisions, rounds, output file

It builds state databases of N stored items in a temporary directory, with the real schema
(each is opened once with `Store.open`, so the migrations run, then filled by bulk inserts), as
a service in steady state holds them: 200 feeds, items first seen over the 90 days of retention,
news-like titles and summaries drawn from word pools with a long tail of place and person names
and numbers, story links, stories (most of one item, some of several), a few matches, sent
alerts and tombstones, and a `story_fingerprints` row (the tokens of the real
`monitor.stories.fingerprint`, packed) only for each item published within two story windows,
which is all that pruning leaves. The story lookup's inverted index is built from those rows in
memory, once per process (`Store._token_index`).

Then it times what a poll does to decide about one incoming item: `Store.known` + `triage` +
`Store.record_poll` (which stores the item, finds its story by story link and by salient tokens
within the window, and plans its alerts with `plan_alerts`). The stream is the same at every
size: about 70% new unrelated items, 20% rewritten copies of a recent story (a quarter of them
under the same link), 10% items already known (unchanged, edited, or pruned and listed again).
Matching and fingerprinting (`prepare`) happen beforehand: they do not depend on the store.
Each timed decision runs in a transaction rolled back afterwards (and its postings are taken
out of the in-memory index again, which a rollback of the benchmark's own does not reach), so
every decision at every size sees the same database; sizes are interleaved round by round, so a
noisy neighbour slows them alike, and the ratio of medians is the result, not an absolute time.

Where the lookup's time goes: `Store._similar` is run alone on a sample of the stream, and
step by step beside it (postings walked in the in-memory index, fingerprint rows read from
SQLite, items read); the index's build time and memory (tracemalloc) are measured apart.

Memory: a fresh subprocess per size opens the database, builds the index, and runs the same
stream, committing each decision as the daemon does, and reports its peak resident set and the
median of those committed decisions. Query plans: every statement the decisions run is captured
(`set_trace_callback`) and explained; a full SCAN of a table makes the run fail (exit 1), but
for the index build's one read of story_fingerprints.
Results are printed and written as a section of bench/RESULTS.md, between markers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import functools
import gc
import itertools
import json
import os
import random
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import bench
from bench.bench_matcher import (
    COMMODITIES,
    COMPANIES,
    DAYS,
    DESKS,
    EVENTS,
    GENERIC_SENTENCES,
    GROUPS,
    LOANS,
    MONTHS,
    NOUNS,
    OUTLETS,
    PAST_VERBS,
    PEOPLE,
    PLACES_BY_RANK,
    POLITICAL_EVENTS,
    PRESENT_VERBS,
    PROBLEMS,
    ROLES,
    SPORTS,
    TEAMS,
    TITLES,
    checkout,
    machine,
)
from monitor.config import Defaults
from monitor.dedup import content_hash
from monitor.pipeline import plan_alerts, prepare, story_key, triage
from monitor.store import Store
from monitor.store.sqlite import (
    _WINDOWED_FINGERPRINTS,
    LOOKUP_ROWS,
    PROBE_ROWS,
    Incoming,
    Planner,
    PollRecord,
    alert_to_json,
)
from monitor.store.story_index import pack_tokens, unpack_tokens
from monitor.stories import MIN_SHARED, Fingerprint, fingerprint, same_story
from monitor.types import FetchResult, FetchStatus, Item, Severity, StoryView, Validators
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.query import parse_query

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
START_MARKER = "<!-- stories:start -->"
END_MARKER = "<!-- stories:end -->"

SEED = 20240118
NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)  # the benchmark's clock: the same databases every run
WINDOW = dt.timedelta(seconds=Defaults().story_window)
RETENTION = dt.timedelta(days=Defaults().retention_days)
TOKEN_HORIZON = 2 * WINDOW  # `Store.prune` drops story_fingerprints rows published before now - 2 windows
FEEDS = 200
CHANNELS = ("team",)
DEFAULT_SIZES = (1_000, 1_000_000)
QUICK_SIZES = (1_000, 20_000)
TARGET_MEDIAN_US = 1_000.0
TARGET_RATIO = 3.0  # "within a few times" the cost at the smallest size
FLAT_RSS = 1.2  # peak RSS at the largest size at most this times the smallest: flat
ANCHOR_STORIES = 60  # recent stories stored at every size, which the stream copies and re-lists
ANCHOR_TOMBSTONES = 30  # pruned items remembered at every size, which the stream lists again
STREAM_MIX = {"new": 70, "copy": 15, "link-copy": 5, "known": 6, "edited": 2, "tombstoned": 2}
STORED_KINDS = ("new", "copy", "link-copy", "edited")  # decisions that reach `_join_story`
CHUNK = 25_000  # background items per generation task
WARMUP = 30  # untimed decisions per size before the rounds
PARALLEL_FROM = 100_000  # sizes from here are generated by worker processes
SCANNED = re.compile(
    r"\bSCAN (items|story_fingerprints|tombstones|stories|story_alerts|matches|outbox|feeds)\b"
)
# The one whole read of story_fingerprints: the in-memory index built from it, once per process.
INDEX_BUILD = "SELECT item_id, tokens FROM story_fingerprints"
WATCHLIST_QUERIES = {
    "outbreaks": "cholera OR landslide OR wildfire OR earthquake",
    "strikes": '"drone attack" OR "missile strike" OR "car bomb"',
    "truce": "ceasefire OR truce",
}

# ---------------------------------------------------------------------------------------------
# Text. The matcher benchmark's templates and pools, but two or three sentences per summary
# (feed summaries are short), and a long tail of people and towns: with its 40 people every name
# would be common, and how many stored items share a token is what the story lookup depends on.

_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "kh", "ch"]
_VOWELS = ["a", "e", "i", "o", "u", "a", "o", "ai", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "m", "s", "k", "t"]


def _pool(seed: str, size: int, syllables: Sequence[int]) -> list[str]:
    rng = random.Random(seed)
    names: dict[str, None] = {}
    while len(names) < size:
        count = rng.choice(syllables)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(count)) + rng.choice(_CODAS)
        names[word.capitalize()] = None
    return list(names)


def _zipf(count: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 1) ** exponent for rank in range(count)))


FIRST_NAMES = sorted({p.split()[0] for p in PEOPLE}) + _pool(f"first-{SEED}", 400, (2, 3))
SURNAMES = sorted({p.split()[-1] for p in PEOPLE}) + _pool(f"last-{SEED}", 20_000, (2, 3, 4))
TOWNS = _pool(f"towns-{SEED}", 5_000, (2, 3))
FEED_NAMES = [
    f"{name.lower()}-{kind}"
    for name, kind in zip(
        _pool(f"feeds-{SEED}", FEEDS, (2, 3)),
        itertools.cycle(["news", "times", "post", "herald", "daily", "wire", "tribune", "monitor"]),
        strict=False,
    )
]
SECTIONS = ["world", "africa", "asia", "europe", "americas", "middle-east", "politics", "business", "sport"]
_PLACE_CUM = _zipf(len(PLACES_BY_RANK), 0.8)
_FIRST_CUM = _zipf(len(FIRST_NAMES), 0.7)
_SURNAME_CUM = _zipf(len(SURNAMES), 0.8)
_FEED_CUM = _zipf(FEEDS, 0.5)  # some feeds publish far more than others
_DESKS = list(DESKS)
_DESK_CUM = list(itertools.accumulate([35, 35, 30]))
_SLUG = re.compile(r"[^a-z0-9]+")


# Headlines with few fixed words, and "detail" sentences whose words are drawn anew at each
# telling from a wider vocabulary: the template sentences alone repeat the same few dozen content
# words in every item of a desk, which real feeds do not (see the token statistics reported).
HEADLINES = [
    "{S} {PV} {G} over {Q}",
    "{P}: {K} dead after {E}",
    "{G} {PV} {P2} as {Q} deepens",
    "{N} {PV} {O} plan in {P}",
    "{P} and {P2} sign {O} accord",
    "{R} {S}: “{P} will not bow to the {G}”",
    "{E} in {P}: {K} missing, {S} says",
    "{P2} {PV} {CO} over {C} exports",
    "{S} and {S2} meet in {P} as {Q} bites",
    "What {E} in {P} means for {P2}",
]
DETAILS = [
    "{A1} {W1} in {X} {V1} the {W2} {W3}, {Y} said.",
    "The {A1} {W1} near {X} was {V1} on {D2} after {W2} {W3}.",
    "{Y} of the {ORG} called the {W1} “{A1}” and urged a {A2} {W2}.",
    "{K4} {W1} were {V1} in {X}, where {W2} and {W3} remain {A1}.",
    "Officials at the {ORG} in {X} said the {W1} would be {V1} by {M2}.",
    "The {W1} {V1} {K4} {W2} across {X}, the {ORG} said in a {A1} {W3}.",
    "{Y}, a {W1} {W2}, said {A1} {W3} had {V1} the {A2} {W4} in {X}.",
    "Local {W1} in {X} {V1} {K4} {W2} on {D2}; {A1} {W3} followed.",
]
WORDS = """
    agreement allocation ambulance appeal arrangement arsenal assembly asylum audit backlog
    ballot barracks battalion blackout blueprint bombardment borrowing boycott brigade bulletin
    cabinet campaign canal cargo cartel casualty cease census charter checkpoint clinic coalition
    commission compensation compound confiscation congress consignment constitution contract
    convoy corridor council courthouse crackdown credit crop curfew customs debt decree delegation
    demolition deportation deposit deputy detention diplomat dispute district donor drill drought
    embargo embassy emergency envoy estate evacuation exile expedition export famine farmland
    federation ferry fertiliser fleet forecast fraud freight frontier garrison grain grid guard
    harbour harvest helicopter highway hospitalisation hostage household inquiry inspection
    insurgency investor irrigation jail judiciary junta kidnapping labour landslide lawsuit
    legislature levy licence livestock loan lockdown manifesto mandate massacre merger migration
    militia mine ministry mission monitor mortar municipality mutiny negotiator network offensive
    outpost overpass pact parliament pension petition pipeline platoon pledge plot port prosecutor
    protest province quarantine railway rally ration reactor rebellion reconstruction referendum
    refinery reform regiment reservoir resolution retaliation revenue riot runway sabotage
    sanction settlement shelter shipment shortage siege smuggling stockpile subsidy summit supply
    surveillance tanker tariff terminal testimony tribunal troop truce tunnel turbine uprising
    vaccine verdict veteran village vote wage warehouse warship watchdog withdrawal
""".split()  # noqa: SIM905
ADJECTIVES = """
    abrupt acute alleged armed bitter bloody brief broad controversial costly critical deadly
    delayed devastating disputed emergency extensive fragile fresh grim heavy illegal interim
    joint lengthy massive nationwide overnight partial planned prolonged provisional rare regional
    renewed rival rural severe sharp sudden surprise sweeping temporary tense unprecedented urgent
    violent voluntary widespread
""".split()  # noqa: SIM905
PARTICIPLES = """
    approved blocked cancelled challenged cleared damaged delayed destroyed disrupted doubled
    expanded extended frozen halted inspected investigated looted postponed rebuilt reduced
    reinforced renewed repaired restored reviewed seized shelved stalled suspended tripled
""".split()  # noqa: SIM905
ORG_KINDS = ["Institute", "Foundation", "Commission", "Authority", "Alliance", "Council", "Agency", "Centre"]


@dataclass(frozen=True, slots=True)
class Cast:
    """What one story is about: its desk, and the names and numbers every telling of it repeats."""

    desk: str
    fields: Mapping[str, str]


def _place(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return rng.choice(TOWNS)
    return rng.choices(PLACES_BY_RANK, cum_weights=_PLACE_CUM)[0]


def _surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]


def new_cast(rng: random.Random) -> Cast:
    desk = rng.choices(_DESKS, cum_weights=_DESK_CUM)[0]
    place = _place(rng)
    place2 = _place(rng)
    first = rng.choices(FIRST_NAMES, cum_weights=_FIRST_CUM)[0]
    surname, surname2 = _surname(rng), _surname(rng)
    team, team2 = rng.sample(TEAMS, 2)
    return Cast(
        desk,
        {
            "P": place,
            "P2": place2 if place2 != place else rng.choice(TOWNS),
            "N": f"{first} {surname}",
            "S": surname,
            "S2": surname2,
            "G": rng.choice(GROUPS),
            "R": rng.choice(ROLES),
            "E": rng.choice(POLITICAL_EVENTS if desk == "politics" else EVENTS),
            "O": rng.choice(NOUNS),
            "Q": rng.choice(PROBLEMS),
            "L": rng.choice(LOANS),
            "C": rng.choice(COMMODITIES),
            "CO": rng.choice(COMPANIES),
            "T": f"{_place(rng)} {team}",
            "T2": f"{_place(rng)} {team2}",
            "SP": rng.choice(SPORTS),
            "D": rng.choice(DAYS),
            "M": rng.choice(MONTHS),
            "K": str(rng.randint(2, 400)),
            "K2": str(rng.randint(0, 5)),
            "K3": str(rng.randint(1, 4)),
            "K00": str(rng.randint(2, 90) * 100),
            "YEAR": str(rng.randint(1990, 2019)),
            "X": _place(rng),
            "Y": f"{rng.choices(FIRST_NAMES, cum_weights=_FIRST_CUM)[0]} {_surname(rng)}",
            "ORG": f"{rng.choice(TOWNS)} {rng.choice(ORG_KINDS)}",
            "K4": str(rng.randint(2, 900)),
            "D2": rng.choice(DAYS),
            "M2": rng.choice(MONTHS),
        },
    )


def compose(rng: random.Random, cast: Cast) -> tuple[str, str]:
    """A title and a summary of two or three sentences telling the cast's story, worded anew at
    each call: the cast's names and numbers recur, the wording and the details do not."""
    values = {
        **cast.fields,
        "V": rng.choice(PAST_VERBS),
        "PV": rng.choice(PRESENT_VERBS),
        "OUT": rng.choice(OUTLETS),
    }
    headlines = TITLES[cast.desk] if rng.random() < 0.4 else HEADLINES
    title = rng.choice(headlines).format_map(values)
    detail = rng.choice(DETAILS).format_map(
        {
            **cast.fields,
            "A1": rng.choice(ADJECTIVES),
            "A2": rng.choice(ADJECTIVES),
            "W1": rng.choice(WORDS),
            "W2": rng.choice(WORDS),
            "W3": rng.choice(WORDS),
            "W4": rng.choice(WORDS),
            "V1": rng.choice(PARTICIPLES),
        }
    )
    first, second = rng.sample(DESKS[cast.desk], 2)
    if rng.random() < 0.2:
        second = rng.choice(GENERIC_SENTENCES)
    sentences = [first.format_map(values), detail]
    if rng.random() < 0.4:
        sentences.append(second.format_map(values))
    return title[0].upper() + title[1:], " ".join(sentences)


def _feed(rng: random.Random) -> str:
    return rng.choices(FEED_NAMES, cum_weights=_FEED_CUM)[0]


def feed_url(feed: str) -> str:
    return f"https://{feed}.example/rss"


def article_link(feed: str, title: str, published: dt.datetime, number: int, section: str) -> str:
    """A canonical article URL (lowercase host, no tracking, no trailing slash): its own story key."""
    slug = _SLUG.sub("-", title.lower()).strip("-")[:60].rstrip("-")
    return f"https://{feed}.example/{section}/{published:%Y/%m/%d}/{slug}-{number}"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Rows: what a store in steady state holds. Column order of the INSERT statements below.

ITEM_COLUMNS = (
    "id, feed, key, title, summary, link, author, tags, published, updated, first_seen, fingerprint,"
    " story_id, outlet, story_link, token_weight"
)
ItemRow = tuple[
    int, str, str, str, str, str | None, str | None, str, str, None, str, str, int, str, str | None, float
]
FingerprintRow = tuple[int, int, bytes]  # item_id, published, packed tokens


@dataclass
class Rows:
    items: list[ItemRow] = field(default_factory=list)
    fingerprints: list[FingerprintRow] = field(default_factory=list)
    stories: list[tuple[int, str]] = field(default_factory=list)
    matches: list[tuple[int, str, str, str]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    story_alerts: list[tuple[int, str, str, str]] = field(default_factory=list)
    tombstones: list[tuple[str, str, str | None, str, str]] = field(default_factory=list)
    alerted: set[tuple[int, str]] = field(default_factory=set)  # (story, watchlist) with an alert

    def extend(self, other: Rows) -> None:
        for name in ("items", "fingerprints", "stories", "matches", "outbox", "story_alerts", "tombstones"):
            getattr(self, name).extend(getattr(other, name))


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored item as a row: what the stream needs to copy it or list it again."""

    id: int
    story_id: int
    item: Item
    cast: Cast


def _add_item(
    rows: Rows,
    rng: random.Random,
    item_id: int,
    item: Item,
    first_seen: dt.datetime,
    story_id: int,
    matcher: Matcher,
) -> None:
    """Append the rows of one stored item: the item, its fingerprint while recent, its matches and alerts."""
    if item.published >= NOW - TOKEN_HORIZON:  # as `Store._join_story` writes it
        fp = fingerprint(item.title, item.summary, item.published)
        rows.fingerprints.append((item_id, int(item.published.timestamp()), pack_tokens(fp.tokens)))
        weight = fp.weight
    else:  # read only for candidates of the token index, which an old item never is
        weight = round(rng.uniform(20.0, 40.0), 1)
    seen = _iso(first_seen)
    story_link = item.link  # generated links are canonical: `story_key(item)` (the tests check it)
    rows.items.append(
        (
            item_id,
            item.feed,
            item.key,
            item.title,
            item.summary,
            item.link,
            item.author,
            json.dumps(list(item.tags)),
            _iso(item.published),
            None,
            seen,
            item.fingerprint,
            story_id,
            item.outlet or item.feed,
            story_link,
            weight,
        )
    )
    if story_id == item_id:
        rows.stories.append((story_id, seen))
    if rng.random() < 0.03:  # a few items matched a watchlist, and their alert went out
        for match in matcher.match(item, spans=False):
            rows.matches.append((item_id, match.watchlist, json.dumps(list(match.terms)), seen))
            if (story_id, match.watchlist) in rows.alerted:  # the story's first match alerted
                continue
            rows.alerted.add((story_id, match.watchlist))
            story = StoryView(
                story_id, (item.outlet or item.feed,), {match.watchlist: (item, match.terms)}, frozenset()
            )
            by_slug = {w.slug: w for w in matcher.watchlists}
            alert = plan_alerts(story, by_slug, CHANNELS[:1], first_seen)[0]
            sent = _iso(first_seen + dt.timedelta(seconds=30))
            payload = alert_to_json(alert)
            head = (alert.id, alert.channel, alert.watchlist, alert.feed, alert.item_key, payload)
            rows.outbox.append((*head, "sent", 1, seen, sent, seen, sent, story_id))
            rows.story_alerts.append((story_id, alert.watchlist, alert.channel, alert.id))


def make_item(
    rng: random.Random, feed: str, cast: Cast, published: dt.datetime, number: int, link: str | None = None
) -> Item:
    """A new telling of `cast` in `feed`; `link` given, it is a syndicated copy carrying that link."""
    title, summary = compose(rng, cast)
    syndicated = link is not None
    if link is None and rng.random() >= 0.03:  # a few entries have no link: keyed by their text
        link = article_link(feed, title, published, number, rng.choice(SECTIONS))
    author = None
    if rng.random() < 0.4:
        author = f"{rng.choices(FIRST_NAMES, cum_weights=_FIRST_CUM)[0]} {_surname(rng)}"
    if link is None:
        key = content_hash(title, summary)
    elif syndicated:  # the aggregator's own guid, the publisher's link
        key = f"urn:{feed}:{number}"
    else:
        key = link
    return Item(
        feed=feed,
        key=key,
        title=title,
        summary=summary,
        link=link,
        published=published,
        author=author,
        tags=(rng.choice(SECTIONS),) if rng.random() < 0.5 else (),
        fingerprint=content_hash(title, summary),
        outlet=feed,
    )


def background_rows(total: int, start: int, count: int, seed: int = SEED) -> Rows:
    """Rows of background items `start`..`start + count` (0-based) of `total`, the same for the same seed.

    Item i is first seen at NOW - 90 days + (i + 0.5) x 90 days / total, so ids grow with arrival
    time, as they do in the store. About one item in six retells a story first seen in the last
    day (a quarter of those under the same link, as syndicated copies), so most stories are
    singletons and some have several items.
    """
    rng = random.Random(f"background-{seed}-{total}-{start}")
    matcher = bench_matcher()
    rows = Rows()
    recent: list[Stored] = []
    step = RETENTION / total
    for index in range(start, start + count):
        item_id = index + 1
        first_seen = NOW - RETENTION + step * (index + 0.5)
        late = rng.random() < 0.1
        published = first_seen - dt.timedelta(seconds=rng.uniform(0, (3 * 86400) if late else 3 * 3600))
        feed = _feed(rng)
        while recent and first_seen - recent[0].item.published > dt.timedelta(days=1):
            recent.pop(0)
        if recent and rng.random() < 0.17:
            original = rng.choice(recent)
            syndicated = rng.random() < 0.25 and original.item.link is not None
            item = make_item(
                rng, feed, original.cast, published, item_id, original.item.link if syndicated else None
            )
            story_id, cast = original.story_id, original.cast
        else:
            cast = new_cast(rng)
            item = make_item(rng, feed, cast, published, item_id)
            story_id = item_id
        _add_item(rows, rng, item_id, item, first_seen, story_id, matcher)
        recent.append(Stored(item_id, story_id, item, cast))
        if len(recent) > 200:
            recent.pop(0)
    for number in range(start // 100, (start + count) // 100):  # one tombstone per 100 items
        feed = _feed(rng)
        link = f"https://{feed}.example/archive/{number}"
        seen = NOW - dt.timedelta(seconds=rng.uniform(0, RETENTION.total_seconds()))
        rows.tombstones.append((feed, link, link, content_hash(link), _iso(seen)))
    return rows


@dataclass(frozen=True, slots=True)
class Anchors:
    """Recent stories and pruned items stored at every size: what the stream copies and lists again."""

    stories: list[list[tuple[Item, Cast]]]  # each story's items, the first one first
    tombstones: list[Item]


@functools.cache
def anchors(seed: int = SEED) -> Anchors:
    """Published 4 to 48 hours ago; the same items whatever the size (only their ids differ)."""
    rng = random.Random(f"anchors-{seed}")
    stories: list[list[tuple[Item, Cast]]] = []
    number = 9 * 10**8
    for _ in range(ANCHOR_STORIES):
        cast = new_cast(rng)
        story: list[tuple[Item, Cast]] = []
        published = NOW - dt.timedelta(hours=rng.uniform(4, 48))
        for copy in range(rng.choices((1, 2, 3), weights=(70, 20, 10))[0]):
            feed = rng.choice([f for f in FEED_NAMES if all(i.feed != f for i, _ in story)])
            link = story[0][0].link if copy and rng.random() < 0.25 else None
            when = published + dt.timedelta(minutes=rng.uniform(0, 90) * copy)
            story.append((make_item(rng, feed, cast, when, number, link), cast))
            number += 1
        stories.append(story)
    tombstones = []
    for _ in range(ANCHOR_TOMBSTONES):
        published = NOW - RETENTION - dt.timedelta(days=rng.uniform(1, 30))
        tombstones.append(make_item(rng, rng.choice(FEED_NAMES), new_cast(rng), published, number))
        number += 1
    return Anchors(stories, tombstones)


def anchor_rows(first_id: int, seed: int = SEED) -> Rows:
    """The anchors' rows, their ids from `first_id` on; first seen within 30 minutes of publication."""
    rng = random.Random(f"anchor-rows-{seed}")
    matcher = bench_matcher()
    rows = Rows()
    item_id = first_id
    for story in anchors(seed).stories:
        story_id = item_id
        for item, _ in story:
            first_seen = item.published + dt.timedelta(minutes=rng.uniform(0, 30))
            _add_item(rows, rng, item_id, item, first_seen, story_id, matcher)
            item_id += 1
    for item in anchors(seed).tombstones:
        seen = _iso(NOW - dt.timedelta(days=2))
        rows.tombstones.append((item.feed, item.key, item.link, item.fingerprint, seen))
    return rows


def anchor_count(seed: int = SEED) -> int:
    return sum(len(story) for story in anchors(seed).stories)


@functools.cache
def bench_matcher() -> Matcher:
    return Matcher(bench_watchlists())


def bench_watchlists() -> list[Watchlist]:
    return [
        Watchlist(slug, slug.capitalize(), "bench/bench_stories.py", Severity.HIGH, parse_query(query), query)
        for slug, query in WATCHLIST_QUERIES.items()
    ]


# ---------------------------------------------------------------------------------------------
# Building a database


@dataclass(frozen=True, slots=True)
class Database:
    size: int  # stored items
    path: Path
    build_seconds: float
    file_bytes: int
    token_items: int  # story_fingerprints rows: the items published within two windows
    postings: int  # their tokens: the entries of the in-memory index built from them
    stories: int
    tombstones: int
    matched: int  # items that matched a watchlist (each story's first one alerted)


_INSERTS = {
    "items": f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({', '.join('?' * 16)})",  # noqa: S608
    "fingerprints": "INSERT INTO story_fingerprints (item_id, published, tokens) VALUES (?, ?, ?)",
    "stories": "INSERT INTO stories (id, first_seen) VALUES (?, ?)",
    "matches": "INSERT INTO matches (item_id, watchlist, terms, matched_at) VALUES (?, ?, ?, ?)",
    "outbox": "INSERT INTO outbox (id, channel, watchlist, feed, item_key, payload, status, attempts,"
    " created_at, last_attempt_at, next_attempt_at, sent_at, story_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "story_alerts": "INSERT INTO story_alerts (story_id, watchlist, channel, alert_id) VALUES (?, ?, ?, ?)",
    "tombstones": "INSERT OR REPLACE INTO tombstones (feed, key, story_link, fingerprint, seen_at)"
    " VALUES (?, ?, ?, ?, ?)",
}


def _background_task(total: int, start: int, count: int, seed: int) -> Rows:
    return background_rows(total, start, count, seed)


def build_database(
    path: Path, size: int, seed: int = SEED, jobs: int = 2, progress: Callable[[str], None] = lambda _: None
) -> Database:
    """A state database of `size` stored items at `path`: migrated by `Store.open`, filled in bulk.

    Secondary indexes are dropped during the load and created again from their own SQL (so the
    schema is exactly the migrated one); big transactions, no journal while loading, WAL after.
    """
    started = time.perf_counter()
    extra = anchor_count(seed)
    if size <= extra:
        raise ValueError(f"a database needs more than the {extra} anchor items")
    background = size - extra
    Store.open(path).close()
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -400000")  # 400 MB while loading
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.executemany(
            "INSERT INTO feeds (name, url, last_polled_at, last_success_at, last_status, items_total)"
            " VALUES (?, ?, ?, ?, 'ok', 0)",
            [(feed, feed_url(feed), _iso(NOW), _iso(NOW)) for feed in FEED_NAMES],
        )
        starts = range(0, background, CHUNK)
        tasks = [(background, s, min(CHUNK, background - s), seed) for s in starts]
        done = 0
        for rows in _generate(tasks, jobs if size >= PARALLEL_FROM else 1):
            _insert(conn, rows)
            done += len(rows.items)
            if len(tasks) > 4:
                progress(f"  {size:,} items: {done:,} rows written ({time.perf_counter() - started:.0f} s)")
        _insert(conn, anchor_rows(background + 1, seed))
        if len(tasks) > 4:
            progress(f"  {size:,} items: creating {len(indexes)} indexes")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("PRAGMA journal_mode = WAL")
        counts = conn.execute(
            "SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM story_fingerprints),"
            " (SELECT TOTAL(LENGTH(tokens)) / 8 FROM story_fingerprints), (SELECT COUNT(*) FROM stories),"
            " (SELECT COUNT(*) FROM tombstones), (SELECT COUNT(DISTINCT item_id) FROM matches)"
        ).fetchone()
    finally:
        conn.close()
    assert counts[0] == size, counts
    return Database(
        size,
        path,
        time.perf_counter() - started,
        path.stat().st_size,
        counts[1],
        int(counts[2]),
        counts[3],
        counts[4],
        counts[5],
    )


def _generate(tasks: Sequence[tuple[int, int, int, int]], jobs: int) -> Iterator[Rows]:
    if jobs <= 1:
        for task in tasks:
            yield _background_task(*task)
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = [pool.submit(_background_task, *task) for task in tasks[: jobs + 1]]
        queued = len(pending)
        while pending:
            rows = pending.pop(0).result()
            if queued < len(tasks):  # keep a few tasks ahead, not all 40 chunks in memory
                pending.append(pool.submit(_background_task, *tasks[queued]))
                queued += 1
            yield rows


def _insert(conn: sqlite3.Connection, rows: Rows) -> None:
    conn.execute("BEGIN")
    conn.executemany(_INSERTS["items"], rows.items)
    conn.executemany(_INSERTS["fingerprints"], rows.fingerprints)
    conn.executemany(_INSERTS["stories"], rows.stories)
    conn.executemany(_INSERTS["matches"], rows.matches)
    conn.executemany(_INSERTS["outbox"], rows.outbox)
    conn.executemany(_INSERTS["story_alerts"], rows.story_alerts)
    conn.executemany(_INSERTS["tombstones"], rows.tombstones)
    conn.execute("COMMIT")


# ---------------------------------------------------------------------------------------------
# The stream of incoming items


@dataclass(frozen=True, slots=True)
class Decision:
    """One incoming item, and what `prepare` made of it (done before timing)."""

    kind: str  # a key of STREAM_MIX
    item: Item
    link: str | None  # its story key, as the pipeline computes it
    incoming: Incoming
    anchor: tuple[str, str] | None  # (feed, key) of the stored item it copies or lists again


def decision_stream(count: int, seed: int = SEED) -> list[Decision]:
    """`count` incoming items, the same for the same seed whatever the database size."""
    rng = random.Random(f"stream-{seed}")
    found = anchors(seed)
    matcher = bench_matcher()
    kinds = list(STREAM_MIX)
    cum = list(itertools.accumulate(STREAM_MIX.values()))
    linked = [story for story in found.stories if story[0][0].link]
    decisions: list[Decision] = []
    for index in range(count):
        kind = rng.choices(kinds, cum_weights=cum)[0]
        published = NOW - dt.timedelta(hours=rng.uniform(0, 6))
        story = rng.choice(linked if kind == "link-copy" else found.stories)
        original, cast = story[0]
        anchor: Item | None = original
        if kind == "new":
            item = make_item(rng, _feed(rng), new_cast(rng), published, 10**8 + index)
            anchor = None
        elif kind in ("copy", "link-copy"):
            feed = rng.choice([f for f in FEED_NAMES if all(i.feed != f for i, _ in story)])
            link = original.link if kind == "link-copy" else None
            item = make_item(rng, feed, cast, published, 10**8 + index, link)
        elif kind == "known":
            anchor = item = rng.choice(story)[0]
        elif kind == "edited":
            anchor = rng.choice(story)[0]
            title = anchor.title + " (updated)"
            summary = anchor.summary + " This story has been updated."
            item = dataclasses.replace(
                anchor,
                title=title,
                summary=summary,
                fingerprint=content_hash(title, summary),
                updated=NOW - dt.timedelta(minutes=5),
            )
        else:
            anchor = None
            item = rng.choice(found.tombstones)
        link = story_key(item) if item.link else None
        decisions.append(
            Decision(
                kind, item, link, prepare(item, matcher, link), (anchor.feed, anchor.key) if anchor else None
            )
        )
    return decisions


# ---------------------------------------------------------------------------------------------
# Deciding


def planner() -> Planner:
    by_slug = {w.slug: w for w in bench_watchlists()}
    return functools.partial(plan_alerts, watchlists=by_slug, channels=list(CHANNELS), now=NOW)


def decide(store: Store, decision: Decision, plan: Planner) -> tuple[int, int, bool]:
    """What a poll does about one item: (ns for known + triage, ns for record_poll, whether
    `record_poll` stored it)."""
    item = decision.item
    start = time.perf_counter_ns()
    links = {item.key: decision.link}
    known = store.known(item.feed, [item], [decision.link] if decision.link else [])
    sorted_out = triage([item], known, links)
    middle = time.perf_counter_ns()
    record = PollRecord(
        item.feed,
        feed_url(item.feed),
        FetchResult(item.feed, FetchStatus.OK, validators=Validators(etag=f'"{item.key[-12:]}"')),
        [decision.incoming] if sorted_out.new or sorted_out.edited else [],
        seen_tombstones=sorted_out.seen_tombstones,
    )
    store.record_poll(record, NOW, plan, WINDOW)
    return middle - start, time.perf_counter_ns() - middle, bool(record.items)


def decide_rolled_back(
    store: Store,
    decision: Decision,
    plan: Planner,
    last_story: int,
    trace: Callable[[str], None] | None = None,
) -> Sample:
    """`decide` in a transaction rolled back afterwards, and where the item went before that;
    `trace` is given every statement `decide` runs.

    SQLite undoes the rows; the store's in-memory token index is undone here. The store drops it
    when one of its own transactions fails, but it does not see this ROLLBACK: the index would
    keep every rolled-back item's postings (under the id the next new item takes again), and the
    lookups would walk more postings at every decision.
    """
    conn = store.db.conn
    item = decision.item
    conn.execute("BEGIN")
    try:
        conn.set_trace_callback(trace)
        try:
            lookup, write, stored = decide(store, decision, plan)
        finally:
            conn.set_trace_callback(None)
        where = outcome(store, decision, last_story)
        row = store.db.execute("SELECT id FROM items WHERE feed = ? AND key = ?", [item.feed, item.key])
        item_id = row.fetchone()[0] if stored else None
    finally:
        conn.execute("ROLLBACK")
    index = store._index
    if item_id is not None and index is not None:
        index.remove(item_id, decision.incoming.fingerprint.tokens)  # what `_join_story` added
        before = store.db.execute("SELECT tokens FROM story_fingerprints WHERE item_id = ?", [item_id])
        for (blob,) in before:  # an edited item: what `_upsert_item` took out
            index.add(item_id, unpack_tokens(blob))
    return Sample(0, decision.kind, lookup, write, where)


def outcome(store: Store, decision: Decision, last_story: int) -> str:
    """Where the item went: its anchor's story, another stored story, a story of its own, or nowhere."""
    item = decision.item
    query = "SELECT story_id FROM items WHERE feed = ? AND key = ?"
    found = store.db.execute(query, [item.feed, item.key]).fetchone()
    if decision.kind in ("known", "tombstoned") or found is None:
        return "not stored"
    if decision.anchor is not None:
        anchor = store.db.execute(query, list(decision.anchor)).fetchone()
        if anchor and anchor[0] == found[0]:
            return "its story"
    return "another story" if found[0] <= last_story else "own story"


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    kind: str
    lookup_ns: int  # known + triage
    record_ns: int  # record_poll
    outcome: str

    @property
    def total_us(self) -> float:
        return (self.lookup_ns + self.record_ns) / 1000


class Session:
    """An open database, deciding items in transactions that are rolled back."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.store = Store.open(database.path)
        self.plan = planner()
        self.last_story = self.store.db.execute("SELECT MAX(id) FROM stories").fetchone()[0]
        self.samples: list[Sample] = []
        self.cpu_shares: list[float] = []
        self.round_medians: list[float] = []

    def run(self, decisions: Sequence[tuple[int, Decision]], record: bool = True) -> None:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        samples = []
        for index, decision in decisions:
            sample = decide_rolled_back(self.store, decision, self.plan, self.last_story)
            samples.append(dataclasses.replace(sample, index=index))
        if record and samples:
            self.cpu_shares.append((time.process_time() - cpu) / (time.perf_counter() - wall))
            self.round_medians.append(statistics.median(s.total_us for s in samples))
            self.samples.extend(samples)

    def close(self) -> None:
        self.store.close()


def measure(
    databases: Sequence[Database],
    decisions: Sequence[Decision],
    rounds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Session]:
    """Every decision at every size; the stream is cut into `rounds` slices, each run at every
    size before the next (in alternating order), after a warm-up of WARMUP decisions per size."""
    sessions = [Session(d) for d in databases]
    numbered = list(enumerate(decisions))
    for session in sessions:
        session.run(numbered[:WARMUP], record=False)
    bounds = [len(numbered) * r // rounds for r in range(rounds + 1)]
    for r in range(rounds):
        part = numbered[bounds[r] : bounds[r + 1]]
        order = sessions if r % 2 == 0 else sessions[::-1]
        for session in order:
            session.run(part)
        progress(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{s.database.size:,} items {s.round_medians[-1]:,.0f} µs" for s in sessions)
            + " median per decision"
        )
    return sessions


# ---------------------------------------------------------------------------------------------
# Where the time goes: the story lookup, read-only, on a sample of the stream


@dataclass(frozen=True, slots=True)
class Lookups:
    """`Store._similar` (the story lookup of `_join_story`) for a sample of the decisions that run
    it, read-only, in a transaction as in `record_poll`; and beside it the same steps one by one
    (`lookup_steps`): the postings of the item's tokens in the in-memory index, the postings it
    walks (all of them up to LOOKUP_ROWS; past that only the rarest tokens', PROBE_ROWS or so),
    the distinct items among them (candidates), the story_fingerprints rows it reads from SQLite
    (full form: the candidates sharing MIN_SHARED, to keep those within the window; narrowed
    form: every candidate, to sum from their packed tokens), the candidates sharing at least
    MIN_SHARED within the window (each then read from items), and the median µs of each step.
    And building the index (`Store._token_index`, once per process): its time and the memory
    it holds (tracemalloc)."""

    decisions: int
    narrowed: int  # lookups past LOOKUP_ROWS postings, which walk only the rarest tokens'
    agree: int  # lookups where the steps found the same stories as `_similar`
    postings: Stats  # postings of the item's tokens
    walked: Stats  # postings the lookup walked
    candidates: Stats
    rows: Stats  # story_fingerprints rows read
    plausible: Stats  # candidates sharing >= MIN_SHARED within the window
    index_us: float  # counting, sorting by rarity and walking the postings
    fingerprints_us: float  # reading the fingerprint rows (narrowed: and summing what they share)
    items_us: float  # reading the plausible candidates from items, `same_story`
    similar_us: float  # `Store._similar` as the store runs it
    index_bytes: int  # held by the built index (tracemalloc)
    tokens: int  # distinct tokens in the index


@dataclass(frozen=True, slots=True)
class Steps:
    narrowed: bool
    postings: int
    walked: int
    candidates: int
    rows: int
    plausible: int
    ns: tuple[int, int, int]  # index, fingerprint rows, items
    stories: set[int]


def lookup_steps(store: Store, item_id: int, fp: Fingerprint, start: int, end: int) -> Steps:
    """`Store._similar`, step by step and timed, with its constants and statements."""
    conn = store.db.conn
    began = time.perf_counter_ns()
    index = store._token_index()
    tokens = fp.tokens
    by_rarity = sorted((index.count(token), token) for token in tokens)
    postings = sum(count for count, _ in by_rarity)
    shared: dict[int, float] = {}
    narrowed = postings > LOOKUP_ROWS
    if not narrowed:
        walked = postings
        for token, weight in tokens.items():
            for other in index.items(token):
                shared[other] = shared.get(other, 0.0) + weight
        ids = json.dumps([other for other, weight in shared.items() if weight >= MIN_SHARED])
        indexed = time.perf_counter_ns()
        rows = conn.execute(f"SELECT item_id {_WINDOWED_FINGERPRINTS}", [ids, start, end]).fetchall()
        near = {other: shared[other] for (other,) in rows}
    else:
        walked = 0
        for probed, (count, token) in enumerate(by_rarity):
            if probed and walked + count > PROBE_ROWS:
                break
            walked += count
            shared.update(dict.fromkeys(index.items(token), 0.0))
        indexed = time.perf_counter_ns()
        query = f"SELECT item_id, tokens {_WINDOWED_FINGERPRINTS}"
        rows = conn.execute(query, [json.dumps(list(shared)), start, end]).fetchall()
        own, weigh = set(tokens), tokens.__getitem__
        near = {}
        for other, blob in rows:
            weight = sum(map(weigh, own.intersection(unpack_tokens(blob))))
            if weight >= MIN_SHARED:
                near[other] = weight
    read = time.perf_counter_ns()
    near.pop(item_id, None)
    stories: set[int] = set()
    if near:
        statement = (
            "SELECT id, token_weight, story_id FROM items WHERE id IN (SELECT value FROM json_each(?))"
        )
        for other, weight, story in conn.execute(statement, [json.dumps(list(near))]):
            if same_story(near[other], fp.weight, weight):
                stories.add(story)
    done = time.perf_counter_ns()
    shared.pop(item_id, None)
    return Steps(
        narrowed,
        postings,
        walked,
        len(shared),
        len(rows),
        len(near),
        (indexed - began, read - indexed, done - read),
        stories,
    )


def lookups(database: Database, decisions: Sequence[Decision], every: int) -> Lookups:
    """Every `every`-th decision that stores an item heavy enough to be looked up, on a fresh
    `Store` of `database` as built (the stream's items are not stored: the lookups are run for
    an id no item has, or an edited item's own)."""
    store = Store.open(database.path)
    conn = store.db.conn
    span = int(WINDOW.total_seconds())
    steps: list[Steps] = []
    similar_ns: list[int] = []
    agree = 0
    try:
        gc.collect()
        tracemalloc.start()  # the memory the index holds (its build is timed in `child`)
        try:
            index = store._token_index()
            index_bytes = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        distinct = index.tokens
        unstored = conn.execute("SELECT MAX(id) + 1 FROM items").fetchone()[0]
        sample = [
            d for d in decisions if d.kind in STORED_KINDS and d.incoming.fingerprint.weight >= MIN_SHARED
        ][::every]
        for number, decision in enumerate(sample):
            fp = decision.incoming.fingerprint
            published = int(fp.published.timestamp())
            item_id = unstored
            if decision.kind == "edited" and decision.anchor is not None:
                query = "SELECT id FROM items WHERE feed = ? AND key = ?"
                item_id = conn.execute(query, list(decision.anchor)).fetchone()[0]
            window = (item_id, fp, published - span, published + span)
            conn.execute("BEGIN")
            try:
                if number % 2:  # the store's own first, or last: neither always finds the cache warm
                    step = lookup_steps(store, *window)
                begin = time.perf_counter_ns()
                found = store._similar(*window)
                similar_ns.append(time.perf_counter_ns() - begin)
                if not number % 2:
                    step = lookup_steps(store, *window)
            finally:
                conn.execute("ROLLBACK")
            steps.append(step)
            agree += step.stories == found
    finally:
        store.close()

    def median_us(part: int) -> float:
        return statistics.median(s.ns[part] for s in steps) / 1000

    return Lookups(
        len(steps),
        sum(s.narrowed for s in steps),
        agree,
        Stats.of([s.postings for s in steps]),
        Stats.of([s.walked for s in steps]),
        Stats.of([s.candidates for s in steps]),
        Stats.of([s.rows for s in steps]),
        Stats.of([s.plausible for s in steps]),
        median_us(0),
        median_us(1),
        median_us(2),
        statistics.median(similar_ns) / 1000,
        index_bytes,
        distinct,
    )


@dataclass(frozen=True, slots=True)
class Stats:
    median: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        ordered = sorted(values)
        return cls(
            statistics.median(ordered),
            ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            ordered[0],
            ordered[-1],
        )


# ---------------------------------------------------------------------------------------------
# Query plans


@dataclass(frozen=True, slots=True)
class Plan:
    statement: str  # with its literals replaced by ?
    details: tuple[str, ...]

    @property
    def scans(self) -> bool:
        # Building the in-memory token index reads all of story_fingerprints: once per process
        # (and after a prune or another connection's commit), not once per decision.
        return self.statement != INDEX_BUILD and any(SCANNED.search(d) for d in self.details)


_LITERAL = re.compile(r"(?<![\w.])[xX]'[0-9a-fA-F]*'|'(?:[^']|'')*'|(?<![\w.])-?\d+(?:\.\d+)?|\bNULL\b")
_SKIP = ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")


def query_plans(database: Database, decisions: Sequence[Decision], per_kind: int = 20) -> list[Plan]:
    """EXPLAIN QUERY PLAN of every distinct statement the first `per_kind` decisions of each kind
    run, captured as SQLite ran them (with their values), each decision rolled back."""
    store = Store.open(database.path)
    plan = planner()
    statements: list[str] = []
    seen: Counter[str] = Counter()
    try:
        conn = store.db.conn
        for decision in decisions:
            if seen[decision.kind] >= per_kind:
                continue
            seen[decision.kind] += 1
            decide_rolled_back(store, decision, plan, 0, statements.append)
        plans: dict[str, Plan] = {}
        for statement in statements:
            text = statement.strip()
            shape = _LITERAL.sub("?", text)
            shape = re.sub(r"\?(?:\s*,\s*\?)+", "?, ...", shape)
            if text.upper().startswith(_SKIP) or shape in plans:
                continue
            details = tuple(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {text}"))
            plans[shape] = Plan(shape, details)
    finally:
        store.close()
    return list(plans.values())


NAMED_LOOKUPS = {
    # The full and the narrowed form of the lookup read the same rows by id (`_WINDOWED_FINGERPRINTS`).
    "fingerprints by id (`_similar`)": "FROM story_fingerprints WHERE item_id IN (SELECT value FROM json",
    "items by id (`_similar`)": "SELECT id, token_weight, story_id FROM items WHERE id IN (SELECT value",
    "story link (`_join_story`)": "FROM items WHERE story_link =",
    "items by (feed, key) (`known`)": "SELECT key, fingerprint FROM items WHERE feed = ? AND key IN",
    "items by (feed, key) (`_upsert_item`)": "SELECT id, story_id FROM items WHERE feed = ? AND key = ?",
}


def named(plans: Sequence[Plan]) -> dict[str, Plan | None]:
    return {
        label: next((p for p in plans if text in p.statement), None) for label, text in NAMED_LOOKUPS.items()
    }


# ---------------------------------------------------------------------------------------------
# Memory: a fresh process per size


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of a fresh process deciding the stream (kB).

    The peak is the kernel's high-water mark of the process's own memory (VmHWM). `ru_maxrss`
    is reported too, but on Linux a child's `ru_maxrss` starts at its parent's resident size
    when it was started (exec carries the old address space's high-water mark over), so from a
    benchmark that just built a big database it measures the benchmark, not the child.
    """

    setup_peak_kb: int  # VmHWM once imported, the stream generated and prepared, before opening
    peak_kb: int  # VmHWM after the whole stream was decided, committing each decision
    before_kb: int  # VmRSS before opening the database
    index_kb: int  # VmRSS growth while building the in-memory token index, after opening
    index_ms: float  # the build's time, the first thing the process does with the store
    after_kb: int  # VmRSS after the stream, database still open
    ru_maxrss_kb: int
    committed: Stats  # µs per decision, committed
    items_after: int

    @property
    def growth_kb(self) -> int:
        return self.after_kb - self.before_kb

    @property
    def deciding_kb(self) -> int:
        """VmRSS growth but for the index build: opening the database, and deciding."""
        return self.growth_kb - self.index_kb


def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in kB (ru_maxrss for both where /proc is missing)."""
    try:
        text = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"VmRSS": peak, "VmHWM": peak}
    return {m[1]: int(m[2]) for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE)}


def child(path: Path, count: int, seed: int) -> dict[str, Any]:
    """Run in a fresh process: open the database, build the token index (as the first decision
    would), decide the stream committing each item."""
    decisions = decision_stream(count, seed)
    plan = planner()
    gc.collect()
    setup = _status()
    store = Store.open(path)
    opened = _status()
    started = time.perf_counter_ns()
    store._token_index()
    index_ms = (time.perf_counter_ns() - started) / 1e6
    built = _status()
    times = []
    for decision in decisions:
        lookup, write, _ = decide(store, decision, plan)
        times.append((lookup + write) / 1000)
    items = store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    gc.collect()
    end = _status()
    store.close()
    return {
        "setup_peak_kb": setup["VmHWM"],
        "peak_kb": end["VmHWM"],
        "before_kb": setup["VmRSS"],
        "index_kb": built["VmRSS"] - opened["VmRSS"],
        "index_ms": index_ms,
        "after_kb": end["VmRSS"],
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "times_us": times,
        "items_after": items,
    }


def memory(database: Database, count: int, seed: int) -> Memory:
    command = [sys.executable, "-m", "bench.bench_stories", "--child", str(database.path)]
    command += ["--decisions", str(count), "--seed", str(seed)]
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root, env=env)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    times = data.pop("times_us")
    return Memory(**data, committed=Stats.of(times))


# ---------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True, slots=True)
class Row:
    database: Database
    total: Stats  # µs per decision
    lookup: float  # median µs, known + triage
    record: float  # median µs, record_poll
    by_kind: dict[str, float]  # median µs per kind of incoming item
    outcomes: dict[str, Counter[str]]  # per kind, where the items went
    cpu_share: float
    round_medians: list[float]
    lookups: Lookups
    memory: Memory


def rows_of(sessions: Sequence[Session], found: Sequence[Lookups], memories: Sequence[Memory]) -> list[Row]:
    rows = []
    for session, cands, mem in zip(sessions, found, memories, strict=True):
        samples = session.samples
        kinds = {s.kind for s in samples}
        rows.append(
            Row(
                session.database,
                Stats.of([s.total_us for s in samples]),
                statistics.median(s.lookup_ns / 1000 for s in samples),
                statistics.median(s.record_ns / 1000 for s in samples),
                {
                    k: statistics.median(s.total_us for s in samples if s.kind == k)
                    for k in STREAM_MIX
                    if k in kinds
                },
                {k: Counter(s.outcome for s in samples if s.kind == k) for k in STREAM_MIX if k in kinds},
                statistics.median(session.cpu_shares),
                session.round_medians,
                cands,
                mem,
            )
        )
    return rows


def _us(value: float) -> str:
    return f"{value:,.0f}"


def _mb(kb: float) -> str:
    return f"{kb / 1024:,.0f} MB"


def table(rows: Sequence[Row]) -> str:
    base = rows[0]
    lines = [
        "| stored items | database | story_fingerprints: items (postings) | build | decision µs, median"
        " (p90; min–max) | vs smallest | known + triage / record_poll, median µs | committed decision µs,"
        " median (p90) | peak RSS (before opening; growth: building the token index, deciding) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        d, t, m = row.database, row.total, row.memory
        lines.append(
            f"| {d.size:,} | {d.file_bytes / 2**20:,.0f} MB | {d.token_items:,} ({d.postings:,}) "
            f"| {d.build_seconds:,.1f} s | {_us(t.median)} ({_us(t.p90)}; {_us(t.low)}–{_us(t.high)}) "
            f"| {t.median / base.total.median:,.1f}× "
            f"| {_us(row.lookup)} ({row.lookup / base.lookup:,.1f}×) / {_us(row.record)} "
            f"({row.record / base.record:,.1f}×) "
            f"| {_us(m.committed.median)} ({_us(m.committed.p90)}) "
            f"| {_mb(m.peak_kb)} ({_mb(m.setup_peak_kb)}; {m.index_kb / 1024:+,.1f} MB, "
            f"{m.deciding_kb / 1024:+,.1f} MB) |"
        )
    return "\n".join(lines)


def lookup_table(rows: Sequence[Row]) -> str:
    lines = [
        "| stored items | lookups sampled (narrowed) | postings of the item's tokens, median (p90)"
        " | postings walked | candidates | story_fingerprints rows read"
        f" | sharing ≥ {MIN_SHARED:g} | µs: index / fingerprint rows / items | `_similar` µs |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        c = row.lookups
        lines.append(
            f"| {row.database.size:,} | {c.decisions:,} ({c.narrowed:,}) "
            f"| {c.postings.median:,.0f} ({c.postings.p90:,.0f}) | {c.walked.median:,.0f} "
            f"| {c.candidates.median:,.0f} | {c.rows.median:,.0f} | {c.plausible.median:,.0f} "
            f"| {_us(c.index_us)} / {_us(c.fingerprints_us)} / {_us(c.items_us)} | {_us(c.similar_us)} |"
        )
    return "\n".join(lines)


def build_line(rows: Sequence[Row]) -> str:
    """What building the in-memory token index costs, at each size."""
    return "; ".join(
        f"{r.database.size:,} items: {r.memory.index_ms:,.0f} ms, {r.lookups.index_bytes / 2**20:,.1f} MB "
        f"held ({r.database.postings:,} postings of {r.lookups.tokens:,} tokens), RSS "
        f"{r.memory.index_kb / 1024:+,.1f} MB"
        for r in rows
    )


def kinds_table(rows: Sequence[Row]) -> str:
    header = "| incoming item | share | " + " | ".join(
        f"{r.database.size:,} items: µs, where it went" for r in rows
    )
    lines = [header + " |", "| --- | ---: |" + " ---: |" * len(rows)]
    total = sum(rows[0].outcomes[k].total() for k in rows[0].outcomes)
    for kind in rows[0].by_kind:
        cells = []
        for row in rows:
            went = ", ".join(f"{n} {where}" for where, n in row.outcomes[kind].most_common())
            cells.append(f"{_us(row.by_kind[kind])} ({went})")
        share = rows[0].outcomes[kind].total() / total
        lines.append(f"| {kind} | {share:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: Sequence[Row]) -> dict[str, bool]:
    first, last = rows[0], rows[-1]
    return {
        "median": last.total.median < TARGET_MEDIAN_US,
        "ratio": last.total.median / first.total.median <= TARGET_RATIO,
        "memory": last.memory.peak_kb <= FLAT_RSS * first.memory.peak_kb,
    }


def reading(rows: Sequence[Row], plans: Sequence[Plan]) -> str:
    first, last = rows[0], rows[-1]
    met = verdict(rows)
    ratio = last.total.median / first.total.median
    ratios = [b / a for a, b in zip(first.round_medians, last.round_medians, strict=True)]
    rss = last.memory.peak_kb / first.memory.peak_kb
    scans = [p for p in plans if p.scans]
    built = any(p.statement == INDEX_BUILD for p in plans)
    c1, c2 = first.lookups, last.lookups
    m1, m2 = first.memory, last.memory
    big, small = f"{last.database.size:,}", f"{first.database.size:,}"
    per_day = last.database.size / RETENTION.days
    agreed = (
        f"the steps found the same stories as `_similar` in all {c2.decisions:,} lookups"
        if c2.agree == c2.decisions and c1.agree == c1.decisions
        else f"the steps found other stories than `_similar` in {c1.decisions - c1.agree:,} and "
        f"{c2.decisions - c2.agree:,} lookups: they no longer mirror it"
    )
    parts = [
        f"At {big} stored items the median decision takes {_us(last.total.median)} µs, "
        f"{'under' if met['median'] else 'over'} the {TARGET_MEDIAN_US:,.0f} µs target, against "
        f"{_us(first.total.median)} µs at {small}: {ratio:,.1f}× ({'within' if met['ratio'] else 'beyond'} "
        f"the {TARGET_RATIO:g}× allowed; {min(ratios):,.1f}–{max(ratios):,.1f}× round by round).",
        f"Peak RSS of a fresh process deciding the stream is {_mb(m2.peak_kb)} against "
        f"{_mb(m1.peak_kb)} ({rss:.2f}×, {'flat' if met['memory'] else 'not flat'} within "
        f"{FLAT_RSS:g}×): building the in-memory token index grew it by {m2.index_kb / 1024:+,.1f} MB "
        f"against {m1.index_kb / 1024:+,.1f} MB, opening the database and deciding by "
        f"{m2.deciding_kb / 1024:+,.1f} MB against {m1.deciding_kb / 1024:+,.1f} MB; the same process, "
        f"committing each decision, took a median {_us(m2.committed.median)} µs per decision at {big}.",
        (
            f"No statement of a decision scans a table ({len(plans)} distinct statements explained): "
            "every lookup is an index SEARCH"
            + (
                f"; the one whole read is the index build, `{INDEX_BUILD}`, once per process."
                if built
                else "."
            )
            if not scans
            else f"{len(scans)} statement(s) scan a table: " + "; ".join(p.statement for p in scans) + "."
        ),
        f"The item lookups (`known` + `triage`) grow {last.lookup / first.lookup:,.1f}×, as index "
        f"lookups do; `record_poll` grows {last.record / first.record:,.1f}×, and the story lookup "
        f"(`Store._similar`) takes a median {_us(c2.similar_us)} µs of it at {big} against "
        f"{_us(c1.similar_us)} µs at {small}. {big} items over {RETENTION.days} days is "
        f"{per_day:,.0f} items a day, {last.database.token_items:,} of them with a fingerprint "
        f"({last.database.postings:,} postings in the index), and an item's tokens have a median "
        f"{c2.postings.median:,.0f} postings ({c1.postings.median:,.0f} at {small}). Up to "
        f"{LOOKUP_ROWS:,} postings the lookup sums in memory what every item sharing a token shares "
        f"and reads the fingerprint rows of those sharing ≥ {MIN_SHARED:g}, by id, to keep the ones "
        f"published within ±{WINDOW.total_seconds() / 3600:.0f} h; past that ({c2.narrowed:,} of "
        f"{c2.decisions:,} sampled lookups at {big}, {c1.narrowed:,} of {c1.decisions:,} at {small}) it "
        f"walks only the postings of the item's rarest tokens (up to {PROBE_ROWS:,} after the first), "
        "reads those candidates' packed tokens from story_fingerprints by id and sums exactly what "
        f"they share. At {big} that is a median {c2.walked.median:,.0f} postings walked, "
        f"{c2.candidates.median:,.0f} candidates, {c2.rows.median:,.0f} fingerprint rows read and "
        f"{c2.plausible.median:,.0f} sharing ≥ {MIN_SHARED:g}, read from items by id; {agreed}. "
        f"Building the index, once per process, took {m2.index_ms:,.0f} ms and holds "
        f"{c2.index_bytes / 2**20:,.1f} MB at {big}.",
    ]
    edited, new = last.by_kind.get("edited"), last.by_kind.get("new")
    if edited and new and edited > 2 * new:
        parts.append(
            f"An edited item costs {_us(edited)} µs at {big} against {_us(new)} µs for a new one: "
            "`TokenIndex.remove` takes the item's old tokens out of their postings by a linear "
            "search of each list."
        )
    copies = last.outcomes.get("copy", Counter())
    if copies.total():
        parts.append(
            f"Rewritten copies joined their story {copies['its story'] / copies.total():.0%} of the time "
            f"at {big} items (the README's recall on labelled rewrites is 0.15–0.34); the generated text "
            "repeats template sentences word for word, so new items joining another story measure the "
            "generator more than the detector."
        )
    return " ".join(parts)


def section(
    rows: Sequence[Row],
    plans: Sequence[Plan],
    decisions: Sequence[Decision],
    rounds: int,
    every: int,
    elapsed: float,
) -> str:
    info = machine()
    versions = f"SQLite {sqlite3.sqlite_version}, sqlite-utils {metadata.version('sqlite-utils')}"
    sizes = " and ".join(f"{r.database.size:,}" for r in rows)
    mix = ", ".join(f"{share}% {kind}" for kind, share in STREAM_MIX.items())
    text = text_statistics(decisions)
    last = rows[-1].database
    lines = [
        START_MARKER,
        "## Story decisions against stored items",
        "",
        f"`make bench` (`python -m bench.bench_stories`), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"in {elapsed:.0f} s.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']}; {info['platform']}.",
        f"- {info['python']}; {versions}. Code: {checkout()}.",
        f"- Databases of {sizes} stored items, built in a temporary directory with the real schema "
        f"(`Store.open` migrates, then bulk inserts; build time includes generating the text): "
        f"{FEEDS} feeds, items first seen evenly over {RETENTION.days} days, titles and two- or "
        "three-sentence summaries from word pools with long-tail names and numbers, story links, "
        "stories of one or several items, a few matched items with their sent alerts, tombstones, "
        "and a `story_fingerprints` row (the real `fingerprint()`'s tokens, packed) for each item "
        "published in the last "
        f"{TOKEN_HORIZON.total_seconds() / 3600:.0f} h, as `prune` leaves them. No ANALYZE (the store "
        f"never runs it). The largest: {last.stories:,} stories, {last.matched:,} matched items, "
        f"{last.tombstones:,} tombstones. Text statistics: {text}.",
        f"- Stream: {len(decisions):,} incoming items, the same at every size ({mix}), published in "
        "the 6 hours before the clock. Timed per item: `Store.known` + `triage` + `Store.record_poll` "
        "(storage, story lookup, `plan_alerts` with 3 watchlists); `prepare` (matching, fingerprint) "
        "done beforehand. Each decision is rolled back (and its postings taken out of the in-memory "
        "token index again), so all see the same database; "
        f"{rounds} interleaved rounds after {WARMUP} warm-up decisions per size. CPU/wall of the timed "
        "runs: " + ", ".join(f"{r.cpu_share:.0%}" for r in rows) + ".",
        "- Committed decisions and peak RSS: a fresh `python` per size opens the database, builds the "
        "token index and decides the same stream, committing each item as the daemon does (the "
        "database grows by the stream: "
        + ", ".join(f"{r.database.size:,} → {r.memory.items_after:,}" for r in rows)
        + "; at the smallest size the stream more than doubles the database and its token index, so "
        "its committed median is no baseline). Peak RSS is the process's VmHWM: its `ru_maxrss` ("
        + ", ".join(_mb(r.memory.ru_maxrss_kb) for r in rows)
        + ") starts at the parent's resident size on Linux.",
        "",
        table(rows),
        "",
        f"Where the story lookup's time goes (every {every}th decision that runs it; `Store._similar` "
        "run alone on a fresh store of the database as built, read-only, in a transaction, and beside "
        "it the same steps one by one: walking the in-memory index, reading story_fingerprints rows "
        "by id, reading items by id; medians):",
        "",
        lookup_table(rows),
        "",
        "Building the in-memory token index (`Store._token_index()`, once per process; timed in the "
        "fresh process before its first decision; the memory it holds by tracemalloc, which does not "
        "see SQLite's page cache, where the rows read stay): " + build_line(rows) + ".",
        "",
        "By kind of incoming item (median µs per decision, and where the items went):",
        "",
        kinds_table(rows),
        "",
        f"Query plans at {rows[-1].database.size:,} items (every statement of a decision of each kind "
        "was captured as run and explained; the named lookups):",
        "",
    ]
    for label, plan in named(plans).items():
        detail = "not run" if plan is None else "; ".join(plan.details)
        lines.append(f"- {label}: `{detail}`")
    lines += ["", f"<details><summary>All {len(plans)} statements and their plans</summary>", ""]
    for plan in plans:
        statement = plan.statement if len(plan.statement) <= 160 else plan.statement[:157] + "..."
        lines.append(f"- `{statement}`: `{'; '.join(plan.details) or '(no table access)'}`")
    lines += ["", "</details>", "", reading(rows, plans), END_MARKER]
    return "\n".join(lines)


def text_statistics(decisions: Sequence[Decision]) -> str:
    """How much the stream's new items overlap, in the terms the story lookup pays for."""
    fps = [set(d.incoming.fingerprint.tokens) for d in decisions if d.kind == "new"][:1000]
    if len(fps) < 2:
        return "too few items"
    frequency = Counter(t for fp in fps for t in fp)
    n = len(fps)
    postings = statistics.median(sum(frequency[t] - 1 for t in fp) / (n - 1) for fp in fps)
    sharing = statistics.median(
        sum(1 for other in fps if other is not fp and fp & other) / (n - 1) for fp in fps[:300]
    )
    tokens = statistics.mean(len(fp) for fp in fps)
    return (
        f"{tokens:.0f} salient tokens per item; among {n:,} new items, an item shares a token with a "
        f"median {sharing:.0%} of the others and its tokens' postings add up to {postings:.2f}× the "
        "item count (the labelled corpus tests/corpus/*.jsonl, one region's news: 21 tokens, 50%, 0.82×)"
    )


def write_section(path: Path, text: str) -> None:
    """Put `text` into `path`, replacing the previous stories section."""
    bench.write_section(path, text, START_MARKER, END_MARKER)


def run(
    sizes: Sequence[int],
    count: int,
    rounds: int,
    workdir: Path,
    seed: int = SEED,
    jobs: int = 2,
    every: int = 10,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[list[Row], list[Plan], list[Decision]]:
    """Build, time, explain and measure. The databases are left in `workdir`, grown by the stream."""
    databases = []
    for size in sizes:
        say(f"building {size:,} items ...")
        database = build_database(workdir / f"state-{size}.db", size, seed, jobs, say)
        say(
            f"  {size:,} items in {database.build_seconds:.1f} s, {database.file_bytes / 2**20:,.0f} MB, "
            f"{database.token_items:,} items ({database.postings:,} postings) in story_fingerprints"
        )
        databases.append(database)
    decisions = decision_stream(count, seed)
    say(f"timing {len(decisions):,} decisions at {len(sizes)} sizes, {rounds} rounds")
    sessions = measure(databases, decisions, rounds, say)
    for session in sessions:
        session.close()
    say("the story lookup, step by step ...")
    found = [lookups(d, decisions, every) for d in databases]
    say("query plans ...")
    plans = query_plans(databases[-1], decisions)
    for plan in plans:
        if plan.scans:
            say(f"  FULL SCAN: {plan.statement}: {'; '.join(plan.details)}")
    memories = []
    for database in databases:  # last: committing changes the databases
        say(f"peak RSS and committed decisions, fresh process, {database.size:,} items ...")
        memories.append(memory(database, count, seed))
    return rows_of(sessions, found, memories), plans, decisions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stories", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n.replace("_", "")) for n in text.split(",")],
        help=f"stored items per database, smallest first (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--decisions", type=int, help="incoming items in the stream (default 1500; quick 300)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved timing rounds (default 4)")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, 300 decisions")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="generating processes")
    parser.add_argument("--every", type=int, default=10, help="story lookup analysed on every n-th decision")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--workdir", type=Path, help="where the temporary directory goes (default: system temp)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="Markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the memory subprocess
    args = parser.parse_args(argv)
    count = args.decisions or (300 if args.quick else 1500)
    if args.child:
        print(json.dumps(child(args.child, count, args.seed)))
        return 0
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    started = time.perf_counter()

    def say(text: str) -> None:
        print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-stories-", dir=args.workdir) as workdir:
        rows, plans, decisions = run(
            sizes, count, args.rounds, Path(workdir), args.seed, args.jobs, args.every, say
        )
    text = section(rows, plans, decisions, args.rounds, args.every, time.perf_counter() - started)
    say("")
    say(table(rows))
    say("")
    say(lookup_table(rows))
    say("index build: " + build_line(rows))
    say("")
    say(kinds_table(rows))
    say("")
    for label, plan in named(plans).items():
        say(f"{label}: {'not run' if plan is None else '; '.join(plan.details)}")
    say("")
    say(reading(rows, plans))
    if not args.no_write:
        write_section(args.output, text)
        say(f"\nwritten to {args.output}")
    scans = [p for p in plans if p.scans]
    if scans:
        print(f"error: {len(scans)} statement(s) of a decision scan a whole table", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
