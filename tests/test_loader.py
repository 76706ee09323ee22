"""Loading watchlists: values, defaults, shared and local term sets, errors located by file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from monitor.errors import ConfigErrors, LocatedError, WatchlistError
from monitor.types import Severity
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.loader import load_term_sets, load_watchlist, load_watchlists
from monitor.watchlists.model import DEFAULT_FIELDS, And, Near, Not, Or, Regex, Term, Word, leaves

SHIPPED = Path(__file__).resolve().parents[1] / "watchlists"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path: Path, channels: set[str] | None = None) -> list[LocatedError]:
    with pytest.raises(ConfigErrors) as info:
        load_watchlist(path, channels)
    return info.value.errors


def only_error(errors: list[LocatedError], file: Path, key: str) -> str:
    """The message of the one error at `key`, after checking that it names the file and the key."""
    found = [e for e in errors if e.key == key]
    assert len(found) == 1, [str(e) for e in errors]
    error = found[0]
    assert isinstance(error, WatchlistError)
    assert error.file == str(file)
    assert str(error) == (f"{file}: {key}: {error.message}" if key else f"{file}: {error.message}")
    return error.message


def titles(watchlist: Watchlist, **fields: str) -> bool:
    return bool(Matcher([watchlist]).match_fields(fields))


VALID = """
name = "Envoys back at post"
description = "Ambassadors returning to Tehran or Islamabad"
severity = "high"
channels = ["ops", "mail"]
delivery = "immediate"
min_sources = 2

query = '''
@envoys NEAR/8 return* AND NOT title:recall*
'''

