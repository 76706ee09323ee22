"""Watchlists: loading with located errors, matcher semantics, and the shipped watchlists' signals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import ConfigErrors, WatchlistError
from monitor.types import Item, Severity
from monitor.watchlists import Matcher, Watchlist, load_watchlist, load_watchlists
from monitor.watchlists.loader import parse_watchlist
from monitor.watchlists.model import AllOf, AnyOf, Not, Term

SHIPPED = Path(__file__).resolve().parents[1] / "watchlists"
NOW = datetime(2024, 1, 20, tzinfo=UTC)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path: Path, channels: set[str] | None = None) -> list[WatchlistError]:
    with pytest.raises(ConfigErrors) as info:
        load_watchlist(path, channels)
    return info.value.errors  # type: ignore[return-value]


def error_at(errors: list[WatchlistError], path: Path, key: str) -> WatchlistError:
    found = [e for e in errors if e.key == key]
    assert len(found) == 1, f"expected one error at {key!r}, got: {[str(e) for e in errors]}"
    prefix = f"{path}: {key}: " if key else f"{path}: "
    assert str(found[0]).startswith(prefix)
    return found[0]


def item(title: str, summary: str = "", link: str | None = None, feed: str = "wire") -> Item:
    return Item(feed=feed, key=title, title=title, summary=summary, link=link, published=NOW)


def watchlist(match: dict[str, Any], slug: str = "w", **top: Any) -> Watchlist:
    return parse_watchlist(slug, {"name": slug.title(), "match": match, **top}, Path(f"{slug}.toml"))


def terms(w: Watchlist, it: Item) -> tuple[str, ...] | None:
    """The terms reported when `it` matches `w`, or None when it does not match."""
    matches = Matcher([w]).match(it)
    assert len(matches) <= 1
    return matches[0].terms if matches else None


# Loading

VALID = """
name = "Envoys"
description = "Ambassadors on the move"
severity = "high"
channels = ["ops"]

