"""Adding feeds to config.toml: original bytes kept, strings escaped, invalid results rolled back."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from monitor.config import FeedConfig, load_settings
from monitor.errors import ConfigErrors
from monitor.feed_config import (
    NewFeed,
    append_feeds,
    exportable,
    feed_address,
    feed_name,
    normalise_url,
    toml_string,
)
from tests.conftest import write_config

ORIGINAL = """\
# Our feeds. Keep the comments!
[defaults]
poll_interval = "15m"   # trailing comment
state_path = "state/monitor.db"

[[feeds]]
name = "dawn"
url = "https://www.Dawn.com/feeds/home/"
tags = ["pakistan"]

[channels.console]
type = "console"
# the last line has no newline"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.toml", ORIGINAL)


def test_append_keeps_every_original_byte(config: Path) -> None:
    """The file grows at its end only; comments and layout before it are untouched."""
    before = config.read_bytes()
    result = append_feeds(config, [NewFeed("wire", "https://wire.example/rss", "30m", ("iran", "wire"))])
    after = config.read_bytes()
    assert [f.name for f in result.added] == ["wire"]
    assert after.startswith(before + b"\n")  # a newline first: the last line had none
    assert after[len(before) :] == (
        b'\n\n[[feeds]]\nname = "wire"\nurl = "https://wire.example/rss"\ninterval = "30m"\n'
        b'tags = ["iran", "wire"]\n'
    )
    settings = load_settings(config)
    assert settings.feeds[-1] == FeedConfig("wire", "https://wire.example/rss", 1800.0, ("iran", "wire"))


ODD = [
    'He said "hi"',
    "back\\slash C:\\feeds\\",
    "Ünïcödé – 北京 🚀",
    "tab\tnew\nline\rcarriage",
    "bell\x07 del\x7f nul\x00",
    "${NOT_A_VARIABLE_IN_A_TAG",
    "'single' '''triple'''",
]


@pytest.mark.parametrize("text", ODD)
def test_toml_string_reads_back_as_written(text: str) -> None:
    """Quotes, backslashes, control characters (DEL too) and non-ASCII survive a TOML round trip."""
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text


def test_lone_surrogate_is_replaced_not_fatal() -> None:
    """A string with a lone surrogate (from a badly decoded title) still gives valid TOML."""
    text = "a\udc80b"
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == "a\ufffdb"


def test_odd_urls_and_tags_are_written_escaped(config: Path) -> None:
    """A URL with quotes and backslashes and tags with odd characters load back exactly."""
    url = 'https://odd.example/rss?q="a b"&path=C:\\x&name=Ünï'
    tags = tuple(ODD[:4])
    append_feeds(config, [NewFeed("odd", url, None, tags)])
    feed = load_settings(config).feeds[-1]
    assert (feed.url, feed.tags) == (url, tags)


def test_validation_failure_restores_the_file(config: Path) -> None:
    """A feed that makes the file invalid is not kept: the original bytes are back, errors raised."""
    before = config.read_bytes()
    mode = stat.S_IMODE(config.stat().st_mode)
    with pytest.raises(ConfigErrors) as caught:
        append_feeds(
            config,
            [
                NewFeed("fine", "https://fine.example/rss"),
                NewFeed("dawn", "https://other.example/rss"),  # the name is taken
                NewFeed("bad name", "https://bad.example/rss", "soon"),
            ],
        )
    messages = [str(e) for e in caught.value.errors]
    assert any("feeds[2].name: 'dawn' is used by another feed" in m for m in messages), messages
    assert any("feeds[3].name: 'bad name'" in m for m in messages), messages
    assert any("feeds[3].interval: 'soon' is not a duration" in m for m in messages), messages
    assert config.read_bytes() == before
    assert stat.S_IMODE(config.stat().st_mode) == mode
    assert [p.name for p in config.parent.iterdir()] == ["config.toml"]  # no temp file left


def test_invalid_file_is_not_touched(tmp_path: Path) -> None:
    """A config that is already invalid is reported, and nothing is appended to it."""
    config = write_config(tmp_path / "config.toml", "[defaults]\npoll_intervall = 5\n")
    before = config.read_bytes()
    with pytest.raises(ConfigErrors, match="poll_intervall: unknown key"):
        append_feeds(config, [NewFeed("wire", "https://wire.example/rss")])
    assert config.read_bytes() == before


def test_mode_is_kept(config: Path) -> None:
    """The atomic replace keeps the file's permissions (a config readable by its owner only stays so)."""
    config.chmod(0o600)
    append_feeds(config, [NewFeed("wire", "https://wire.example/rss")])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_symlinked_config_is_edited_where_it_lives(tmp_path: Path, config: Path) -> None:
    """Appending through a symlink edits its target and leaves the link a link."""
    link = tmp_path / "link.toml"
    link.symlink_to(config)
    append_feeds(link, [NewFeed("wire", "https://wire.example/rss")])
    assert link.is_symlink()
    assert load_settings(config).feeds[-1].name == "wire"


