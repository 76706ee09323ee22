"""Stories: which items, from whichever feeds, report the same event (pure functions of their text).

Outlets rewrite headlines, so word-for-word likeness (shingles, MinHash, SimHash) misses most
copies. What copies keep are the specifics: the names of places, people and groups, the numbers,
and a few content words. An item is reduced to a weighted set of such *salient tokens*; two items
are one story when they were published within the story window of each other and the weight of
the tokens they share is a large enough share of the smaller item's weight. The weights and the
threshold were chosen on a labelled set of story pairs (`tests/corpus/stories.jsonl`) and checked
on a held-out one; the README reports both.

Tokens are hashed to signed 64-bit integers, which the store packs eight bytes apiece and indexes
in memory for the recent window only (see `monitor.store.story_index`): finding an item's
candidates never scans history, and the index does not grow with the number of items stored.
A token weighs the same in every item (its kind, name or number or word, is part of it), which
lets the store sum shared weight from the index alone.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from monitor.text import normalise

# Proper names weigh most: they are what a rewrite cannot avoid repeating.
PROPER_WEIGHT = 3.0
NUMBER_WEIGHT = 2.0
WORD_WEIGHT = 1.0
# Share of the smaller item's weight two items must have in common to be one story.
THRESHOLD = 0.5
# ... and the least weight they must share, so two near-empty items never pair on one word.
MIN_SHARED = 8.0
# Characters of a summary a fingerprint reads (see `lede`). The labelled summaries are at most 407
# characters long, and their pairing scores are the same with or without it.
LEDE = 400

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# A word starts a sentence when the last of the three characters before it that is not a space
# is one of these. The three groups before the word capture that mark, if there is one.
_END = '[.!?:;"“”‘(\\[|]'
_WORD_AFTER = re.compile(rf"(?:(?<=({_END}))|(?<=({_END})\s)|(?<=({_END})\s\s))?({_WORD.pattern})")
# A possessive ending, dropped from a word: "'s" in either case, the long "ſ" being an "s" too.
_POSSESSIVES = frozenset(a + s for a in "'’" for s in "sSſ")
_NUMBER_WORDS = {
    w: str(n)
    for n, w in enumerate(
        """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty
    """.split()  # noqa: SIM905
    )
}
_NUMBER_WORDS |= {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "dozen": "12"}
# A country and its people are one name: "Iranian guards" and "Iran's guards" share it.
_DEMONYMS = {
    "iranian": "iran",
    "iranians": "iran",
    "pakistani": "pakistan",
    "pakistanis": "pakistan",
    "chinese": "china",
    "afghan": "afghanistan",
    "afghans": "afghanistan",
    "indian": "india",
    "saudi": "saudi",
    "american": "us",
    "americans": "us",
    "russian": "russia",
    "turkish": "turkey",
    "iraqi": "iraq",
    "emirati": "uae",
    "qatari": "qatar",
    "omani": "oman",
    "baloch": "baluch",
    "baluchi": "baluch",
    "balochi": "baluch",
}
# Names so broad that two unrelated stories of the region share them: countries, capitals, regions.
# They count as much as a content word, not as a name.
_BROAD_NAMES = frozenset(
    """
    iran pakistan china afghanistan india iraq syria turkey russia us usa america uk britain israel
    gaza lebanon yemen saudi arabia uae qatar oman bahrain kuwait jordan egypt tajikistan turkmenistan
    uzbekistan kazakhstan kyrgyzstan azerbaijan armenia bangladesh nepal europe asia africa gulf middle
    east west south north central tehran islamabad beijing kabul delhi moscow washington london riyadh
    doha ankara baghdad dubai un united nations eu nato islamic republic people's
    """.split()  # noqa: SIM905
)
# Capitalised, but no more a name than "the": titles, days, months, and words of headline style.
_NOT_NAMES = frozenset(
    """
    a an and as at after amid before by for from in into of off on or over the to up with
    without he she it its his her they their we our you your this that these those there here
    who what when where why how which while not no new says said say will would could may might
    must can also than but if then so just more most very all any some many much few first last
    latest mr mrs ms dr sir president prime minister ministers minister's foreign interior
    defence defense ministry officials official spokesman spokeswoman spokesperson chief head
    deputy state senior government army police forces force security military authorities
    authority province provincial capital city border country national international news report
    reports reported update live monday tuesday wednesday thursday friday saturday sunday today
    yesterday tomorrow tonight january february march april may june july august september
    october november december jan feb mar apr jun jul aug sep sept oct nov dec breaking
    exclusive analysis opinion editorial watch video photos explainer
    guards guard revolutionary corps office navy customs council court agency media press committee
    party assembly parliament senate cabinet embassy consulate department directorate bureau
    """.split()  # noqa: SIM905
)
_STOPWORDS = _NOT_NAMES | frozenset(
    """
    is are was were be been being has have had do does did done am i me my him them us about
    above across against along among around because between both during each either further
    however into itself only other out own same such through under until upon via within yet
    one's told tells telling according added adding including include includes near close
    two-day week weeks day days month months year years time times hour hours people person
    group groups part parts per cent percent local local's say says
    """.split()  # noqa: SIM905
)
_SUFFIXES = ("ings", "ing", "ied", "ies", "ed", "es", "s")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """An item reduced to what a rewrite keeps: token hash -> weight, and when it was published."""

    tokens: Mapping[int, float]
    published: datetime
    # Their sum, which the story lookup reads several times an item: summed once.
    weight: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", sum(self.tokens.values()))


def salient_tokens(title: str, summary: str) -> dict[str, float]:
    """The item's salient tokens, each with its weight: names, numbers and content words.

    A capitalised word counts as a name unless it starts a sentence (or a title written in Title
    Case), where capitals say nothing; there it counts as a name only if the text also capitalises
    it mid-sentence.
    """
    words: list[tuple[_Word, bool]] = []  # each word, and whether it is at a sentence start
    title_case = _is_title_case(title)
    for text, is_title in ((title, True), (summary, False)):
        every_start = is_title and title_case
        first = text[:1].isalnum()  # the first word starts the text ([^\W_] is str.isalnum)
        for end, end_space, end_spaces, word in _WORD_AFTER.findall(text):
            words.append((_word(word), every_start or first or bool(end or end_space or end_spaces)))
            first = False
    named_mid_sentence = {word.normal for word, start in words if word.capital and not start}
    tokens: dict[str, float] = {}
    for (_normal, capital, form, token, weight, name), _start in words:
        if name is not None and capital and form in named_mid_sentence:
            token, weight = name
        # Weights are positive: this keeps the largest weight each token is given.
        if token and weight > tokens.get(token, 0.0):
            tokens[token] = weight
    return tokens


class _Word(NamedTuple):
    """What `salient_tokens` needs of a word, which depends on nothing but the word."""

    normal: str  # normalised
    capital: bool
    form: str  # normalised, without spaces
    token: str  # its token when it is not a name ("" for none)
    weight: float
    name: tuple[str, float] | None  # its token and weight as a name, when a capital makes it one


# News repeats its words, and the work on each is the larger part of a fingerprint's cost.
@functools.lru_cache(maxsize=1 << 13)
def _word(word: str) -> _Word:
    if word[-2:] in _POSSESSIVES:
        word = word[:-2]
    # A word of ASCII letters and digits only is its own normal form, in lower case.
    normal = word.lower() if word.isascii() and word.isalnum() else normalise(word)
    capital = word[:1].isupper()
    form = normal.replace(" ", "")
    if not form:
        return _Word(normal, capital, form, "", WORD_WEIGHT, None)
    number = _number(form)
    if number is not None:
        return _Word(normal, capital, form, "#" + number, NUMBER_WEIGHT, None)
    if form in _DEMONYMS:
        return _Word(normal, capital, form, *_as_name(_DEMONYMS[form]), None)
    name = None if form in _NOT_NAMES else _as_name(_name(form))
    if form not in _STOPWORDS and len(form) > 2 and not form.isdigit():
        return _Word(normal, capital, form, _stem(form), WORD_WEIGHT, name)
    return _Word(normal, capital, form, "", WORD_WEIGHT, name)


def bounded_caches() -> list[tuple[int, int]]:
    """(entries, bound) of each cache here: how much of the heap they hold, for a benchmark."""
    return [(info.currsize, info.maxsize or 0) for info in (_word.cache_info(), token_hash.cache_info())]


def _as_name(name: str) -> tuple[str, float]:
    return "@" + name, WORD_WEIGHT if name in _BROAD_NAMES else PROPER_WEIGHT


def _is_title_case(title: str) -> bool:
    long_words = [w for w in _WORD.findall(title) if len(w) > 3]
    return len(long_words) >= 3 and sum(w[0].isupper() for w in long_words) >= 0.7 * len(long_words)


def _number(form: str) -> str | None:
    number = (form.lstrip("0") or "0") if form.isdigit() else _NUMBER_WORDS.get(form, "")
    # Years say when, not what (every story of 2024 shares "2024"); 0 and 1 are in every text.
    if not number or number in ("0", "1") or (len(number) == 4 and number.startswith(("19", "20"))):
        return None
    return number


def _name(form: str) -> str:
    # Transliterations differ in a vowel: Baloch/Baluch, Baluchestan/Balochistan stay apart.
    return form.replace("baloch", "baluch")


def _stem(form: str) -> str:
    for suffix in _SUFFIXES:
        if form.endswith(suffix) and len(form) - len(suffix) >= 4:
            return form[: -len(suffix)]
    return form


# Items of a poll cycle repeat most of their tokens, and each hash is pure.
@functools.lru_cache(maxsize=1 << 13)
def token_hash(token: str) -> int:
    """A signed 64-bit hash (SQLite's INTEGER), stable across runs and machines."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big", signed=True)


def lede(summary: str) -> str:
    """The opening of a summary, where a report states its facts: at most LEDE characters, cut
    at a word. Feeds that carry a whole article would otherwise bring its background paragraphs,
    which other stories share, and three times the tokens to store and look up."""
    if len(summary) <= LEDE:
        return summary
    cut = summary[: LEDE + 1]
    space = cut.rfind(" ")
    return cut[:space] if space > LEDE // 2 else cut[:LEDE]


def fingerprint(title: str, summary: str, published: datetime) -> Fingerprint:
    tokens = {token_hash(t): w for t, w in salient_tokens(title, lede(summary)).items()}
    return Fingerprint(tokens, published)


def shared_weight(a: Fingerprint, b: Fingerprint) -> float:
    return sum(w for token, w in a.tokens.items() if token in b.tokens)


def same_story(shared: float, weight_a: float, weight_b: float) -> bool:
    """The decision, from what the store's index can sum: shared weight against the smaller item."""
    smaller = min(weight_a, weight_b)
    return smaller > 0 and shared >= MIN_SHARED and shared >= THRESHOLD * smaller


def within(a: datetime, b: datetime, window: timedelta) -> bool:
    return abs(a - b) <= window


def related(a: Fingerprint, b: Fingerprint, window: timedelta) -> bool:
    return within(a.published, b.published, window) and same_story(shared_weight(a, b), a.weight, b.weight)


def group(
    fingerprints: Sequence[Fingerprint], window: timedelta, links: Sequence[str | None] | None = None
) -> list[int]:
    """A group number per item: the connected components of "same link or related".

    This is the batch form of what the store does one item at a time; components do not depend
    on the order items arrive in, which is why the store merges stories rather than picking one.
    """
    parent = list(range(len(fingerprints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_link: dict[str, int] = {}
    for i, link in enumerate(links or ()):
        if link:
            join(i, by_link.setdefault(link, i))
    for i, a in enumerate(fingerprints):
        for j in range(i):
            if related(a, fingerprints[j], window):
                join(i, j)
    return [root(i) for i in range(len(fingerprints))]


@dataclass(frozen=True, slots=True)
class PairScores:
    """Pairing quality on a labelled set: pairs of items put in one story, right or wrong."""

    true_pairs: int
    found: int
    correct: int
    hard_negatives: int  # pairs of different events in the same family (shared vocabulary)
    wrong_merges: int  # hard negatives put in one story

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true_pairs if self.true_pairs else 1.0


def score_pairs(labels: Sequence[str], families: Sequence[str], groups: Sequence[int]) -> PairScores:
    """Compare a grouping with the labelled stories, pair by pair."""
    true_pairs = found = correct = hard = wrong = 0
    n = len(labels)
    for i in range(n):
        for j in range(i):
            same_label = labels[i] == labels[j]
            together = groups[i] == groups[j]
            true_pairs += same_label
            found += together
            correct += same_label and together
            if not same_label and families[i] == families[j]:
                hard += 1
                wrong += together
    return PairScores(true_pairs, found, correct, hard, wrong)


def outlets_phrase(outlets: Iterable[str]) -> str:
    """ "Dawn", "Dawn and BBC", "Dawn, BBC and Reuters", "Dawn, Al Jazeera and 2 more"."""
    names = list(dict.fromkeys(outlets))
    if len(names) > 3:
        return f"{names[0]}, {names[1]} and {len(names) - 2} more"
    return " and ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


def corroboration_note(sources: Sequence[str], own: str, min_sources: int) -> str:
    """The line an alert carries about other outlets: who else reported it, and whether it waited."""
    others = [s for s in dict.fromkeys(sources) if s != own]
    parts = []
    if min_sources > 1:
        parts.append(f"held until {min_sources} outlets carried it")
    if others:
        parts.append(f"also reported by {outlets_phrase(others)}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]