[terms]
envoys = ["ambassador*", "high commissioner*", "/envoys?/"]
"""


def test_a_valid_watchlist_loads_with_every_key(tmp_path: Path) -> None:
    path = write(tmp_path / "envoys.toml", VALID)
    w = load_watchlist(path, {"ops", "mail", "slack"})
    assert w.slug == "envoys"
    assert w.name == "Envoys back at post"
    assert w.description == "Ambassadors returning to Tehran or Islamabad"
    assert w.severity is Severity.HIGH
    assert w.channels == ("ops", "mail")
    assert w.delivery == "immediate"
    assert w.min_sources == 2
    assert w.source == "@envoys NEAR/8 return* AND NOT title:recall*\n"
    envoys = Or(
        (
            Term("ambassador*", (Word("ambassador", True),)),
            Term("high commissioner*", (Word("high"), Word("commissioner", True))),
            Regex("envoys?"),
        ),
        "@envoys",
    )
    assert w.query == And(
        (
            Near(envoys, Term("return*", (Word("return", True),)), 8),
            Not(Term("recall*", (Word("recall", True),), ("title",))),
        )
    )


def test_defaults_of_the_optional_keys(tmp_path: Path) -> None:
    """Severity medium, delivery immediate, every channel (None), no description, one source."""
    w = load_watchlist(write(tmp_path / "min.toml", 'name = "Min"\nquery = "Zahedan"\n'))
    assert w.severity is Severity.MEDIUM
    assert w.delivery == "immediate"
    assert w.min_sources == 1
    assert w.channels is None
    assert w.description == ""
    assert w.query == Term("Zahedan", (Word("zahedan"),), DEFAULT_FIELDS)


@pytest.mark.parametrize("severity", ["low", "medium", "high", "critical", "HIGH"])
def test_every_severity_is_accepted(tmp_path: Path, severity: str) -> None:
    path = write(tmp_path / "w.toml", f'name = "W"\nseverity = "{severity}"\nquery = "x"\n')
    assert load_watchlist(path).severity is Severity[severity.upper()]


@pytest.mark.parametrize("value", [1, 2, 20])
def test_min_sources_from_1_to_20_is_accepted(tmp_path: Path, value: int) -> None:
    path = write(tmp_path / "w.toml", f'name = "W"\nmin_sources = {value}\nquery = "x"\n')
    assert load_watchlist(path).min_sources == value


@pytest.mark.parametrize("value", ["0", "21", "-1", '"2"', "true", "2.0", "[2]"])
def test_min_sources_must_be_a_whole_number_from_1_to_20(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "w.toml", f'name = "W"\nmin_sources = {value}\nquery = "x"\n')
    errors = load_errors(path)
    message = only_error(errors, path, "min_sources")
    assert message.startswith("expected a whole number from 1 to 20 (")
    assert message.endswith(f"got {_python_repr(value)}")
    assert [e.key for e in errors] == ["min_sources"]  # nothing else is blamed


def _python_repr(toml_value: str) -> str:
    return repr(tomllib.loads(f"v = {toml_value}")["v"])


# Errors: each names the file and the key


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('query = "x"\n', "name", "missing; this key is required"),
        ('name = 3\nquery = "x"\n', "name", "expected a string"),
        ('name = "n"\n', "query", "missing; this key is required"),
        ('name = "n"\nquery = ["x"]\n', "query", "expected a string"),
        (
            'name = "n"\nseverity = "urgent"\nquery = "x"\n',
            "severity",
            "'urgent' is not one of: low, medium, high, critical",
        ),
        (
            'name = "n"\ncolour = "red"\nquery = "x"\n',
            "colour",
            "unknown key; a watchlist has channels, delivery, description, min_sources, name, query, "
            "severity, terms",
        ),
        (
            'name = "n"\n[match]\nany = ["x"]\n',
            "match",
            "[match] groups were replaced by `query`, e.g. query = '@places AND attack*'",
        ),
        (
            'name = "n"\ndelivery = "digest"\nquery = "x"\n',
            "delivery",
            "'digest': use 'immediate', 'every 4h', 'every 30m', 'daily at 08:00' "
            "or a cron expression such as '0 8 * * 1-5'",
        ),
        (
            'name = "n"\nchannels = "ops"\nquery = "x"\n',
            "channels",
            "expected a list of channel names from config.toml",
        ),
        (
            'name = "n"\nchannels = ["ops", 1]\nquery = "x"\n',
            "channels",
            "expected a list of channel names from config.toml",
        ),
        (
            'name = "n"\nchannels = ["ops", "pager"]\nquery = "x"\n',
            "channels",
            "channel 'pager' is not defined in config.toml [channels]",
        ),
        (
            'name = "n"\nquery = "Zahedan AND (attack*"\n',
            "query",
            "expected ')', the query ends at column 21",
        ),
        (
            'name = "n"\nquery = "x AND @sistan_place"\n',
            "query",
            "unknown term set @sistan_place at column 7; define it under [terms] or in terms/",
        ),
        (
            "name = \"n\"\nquery = '''\nx\n  AND @nowhere\n'''\n",
            "query",
            "unknown term set @nowhere at line 2, column 7; define it under [terms] or in terms/",
        ),
        (
            'name = "n"\nquery = "x"\nterms = ["a", "b"]\n',
            "terms",
            "expected a table of term sets, e.g. [terms] towns = ['Zahedan', 'Saravan']",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = "Zahedan"\n',
            "terms.t",
            "expected a non-empty list of terms (strings)",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = ["Zahedan", 3]\n',
            "terms.t",
            "expected a non-empty list of terms (strings)",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = []\n',
            "terms.t",
            "expected a non-empty list of terms (strings)",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = ["Zahedan", "Saravan", "Za*hedan"]\n',
            "terms.t[2]",
            "'Za*hedan': a wildcard * may only end a word",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = ["ok", "a*"]\n',
            "terms.t[1]",
            "'a*': a wildcard needs at least two letters before the *",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = ["ok", "--"]\n',
            "terms.t[1]",
            "'--' has no letters or digits to match",
        ),
        (
            'name = "n"\nquery = "@t"\n[terms]\nt = ["/x*/"]\n',
            "terms.t[0]",
            "/x*/ matches empty text, so it would match every item",
        ),
        ('name = "n"\nquery = "@t"\n[terms]\nt = ["x", "@u"]\n', "terms.t[1]", "unknown term set @u"),
    ],
)
def test_each_error_names_the_file_and_the_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = write(tmp_path / "w.toml", text)
    assert only_error(load_errors(path, {"ops"}), path, key) == message


def test_an_invalid_regex_in_a_set_is_reported_at_its_entry(tmp_path: Path) -> None:
    path = write(tmp_path / "w.toml", 'name = "n"\nquery = "@t"\n[terms]\nt = ["x", "/(a/"]\n')
    message = only_error(load_errors(path), path, "terms.t[1]")
    assert message.startswith("/(a/ is not a valid regular expression (")


def test_a_loop_of_sets_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "w.toml", 'name = "n"\nquery = "@a"\n[terms]\na = ["x", "@b"]\nb = ["@a"]\n')
    message = only_error(load_errors(path), path, "terms.a")
    assert message == "term sets refer to each other in a loop: @a -> @b -> @a"


def test_a_set_that_includes_itself_is_a_loop(tmp_path: Path) -> None:
    path = write(tmp_path / "w.toml", 'name = "n"\nquery = "@a"\n[terms]\na = ["x", "@a"]\n')
    assert (
        only_error(load_errors(path), path, "terms.a") == "term sets refer to each other in a loop: @a -> @a"
    )


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "w.toml", 'name = "n\nquery = "x"\n')
    message = only_error(load_errors(path), path, "")
    assert message.startswith("TOML syntax error: ")
    assert "(at line 1, column 10)" in message


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_bytes(b'name = "Caf\xe9"\nquery = "x"\n')
    message = only_error(load_errors(path), path, "")
    assert message.startswith("cannot read: ")
    assert "utf-8" in message


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    """A directory named like a watchlist cannot be read as one (file modes do not stop root)."""
    (tmp_path / "w.toml").mkdir()
    watchlists, errors = load_watchlists(tmp_path)
    assert watchlists == []
    assert only_error(errors, tmp_path / "w.toml", "").startswith("cannot read: ")


def test_several_errors_in_one_file_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.toml",
        'severity = "urgent"\ncolour = 1\ndelivery = "digest"\nchannels = ["pager"]\nquery = "x AND ("\n',
    )
    errors = load_errors(path, {"ops"})
    assert sorted(e.key for e in errors) == ["channels", "colour", "delivery", "name", "query", "severity"]
    assert all(e.file == str(path) for e in errors)


def test_one_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'name = "A"\nquery = "Zahedan"\n')
    write(tmp_path / "b.toml", 'name = "B"\nquery = "(Zahedan"\n')
    write(tmp_path / "c.toml", 'name = "C"\nquery = "Saravan"\n')
    write(tmp_path / "d.toml", "name = \n")
    write(tmp_path / "notes.txt", "not a watchlist")
    watchlists, errors = load_watchlists(tmp_path)
    assert [w.slug for w in watchlists] == ["a", "c"]
    assert sorted((Path(e.file).name, e.key) for e in errors) == [("b.toml", "query"), ("d.toml", "")]


def test_a_missing_directory_is_one_error(tmp_path: Path) -> None:
    watchlists, errors = load_watchlists(tmp_path / "nope")
    assert watchlists == []
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'nope'}: watchlist directory not found; create it or set defaults.watchlists_dir"
    ]


def test_load_watchlists_checks_channels_when_given(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'name = "A"\nchannels = ["ops"]\nquery = "x"\n')
    write(tmp_path / "b.toml", 'name = "B"\nquery = "x"\n')
    watchlists, errors = load_watchlists(tmp_path, ["pager"])
    assert [w.slug for w in watchlists] == ["b"]
    assert [(Path(e.file).name, e.key, e.message) for e in errors] == [
        ("a.toml", "channels", "channel 'ops' is not defined in config.toml [channels]")
    ]
    watchlists, errors = load_watchlists(tmp_path, ["pager", "ops"])
    assert errors == []
    assert {w.slug: w.channels for w in watchlists} == {"a": ("ops",), "b": None}
    # Without channels (the tuning commands), any channel name is accepted.
    assert load_watchlists(tmp_path)[1] == []


# Term sets: local, shared, nested, under field qualifiers


def test_shared_sets_are_usable_by_every_watchlist(tmp_path: Path) -> None:
    write(tmp_path / "terms" / "places.toml", 'towns = ["Zahedan", "Saravan"]\nprovince = ["Sistan"]\n')
    write(tmp_path / "terms" / "acts.toml", 'violence = ["attack*", "killed"]\n')
    write(tmp_path / "incidents.toml", 'name = "I"\nquery = "(@towns OR @province) AND @violence"\n')
    write(tmp_path / "towns.toml", 'name = "T"\nquery = "title:@towns"\n')
    watchlists, errors = load_watchlists(tmp_path)
    assert errors == []
    by_slug = {w.slug: w for w in watchlists}
    assert set(by_slug) == {"incidents", "towns"}  # terms/*.toml are not watchlists
    incidents, towns = by_slug["incidents"], by_slug["towns"]
    assert titles(incidents, title="Gunmen attack police in Saravan")
    assert titles(incidents, title="Sistan", summary="Two killed")
    assert not titles(incidents, title="Saravan date harvest")
    assert titles(towns, title="Zahedan")
    assert not titles(towns, title="Rask")


def test_load_term_sets_reads_every_file(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'towns = ["Zahedan"]\n')
    write(tmp_path / "b.toml", 'people = ["Wang Yi"]\nbad = []\n')
    sets, errors = load_term_sets(tmp_path)
    assert {name: s.entries for name, s in sets.items()} == {"towns": ("Zahedan",), "people": ("Wang Yi",)}
    assert sets["people"].file == tmp_path / "b.toml"
    assert sets["people"].key == "people"
    assert [(Path(e.file).name, e.key) for e in errors] == [("b.toml", "bad")]
    assert load_term_sets(tmp_path / "nope") == ({}, [])


def test_a_set_may_include_another_set(tmp_path: Path) -> None:
    write(
        tmp_path / "terms" / "places.toml",
        'towns = ["Zahedan", "Saravan"]\nprovince = ["Sistan", "@towns"]\n',
    )
    write(
        tmp_path / "w.toml",
        'name = "W"\nquery = "@places AND attack*"\n[terms]\nplaces = ["@province", "Rask"]\n',
    )
    (w,), errors = load_watchlists(tmp_path)
    assert errors == []
    for place in ("Zahedan", "Saravan", "Sistan", "Rask"):
        assert titles(w, title=f"Attack in {place}"), place
    assert not titles(w, title="Attack in Quetta")


def test_a_field_qualifier_applies_to_every_term_of_a_set(tmp_path: Path) -> None:
    """title:@towns looks only in titles, including in the sets @towns includes."""
    write(
        tmp_path / "terms" / "places.toml", 'towns = ["Zahedan", "@more"]\nmore = ["Rask", "/sara[vw]an/"]\n'
    )
    write(tmp_path / "w.toml", 'name = "W"\nquery = "title:@towns"\n')
    (w,), errors = load_watchlists(tmp_path)
    assert errors == []
    for place in ("Zahedan", "Rask", "Sarawan"):
        assert Matcher([w]).match_fields({"title": place, "summary": ""}), place
        assert Matcher([w]).match_fields({"title": "news", "summary": place}) == [], place
    assert {leaf.fields for leaf in leaves(w.query)} == {("title",)}


def test_one_set_under_two_qualifiers(tmp_path: Path) -> None:
    write(tmp_path / "w.toml", 'name = "W"\nquery = "title:@t AND summary:@t"\n[terms]\nt = ["Zahedan"]\n')
    (w,), _ = load_watchlists(tmp_path)
    assert titles(w, title="Zahedan", summary="in Zahedan")
    assert not titles(w, title="Zahedan", summary="elsewhere")
    assert not titles(w, title="elsewhere", summary="Zahedan")


def test_a_watchlist_may_not_redefine_a_shared_set(tmp_path: Path) -> None:
    write(tmp_path / "terms" / "places.toml", 'towns = ["Zahedan"]\n')
    path = write(tmp_path / "w.toml", 'name = "W"\nquery = "@towns"\n[terms]\ntowns = ["Rask"]\n')
    watchlists, errors = load_watchlists(tmp_path)
    assert watchlists == []
    message = only_error(errors, path, "terms.towns")
    assert message == f"already a shared term set in {tmp_path / 'terms' / 'places.toml'}; rename one"


def test_the_same_set_name_in_two_shared_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "terms" / "a.toml", 'towns = ["Zahedan"]\n')
    write(tmp_path / "terms" / "b.toml", 'towns = ["Rask"]\n')
    write(tmp_path / "w.toml", 'name = "W"\nquery = "@towns"\n')
    watchlists, errors = load_watchlists(tmp_path)
    message = only_error(errors, tmp_path / "terms" / "b.toml", "towns")
    assert message == f"term set also defined in {tmp_path / 'terms' / 'a.toml'}"
    assert [w.slug for w in watchlists] == ["w"]  # the first definition is used meanwhile
    assert titles(watchlists[0], title="Zahedan")


def test_errors_in_shared_sets_name_the_shared_file(tmp_path: Path) -> None:
    terms = write(
        tmp_path / "terms" / "places.toml",
        'towns = ["Zahedan", "Saravan", "Rask", "Za*hedan"]\n'
        'loop_a = ["@loop_b"]\nloop_b = ["x", "@loop_a"]\n'
        'empty = []\nnot_strings = ["x", 3]\n',
    )
    write(tmp_path / "a.toml", 'name = "A"\nquery = "@towns"\n')
    write(tmp_path / "b.toml", 'name = "B"\nquery = "@loop_a"\n')
    write(tmp_path / "c.toml", 'name = "C"\nquery = "Zahedan"\n')
    watchlists, errors = load_watchlists(tmp_path)
    assert [w.slug for w in watchlists] == ["c"]
    assert only_error(errors, terms, "towns[3]") == "'Za*hedan': a wildcard * may only end a word"
    assert (
        only_error(errors, terms, "loop_a")
        == "term sets refer to each other in a loop: @loop_a -> @loop_b -> @loop_a"
    )
    assert only_error(errors, terms, "empty") == "expected a non-empty list of terms (strings)"
    assert only_error(errors, terms, "not_strings") == "expected a non-empty list of terms (strings)"


def test_a_broken_shared_set_used_by_several_watchlists_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path / "terms" / "places.toml", 'towns = ["Zahedan", "Za*hedan"]\n')
    for slug in ("a", "b", "c"):
        write(tmp_path / f"{slug}.toml", f'name = "{slug}"\nquery = "@towns OR x"\n')
    watchlists, errors = load_watchlists(tmp_path)
    assert watchlists == []
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'terms' / 'places.toml'}: towns[1]: 'Za*hedan': a wildcard * may only end a word"
    ]


def test_a_shared_file_with_a_toml_error_leaves_its_sets_unknown(tmp_path: Path) -> None:
    terms = write(tmp_path / "terms" / "places.toml", "towns = [\n")
    path = write(tmp_path / "w.toml", 'name = "W"\nquery = "@towns"\n')
    watchlists, errors = load_watchlists(tmp_path)
    assert watchlists == []
    assert only_error(errors, terms, "").startswith("TOML syntax error: ")
    assert only_error(errors, path, "query") == (
        "unknown term set @towns at column 1; define it under [terms] or in terms/"
    )


def test_set_entries_are_words_phrases_wildcards_regexes_and_sets(tmp_path: Path) -> None:
    write(
        tmp_path / "w.toml",
        'name = "W"\nquery = "@t"\n[terms]\n'
        't = ["Zahedan", "border guard*", "  Sistan-o-Baluchestan ", "/zah[ae]dan/", "@u",'
        ' "سیستان و بلوچستان"]\n'
        'u = ["Rask"]\n',
    )
    (w,), errors = load_watchlists(tmp_path)
    assert errors == []
    assert w.query == Or(
        (
            Term("Zahedan", (Word("zahedan"),)),
            Term("border guard*", (Word("border"), Word("guard", True))),
            Term("Sistan-o-Baluchestan", (Word("sistan"), Word("o"), Word("baluchestan"))),
            Regex("zah[ae]dan"),
            Or((Term("Rask", (Word("rask"),)),), "@u"),
            Term("سیستان و بلوچستان", (Word("سیستان"), Word("و"), Word("بلوچستان"))),
        ),
        "@t",
    )


# The shipped watchlists


def test_the_shipped_watchlists_load_without_errors() -> None:
    watchlists, errors = load_watchlists(SHIPPED)
    assert [str(e) for e in errors] == []
    slugs = {w.slug for w in watchlists}
    assert {"chinese-diplomacy", "sistan-baluchestan", "ambassador-returns"} <= slugs
    assert slugs == {p.stem for p in SHIPPED.glob("*.toml")}
    assert all(w.name for w in watchlists)


# Delivery: one schedule for every channel, or a table by channel


def test_delivery_as_a_string_applies_to_every_channel(tmp_path: Path) -> None:
    """delivery = "daily at 08:00" is every channel's schedule."""
    text = 'name = "n"\ndelivery = "daily at 08:00"\nquery = "x"\n'
    w = load_watchlist(write(tmp_path / "w.toml", text), {"ops", "mail"})
    assert w.delivery == "daily at 08:00"
    assert w.delivery_by_channel == {}
    assert w.delivery_for("ops") == w.delivery_for("mail") == "daily at 08:00"


