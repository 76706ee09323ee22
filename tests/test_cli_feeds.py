"""`monitor feeds`: the health table, and adding, importing and exporting feeds in config.toml."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import FeedConfig, load_settings
from monitor.feed_health import ago, health_json, health_lines, span, until
from monitor.opml import parse_opml
from monitor.store import Store
from monitor.store.sqlite import FeedRow, FeedSchedule
from tests.conftest import FIXTURES, Route, Server, fixture_bytes, write_config

ROOT = Path(__file__).parent.parent
HINT = "the running daemon picks it up on SIGHUP (kill -HUP <pid>) or restart"


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60, check=False
    )


def make_config(tmp_path: Path, feeds: str = "") -> Path:
    return write_config(
        tmp_path / "config.toml",
        f"""# Written by hand; these comments must survive.
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{ROOT / "watchlists"}"   # the shipped ones
allow_private_networks = true
{feeds}
[channels.console]
type = "console"
""",
    )


DAWN = '\n[[feeds]]\nname = "dawn"\nurl = "https://www.dawn.com/feeds/home"\ntags = ["pakistan"]\n'


# feeds add


def test_add_checks_the_feed_names_it_from_its_title_and_appends(tmp_path: Path, feed_server: Server) -> None:
    """The feed is fetched once, named from its title and appended; `monitor check` then passes."""
    feed_server.routes["/frontier.xml"] = Route(fixture_bytes("frontier.xml"))
    config = make_config(tmp_path, DAWN)
    before = config.read_bytes()
    url = feed_server.url("/frontier.xml")

    result = monitor("feeds", "add", url, "--interval", "30m", "--tag", "pakistan", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"added feed frontier-post: {url} (Frontier Post)", HINT]
    assert len(feed_server.gets("/frontier.xml")) == 1
    assert config.read_bytes().startswith(before)
    check = monitor("check", "--config", str(config))
    assert check.returncode == 0, check.stderr
    assert ": ok: 2 feeds" in check.stdout
    added = load_settings(config).feeds[-1]
    assert (added.name, added.url, added.interval, added.tags) == (
        "frontier-post",
        url,
        1800.0,
        ("pakistan",),
    )
    table = monitor("feeds", "--config", str(config))
    assert any(line.split() == ["frontier-post", "never", "polled"] for line in table.stdout.splitlines())


NOT_FEEDS = {
    "html page": (
        Route(b"<!doctype html><html><body><p>Welcome</p></body></html>", content_type="text/html"),
        "is not a usable feed: not an RSS or Atom feed",
    ),
    "404": (None, "is not a usable feed: HTTP 404 Not Found; the feed may have moved: check its URL"),
}


@pytest.mark.parametrize("case", NOT_FEEDS, ids=list(NOT_FEEDS))
def test_add_refuses_what_is_not_a_feed(tmp_path: Path, feed_server: Server, case: str) -> None:
    """An HTML page or a 404 is not added: the reason is printed, exit 1, config.toml unchanged."""
    route, reason = NOT_FEEDS[case]
    if route is not None:
        feed_server.routes["/page"] = route
    config = make_config(tmp_path, DAWN)
    before = config.read_bytes()
    result = monitor("feeds", "add", feed_server.url("/page"), "--config", str(config))
    assert result.returncode == 1
    assert f"error: {feed_server.url('/page')} {reason}" in result.stderr
    assert config.read_bytes() == before


def test_add_refuses_an_address_already_configured(tmp_path: Path) -> None:
    """The same address (host in another case, a trailing slash) is not added twice."""
    config = make_config(tmp_path, DAWN)
    before = config.read_bytes()
    result = monitor(
        "feeds", "add", "https://WWW.dawn.com/feeds/home/", "--no-check", "--config", str(config)
    )
    assert result.returncode == 1
    assert "is already configured as dawn" in result.stderr
    assert config.read_bytes() == before


def test_add_takes_the_new_address_of_a_moved_feed(tmp_path: Path, feed_server: Server) -> None:
    """A feed that moved permanently (301) is added at its new address."""
    feed_server.routes["/old.xml"] = Route(status=301, headers={"Location": feed_server.url("/new.xml")})
    feed_server.routes["/new.xml"] = Route(fixture_bytes("frontier.xml"))
    config = make_config(tmp_path)
    result = monitor(
        "feeds", "add", feed_server.url("/old.xml"), "--name", "frontier", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    assert f"moved permanently to {feed_server.url('/new.xml')}" in result.stdout
    assert load_settings(config).feeds[-1].url == feed_server.url("/new.xml")


def test_add_without_check_does_not_fetch(tmp_path: Path, feed_server: Server) -> None:
    """--no-check adds the address as given, without a request; the name comes from the URL."""
    config = make_config(tmp_path)
    url = feed_server.url("/not/there.xml")
    result = monitor("feeds", "add", url, "--no-check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert feed_server.requests == []
    assert load_settings(config).feeds[-1].name == "127-0-0-1-not-there-xml"


def test_add_with_an_invalid_name_restores_the_file(tmp_path: Path) -> None:
    """A name config.toml would refuse is reported with the validation error; nothing is kept."""
    config = make_config(tmp_path, DAWN)
    before = config.read_bytes()
    result = monitor(
        "feeds", "add", "https://x.example/rss", "--no-check", "--name", "two words", "--config", str(config)
    )
    assert result.returncode == 1
    assert "feeds[1].name: 'two words': use letters, digits" in result.stderr
    assert f"{config} left unchanged" in result.stderr
    assert config.read_bytes() == before


def test_add_a_local_file_writes_its_absolute_path(tmp_path: Path) -> None:
    """A path is made absolute, so the config does not depend on where the command ran."""
    config = make_config(tmp_path)
    result = monitor("feeds", "add", str(FIXTURES / "wire.atom"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    feed = load_settings(config).feeds[-1]
    assert (feed.name, feed.url) == ("regional-wire", str(FIXTURES / "wire.atom"))


# feeds import / export


def test_import_then_export_gives_the_same_addresses(tmp_path: Path) -> None:
    """Importing an OPML export adds every feed not yet configured; the export lists them all."""
    config = make_config(tmp_path, DAWN)
    before = config.read_bytes()
    opml = FIXTURES / "subscriptions.opml"

    result = monitor("feeds", "import", str(opml), "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert "added 9, skipped 1 (already configured)" in result.stdout
    assert "  - https://www.dawn.com/feeds/home: already configured as dawn" in result.stdout
    assert config.read_bytes().startswith(before)
    settings = load_settings(config)
    by_name = {f.name: f for f in settings.feeds}
    assert by_name["the-diplomat"].tags == ("china", "asia")
    assert by_name["dawn"].tags == ("pakistan",)

    out = tmp_path / "out.opml"
    exported = monitor("feeds", "export", "-o", str(out), "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    urls = {f.url for f in parse_opml(out.read_bytes(), str(out))}
    assert urls == {f.url for f in parse_opml(opml.read_bytes(), str(opml))}
    assert urls == {f.url for f in settings.feeds}
    to_stdout = monitor("feeds", "export", "--config", str(config))
    assert to_stdout.stdout == out.read_text(encoding="utf-8")

    again = monitor("feeds", "import", str(opml), "--config", str(config))
    assert again.returncode == 0
    assert "added 0, skipped 10 (already configured)" in again.stdout
    assert load_settings(config).feeds == settings.feeds


def test_import_dry_run_changes_nothing(tmp_path: Path) -> None:
    """--dry-run lists what would be added and leaves the file alone."""
    config = make_config(tmp_path)
    before = config.read_bytes()
    result = monitor(
        "feeds", "import", str(FIXTURES / "subscriptions.opml"), "--dry-run", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    assert "would add 10, would skip 0" in result.stdout
    assert "  + the-diplomat  https://thediplomat.com/feed/  [china, asia]" in result.stdout
    assert config.read_bytes() == before


def test_import_with_check_skips_feeds_that_fail(tmp_path: Path, feed_server: Server) -> None:
    """--check fetches every feed and skips, with the reason, those that are not feeds; an address
    listed twice is fetched once; `--tag` tags every imported feed; no progress bar off a terminal."""
    feed_server.routes["/frontier.xml"] = Route(fixture_bytes("frontier.xml"))
    feed_server.routes["/wire.atom"] = Route(fixture_bytes("wire.atom"), content_type="application/atom+xml")
    feed_server.routes["/page"] = Route(b"<html><body>hi</body></html>", content_type="text/html")
    opml = tmp_path / "mixed.opml"
    opml.write_text(
        f"""<?xml version="1.0"?>