[match]
any = ["ambassador*", "envoy"]
all = [["Iran", "Pakistan"]]
none = ["goodwill ambassador"]
fields = ["title", "summary", "link"]
"""


def test_valid_watchlist_loads(tmp_path):
    """A complete watchlist file becomes a Watchlist: slug from the file name, query tree, routing."""
    w = load_watchlist(write(tmp_path, "envoys.toml", VALID), {"ops"})
    assert w.slug == "envoys"
    assert w.name == "Envoys"
    assert w.description == "Ambassadors on the move"
    assert w.severity is Severity.HIGH
    assert w.channels == ("ops",)
    assert w.fields == ("title", "summary", "link")
    assert w.query == AllOf(
        (
            AnyOf((Term("ambassador*", "ambassador", prefix=True), Term("envoy", "envoy"))),
            AnyOf((Term("Iran", "iran"), Term("Pakistan", "pakistan"))),
            Not(AnyOf((Term("goodwill ambassador", "goodwill ambassador"),))),
        )
    )


def test_defaults_of_optional_keys(tmp_path):
    """Severity defaults to medium, channels to every channel, fields to title and summary."""
    w = load_watchlist(write(tmp_path, "min.toml", 'name = "Min"\n[match]\nany = ["x"]\n'))
    assert w.severity is Severity.MEDIUM
    assert w.channels is None
    assert w.fields == ("title", "summary")
    assert w.description == ""


@pytest.mark.parametrize(
    ("text", "key", "needle"),
    [
        ('[match]\nany = ["x"]\n', "name", "missing"),
        ('name = 3\n[match]\nany = ["x"]\n', "name", "expected a string"),
        ('name = "n"\nseverity = "urgent"\n[match]\nany = ["x"]\n', "severity", "'urgent' is not one of"),
        ('name = "n"\ncolour = "red"\n[match]\nany = ["x"]\n', "colour", "unknown key"),
        ('name = "n"\n[match]\nany = ["x"]\nanyy = ["y"]\n', "match.anyy", "unknown key"),
        ('name = "n"\n[match]\nany = []\n', "match.any", "non-empty list"),
        ('name = "n"\n[match]\nany = ["x", 3]\n', "match.any", "non-empty list"),
        ('name = "n"\n[match]\nall = []\n', "match.all", "list of groups"),
        ('name = "n"\n[match]\nall = [["x"], []]\n', "match.all[1]", "non-empty list"),
        ('name = "n"\n[match]\nany = ["x"]\nnone = []\n', "match.none", "non-empty list"),
        ('name = "n"\n[match]\nany = ["ok", "--"]\n', "match.any[1]", "no letters or digits"),
        ('name = "n"\n[match]\nnone = ["x"]\n', "match", "needs `any` or `all`"),
        ('name = "n"\n', "match", "missing"),
        ('name = "n"\nmatch = "x"\n', "match", "not a table"),
        (
            'name = "n"\n[match]\nany = ["x"]\nfields = ["body"]\n',
            "match.fields",
            "title, summary, link, source",
        ),
        ('name = "n"\n[match]\nany = ["x"]\nfields = []\n', "match.fields", "non-empty"),
        ('name = "n"\nchannels = "ops"\n[match]\nany = ["x"]\n', "channels", "list of channel names"),
    ],
)
def test_loader_errors_name_file_and_key(tmp_path, text, key, needle):
    """Each mistake is reported at its key, the message starting with the file and key."""
    path = write(tmp_path, "bad.toml", text)
    error = error_at(load_errors(path), path, key)
    assert needle in error.message


def test_undefined_channel(tmp_path):
    """Routing to a channel config.toml does not define is an error naming the channel."""
    path = write(tmp_path, "w.toml", 'name = "n"\nchannels = ["ops", "pager"]\n[match]\nany = ["x"]\n')
    error = error_at(load_errors(path, {"ops", "mail"}), path, "channels")
    assert "'pager' is not defined" in error.message
    assert load_watchlist(path, None).channels == ("ops", "pager")  # unchecked when channels are unknown


def test_toml_syntax_error(tmp_path):
    """A TOML syntax error names the file and the line."""
    path = write(tmp_path, "broken.toml", 'name = "n"\n[match\nany = ["x"]\n')
    error = error_at(load_errors(path), path, "")
    assert "TOML syntax error" in error.message
    assert "line 2" in error.message


def test_several_errors_in_one_file(tmp_path):
    """Every problem in a file is reported at once."""
    path = write(tmp_path, "w.toml", 'severity = "urgent"\ncolour = 1\n[match]\nany = []\n')
    assert {e.key for e in load_errors(path)} == {"name", "severity", "colour", "match.any"}


def test_one_broken_file_does_not_stop_the_others(tmp_path):
    """load_watchlists returns the good files and the errors of the bad one."""
    write(tmp_path, "a-good.toml", 'name = "A"\n[match]\nany = ["alpha"]\n')
    bad = write(tmp_path, "b-bad.toml", 'name = "B"\n[match\n')
    write(tmp_path, "c-good.toml", 'name = "C"\nseverity = "low"\n[match]\nany = ["gamma"]\n')
    worse = write(tmp_path, "d-worse.toml", 'severity = "x"\n[match]\nany = ["delta"]\n')
    write(tmp_path, "notes.txt", "not a watchlist")
    watchlists, errors = load_watchlists(tmp_path)
    assert [w.slug for w in watchlists] == ["a-good", "c-good"]
    assert {e.file for e in errors} == {str(bad), str(worse)}
    assert {(Path(e.file).name, e.key) for e in errors} == {
        ("b-bad.toml", ""),
        ("d-worse.toml", "name"),
        ("d-worse.toml", "severity"),
    }


def test_missing_directory(tmp_path):
    """A missing watchlist directory is one error naming it."""
    watchlists, errors = load_watchlists(tmp_path / "nope")
    assert watchlists == []
    assert len(errors) == 1
    assert errors[0].file == str(tmp_path / "nope")
    assert "not found" in errors[0].message


def test_load_watchlists_checks_channels(tmp_path):
    """Channels passed to load_watchlists are checked in every file."""
    write(tmp_path, "w.toml", 'name = "n"\nchannels = ["pager"]\n[match]\nany = ["x"]\n')
    assert load_watchlists(tmp_path, ["ops"])[1][0].key == "channels"
    assert load_watchlists(tmp_path, ["pager"])[1] == []


# Matching


@pytest.mark.parametrize(
    ("term", "title", "matched"),
    [
        ("Iran", "Iran recalls envoy", True),
        ("Iran", "IRAN recalls envoy", True),
        ("Iran", "Iran's envoy", True),
        ("Iran", "Iranian envoy", False),
        ("Iran", "Tehran-Iran talks", True),
        ("Iran", "Airan is a drink", False),
        ("Iran*", "Iranian envoy", True),
        ("Iran*", "Iran envoy", True),
        ("Iran*", "Airanian", False),
        ("Rask", "Attack near Rask", True),
        ("Rask", "Raskolnikov", False),
        ("Sistan", "al-Sistani says", False),
        ("Sīstān", "sistan province", True),
        ("Sistan-Baluchestan", "SISTAN – BALUCHESTAN", True),
        ("Sistan-Baluchestan", "Sistan & Baluchestan", True),
        ("Sistan-Baluchestan", "Baluchestan Sistan", False),
        ("high commissioner*", "High Commissioners return", True),
        ("high commissioner*", "high-commissioner returns", True),
        ("high commissioner*", "high and commissioner", False),
        ("ایران", "سفیر ايران", True),
        ("اسلام آباد", "سفیر به اسلام\u200cآباد", True),
    ],
)
def test_term_matching(term, title, matched):
    """Terms match whole words after normalisation; a trailing * matches any ending of the last word."""
    w = watchlist({"any": [term]})
    assert (terms(w, item(title)) is not None) is matched


def test_any_needs_one_term():
    """`any`: one of its terms is enough."""
    w = watchlist({"any": ["Zahedan", "Saravan"]})
    assert terms(w, item("Clash in Saravan")) == ("Saravan",)
    assert terms(w, item("Clash in Quetta")) is None


def test_all_needs_every_group():
    """`all`: each group must contribute a term."""
    w = watchlist({"all": [["Zahedan", "Saravan"], ["attack*", "blast"]]})
    assert terms(w, item("Attackers strike Saravan")) == ("Saravan", "attack*")
    assert terms(w, item("Saravan market opens")) is None
    assert terms(w, item("Blast in Quetta")) is None


def test_all_accepts_bare_strings_as_groups():
    """A bare string in `all` is a group of one."""
    w = watchlist({"all": ["Iran", ["envoy", "ambassador"]]})
    assert terms(w, item("Iran names envoy")) == ("Iran", "envoy")
    assert terms(w, item("Iraq names envoy")) is None


def test_any_and_all_together():
    """`any` and `all` combine: both must hold."""
    w = watchlist({"any": ["China"], "all": [["Iran"], ["talks"]]})
    assert terms(w, item("China hosts Iran talks")) == ("China", "Iran", "talks")
    assert terms(w, item("Iran talks")) is None


def test_none_excludes():
    """`none`: any of its terms vetoes the match."""
    w = watchlist({"any": ["ambassador*"], "none": ["goodwill ambassador*", "brand ambassador"]})
    assert terms(w, item("Ambassador returns")) == ("ambassador*",)
    assert terms(w, item("Goodwill ambassadors visit")) is None
    assert terms(w, item("New brand ambassador")) is None


def test_reported_terms_are_the_positive_terms_found():
    """Reported terms are the positive terms present, as written, once each; never `none` terms."""
    w = watchlist({"all": [["Iran*", "Tehran"], ["envoy", "Iran*"]], "none": ["farewell", "Kabul"]})
    found = terms(w, item("Iranian envoy in Tehran", "Iran's envoy"))
    assert found == ("Iran*", "Tehran", "envoy")
    assert terms(w, item("Iranian envoy bids farewell")) is None
    none_terms = {"farewell", "Kabul"}
    for title in ["Iranian envoy in Tehran", "Tehran envoy", "Iran envoy returns"]:
        reported = terms(w, item(title))
        assert reported is not None
        assert not none_terms & set(reported)


def test_fields_default_to_title_and_summary():
    """By default the title and summary are searched, not the link or source."""
    w = watchlist({"any": ["Zahedan"]})
    assert terms(w, item("Clash", summary="near Zahedan")) == ("Zahedan",)
    assert terms(w, item("Clash", link="https://news.example/zahedan")) is None
    assert terms(w, item("Clash", feed="zahedan")) is None


def test_fields_select_what_is_searched():
    """`fields` restricts or extends the searched text: link and source are matchable."""
    by_link = watchlist({"any": ["Zahedan"], "fields": ["link"]})
    assert terms(by_link, item("Clash", link="https://news.example/zahedan-clash")) == ("Zahedan",)
    assert terms(by_link, item("Zahedan clash")) is None
    by_source = watchlist({"any": ["irna"], "fields": ["source"]})
    assert terms(by_source, item("Anything", feed="irna")) == ("irna",)
    assert terms(by_source, item("IRNA says", feed="dawn")) is None


def test_matcher_reports_every_matching_watchlist():
    """One item can match several watchlists; each is reported with its own terms."""
    a = watchlist({"any": ["China"]}, slug="china")
    b = watchlist({"all": [["Iran"], ["envoy"]]}, slug="envoys")
    c = watchlist({"any": ["Quetta"]}, slug="quetta")
    matches = Matcher([a, b, c]).match(item("China and Iran send envoy"))
    assert [(m.watchlist, m.terms) for m in matches] == [("china", ("China",)), ("envoys", ("Iran", "envoy"))]


def test_matcher_with_no_watchlists():
    """No watchlists, no matches."""
    assert Matcher([]).match(item("anything")) == []


# The shipped watchlists


def test_shipped_watchlists_load():
    """Every file in watchlists/ loads without error, including the three signal slugs."""
    watchlists, errors = load_watchlists(SHIPPED)
    assert errors == []
    slugs = {w.slug for w in watchlists}
    assert {"chinese-diplomacy", "sistan-baluchestan", "ambassador-returns"} <= slugs
    assert len(watchlists) == len(list(SHIPPED.glob("*.toml")))


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    watchlists, errors = load_watchlists(SHIPPED)
    assert errors == []
    return Matcher(watchlists)


def fired(matcher: Matcher, headline: str) -> set[str]:
    return {m.watchlist for m in matcher.match(item(headline))}


SIGNALS: dict[str, tuple[list[str], list[str]]] = {
    "chinese-diplomacy": (
        [
            "Chinese Foreign Minister Wang Yi urges Iran and Pakistan to exercise restraint",
            "China offers to mediate between Tehran and Islamabad after cross-border strikes",
            "Beijing's special envoy visits Kabul for talks with Taliban officials",
            "Mao Ning: China calls for calm as Iran-Pakistan tensions rise",
            "Chinese ambassador Jiang Zaidong meets Pakistani Foreign Minister Jilani in Islamabad",
            "Xi Jinping hosts Saudi and Iranian officials in Beijing",
            "وانگ یی با وزیر خارجه ایران دیدار کرد",
        ],
        [
            "China's exports to Pakistan rise 12% in first quarter",
            "Wang Yi visits Canada for talks on trade",
            "Chinese foreign ministry spokesperson criticises EU tariffs",
            "Pakistan cricket squad arrives in China for tour",
            "Hang Seng and KSE 100 fall as China, Pakistan stocks slide",
            "Chinese film week opens in Tehran",
            "Saudi Aramco signs supply deal with Chinese refiner",
            "Chinese tourists visit Isfahan as Iran's visa waiver takes effect",
        ],
    ),
    "sistan-baluchestan": (
        [
            "Jaish al-Adl militants kill 11 police officers in Rask attack",
            "Pakistan strikes militant hideouts in Iran's Sistan-Baluchestan province",
            "Gunmen kill border guards near Saravan",
            "Sistan & Baluchestan: IRGC members killed in Zahedan clash",
            "Explosion at Chabahar police station wounds five",
            "حمله تروریستی به پاسگاه پلیس در راسک",
            "Sistan va Baluchestan: two fuel porters shot dead by border guards",
        ],
        [
            "Gunmen kill nine bus passengers in Pakistan's Balochistan",
            "Quetta suicide bombing kills 20 at railway station",
            "Militants attack Gwadar port complex",
            "Turbat naval air station attacked by BLA militants",
            "India and Iran sign 10-year Chabahar port deal",
            "India and Iran struck a deal on Chabahar port operations",
            "Zahedan hosts trade fair for Pakistani and Afghan exporters",
            "Grand Ayatollah Sistani condemns attack in Karbala",
            "Flash floods kill 12 in Sistan-Baluchestan",
        ],
    ),
    "ambassador-returns": (
        [
            "Iran and Pakistan agree to return ambassadors to their posts",
            "Pakistan's ambassador returns to Tehran as ties are restored",
            "Iranian envoy resumes duties in Islamabad",
            "Iran, Pakistan restore ties to ambassador level after border strikes",
            "Saudi ambassador returns to Tehran after seven-year rift",
            "سفیر ایران به اسلام آباد بازگشت",
            "سفیر پاکستان به تهران بازمی\u200cگردد",
        ],
        [
            "Pakistan recalls its ambassador from Iran after missile strike",
            "Iran summons Pakistani envoy over cross-border attack",
            "Pakistan says Iran's ambassador will not return to Islamabad for now",
            "UNICEF goodwill ambassador returns to Pakistan for polio campaign",
            "US ambassador returns to Moscow after consultations",
            "Iran's envoy to Pakistan bids farewell at the end of his tenure",
            "Pakistan expels Iranian ambassador",
            "Pakistan bars Iran's ambassador from returning to Islamabad",
        ],
    ),
}


@pytest.mark.parametrize(
    ("slug", "headline"),
    [(slug, h) for slug, (positives, _) in SIGNALS.items() for h in positives],
)
def test_shipped_watchlist_catches(shipped, slug, headline):
    """Headlines inside a signal's scope (SIGNALS.md) fire its watchlist."""
    assert slug in fired(shipped, headline)


@pytest.mark.parametrize(
    ("slug", "headline"),
    [(slug, h) for slug, (_, negatives) in SIGNALS.items() for h in negatives],
)
def test_shipped_watchlist_ignores(shipped, slug, headline):
    """Hard negatives named out of scope in SIGNALS.md do not fire the watchlist."""
    assert slug not in fired(shipped, headline)


def test_item_can_carry_several_signals(shipped):
    """A Chinese statement on Iran and Pakistan sending envoys back is both signals."""
    headline = "China welcomes Iran and Pakistan's decision to return ambassadors, says foreign ministry"
    assert {"chinese-diplomacy", "ambassador-returns"} <= fired(shipped, headline)