@pytest.mark.parametrize("value", ['"IMMEDIATE"', '" Immediate "', '{ default = "immediate" }', "{}"])
def test_immediate_delivery_is_normalised(tmp_path: Path, value: str) -> None:
    """Any spelling of immediate, an explicit default or an empty table all mean immediate."""
    w = load_watchlist(write(tmp_path / "w.toml", f'name = "n"\ndelivery = {value}\nquery = "x"\n'))
    assert w.delivery == "immediate"
    assert w.delivery_by_channel == {}


def test_delivery_as_a_table_by_channel(tmp_path: Path) -> None:
    """A table gives named channels their own schedule and `default` to the rest."""
    text = (
        'name = "n"\nquery = "x"\n'
        '[delivery]\ndefault = "every 4h"\nmail = "daily at 08:00"\nops = "immediate"\n'
    )
    w = load_watchlist(write(tmp_path / "w.toml", text), {"ops", "mail", "stdout"})
    assert w.delivery == "every 4h"
    assert w.delivery_by_channel == {"mail": "daily at 08:00", "ops": "immediate"}
    assert w.delivery_for("mail") == "daily at 08:00"
    assert w.delivery_for("ops") == "immediate"
    assert w.delivery_for("stdout") == "every 4h"


def test_a_delivery_table_without_default_is_immediate_elsewhere(tmp_path: Path) -> None:
    """Channels a table does not name are delivered immediately unless it sets `default`."""
    text = 'name = "n"\ndelivery = { mail = "0 8 * * 1-5" }\nquery = "x"\n'
    w = load_watchlist(write(tmp_path / "w.toml", text), {"ops", "mail"})
    assert (w.delivery_for("mail"), w.delivery_for("ops")) == ("0 8 * * 1-5", "immediate")