def test_duplicate_urls_are_skipped_and_reported(config: Path) -> None:
    """An address already configured (any case of host, with or without a trailing slash), or
    given twice, is skipped with the reason; the rest is added."""
    result = append_feeds(
        config,
        [
            NewFeed("dawn-again", "HTTPS://www.dawn.com/feeds/home"),
            NewFeed("wire", "https://wire.example/rss"),
            NewFeed("wire-again", "https://WIRE.example:443/rss/"),
        ],
    )
    assert [f.name for f in result.added] == ["wire"]
    assert [(s.feed.name, s.reason) for s in result.skipped] == [
        ("dawn-again", "already configured as dawn"),
        ("wire-again", "already configured as wire"),
    ]
    assert [f.name for f in load_settings(config).feeds] == ["dawn", "wire"]


def test_nothing_to_add_leaves_the_file_alone(config: Path) -> None:
    """When every feed is a duplicate the file is not rewritten at all."""
    before = config.stat().st_mtime_ns, config.read_bytes()
    result = append_feeds(config, [NewFeed("x", "https://www.dawn.com/feeds/home")])
    assert result.added == ()
    assert (config.stat().st_mtime_ns, config.read_bytes()) == before


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://Example.COM/rss/", "https://example.com/rss", True),
        ("HTTP://example.com:80/rss", "http://example.com/rss", True),
        ("https://example.com/rss#top", "https://example.com/rss", True),
        ("https://example.com/RSS", "https://example.com/rss", False),  # paths are case-sensitive
        ("https://example.com/rss?a=1", "https://example.com/rss?a=2", False),
        ("https://example.com:8443/rss", "https://example.com/rss", False),
        ("http://example.com/rss", "https://example.com/rss", False),
    ],
)
def test_normalise_url(a: str, b: str, same: bool) -> None:
    """Addresses compare equal up to scheme and host case, default port, fragment and trailing slash."""
    assert (normalise_url(a) == normalise_url(b)) is same


@pytest.mark.parametrize(
    ("title", "url", "taken", "expected"),
    [
        ("Dawn - Home", "https://www.dawn.com/feeds/home", [], "dawn-home"),
        ("Ünïcödé Nëws: Straße", "https://x.example/", [], "unicode-news-strasse"),
        ("", "https://www.Dawn.com/feeds/home/", [], "dawn-com-feeds-home"),
        ("北京日报", "https://bjd.example/rss.xml", [], "bjd-example-rss-xml"),
        ("  ", "file:///srv/feeds/My Replay.xml", [], "my-replay"),
        ("", "", [], "feed"),
        ("Dawn", "u", ["dawn"], "dawn-2"),
        ("Dawn", "u", ["DAWN", "dawn-2"], "dawn-3"),
        (
            "Al Jazeera – Breaking News, World News and Video from Al Jazeera",
            "u",
            [],
            "al-jazeera-breaking-news-world-news-and",
        ),
    ],
)
def test_feed_name(title: str, url: str, taken: list[str], expected: str) -> None:
    """Names come from the title, else the URL; ASCII, at most 40 characters, unique."""
    assert feed_name(title, url, taken) == expected


def test_feed_name_stays_valid_and_short_when_numbered() -> None:
    """A long name that is taken is shortened to make room for its number."""
    first = feed_name("word " * 20, "u", [])
    second = feed_name("word " * 20, "u", [first])
    assert len(first) <= 40
    assert len(second) <= 40
    assert second.endswith("-2")
    assert second != first


def test_generated_names_load(config: Path) -> None:
    """Whatever the title, the generated name passes config validation."""
    taken = ["dawn"]
    feeds = []
    for i, title in enumerate(ODD):
        taken.append(feed_name(title, f"https://n{i}.example/rss", taken))
        feeds.append(NewFeed(taken[-1], f"https://n{i}.example/rss"))
    append_feeds(config, feeds)
    assert [f.name for f in load_settings(config).feeds] == taken


def test_feed_address(tmp_path: Path) -> None:
    """URLs are kept as given, paths made absolute, other schemes and ${...} refused."""
    assert feed_address(" https://x.example/rss ", tmp_path) == "https://x.example/rss"
    assert feed_address("file:///srv/a.xml", tmp_path) == "file:///srv/a.xml"
    assert feed_address("feeds/a.xml", tmp_path) == str(tmp_path / "feeds" / "a.xml")
    for refused in ("ftp://x.example/rss", "https://", "javascript:alert(1)", "https://x/${TOKEN}", ""):
        assert feed_address(refused, tmp_path) is None, refused


def test_export_keeps_env_references_unexpanded(tmp_path: Path) -> None:
    """A feed URL holding ${TOKEN} is exported as written, so the secret stays out of the file."""
    config = write_config(
        tmp_path / "config.toml",
        '[[feeds]]\nname = "a"\nurl = "https://a.example/rss?key=${FEED_TOKEN}"\n'
        '[[feeds]]\nname = "b"\nurl = "https://b.example/rss"\n',
    )
    settings = load_settings(config, env={"FEED_TOKEN": "s3cret"})
    assert settings.feeds[0].url == "https://a.example/rss?key=s3cret"
    assert [f.url for f in exportable(settings)] == [
        "https://a.example/rss?key=${FEED_TOKEN}",
        "https://b.example/rss",
    ]