<opml version="2.0"><head><title>mixed</title></head><body>
  <outline text="Region">
    <outline text="Frontier" xmlUrl="{feed_server.url("/frontier.xml")}"/>
    <outline text="Web page" xmlUrl="{feed_server.url("/page")}"/>
    <outline text="Gone" xmlUrl="{feed_server.url("/gone.xml")}"/>
  </outline>
  <outline text="" xmlUrl="{feed_server.url("/wire.atom")}"/>
  <outline text="Frontier again" xmlUrl="{feed_server.url("/frontier.xml")}"/>
  <outline text="FTP" xmlUrl="ftp://files.example/feed.xml"/>
</body></opml>
""",
        encoding="utf-8",
    )
    config = make_config(tmp_path)
    result = monitor("feeds", "import", str(opml), "--check", "--tag", "imported", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "added 2, skipped 4 (1 listed twice, 1 not a feed address, 2 failed the check)" in result.stdout
    assert f"  - {feed_server.url('/page')}: not an RSS or Atom feed" in result.stdout
    assert f"  - {feed_server.url('/gone.xml')}: HTTP 404 Not Found" in result.stdout
    assert len(feed_server.gets("/frontier.xml")) == 1
    feeds = {f.name: f for f in load_settings(config).feeds}
    assert feeds["frontier"].tags == ("region", "imported")
    # No title in the file: the feed's own title names it.
    assert feeds["regional-wire"].url == feed_server.url("/wire.atom")


def test_import_of_a_broken_file_names_the_line(tmp_path: Path) -> None:
    """Malformed OPML is reported with file and line; exit 1; config.toml unchanged."""
    opml = tmp_path / "broken.opml"
    opml.write_text('<opml>\n<body>\n<outline xmlUrl="x">\n</body>\n', encoding="utf-8")
    config = make_config(tmp_path)
    before = config.read_bytes()
    result = monitor("feeds", "import", str(opml), "--config", str(config))
    assert result.returncode == 1
    assert f"error: {opml}: line 4: not well-formed XML: mismatched tag" in result.stderr
    assert config.read_bytes() == before


# The health table

NOW = datetime(2024, 1, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45.9, "45s"),
        (60, "1m"),
        (719, "11m"),
        (5400, "1h30m"),
        (7200, "2h"),
        (36000, "10h"),
        (86400 + 7200, "1d2h"),
        (12 * 86400 + 3600, "12d"),
    ],
)
def test_span(seconds: float, text: str) -> None:
    """Durations in their largest unit, with the next one below ten hours or days."""
    assert span(seconds) == text


def test_ago_and_until() -> None:
    """Past times read "ago", future ones "in", and a time already come is "due"."""
    assert ago(timedelta(minutes=12, seconds=5)) == "12m ago"
    assert ago(timedelta(days=3)) == "3d ago"
    assert ago(timedelta(seconds=-5)) == "just now"
    assert until(timedelta(minutes=4)) == "in 4m"
    assert until(timedelta(seconds=0.2)) == "in 1s"
    assert until(timedelta(seconds=-30)) == "due"


def populated_store(tmp_path: Path, now: datetime) -> Path:
    """A store where `wire` failed twice, `frontier` was unchanged, `moved` moved and `gone` was removed."""
    path = tmp_path / "state" / "monitor.db"
    store = Store.open(path)
    try:
        store.record_unchanged(
            "frontier",
            "https://frontier.example/rss",
            "not_modified",
            now - timedelta(minutes=12),
            schedule=FeedSchedule(now + timedelta(minutes=4)),
        )
        store.record_unchanged("wire", "https://wire.example/rss", "ok", now - timedelta(days=3))
        for minutes, error in ((50, "HTTP 503 Service Unavailable"), (10, "timed out " + "x" * 80)):
            store.record_failure(
                "wire",
                "https://wire.example/rss",
                error,
                now - timedelta(minutes=minutes),
                schedule=FeedSchedule(now + timedelta(hours=2, minutes=30), backoff=7200),
            )
        store.record_unchanged(
            "moved",
            "https://old.example/rss",
            "ok",
            now - timedelta(hours=1),
            schedule=FeedSchedule(now - timedelta(minutes=1), moved_to="https://new.example/rss"),
        )
        store.record_failure("gone", "https://gone.example/rss", "HTTP 410 Gone", now - timedelta(hours=5))
        store.disable_feed("gone", "HTTP 410 Gone: the publisher removed this feed", now - timedelta(hours=5))
        store.record_unchanged("removed-from-config", "https://x.example/rss", "ok", now)
    finally:
        store.close()
    return path


HEALTH_FEEDS = (
    "".join(
        f'\n[[feeds]]\nname = "{name}"\nurl = "https://{host}.example/rss"\n'
        for name, host in (("frontier", "frontier"), ("wire", "wire"), ("moved", "old"), ("gone", "gone"))
    )
    + '\n[[feeds]]\nname = "fresh"\nurl = "https://fresh.example/rss"\n'
)


def test_health_lines(tmp_path: Path) -> None:
    """Each configured feed's state, last success, next poll, items a day, backoff and error; notes
    under moved and disabled feeds; feeds no longer configured left out."""
    populated_store(tmp_path, NOW)
    settings = load_settings(make_config(tmp_path, HEALTH_FEEDS))
    store = Store.open(settings.defaults.state_path)
    try:
        rows = {row.name: row for row in store.feeds(NOW)}
    finally:
        store.close()
    error = "timed out " + "x" * 47 + "..."
    assert health_lines(settings.feeds, rows, NOW) == [
        "feed     state        last success next poll  items/day backoff last error",
        "frontier unchanged    12m ago      in 4m            0.0 -",
        f"wire     failing x2   3d ago       in 2h30m         0.0 +2h     {error}",
        "moved    ok           1h ago       due              0.0 -",
        "  moved permanently to https://new.example/rss (update config.toml)",
        "gone     disabled     never        -                0.0 -       HTTP 410 Gone",
        "  disabled: HTTP 410 Gone: the publisher removed this feed",
        "fresh    never polled",
    ]


def test_feeds_command_and_json(tmp_path: Path) -> None:
    """`monitor feeds` prints the table for the store as it is now; --json the full rows."""
    now = datetime.now(UTC).replace(microsecond=0)  # the store keeps whole seconds
    populated_store(tmp_path, now)
    config = make_config(tmp_path, HEALTH_FEEDS)

    table = monitor("feeds", "--config", str(config))
    assert table.returncode == 0, table.stderr
    wire = next(line for line in table.stdout.splitlines() if line.startswith("wire "))
    assert wire.split()[:7] == ["wire", "failing", "x2", "3d", "ago", "in", wire.split()[6]]
    assert wire.split()[6].startswith("2h")  # seconds pass between the store and the command
    assert " +2h " in wire
    assert "removed-from-config" not in table.stdout

    result = monitor("feeds", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["frontier", "wire", "moved", "gone", "fresh"]
    assert rows["wire"]["state"] == "failing x2"
    assert rows["wire"]["consecutive_failures"] == 2
    assert rows["wire"]["backoff"] == 7200
    assert rows["wire"]["last_error"] == "timed out " + "x" * 80  # in full
    assert datetime.fromisoformat(rows["wire"]["next_poll_at"]) == now + timedelta(hours=2, minutes=30)
    assert rows["moved"]["moved"] is True
    assert rows["moved"]["url"] == "https://new.example/rss"
    assert rows["gone"]["state"] == "disabled"
    assert rows["fresh"]["state"] == "never polled"
    assert rows["fresh"]["last_polled_at"] is None


def test_health_json_matches_lines(tmp_path: Path) -> None:
    """The JSON rows carry the same states as the table, ISO times and the items a day."""
    populated_store(tmp_path, NOW)
    settings = load_settings(make_config(tmp_path, HEALTH_FEEDS))
    store = Store.open(settings.defaults.state_path)
    try:
        rows = {row.name: row for row in store.feeds(NOW)}
    finally:
        store.close()
    data = health_json(settings.feeds, rows)
    assert [row["state"] for row in data] == ["unchanged", "failing x2", "ok", "disabled", "never polled"]
    assert data[0]["last_success_at"] == (NOW - timedelta(minutes=12)).isoformat()
    assert json.loads(json.dumps(data)) == data


def test_state_of_an_old_address_is_marked(tmp_path: Path) -> None:
    """After config.toml names a new address, a move or 410 of the old one is not shown as current."""
    populated_store(tmp_path, NOW)
    edited = HEALTH_FEEDS.replace("https://gone.example/rss", "https://back.example/rss")
    settings = load_settings(make_config(tmp_path, edited))
    store = Store.open(settings.defaults.state_path)
    try:
        rows = {row.name: row for row in store.feeds(NOW)}
    finally:
        store.close()
    lines = health_lines(settings.feeds, rows, NOW)
    gone = lines.index(next(line for line in lines if line.startswith("gone ")))
    assert lines[gone].split()[1:3] == ["failing", "x1"]
    assert lines[gone + 1] == (
        "  config.toml names a new address; the state above is of https://gone.example/rss"
    )


def test_items_a_day_and_long_names() -> None:
    """Items a day show one decimal; the feed column widens to the longest name, up to 40."""
    name = "a-rather-long-feed-name-from-an-import"
    row = FeedRow(
        name=name,
        url="https://x.example/rss",
        last_polled_at=NOW,
        last_success_at=NOW,
        last_status="ok",
        last_error=None,
        consecutive_failures=0,
        items_total=40,
        config_url="https://x.example/rss",
        next_poll_at=NOW + timedelta(minutes=15),
        items_per_day=3.26,
    )
    lines = health_lines([FeedConfig(name, "https://x.example/rss")], {name: row}, NOW)
    assert lines[1] == f"{name} ok           just now     in 15m           3.3 -"
    assert lines[0].index("state") == lines[1].index("ok")