def test_a_delivery_table_may_name_any_channel_when_channels_are_not_known(tmp_path: Path) -> None:
    """Without the configured channels (the tuning commands), every channel name is accepted."""
    text = 'name = "n"\ndelivery = { pager = "every 30m" }\nquery = "x"\n'
    assert load_watchlist(write(tmp_path / "w.toml", text)).delivery_for("pager") == "every 30m"


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        (
            '{ default = "immediate", pager = "every 4h" }',
            "delivery.pager",
            "channel 'pager' is not defined in config.toml [channels]",
        ),
        (
            '"every 2m"',
            "delivery",
            "'every 2m': a digest interval must be between 5 minutes and 7 days",
        ),
        (
            '{ mail = "daily at 25:00" }',
            "delivery.mail",
            "'daily at 25:00': not a time of day (use HH:MM, 00:00 to 23:59)",
        ),
        (
            '{ default = "hourly" }',
            "delivery.default",
            "'hourly': use 'immediate', 'every 4h', 'every 30m', 'daily at 08:00' or a cron expression "
            "such as '0 8 * * 1-5'",
        ),
        (
            '{ ops = "0 8 * * 9" }',
            "delivery.ops",
            "'0 8 * * 9': not a valid cron expression ('9' is not a day of the week (0-7 or sun-sat))",
        ),
        (
            "3",
            "delivery",
            "expected 'immediate' or a digest schedule such as 'daily at 08:00' or 'every 4h'",
        ),
        (
            '["immediate"]',
            "delivery",
            "expected 'immediate' or a digest schedule such as 'daily at 08:00' or 'every 4h'",
        ),
        (
            "{ mail = 8 }",
            "delivery.mail",
            "expected 'immediate' or a digest schedule such as 'daily at 08:00' or 'every 4h'",
        ),
    ],
)
def test_delivery_errors_name_the_key(tmp_path: Path, value: str, key: str, message: str) -> None:
    """A bad schedule, a non-string or an unknown channel is reported at delivery or delivery.<channel>."""
    path = write(tmp_path / "w.toml", f'name = "n"\ndelivery = {value}\nquery = "x"\n')
    errors = load_errors(path, {"ops", "mail"})
    assert only_error(errors, path, key) == message
    assert [e.key for e in errors] == [key]


def test_every_bad_channel_in_a_delivery_table_is_reported(tmp_path: Path) -> None:
    """Each bad entry of a delivery table is its own error; the good ones are not blamed."""
    text = 'name = "n"\ndelivery = { ops = "every 4h", pager = "every 4h", mail = "soon" }\nquery = "x"\n'
    path = write(tmp_path / "w.toml", text)
    assert sorted(e.key for e in load_errors(path, {"ops", "mail"})) == ["delivery.mail", "delivery.pager"]
