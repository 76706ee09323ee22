"""Matching benchmark: the compiled watchlist matcher against a naive regex loop.

    python -m bench.bench_matcher          # or: make bench
    python -m bench.bench_matcher --help   # sizes, run counts, output file

It loads the shipped watchlists, adds generated ones (20 terms each, seeded: every run matches
the same watchlists against the same items), generates news-like items (~80-character titles,
~1.5 KB summaries with curly quotes, dashes, accents and some Persian script; a few percent
carry terms of the shipped watchlists), and measures items per second for

* the compiled matcher, `monitor.watchlists.Matcher` (Aho-Corasick over every term at once);
* a naive loop: for each watchlist, for each term, a precompiled `re` pattern searched in the
  normalised text, then the query tree evaluated from the terms found. It approximates
  NEAR as AND (it knows no word positions).

Both see the same normalised text (`monitor.text.normalise`, once per field per item). The
process is single-threaded, so every figure is what one core does. Runs are time-bounded and
interleaved (every configuration once per round), so a noisy neighbour slows them all alike;
the median of the rounds is reported with the min and max. Results are printed and written as
a section of bench/RESULTS.md, between markers, so other benchmarks can keep their own sections.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import bench
from monitor.text import normalise
from monitor.types import Item, Severity
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.loader import load_watchlists
from monitor.watchlists.matcher import item_fields
from monitor.watchlists.model import And, Near, Node, Not, Or, Regex, SetRef, Term, leaves
from monitor.watchlists.query import parse_query

ROOT = Path(__file__).resolve().parent.parent
WATCHLISTS_DIR = ROOT / "watchlists"
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
START_MARKER = "<!-- matcher:start -->"
END_MARKER = "<!-- matcher:end -->"

SEED = 20240118  # the day Pakistan struck back near Saravan
TERMS_PER_WATCHLIST = 20
GENERATED_STEPS = (0, 25, 50, 100)
TARGET_ITEMS_PER_SECOND = 40_000
TARGET_RATIO = 100

# ---------------------------------------------------------------------------------------------
# Vocabulary. None of it is a term of the shipped watchlists (no Iran, Pakistan, China,
# Afghanistan, Gulf states, Sistan places or the people of the shipped sets), so only the
# injected "signal" sentences below reach them; the generated watchlists draw on all of it.

PLACES = [
    "Ukraine", "Kyiv", "Kharkiv", "Odesa", "Donetsk", "Crimea", "Russia", "Moscow", "Belarus",
    "Minsk", "Poland", "Warsaw", "Kraków", "Germany", "Berlin", "France", "Paris", "Brussels",
    "Geneva", "Zürich", "Vienna", "Serbia", "Belgrade", "Kosovo", "Pristina", "Türkiye", "Ankara",
    "Istanbul", "Armenia", "Yerevan", "Azerbaijan", "Baku", "Georgia", "Tbilisi", "Israel",
    "Jerusalem", "Gaza", "Rafah", "West Bank", "Lebanon", "Beirut", "Syria", "Damascus", "Aleppo",
    "Idlib", "Iraq", "Baghdad", "Mosul", "Erbil", "Jordan", "Amman", "Yemen", "Sanaa", "Aden",
    "Hodeidah", "Red Sea", "Egypt", "Cairo", "Sinai", "Libya", "Tripoli", "Benghazi", "Tunisia",
    "Algeria", "Algiers", "Morocco", "Rabat", "Sudan", "Khartoum", "Darfur", "El Fasher",
    "Port Sudan", "South Sudan", "Juba", "Ethiopia", "Addis Ababa", "Tigray", "Amhara", "Eritrea",
    "Somalia", "Mogadishu", "Kenya", "Nairobi", "Uganda", "Kampala", "Rwanda", "Kigali", "Congo",
    "Kinshasa", "Goma", "North Kivu", "Nigeria", "Abuja", "Lagos", "Niger", "Niamey", "Mali",
    "Bamako", "Burkina Faso", "Ouagadougou", "Chad", "N’Djamena", "Senegal", "Dakar",
    "Côte d’Ivoire", "Abidjan", "Ghana", "Accra", "Cameroon", "Mozambique", "Cabo Delgado", "India",
    "New Delhi", "Mumbai", "Kashmir", "Manipur", "Bangladesh", "Dhaka", "Nepal", "Kathmandu",
    "Sri Lanka", "Colombo", "Myanmar", "Rakhine", "Thailand", "Bangkok", "Cambodia", "Vietnam",
    "Hanoi", "Philippines", "Manila", "Mindanao", "Indonesia", "Jakarta", "Malaysia", "Taiwan",
    "Taipei", "Japan", "Tokyo", "South Korea", "Seoul", "North Korea", "Pyongyang", "Mongolia",
    "Kazakhstan", "Astana", "Uzbekistan", "Tashkent", "Tajikistan", "Dushanbe", "Kyrgyzstan",
    "Bishkek", "Brazil", "Brasília", "São Paulo", "Argentina", "Buenos Aires", "Chile", "Peru",
    "Lima", "Colombia", "Bogotá", "Venezuela", "Caracas", "Ecuador", "Quito", "Bolivia", "Mexico",
    "Guatemala", "Honduras", "Haiti", "Port-au-Prince", "Cuba", "Havana", "Nicaragua", "Canada",
    "Ottawa", "Washington", "London", "Madrid", "Rome", "Athens", "Lisbon", "Stockholm", "Oslo",
    "Helsinki", "Copenhagen", "Reykjavík", "Malmö", "Gdańsk",
]  # fmt: skip
PEOPLE = [
    "Amina Okafor", "Samuel Mensah", "Elena Kowalski", "Tomasz Nowicki", "Kwame Boateng",
    "Fatima Haddad", "Diego Castillo", "Ingrid Lindqvist", "Rahul Banerjee", "Mariam Abebe",
    "Olusegun Adeyemi", "Yusuf Demir", "Beatriz Ferreira", "Dmitri Petrov", "Aylin Yilmaz",
    "Grace Mwangi", "Jean-Pierre Moreau", "Nadia Karimova", "Hiroshi Nakamura", "Sofía Álvarez",
    "Ibrahim Diallo", "Lucía Romero", "Mehmet Aksoy", "Ana Novak", "Pedro Santos", "Ngozi Nwosu",
    "Kofi Asante", "Leila Mansour", "Oksana Kuznetsova", "Miguel Herrera", "Claire Dubois",
    "Jonas Müller", "Aïcha Traoré", "Thabo Ndlovu", "Priya Raman", "Mateus Oliveira",
    "Zeynep Kaya", "Henrik Schäfer", "Chiara Bianchi", "Viktor Horváth",
]  # fmt: skip
GROUPS = [
    "African Union", "United Nations", "UN Security Council", "European Union", "NATO", "ECOWAS",
    "ASEAN", "World Bank", "International Monetary Fund", "IMF", "World Food Programme",
    "Red Cross", "ICRC", "Red Crescent", "Médecins Sans Frontières", "Amnesty International",
    "Human Rights Watch", "Rapid Support Forces", "al-Shabaab", "Houthis", "Hezbollah", "Hamas",
    "M23", "Wagner Group", "Islamic State", "Boko Haram", "JNIM", "ELN", "OPEC", "G20",
    "IAEA", "International Criminal Court", "UNHCR", "UNICEF", "Interpol", "Europol",
]  # fmt: skip
ROLES = [
    "President", "Prime Minister", "Foreign Minister", "Defence Minister", "Interior Minister",
    "army chief", "opposition leader", "Governor", "Mayor", "central bank governor", "UN envoy",
    "police chief", "Health Minister", "Finance Minister", "rebel commander", "aid coordinator",
]  # fmt: skip
EVENTS = [
    "a drone attack", "a car bomb", "an artillery barrage", "flash floods", "a landslide",
    "a cholera outbreak", "a fuel shortage", "a power outage", "a prison break", "a bridge collapse",
    "a cyberattack", "a general strike", "mass protests", "an attempted coup", "a hostage crisis",
    "a wildfire", "an earthquake", "a missile strike", "clashes between rival militias",
    "a mine explosion", "an ambush on a convoy", "a ferry disaster", "a stampede",
]  # fmt: skip
PAST_VERBS = [
    "attacked", "shelled", "bombed", "raided", "seized", "captured", "evacuated", "blockaded",
    "condemned", "sanctioned", "suspended", "approved", "rejected", "negotiated", "signed",
    "withdrew from", "deployed troops to", "launched an offensive on", "imposed a curfew on",
    "intercepted drones over", "cut power to", "reopened", "closed the border with",
]  # fmt: skip
POLITICAL_EVENTS = [
    "a corruption scandal", "mass protests", "a no-confidence vote", "a fuel price hike",
    "a currency crash", "a general strike", "a disputed election", "a cabinet reshuffle",
]  # fmt: skip
PRESENT_VERBS = [
    "attacks", "shells", "raids", "seizes", "evacuates", "blockades", "condemns", "sanctions",
    "suspends", "approves", "rejects", "signs", "quits", "bans", "reopens", "warns",
]  # fmt: skip
NOUNS = [
    "ceasefire", "truce", "aid convoy", "humanitarian corridor", "peace talks", "grain deal",
    "election results", "budget", "interest rates", "border crossing", "military base",
    "oil pipeline", "port", "power grid", "hospital", "refugee camp", "prison", "checkpoint",
    "fuel depot", "airport", "dam", "bridge", "debt restructuring", "mining licence",
]  # fmt: skip
PROBLEMS = [
    "inflation", "drought", "food shortages", "power cuts", "a currency crash", "displacement",
    "a debt crisis", "unemployment", "fuel queues", "a cholera outbreak", "looting",
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September"]
OUTLETS = ["Reuters", "AFP", "AP", "local media", "state television", "the BBC", "Al Jazeera"]
SPORTS = ["football", "cricket", "basketball", "volleyball", "rugby", "tennis"]
PERSIAN_PLACES = ["مسکو", "غزه", "بیروت", "دمشق", "بغداد", "قاهره", "خارطوم", "کی‌یف"]

COMPANIES = [
    "Nordvik Energy", "Atlas Freight", "Meridian Telecom", "Solara Mining", "Kestrel Motors",
    "BluePeak Software", "Orinoco Foods", "Halvorsen Shipping", "Sahel Cement", "Andes Copper",
]  # fmt: skip
TEAMS = ["Rovers", "United", "Lions", "Stars", "City", "Athletic", "Eagles", "Wanderers"]
LOANS = ["a $3 billion loan", "a debt swap", "a bailout package", "a credit line"]
COMMODITIES = ["cocoa", "copper", "wheat", "natural gas", "coffee", "lithium", "cotton"]

# Each item is one story from one desk: a cast (a main place, maybe a second one, a person, a
# group) and a topic, told over ~1.5 KB. Sentences come from the desk's templates, plus a few
# generic ones. Conflict and politics stories carry the verbs and topics the generated
# watchlists look for; the culture, sport and business desk carries their exclusions.
DESKS = {
    "conflict": [
        "{G} officials said on {D} that {K} people had been killed in {P} after {E}.",
        "“We are deeply concerned about the situation,” {R} {N} told reporters in {P}, adding "
        "that talks with the {G} would continue.",
        "The {O} — agreed in {P2} last {M} — was {V} by the {G} on {D}, according to a statement.",
        "Residents of {P} described {E} as the worst in {K} years; many fled toward {P2} on foot.",
        "According to {OUT}, forces loyal to {N} {V} {P2} overnight, a claim that could not be "
        "independently verified.",
        "The {G} has repeatedly warned that {Q} in {P} could spread to neighbouring {P2}.",
        "Aid workers in {P} said the {O} had been closed for {K} days, leaving thousands without "
        "water or medicine.",
        "“There is no military solution,” said {N}, who leads the {G} mission in {P}.",
        "Satellite images reviewed by {OUT} show damage near {P} – the third such incident since {M}.",
        "The {G} said it had {V} the {O}, a move {S}’s office described as “a grave escalation.”",
        "At least {K} people were wounded when {E} hit a market in {P}, hospital officials said.",
        "The {G} pledged ${K} million in emergency aid for families displaced by {E} in {P}.",
        "Officials in {P} said {K} suspects had been arrested in connection with {E}.",
        "Rescue teams in {P} were still searching for survivors of {E} on {D} evening.",
        "Witnesses said armed men on motorbikes fired on a checkpoint outside {P} before "
        "withdrawing into the hills.",
        "The army said it had regained control of the main road between {P} and {P2}.",
    ],
    "politics": [
        "{P}’s parliament approved the budget on {D} by {K} votes to {K2}, after weeks of debate.",
        "The central bank of {P} raised its main rate by {K} basis points, citing {Q}.",
        "{R} {N} said the government would present a plan to tackle {Q} in {M}.",
        "Talks between {P} and the {G} on {L} stalled over fuel subsidies, officials said.",
        "Exports from {P} rose {K} percent in {M}, driven by {C} shipments to {P2}.",
        "Opposition parties in {P} called for early elections, accusing {S} of mismanaging the economy.",
        "Unions in {P} threatened a general strike over {Q} and the rising cost of living.",
        "The {G} said {P} had met the conditions for the next tranche of its programme.",
        "{N}, the {R}, arrived in {P} on {D} for a two-day visit focused on trade and the {O}.",
        "The {R} of {P}, {N}, is expected to meet {S2} in {P2} next week to discuss the {O}.",
        "In {P}, about {K00} protesters gathered outside parliament to demand the release of "
        "detained journalists.",
        "{P}’s {R} said the government would hold early elections in {M} after {E} shook the capital.",
        "Analysts in {P2} said the {O} could take {K} months, citing {Q} and a shortage of funds.",
        "Prices of bread and fuel rose {K} percent in {M}, the statistics office said, as {P} "
        "struggled with {Q}.",
    ],
    "culture": [
        "{T} beat {T2} {K2}–{K3} in the {SP} tournament in {P} on {D}.",
        "The film festival in {P} opened on {D} with a premiere by director {N}.",
        "Shares in {CO} rose {K} percent after it reported record quarterly earnings.",
        "Scientists in {P} said a new telescope would begin observations in {M}.",
        "Tickets for the concert in {P} sold out within {K} minutes, organisers said.",
        "The {SP} federation of {P} named {N} as head coach on a {K3}-year contract.",
        "The recipe, a twist on a classic from {P}, uses saffron, lemon and slow-cooked lamb.",
        "Box office receipts in {P} rose {K} percent in {M}, the industry body said.",
        "{CO} said it would open a research centre in {P}, creating {K00} jobs.",
        "The final in {P} drew record crowds as the {SP} team celebrated its first title since {YEAR}.",
        "Critics praised the exhibition in {P} as “bold, witty and long overdue.”",
        "{N}, who grew up in {P}, said the album was “a letter to my grandmother’s village.”",
    ],
}
DESK_WEIGHTS = {"conflict": 35, "politics": 35, "culture": 30}
GENERIC_SENTENCES = [
    "{S} denied the allegations, calling them “baseless” and “politically motivated.”",
    "A spokesperson said the organisation was “following developments closely” in {P}.",
    "The figures could not be independently verified, {OUT} reported.",
    "Témoins à {P} : « la situation reste très tendue », selon un porte-parole.",
    "More details are expected on {D}, when officials in {P} hold a news conference.",
]
PERSIAN_SENTENCES = [
    "به گزارش خبرگزاری‌ها، وضعیت در {FA} همچنان نگران‌کننده است.",
    "مقام‌های محلی در {FA} روز {FD} اعلام کردند که {FK} نفر زخمی شده‌اند.",
]
TITLES = {
    "conflict": [
        "{P}: {K} killed as {G} forces {V} {P2} after {E}",
        "{E} in {P} leaves {K} dead and hundreds displaced, officials say",
        "{G} {PV} {P} over {E}; {S} calls it “unacceptable”",
        "Live: {E} hits {P} as the {G} calls for a {O}",
        "Talks on the {O} between {P} and {P2} stall as the {G} warns of {Q}",
    ],
    "politics": [
        "{G} {PV} {L} for {P} amid {Q}",
        "{N} says {P} will not accept the {O} — {OUT}",
        "{P}’s {R} resigns after {E} sparks protests in {P2}",
        "Explainer: why the {O} in {P} matters for {P2} and the {G}",
        "{P} and {P2} agree to reopen the {O} after months of {Q}",
    ],
    "culture": [
        "{T} stun {T2} in {SP} tournament as crowds pack the stadium in {P}",
        "Film festival in {P} opens with a premiere by director {N}",
        "{CO} shares jump {K}% after record earnings; analysts raise targets",
        "Review: {N}’s new album is a love letter to {P} — and to her grandmother",
    ],
}
# A few places make most of the news: Zipf weights over a fixed, seeded ranking of PLACES.
PLACES_BY_RANK = random.Random(SEED).sample(PLACES, len(PLACES))
PLACE_WEIGHTS = [1 / (rank + 1) for rank in range(len(PLACES))]
MAJOR_PLACES = ["Washington", "Moscow", "Brussels", "London", "Paris", "Geneva", "New Delhi", "Ankara"]
# Sentences with terms of the shipped watchlists: matches (Sistan-Baluchestan incidents, Jaish
# al-Adl, Chinese diplomacy, ambassadors returning, cross-border strikes) and near misses.
SIGNALS = [
    (
        "Gunmen kill {K} border guards near Saravan in Sistan-Baluchestan",
        "Gunmen attacked a border post near Saravan in Iran’s Sistan-Baluchestan province on {D}, "
        "killing {K} guards; Jaish al-Adl claimed responsibility.",
    ),
    (
        "Jaish al-Adl claims attack on police station in Rask",
        "Militants of Jaish al-‘Adl stormed a police station in Rask overnight, Iranian state "
        "media reported, in the deadliest attack in the province this year.",
    ),
    (
        "China’s Wang Yi urges restraint in call with Pakistani counterpart",
        "Chinese Foreign Minister Wang Yi held a phone call with Pakistan’s foreign minister on "
        "{D} and urged both Islamabad and Tehran to show restraint.",
    ),
    (
        "Iran and Pakistan agree their ambassadors will return to posts by {M}",
        "The foreign ministries of Iran and Pakistan said their ambassadors would return to their "
        "posts within days, restoring ties to ambassador level.",
    ),
    (
        "Pakistan strikes militant hideouts inside Iran after missile attack",
        "Pakistan said it had carried out strikes on militant hideouts inside Iran, a day after "
        "Iranian missiles and drones hit targets near Panjgur.",
    ),
    (
        "Floods in Zahedan leave {K} dead as heavy rain hits south-east Iran",
        "Flash floods in Zāhedān and nearby villages left {K} people dead after heavy rain, the "
        "provincial governor said.",
    ),
    (
        "Pakistan cricket squad to tour China and Iran next month",
        "Pakistan’s cricket squad will tour China and Iran next month for a tournament, the board "
        "said on {D}.",
    ),
    (
        "Goodwill ambassador returns to Tehran for UNICEF campaign",
        "The UNICEF goodwill ambassador returned to Tehran on {D} to launch a vaccination drive.",
    ),
    (
        "سیستان و بلوچستان: حمله به پاسگاه مرزی در سراوان",
        "به گزارش رسانه‌های ایران، در حمله به یک پاسگاه مرزی در سراوان {FK} مرزبان کشته شدند.",
    ),
    (
        "Beijing offers to mediate between Tehran and Islamabad",
        "Beijing is ready to play a constructive role and mediate between Tehran and Islamabad, a "
        "Chinese foreign ministry spokesperson told a press conference.",
    ),
]

# Terms of the generated watchlists, in query syntax: entities, actions, topics, exclusions.
ACTIONS = [
    "attack*", "shell*", "bomb*", "raid*", "seiz*", "captur*", "evacuat*", "blockad*", "killed",
    "wounded", "dead", "arrest*", "detain*", "protest*", "sanction*", "suspend*", "negotiat*",
    "signed", "withdr*", "deploy*", "offensive", "curfew", "intercept*", "drone*", "missile*",
    "explosion", "ambush*", "hostage*", "coup", "resign*", "displaced", "condemn*",
    "clashes", "militia*", "looting", "outage", "flood*", "landslide", "outbreak",
]  # fmt: skip
TOPICS = [
    '"aid convoy*"', '"humanitarian corridor*"', '"peace talk*"', "ceasefire", "truce",
    '"grain deal"', '"border crossing*"', '"military base*"', '"oil pipeline*"', '"power grid"',
    '"refugee camp*"', '"debt restructuring"', '"mining licen*"', '"fuel depot*"', "airport",
    "dam", "bridge", "prison", '"interest rate*"', '"election result*"',
]  # fmt: skip
EXCLUSIONS = [
    "football", "cricket", "basketball", "rugby", "tennis", "tournament", "final", "concert",
    '"film festival"', '"box office"', "shares", '"growth forecast"', "recipe", "celebrit*",
    "explainer", '"record crowds"',
]  # fmt: skip


def _term(text: str) -> str:
    """A vocabulary entry in query syntax: phrases (and anything with punctuation) quoted."""
    if text.startswith('"') or text.endswith("*"):
        return text
    return f'"{text}"' if re.search(r"[^\w]", text) else text


def _group(terms: Sequence[str]) -> str:
    return "(" + " OR ".join(terms) + ")"


ENTITIES = (
    [_term(p) for p in PLACES]
    + [_term(p) for p in PEOPLE]
    + [p.split()[-1] for p in PEOPLE]
    + [_term(g) for g in GROUPS]
)


def _generated_query(rng: random.Random) -> str:
    """A query of exactly TERMS_PER_WATCHLIST leaves, in one of six realistic shapes."""

    def entities(n: int) -> list[str]:
        return rng.sample(ENTITIES, n)

    def actions(n: int) -> list[str]:
        return rng.sample(ACTIONS, n)

    def exclusions(n: int) -> list[str]:
        return rng.sample(EXCLUSIONS, n)

    def topics(n: int) -> list[str]:
        return rng.sample(TOPICS, n)

    shape = rng.choices("ABCDEF", weights=[30, 20, 15, 10, 15, 10])[0]
    match shape:
        case "A":  # where or who, what happened, about what, and what it is not
            parts = [entities(7), actions(7), topics(3)]
            return " AND ".join(_group(p) for p in parts) + " AND NOT " + _group(exclusions(3))
        case "B":  # two kinds of entity (implicit AND) and an action
            return " ".join(_group(p) for p in [entities(6), entities(6), actions(8)])
        case "C":  # field qualifiers
            return (
                f"title:{_group(entities(5))} AND {_group(actions(8))} AND {_group(topics(3))} "
                f"AND NOT summary:{_group(exclusions(4))}"
            )
        case "D":  # NEAR: the action close to the entity
            near = rng.choice([5, 8, 10])
            return (
                f"{_group(entities(6))} NEAR/{near} {_group(actions(7))} AND {_group(topics(3))} "
                f"AND NOT {_group(exclusions(4))}"
            )
        case "E":  # nested: an action, or two topics together
            a, b = topics(2)
            return (
                f"{_group(entities(8))} AND ({' OR '.join(actions(5))} OR ({a} AND {b})) "
                f"AND {_group(topics(3))} AND NOT {_group(exclusions(2))}"
            )
        case _:  # two alternatives, each a conjunction
            return " OR ".join(
                f"({_group(entities(4))} AND {_group(actions(4))} AND {_group(topics(2))})" for _ in "ab"
            )


def generate_watchlists(count: int, seed: int = SEED) -> list[Watchlist]:
    """`count` watchlists of TERMS_PER_WATCHLIST terms each, the same for the same seed."""
    rng = random.Random(f"watchlists-{seed}")
    watchlists: list[Watchlist] = []
    for index in range(count):
        text = _generated_query(rng)
        query = parse_query(text)
        assert len(leaves(query)) == TERMS_PER_WATCHLIST, text
        watchlists.append(
            Watchlist(
                slug=f"gen-{index:03d}",
                name=f"Generated watchlist {index}",
                description="Generated by bench/bench_matcher.py.",
                severity=rng.choice(list(Severity)),
                query=query,
                source=text,
            )
        )
    return watchlists


def _story(rng: random.Random) -> tuple[str, dict[str, str]]:
    """A desk and a cast: what one item is about."""
    desk = rng.choices(list(DESK_WEIGHTS), weights=list(DESK_WEIGHTS.values()))[0]
    place = rng.choices(PLACES_BY_RANK, weights=PLACE_WEIGHTS)[0]
    place2 = rng.choice([p for p in MAJOR_PLACES if p != place])
    if rng.random() < 0.5:
        place2 = rng.choices(PLACES_BY_RANK, weights=PLACE_WEIGHTS)[0]
    person, other = rng.sample(PEOPLE, 2)
    team, team2 = rng.sample(TEAMS, 2)
    events = POLITICAL_EVENTS if desk == "politics" else EVENTS
    return desk, {
        "P": place,
        "P2": place2 if place2 != place else rng.choice(MAJOR_PLACES[:3]),
        "N": person,
        "S": person.split()[-1],
        "S2": other.split()[-1],
        "G": rng.choice(GROUPS),
        "R": rng.choice(ROLES),
        "E": rng.choice(events),
        "O": rng.choice(NOUNS),
        "Q": rng.choice(PROBLEMS),
        "L": rng.choice(LOANS),
        "C": rng.choice(COMMODITIES),
        "CO": rng.choice(COMPANIES),
        "T": f"{rng.choice(PLACES)} {team}",
        "T2": f"{rng.choice(PLACES)} {team2}",
        "SP": rng.choice(SPORTS),
    }


def _fill(template: str, story: dict[str, str], rng: random.Random) -> str:
    return template.format_map(
        {
            **story,
            "V": rng.choice(PAST_VERBS),
            "PV": rng.choice(PRESENT_VERBS),
            "D": rng.choice(DAYS),
            "M": rng.choice(MONTHS),
            "OUT": rng.choice(OUTLETS),
            "K": str(rng.randint(2, 60)),
            "K2": str(rng.randint(0, 5)),
            "K3": str(rng.randint(1, 4)),
            "K00": str(rng.randint(2, 90) * 100),
            "YEAR": str(rng.randint(1990, 2019)),
            "FA": rng.choice(PERSIAN_PLACES),
            "FD": rng.choice(["دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه"]),
            "FK": "".join(chr(0x06F0 + int(d)) for d in str(rng.randint(2, 40))),  # Persian digits
        }
    )


def _title(desk: str, story: dict[str, str], rng: random.Random) -> str:
    best = ""
    for _ in range(20):
        title = _fill(rng.choice(TITLES[desk]), story, rng)
        title = title[0].upper() + title[1:]
        if 70 <= len(title) <= 90:
            return title
        if not best or abs(len(title) - 80) < abs(len(best) - 80):
            best = title
    return best


def generate_items(count: int, seed: int = SEED, signal_share: float = 0.04) -> list[Item]:
    """`count` news-like items; about `signal_share` of them carry shipped-watchlist terms."""
    rng = random.Random(f"items-{seed}")
    published = dt.datetime(2024, 1, 18, tzinfo=dt.UTC)
    items: list[Item] = []
    for index in range(count):
        desk, story = _story(rng)
        title = _title(desk, story, rng)
        persian = rng.random() < 0.1
        sentences: list[str] = []
        length = 0
        while length < 1400:
            roll = rng.random()
            if persian and roll < 0.1:
                template = rng.choice(PERSIAN_SENTENCES)
            elif roll < 0.25:
                template = rng.choice(GENERIC_SENTENCES)
            else:
                template = rng.choice(DESKS[desk])
            sentence = _fill(template, story, rng)
            if sentence in sentences or length + len(sentence) > 1650:
                continue
            sentences.append(sentence)
            length += len(sentence) + 1
        if rng.random() < signal_share:
            signal_title, signal_sentence = rng.choice(SIGNALS)
            sentences[rng.randrange(len(sentences))] = _fill(signal_sentence, story, rng)
            if rng.random() < 0.5:
                title = _fill(signal_title, story, rng)
        items.append(
            Item(
                feed=rng.choice(["wire-world", "wire-africa", "regional-desk", "monitor-persian"]),
                key=f"bench-{index}",
                title=title,
                summary=" ".join(sentences),
                link=f"https://news.example/{desk}/{index:06d}",
                published=published + dt.timedelta(minutes=index),
            )
        )
    return items


# ---------------------------------------------------------------------------------------------
# The naive loop


def naive_pattern(leaf: Term | Regex) -> re.Pattern[str]:
    """A whole-word regex for a term (`\\w*` for a trailing wildcard), or the regex itself."""
    if isinstance(leaf, Regex):
        return re.compile(leaf.pattern, re.IGNORECASE)  # RE2 syntax read by `re`: approximate
    words = " ".join(re.escape(w.text) + (r"\w*" if w.prefix else "") for w in leaf.words)
    return re.compile(rf"\b{words}\b")


def naive_evaluate(node: Node, found: set[Term | Regex]) -> bool:
    """The query tree, from which terms were found. NEAR is approximated as AND."""
    match node:
        case Term() | Regex():
            return node in found
        case Not(child):
            return not naive_evaluate(child, found)
        case And(children):
            return all(naive_evaluate(c, found) for c in children)
        case Or(children):
            return any(naive_evaluate(c, found) for c in children)
        case Near(left, right, _):
            return naive_evaluate(left, found) and naive_evaluate(right, found)
        case SetRef(name):
            raise ValueError(f"unresolved term set @{name}")


def is_exact(node: Node) -> bool:
    """Whether the naive loop evaluates this tree exactly (no NEAR, no regex)."""
    match node:
        case Term():
            return True
        case Regex() | Near() | SetRef():
            return False
        case Not(child):
            return is_exact(child)
        case And(children) | Or(children):
            return all(is_exact(c) for c in children)


class NaiveMatcher:
    """For each watchlist, for each term, `pattern.search` on the normalised text; then the tree."""

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        self.watchlists = [(w, [(leaf, naive_pattern(leaf)) for leaf in leaves(w.query)]) for w in watchlists]

    def match(self, item: Item) -> list[str]:
        texts = {name: normalise(text) for name, text in item_fields(item).items()}
        matched: list[str] = []
        for watchlist, patterns in self.watchlists:
            found: set[Term | Regex] = set()
            for leaf, pattern in patterns:
                for name in leaf.fields:
                    if pattern.search(texts[name]):
                        found.add(leaf)
                        break
            if naive_evaluate(watchlist.query, found):
                matched.append(watchlist.slug)
        return matched


# ---------------------------------------------------------------------------------------------
# Agreement


@dataclass
class Agreement:
    items: int = 0
    exact_watchlists: int = 0  # without NEAR or regex: the naive loop must agree exactly
    approximate_watchlists: int = 0
    exact_decisions: int = 0
    exact_agree: int = 0
    exact_matches: int = 0  # (item, watchlist) pairs both matched
    approximate_decisions: int = 0
    approximate_agree: int = 0
    compiled_approximate_matches: int = 0
    naive_approximate_matches: int = 0
    disagreements: list[tuple[str, str, bool]] = field(default_factory=list)  # item, slug, compiled

    @property
    def disagreeing(self) -> int:
        return self.exact_decisions - self.exact_agree

    def summary(self) -> str:
        text = (
            f"{self.exact_agree:,} of {self.exact_decisions:,} decisions agree "
            f"({self.items:,} items × {self.exact_watchlists} watchlists without NEAR or regex; "
            f"{self.exact_matches:,} item–watchlist matches)"
        )
        if self.approximate_watchlists:
            text += (
                f"; the {self.approximate_watchlists} watchlists with NEAR or a regex, where the naive loop "
                f"reads NEAR as AND: {self.approximate_agree:,} of {self.approximate_decisions:,} "
                f"agree (compiled {self.compiled_approximate_matches:,} matches, naive "
                f"{self.naive_approximate_matches:,})"
            )
        return text


def check_agreement(watchlists: Sequence[Watchlist], items: Sequence[Item]) -> Agreement:
    """Which watchlists each item matches, by the compiled matcher and by the naive loop."""
    compiled, naive = Matcher(watchlists), NaiveMatcher(watchlists)
    exact = {w.slug: is_exact(w.query) for w in watchlists}
    result = Agreement(
        items=len(items),
        exact_watchlists=sum(exact.values()),
        approximate_watchlists=len(watchlists) - sum(exact.values()),
    )
    for item in items:
        by_compiled = {m.watchlist for m in compiled.match(item)}
        by_naive = set(naive.match(item))
        for slug, is_exact_one in exact.items():
            a, b = slug in by_compiled, slug in by_naive
            if is_exact_one:
                result.exact_decisions += 1
                result.exact_agree += a == b
                result.exact_matches += a and b
                if a != b:
                    result.disagreements.append((item.key, slug, a))
            else:
                result.approximate_decisions += 1
                result.approximate_agree += a == b
                result.compiled_approximate_matches += a
                result.naive_approximate_matches += b
    return result


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


@dataclass
class Runner:
    """Matches items in a cycle; each run continues where the last one stopped."""

    match: Callable[[Item], object]
    items: Sequence[Item]
    cursor: int = 0
    rates: list[float] = field(default_factory=list)
    cpu_shares: list[float] = field(default_factory=list)  # CPU time / wall time of each run
    matched_items: int = 0

    def run(self, seconds: float, min_items: int) -> None:
        match, items, total, i, count = self.match, self.items, len(self.items), self.cursor, 0
        gc.collect()
        cpu = time.process_time()
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            match(items[i])
            i += 1
            count += 1
            if i == total:
                i = 0
            if count >= min_items and time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        self.cpu_shares.append((time.process_time() - cpu) / elapsed)
        self.rates.append(count / elapsed)
        self.cursor = i


@dataclass(frozen=True)
class Row:
    generated: int
    watchlists: int
    terms: int  # leaves, summed over the watchlists
    distinct_terms: int
    build_ms: float
    compiled: Stats
    quiet: Stats  # compiled, on the items that match no watchlist: the scan, without explanations
    naive: Stats
    compiled_cpu_share: float
    naive_cpu_share: float
    items_matching: float  # share of items that match at least one watchlist
    matches_per_item: float

    @property
    def ratio(self) -> float:
        return self.compiled.median / self.naive.median


@dataclass
class Config:
    """One size: the shipped watchlists plus `generated` generated ones, both ways."""

    generated: int
    watchlists: list[Watchlist]
    matcher: Matcher
    compiled: Runner
    quiet: Runner
    naive: Runner
    build_ms: float


def measure(
    shipped: Sequence[Watchlist],
    generated: Sequence[Watchlist],
    items: Sequence[Item],
    steps: Sequence[int],
    runs: int,
    compiled_seconds: float,
    naive_seconds: float,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """Items per second at each step (shipped + that many generated watchlists), both ways.

    Every round runs every configuration once, so a slow spell on a shared machine hits them all.
    """
    everything = Matcher([*shipped, *generated[: max(steps)]])
    # Items that no watchlist matches (all items, in a degenerate run where every item matches).
    quiet_items = [item for item in items if not everything.match(item)] or list(items)
    configs: list[Config] = []
    for step in steps:
        watchlists = [*shipped, *generated[:step]]
        start = time.perf_counter()
        matcher = Matcher(watchlists)
        build_ms = (time.perf_counter() - start) * 1000
        naive = NaiveMatcher(watchlists)
        configs.append(
            Config(
                step,
                watchlists,
                matcher,
                Runner(matcher.match, items),
                Runner(matcher.match, quiet_items),
                Runner(naive.match, items),
                build_ms,
            )
        )
    for config in configs:  # warm-up, not recorded
        runners = [(config.compiled, compiled_seconds), (config.quiet, compiled_seconds)]
        for runner, seconds in [*runners, (config.naive, naive_seconds)]:
            runner.run(min(0.1, seconds), 1)
            runner.rates.clear()
            runner.cpu_shares.clear()
    for round_ in range(runs):
        for config in configs:
            config.compiled.run(compiled_seconds, 50)
            config.quiet.run(compiled_seconds, 50)
            config.naive.run(naive_seconds, 2)
            progress(
                f"  round {round_ + 1}/{runs}, +{config.generated:>3} generated: "
                f"compiled {config.compiled.rates[-1]:>9,.0f} items/s "
                f"({config.quiet.rates[-1]:>7,.0f} on items matching nothing), "
                f"naive {config.naive.rates[-1]:>7,.1f} items/s"
            )
    rows: list[Row] = []
    for config in configs:
        all_leaves = [leaf for w in config.watchlists for leaf in leaves(w.query)]
        counts = [len(config.matcher.match(item)) for item in items]
        rows.append(
            Row(
                generated=config.generated,
                watchlists=len(config.watchlists),
                terms=len(all_leaves),
                distinct_terms=len({leaf.key if isinstance(leaf, Term) else leaf for leaf in all_leaves}),
                build_ms=config.build_ms,
                compiled=Stats.of(config.compiled.rates),
                quiet=Stats.of(config.quiet.rates),
                naive=Stats.of(config.naive.rates),
                compiled_cpu_share=statistics.median(config.compiled.cpu_shares),
                naive_cpu_share=statistics.median(config.naive.cpu_shares),
                items_matching=sum(1 for c in counts if c) / len(items),
                matches_per_item=sum(counts) / len(items),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    versions = {}
    for package in ("pyahocorasick", "google-re2", "lark"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": f"{cores} logical cores ({usable} usable by this process)",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "libraries": ", ".join(f"{name} {version}" for name, version in versions.items()),
    }


def checkout() -> str:
    """The commit measured, and the files under monitor/ that differ from it."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        commit = subprocess.run(
            [git, "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            [git, "-C", str(ROOT), "status", "--porcelain", "--", "monitor"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in status.splitlines()]
    return f"{commit}, with uncommitted changes to {', '.join(changed)}" if changed else commit


def _rate(stats: Stats, digits: int = 0) -> str:
    return f"{stats.median:,.{digits}f} ({stats.low:,.{digits}f}–{stats.high:,.{digits}f})"


def table(rows: Sequence[Row]) -> str:
    base = rows[0].compiled.median
    lines = [
        "| watchlists | terms (distinct) | matches per item | compiled items/s, median (min–max) "
        "| vs shipped only | compiled on items matching nothing | naive items/s, median (min–max) "
        "| compiled / naive |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        label = "shipped only" if row.generated == 0 else f"shipped + {row.generated} generated"
        lines.append(
            f"| {label} ({row.watchlists}) | {row.terms:,} ({row.distinct_terms:,}) "
            f"| {row.matches_per_item:.2f} | {_rate(row.compiled)} | {row.compiled.median / base:.0%} "
            f"| {_rate(row.quiet)} "
            f"| {_rate(row.naive, 1)} | {row.ratio:,.0f}× |"
        )
    return "\n".join(lines)


def reading(rows: Sequence[Row]) -> str:
    first, last = rows[0], rows[-1]
    speed_met = last.compiled.median >= TARGET_ITEMS_PER_SECOND
    ratio_met = last.ratio >= TARGET_RATIO
    change = last.compiled.median / first.compiled.median - 1
    quiet_change = last.quiet.median / first.quiet.median - 1
    naive_drop = first.naive.median / last.naive.median

    def flat(value: float) -> str:
        return "flat" if abs(value) <= 0.2 else "not flat"

    return (
        f"With the shipped watchlists and {last.generated} generated ones ({last.terms:,} terms), the "
        f"compiled matcher does {last.compiled.median:,.0f} items/s on one core, "
        f"{'above' if speed_met else 'below'} the {TARGET_ITEMS_PER_SECOND:,} items/s target, and "
        f"{last.ratio:,.0f}× the naive loop ({'meets' if ratio_met else 'misses'} the "
        f"{TARGET_RATIO}× target). "
        f"From {first.watchlists} to {last.watchlists} watchlists its throughput changes by {change:+.0%} "
        f"({flat(change)} within ±20%) as matches per item rise from {first.matches_per_item:.2f} to "
        f"{last.matches_per_item:.2f} (each match is explained with character spans), and by "
        f"{quiet_change:+.0%} on items that match nothing ({flat(quiet_change)}), while the naive loop, "
        f"which searches every term of every watchlist, slows down {naive_drop:.1f}×."
    )


def section(
    rows: Sequence[Row],
    agreement: Agreement,
    items: Sequence[Item],
    shipped: Sequence[Watchlist],
    generated: Sequence[Watchlist],
    runs: int,
    compiled_seconds: float,
    naive_seconds: float,
    elapsed: float,
) -> str:
    info = machine()
    titles = statistics.mean(len(i.title) for i in items)
    summaries = statistics.mean(len(i.summary) for i in items)
    summary_bytes = statistics.mean(len(i.summary.encode()) for i in items)
    shipped_hit = Matcher(shipped)
    signal = sum(1 for i in items if shipped_hit.match(i)) / len(items)
    near = sum(1 for w in generated if not is_exact(w.query))
    last = rows[-1]
    cpu_shares = ", ".join(f"{r.compiled_cpu_share:.0%}/{r.naive_cpu_share:.0%}" for r in rows)
    return "\n".join(
        [
            START_MARKER,
            "## Watchlist matcher",
            "",
            f"`make bench` (`python -m bench.bench_matcher`), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
            f"in {elapsed:.0f} s.",
            "",
            f"- Machine: {info['cpu']}, {info['cores']}; {info['platform']}.",
            f"- {info['python']}; {info['libraries']}. Code: {checkout()}.",
            "- One core: the benchmark is a single-threaded process (the matcher does not use "
            "threads), so the figures are per core. Wall-clock time; runs are time-bounded "
            f"({compiled_seconds:g} s compiled, {naive_seconds:g} s naive) and interleaved, {runs} rounds, "
            f"after a warm-up. CPU time / wall time of the runs (compiled/naive, by row): {cpu_shares}; "
            "well below 100% means another process took the core.",
            f"- Watchlists: the {len(shipped)} shipped ones (term sets expanded: "
            f"{rows[0].terms:,} terms) plus up to {len(generated)} generated ones of "
            f"{TERMS_PER_WATCHLIST} terms each (seed {SEED}: places, people, groups, verbs, `word*` "
            f"wildcards, quoted phrases, OR/AND/NOT, field qualifiers; {near} use NEAR).",
            f"- Items: {len(items):,} generated news-like items, cycled; titles {titles:.0f} characters "
            f"and summaries {summaries:,.0f} characters ({summary_bytes:,.0f} bytes UTF-8) on average, "
            "with curly quotes, dashes, accents and some Persian script. "
            f"{signal:.1%} match a shipped watchlist; with all {last.watchlists} watchlists "
            f"{last.items_matching:.0%} of items match at least one ({last.matches_per_item:.2f} matches "
            "per item).",
            "- Compiled: `monitor.watchlists.Matcher.match` (normalise, Aho-Corasick over all terms, "
            "evaluate the candidate watchlists, explain each match with spans). Naive: per watchlist, "
            "per term, a precompiled whole-word `re` pattern (`\\w*` for a trailing wildcard) searched "
            "in the normalised text, then the query tree evaluated from the terms found; "
            "**NEAR is approximated as AND** in the naive loop.",
            "",
            table(rows),
            "",
            "Matcher build time (automaton and query compilation, one measurement each): "
            + ", ".join(f"{r.build_ms:,.0f} ms" for r in rows)
            + f". Targets: ≥ {TARGET_ITEMS_PER_SECOND:,} items/s with shipped + 100 generated "
            f"watchlists, ≥ {TARGET_RATIO}× the naive loop, flat as watchlists are added.",
            "",
            f"Agreement (all {last.watchlists} watchlists, one run): {agreement.summary()}.",
            "",
            reading(rows),
            END_MARKER,
        ]
    )


def write_section(path: Path, text: str) -> None:
    """Put `text` into `path`, replacing the previous matcher section."""
    bench.write_section(path, text, START_MARKER, END_MARKER)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_matcher", description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="distinct items generated (default 2000)")
    parser.add_argument("--generated", type=int, default=100, help="generated watchlists (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per configuration (default 5)")
    parser.add_argument("--compiled-seconds", type=float, default=0.5, help="length of one compiled run")
    parser.add_argument("--naive-seconds", type=float, default=0.7, help="length of one naive run")
    parser.add_argument(
        "--agreement-items",
        type=int,
        default=200,
        help="items checked for agreement, plus every item a shipped watchlist matches (default 200)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="Markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def say(text: str) -> None:
        print(text, flush=True)

    shipped, errors = load_watchlists(WATCHLISTS_DIR)
    if errors:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    generated = generate_watchlists(args.generated)
    items = generate_items(args.items)
    say(f"{len(shipped)} shipped watchlists, {len(generated)} generated, {len(items):,} items")

    # The first items, and every other item that a shipped watchlist matches.
    shipped_matcher = Matcher(shipped)
    extra = [item for item in items[args.agreement_items :] if shipped_matcher.match(item)]
    checked = [*items[: args.agreement_items], *extra]
    agreement = check_agreement([*shipped, *generated], checked)
    say(f"agreement: {agreement.summary()}")
    for key, slug, by_compiled in agreement.disagreements[:10]:
        say(f"  DISAGREE {key} {slug}: compiled {'matches' if by_compiled else 'does not match'}")

    steps = sorted({min(step, len(generated)) for step in GENERATED_STEPS})
    say(f"timing {len(steps)} sizes × {args.runs} rounds (single-threaded: one core)")
    rows = measure(
        shipped, generated, items, steps, args.runs, args.compiled_seconds, args.naive_seconds, say
    )
    text = section(
        rows,
        agreement,
        items,
        shipped,
        generated,
        args.runs,
        args.compiled_seconds,
        args.naive_seconds,
        time.perf_counter() - started,
    )
    say("")
    say(table(rows))
    say("")
    say(reading(rows))
    if not args.no_write:
        write_section(args.output, text)
        say(f"\nwritten to {args.output}")
    return 1 if agreement.disagreeing else 0


if __name__ == "__main__":
    sys.exit(main())
