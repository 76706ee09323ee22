"""config.toml -> Settings: values, paths, interpolation, and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import USER_AGENT
from monitor.config import (
    ConsoleOptions,
    Defaults,
    EmailOptions,
    SlackOptions,
    WebhookOptions,
    load_settings,
    parse_duration,
)
from monitor.dedup import Identity
from monitor.errors import ConfigError, ConfigErrors

FULL = """
[defaults]
poll_interval = "15m"
deliver_interval = 90
jitter = 0.2
user_agent = "custom-agent/1.0"
timeout = "30s"
fetch_deadline = "2m"
max_concurrency = 4
max_feed_bytes = "10MiB"
max_redirects = 3
state_path = "state/monitor.db"
watchlists_dir = "lists"

[[feeds]]
name = "dawn"
url = "https://www.dawn.example/feeds/home"
interval = "1h30m"
tags = ["pakistan", "english"]

[[feeds]]
name = "irna"
url = "https://irna.example/rss"

[channels.ops]
type = "slack"
webhook_url = "${SLACK_WEBHOOK_URL}"

[channels.hook]
type = "webhook"
url = "https://hooks.example/monitor"
headers = { Authorization = "Bearer ${HOOK_TOKEN:-anonymous}" }

[channels.mail]
type = "email"
host = "smtp.example.org"
security = "tls"
username = "monitor"
password = "${SMTP_PASSWORD}"
sender = "monitor@example.org"
recipients = ["desk@example.org", "analyst@example.org"]

[channels.stdout]
type = "console"
"""

ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/secret", "SMTP_PASSWORD": "pw"}


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        load_settings(path, env=env or {})
    return info.value.errors  # type: ignore[return-value]


def error_at(errors: list[ConfigError], path: Path, key: str) -> ConfigError:
    """The one error at `key`, checked to name the file and the key at the start of its message."""
    found = [e for e in errors if e.key == key]
    assert len(found) == 1, f"expected one error at {key!r}, got: {[str(e) for e in errors]}"
    assert str(found[0]).startswith(f"{path}: {key}: ")
    return found[0]


FEED = '[[feeds]]\nname = "a"\nurl = "https://a.example/rss"\n'


# A full config


def test_full_config_loads_every_section(tmp_path):
    """A config using every section, all four channel types and the defaults loads as written."""
    path = write(tmp_path, FULL)
    s = load_settings(path, env=ENV)
    d = s.defaults
    assert (d.poll_interval, d.deliver_interval, d.jitter) == (900, 90, 0.2)
    assert (d.timeout, d.fetch_deadline) == (30, 120)
    assert d.user_agent == "custom-agent/1.0"
    assert (d.max_concurrency, d.max_feed_bytes, d.max_redirects) == (4, 10 * 2**20, 3)
    assert [f.name for f in s.feeds] == ["dawn", "irna"]
    dawn, irna = s.feeds
    assert dawn.url == "https://www.dawn.example/feeds/home"
    assert dawn.interval == 5400
    assert dawn.tags == ("pakistan", "english")
    assert not dawn.is_local
    assert irna.interval is None
    assert irna.tags == ()
    assert s.interval(dawn) == 5400
    assert s.interval(irna) == 900
    assert {n: c.type for n, c in s.channels.items()} == {
        "ops": "slack",
        "hook": "webhook",
        "mail": "email",
        "stdout": "console",
    }
    assert s.channels["ops"].options == SlackOptions(webhook_url=ENV["SLACK_WEBHOOK_URL"])
    assert s.channels["hook"].options == WebhookOptions(
        url="https://hooks.example/monitor", headers=(("Authorization", "Bearer anonymous"),)
    )
    assert s.channels["mail"].options == EmailOptions(
        host="smtp.example.org",
        sender="monitor@example.org",
        recipients=("desk@example.org", "analyst@example.org"),
        port=465,
        security="tls",
        username="monitor",
        password="pw",
    )
    assert s.channels["stdout"].options == ConsoleOptions()


def test_empty_config_takes_the_defaults(tmp_path):
    """An empty file is valid: built-in defaults, no feeds, no channels."""
    s = load_settings(write(tmp_path, ""), env={})
    assert s.defaults.poll_interval == 900
    assert s.defaults.user_agent == USER_AGENT
    assert s.defaults.max_feed_bytes == 10 * 2**20
    assert s.feeds == ()
    assert dict(s.channels) == {}


def test_email_port_follows_security_unless_set(tmp_path):
    """starttls defaults to port 587, and an explicit port wins."""
    base = '[channels.m]\ntype = "email"\nhost = "h"\nsender = "a@b.c"\nrecipients = ["d@e.f"]\n'
    s = load_settings(write(tmp_path, base), env={})
    assert s.channels["m"].options.port == 587  # type: ignore[union-attr]
    s = load_settings(write(tmp_path, base + "port = 2525\n"), env={})
    assert s.channels["m"].options.port == 2525  # type: ignore[union-attr]


# Durations and sizes


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        (90, 90),
        (90.5, 90.5),
        ("1d", 86400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("120", 120),
        ("1h 30m", 5400),
    ],
)
def test_parse_duration_accepts(value, seconds):
    """Durations are seconds as a number or unit strings, combinable."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "m", "15x", "fifteen minutes", "15m garbage", "-5m", True, None, [15]])
def test_parse_duration_rejects(value):
    """Anything that is not a duration is None, never a guess."""
    assert parse_duration(value) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [('"90s"', 90), ('"15m"', 900), ('"1h30m"', 5400), ("90", 90)],
)
def test_feed_interval_durations(tmp_path, text, expected):
    """A feed's interval is read through the duration syntax."""
    s = load_settings(write(tmp_path, FEED + f"interval = {text}\n"), env={})
    assert s.feeds[0].interval == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"10MiB"', 10 * 2**20),
        ('"512KiB"', 512 * 1024),
        ('"2MB"', 2_000_000),
        ('"1GiB"', 2**30),
        ("4096", 4096),
    ],
)
def test_sizes(tmp_path, text, expected):
    """max_feed_bytes takes bytes or binary/decimal unit strings."""
    s = load_settings(write(tmp_path, f"[defaults]\nmax_feed_bytes = {text}\n"), env={})
    assert s.defaults.max_feed_bytes == expected


@pytest.mark.parametrize("text", ['"10 parsecs"', '"0MiB"', "0", "-1", '"MiB"', "true"])
def test_bad_sizes_are_errors(tmp_path, text):
    """A size that cannot be read is an error at defaults.max_feed_bytes."""
    path = write(tmp_path, f"[defaults]\nmax_feed_bytes = {text}\n")
    error = error_at(errors_of(path), path, "defaults.max_feed_bytes")
    assert "not a size" in error.message


def test_bad_duration_is_an_error(tmp_path):
    """A duration that cannot be read names its key and shows the accepted forms."""
    path = write(tmp_path, '[defaults]\npoll_interval = "soon"\n')
    error = error_at(errors_of(path), path, "defaults.poll_interval")
    assert "'soon' is not a duration" in error.message


def test_duration_below_minimum_is_an_error(tmp_path):
    """A feed interval under a second would hammer the publisher: refused."""
    path = write(tmp_path, FEED + 'interval = "500ms"\n')
    error = error_at(errors_of(path), path, "feeds[0].interval")
    assert "too small" in error.message


# Stories and identity


def test_story_and_identity_keys_load(tmp_path):
    """story_window, retention_days, and a feed's identity and outlet load as written."""
    path = write(
        tmp_path,
        '[defaults]\nstory_window = "2d"\nretention_days = 30\n'
        + FEED
        + 'identity = "link"\noutlet = "Dawn"\n'
        + '[[feeds]]\nname = "b"\nurl = "https://b.example/rss"\n'
        + 'identity = "content"\noutlet = "${OUTLET}"\n',
    )
    s = load_settings(path, env={"OUTLET": "BBC News"})
    assert s.defaults.story_window == 2 * 86400
    assert s.defaults.retention_days == 30
    assert isinstance(s.defaults.retention_days, int)
    assert [(f.identity, f.outlet) for f in s.feeds] == [
        (Identity.LINK, "Dawn"),
        (Identity.CONTENT, "BBC News"),
    ]
    assert all(isinstance(f.identity, Identity) for f in s.feeds)


def test_story_and_identity_defaults(tmp_path):
    """Unset: a 72 h story window, 90 days of retention, identity by guid, no configured outlet."""
    s = load_settings(write(tmp_path, FEED), env={})
    assert s.defaults.story_window == 72 * 3600 == Defaults().story_window
    assert s.defaults.retention_days == 90 == Defaults().retention_days
    assert s.feeds[0].identity is Identity.GUID
    assert s.feeds[0].outlet is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [('"72h"', 72 * 3600), ('"1d12h"', 36 * 3600), ("3600", 3600), ('"30m"', 1800), ("0", 0)],
)
def test_story_window_durations(tmp_path, text, seconds):
    """story_window takes the duration syntax; 0 is allowed."""
    s = load_settings(write(tmp_path, f"[defaults]\nstory_window = {text}\n"), env={})
    assert s.defaults.story_window == seconds


@pytest.mark.parametrize(("value", "days"), [("1", 1), ("36500", 36500), ("365", 365)])
def test_retention_days_bounds_accepted(tmp_path, value, days):
    """retention_days from 1 to 36500 (a century) is accepted."""
    s = load_settings(write(tmp_path, f"[defaults]\nretention_days = {value}\n"), env={})
    assert s.defaults.retention_days == days


@pytest.mark.parametrize("value", ["guid", "link", "content"])
def test_identity_values(tmp_path, value):
    """Each documented identity value is accepted and becomes the Identity of that name."""
    s = load_settings(write(tmp_path, FEED + f'identity = "{value}"\n'), env={})
    assert s.feeds[0].identity is Identity(value)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (FEED + 'identity = "uuid"\n', "feeds[0].identity", "'uuid' is not one of: guid, link, content"),
        (FEED + 'identity = "GUID"\n', "feeds[0].identity", "'GUID' is not one of"),
        (FEED + 'identity = ""\n', "feeds[0].identity", "'' is not one of"),
        (FEED + "identity = 1\n", "feeds[0].identity", "expected a string"),
        (FEED + "outlet = 3\n", "feeds[0].outlet", "expected a string"),
        (FEED + 'outlet = ["Dawn"]\n', "feeds[0].outlet", "expected a string"),
        (FEED + 'outlet = "${UNSET_OUTLET}"\n', "feeds[0].outlet", "${UNSET_OUTLET} is not set"),
        ("[defaults]\nretention_days = 0\n", "defaults.retention_days", "too small; the minimum is 1"),
        ("[defaults]\nretention_days = -5\n", "defaults.retention_days", "too small"),
        (
            "[defaults]\nretention_days = 36501\n",
            "defaults.retention_days",
            "too large; the maximum is 36500",
        ),
        ('[defaults]\nretention_days = "90"\n', "defaults.retention_days", "expected a number"),
        ("[defaults]\nretention_days = true\n", "defaults.retention_days", "expected a number"),
        ('[defaults]\nstory_window = "soon"\n', "defaults.story_window", "'soon' is not a duration"),
        ('[defaults]\nstory_window = "3 days"\n', "defaults.story_window", "is not a duration"),
        ("[defaults]\nstory_window = -1\n", "defaults.story_window", "too small"),
        ("[defaults]\nstory_window = true\n", "defaults.story_window", "is not a duration"),
    ],
    ids=[
        "identity-unknown",
        "identity-case",
        "identity-empty",
        "identity-number",
        "outlet-number",
        "outlet-list",
        "outlet-unset-env",
        "retention-zero",
        "retention-negative",
        "retention-too-large",
        "retention-string",
        "retention-bool",
        "window-word",
        "window-unit",
        "window-negative",
        "window-bool",
    ],
)
def test_bad_story_and_identity_values(tmp_path, text, key, message):
    """A bad identity, outlet, retention_days or story_window is one error naming its key."""
    path = write(tmp_path, text)
    errors = errors_of(path)
    error = error_at(errors, path, key)
    assert message in error.message
    assert len(errors) == 1


def test_bad_identity_keeps_the_rest_of_the_feed(tmp_path):
    """The partial settings of a config with a bad identity still hold the feed, identity at its default."""
    path = write(tmp_path, FEED + 'identity = "uuid"\noutlet = "Dawn"\n')
    with pytest.raises(ConfigErrors) as info:
        load_settings(path, env={})
    partial = info.value.partial
    assert partial is not None
    assert [(f.name, f.identity, f.outlet) for f in partial.feeds] == [("a", Identity.GUID, "Dawn")]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[defaults]\nstory_windows = "1h"\n', "defaults.story_windows"),
        ("[defaults]\nretention = 30\n", "defaults.retention"),
        (FEED + 'identify = "link"\n', "feeds[0].identify"),
        (FEED + 'outlets = "Dawn"\n', "feeds[0].outlets"),
        ('[defaults]\nidentity = "link"\n', "defaults.identity"),
    ],
)
def test_misplaced_story_and_identity_keys(tmp_path, text, key):
    """Misspelt or misplaced new keys (identity is per feed) are unknown keys, never ignored."""
    path = write(tmp_path, text)
    assert "unknown key" in error_at(errors_of(path), path, key).message


# Paths


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    """Relative feed paths and state_path are relative to the config file, not the working directory."""
    conf = tmp_path / "conf"
    path = write(
        conf,
        '[defaults]\nstate_path = "state/m.db"\nwatchlists_dir = "lists"\n'
        '[[feeds]]\nname = "local"\nurl = "feeds/sample.xml"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(path, env={})
    assert s.defaults.state_path == conf / "state" / "m.db"
    assert s.defaults.watchlists_dir == conf / "lists"
    assert s.feeds[0].url == str((conf / "feeds" / "sample.xml").resolve())
    assert s.feeds[0].is_local


def test_absolute_paths_are_kept(tmp_path):
    """Absolute state_path and feed paths, and file:// URLs, are used as written."""
    state = tmp_path / "abs" / "m.db"
    feed = tmp_path / "abs" / "f.xml"
    path = write(
        tmp_path / "conf",
        f'[defaults]\nstate_path = "{state}"\n'
        f'[[feeds]]\nname = "p"\nurl = "{feed}"\n'
        f'[[feeds]]\nname = "u"\nurl = "{feed.as_uri()}"\n',
    )
    s = load_settings(path, env={})
    assert s.defaults.state_path == state
    assert s.feeds[0].url == str(feed)
    assert s.feeds[1].url == feed.as_uri()
    assert s.feeds[1].is_local


# Interpolation


def test_env_interpolation(tmp_path):
    """${VAR} takes the environment's value, ${VAR:-default} the default only when VAR is unset."""
    text = (
        '[channels.h]\ntype = "webhook"\nurl = "https://${HOST}/hook"\n'
        'headers = { A = "${SET:-fallback}", B = "${UNSET:-fallback}", C = "${EMPTY:-x}" }\n'
    )
    s = load_settings(write(tmp_path, text), env={"HOST": "hooks.example", "SET": "real", "EMPTY": ""})
    options = s.channels["h"].options
    assert options.url == "https://hooks.example/hook"  # type: ignore[union-attr]
    assert dict(options.headers) == {"A": "real", "B": "fallback", "C": ""}  # type: ignore[union-attr]


def test_env_interpolation_reads_os_environ_by_default(tmp_path, monkeypatch):
    """Without an explicit env mapping, the process environment is used."""
    monkeypatch.setenv("MONITOR_TEST_UA", "from-env/2")
    s = load_settings(write(tmp_path, '[defaults]\nuser_agent = "${MONITOR_TEST_UA}"\n'))
    assert s.defaults.user_agent == "from-env/2"


def test_unset_env_var_message(tmp_path, monkeypatch):
    """An unset variable reads `config.toml: channels.ops.webhook_url: ${SLACK_WEBHOOK_URL} is not set...`."""
    write(tmp_path, '[channels.ops]\ntype = "slack"\nwebhook_url = "${SLACK_WEBHOOK_URL}"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigErrors) as info:
        load_settings("config.toml", env={})
    assert len(info.value.errors) == 1
    message = str(info.value.errors[0])
    assert message.startswith("config.toml: channels.ops.webhook_url: ${SLACK_WEBHOOK_URL} is not set")
    assert "export SLACK_WEBHOOK_URL" in message


# Errors, each naming the file and the key path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('colour = "red"\n', "colour"),
        ('[defaults]\npoll_intervall = "5m"\n', "defaults.poll_intervall"),
        (FEED + 'intervall = "5m"\n', "feeds[0].intervall"),
        (
            '[channels.ops]\ntype = "slack"\nwebhook_url = "https://hooks.slack.example/x"\n'
            'chanel = "#ops"\n',
            "channels.ops.chanel",
        ),
        ('[channels.m]\ntype = "console"\nverbose = true\n', "channels.m.verbose"),
    ],
    ids=["top-level", "defaults", "feed", "channel", "console-channel"],
)
def test_unknown_key(tmp_path, text, key):
    """A misspelt key is an error, never silently ignored."""
    path = write(tmp_path, text)
    error = error_at(errors_of(path), path, key)
    assert "unknown key" in error.message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[feeds]]\nname = "a"\n', "feeds[0].url"),
        ('[[feeds]]\nurl = "https://a.example/rss"\n', "feeds[0].name"),
        ('[channels.hook]\ntype = "webhook"\n', "channels.hook.url"),
        ('[channels.ops]\ntype = "slack"\n', "channels.ops.webhook_url"),
        ('[channels.mail]\ntype = "email"\nhost = "h"\nsender = "a@b.c"\n', "channels.mail.recipients"),
        ('[channels.mail]\ntype = "email"\nsender = "a@b.c"\nrecipients = ["x@y.z"]\n', "channels.mail.host"),
        ('[channels.x]\nurl = "https://a.example"\n', "channels.x.type"),
    ],
    ids=["feed-url", "feed-name", "webhook-url", "slack-url", "email-recipients", "email-host", "type"],
)
def test_missing_required_key(tmp_path, text, key):
    """A missing required key is reported at its own path."""
    path = write(tmp_path, text)
    error = error_at(errors_of(path), path, key)
    assert "missing" in error.message


def test_empty_recipients(tmp_path):
    """An email channel with an empty recipient list is an error."""
    path = write(tmp_path, '[channels.m]\ntype = "email"\nhost = "h"\nsender = "a@b.c"\nrecipients = []\n')
    assert "at least one" in error_at(errors_of(path), path, "channels.m.recipients").message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[channels.hook]\ntype = "webhook"\nurl = "not a url"\n', "channels.hook.url"),
        ('[channels.hook]\ntype = "webhook"\nurl = "ftp://files.example/hook"\n', "channels.hook.url"),
        ('[channels.ops]\ntype = "slack"\nwebhook_url = "https://"\n', "channels.ops.webhook_url"),
        ('[[feeds]]\nname = "a"\nurl = "ftp://a.example/rss"\n', "feeds[0].url"),
        ('[[feeds]]\nname = "a"\nurl = "https:///rss"\n', "feeds[0].url"),
    ],
)
def test_malformed_url(tmp_path, text, key):
    """A URL that cannot be fetched or posted to is reported at its key."""
    path = write(tmp_path, text)
    error = error_at(errors_of(path), path, key)
    assert "URL" in error.message or "not a feed address" in error.message


def test_malformed_webhook_url_does_not_leak_its_secret(tmp_path):
    """The error for a broken webhook URL does not print the secret path."""
    path = write(
        tmp_path, '[channels.ops]\ntype = "slack"\nwebhook_url = "http:/hooks.example/T0/B0/s3cr3t"\n'
    )
    error = error_at(errors_of(path), path, "channels.ops.webhook_url")
    assert "s3cr3t" not in str(error)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    """A TOML syntax error names the file and the line."""
    path = write(tmp_path, '[defaults]\npoll_interval = "5m"\nthis is not toml\n')
    errors = errors_of(path)
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{path}: TOML syntax error")
    assert "line 3" in str(errors[0])


def test_missing_file(tmp_path):
    """A config file that does not exist is one error naming it."""
    path = tmp_path / "nope.toml"
    errors = errors_of(path)
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{path}: file not found")


def test_duplicate_feed_name(tmp_path):
    """Two feeds with one name: the second is reported."""
    path = write(tmp_path, FEED + FEED.replace("a.example", "b.example"))
    error = error_at(errors_of(path), path, "feeds[1].name")
    assert "'a' is used by another feed" in error.message


def test_bad_feed_name(tmp_path):
    """Feed names are identifiers: no spaces."""
    path = write(tmp_path, '[[feeds]]\nname = "my feed"\nurl = "https://a.example/rss"\n')
    error_at(errors_of(path), path, "feeds[0].name")


def test_unknown_channel_type(tmp_path):
    """An unknown channel type lists the types there are."""
    path = write(tmp_path, '[channels.pager]\ntype = "sms"\nnumber = "123"\n')
    error = error_at(errors_of(path), path, "channels.pager.type")
    assert "unknown channel type 'sms'" in error.message
    for kind in ("console", "slack", "webhook", "email"):
        assert kind in error.message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[defaults]\nmax_concurrency = "many"\n', "defaults.max_concurrency"),
        ("[defaults]\njitter = 0.9\n", "defaults.jitter"),
        ("feeds = 3\n", "feeds"),
        ('[[feeds]]\nname = "a"\nurl = "https://a.example/rss"\ntags = "iran"\n', "feeds[0].tags"),
        ("channels = 1\n", "channels"),
        (
            '[channels.m]\ntype = "email"\nhost = "h"\nsender = "a@b.c"\nrecipients = ["x@y.z"]\n'
            'security = "ssl"\n',
            "channels.m.security",
        ),
    ],
)
def test_wrong_types_and_ranges(tmp_path, text, key):
    """Values of the wrong type or out of range are reported at their key."""
    path = write(tmp_path, text)
    error_at(errors_of(path), path, key)


def test_several_errors_reported_together(tmp_path):
    """Every problem in a file is collected into one ConfigErrors, one line each."""
    text = (
        'colour = "red"\n'
        '[defaults]\npoll_interval = "soon"\n'
        '[[feeds]]\nname = "a"\n'
        '[channels.ops]\ntype = "slack"\nwebhook_url = "${SLACK_WEBHOOK_URL}"\n'
        '[channels.pager]\ntype = "sms"\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigErrors) as info:
        load_settings(path, env={})
    keys = {e.key for e in info.value.errors}
    assert keys == {
        "colour",
        "defaults.poll_interval",
        "feeds[0].url",
        "channels.ops.webhook_url",
        "channels.pager.type",
    }
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.errors)
    assert all(line.startswith(f"{path}: ") for line in lines)


# Time zones, quiet hours, delivery_max_age


def quiet_of(settings, channel):
    hours = settings.channels[channel].quiet_hours
    return None if hours is None else (str(hours.start), str(hours.end), hours.zone.key)


def test_channel_quiet_hours_and_timezone(tmp_path):
    """A channel's quiet hours are kept on its own time zone's clock."""
    text = '[channels.desk]\ntype = "console"\nquiet_hours = "22:00-07:00"\ntimezone = "Europe/London"\n'
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.channels["desk"].timezone == "Europe/London"
    assert quiet_of(settings, "desk") == ("22:00:00", "07:00:00", "Europe/London")


def test_channels_take_the_default_timezone_unless_they_set_their_own(tmp_path):
    """defaults.timezone is the zone of every channel that does not name one."""
    text = (
        '[defaults]\ntimezone = "Asia/Karachi"\n'
        '[channels.desk]\ntype = "console"\nquiet_hours = "23:00 - 06:30"\n'
        '[channels.night]\ntype = "console"\ntimezone = "America/New_York"\nquiet_hours = "01:00-05:00"\n'
    )
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.defaults.timezone == "Asia/Karachi"
    assert settings.channels["desk"].timezone == "Asia/Karachi"
    assert quiet_of(settings, "desk") == ("23:00:00", "06:30:00", "Asia/Karachi")
    assert settings.channels["night"].timezone == "America/New_York"
    assert quiet_of(settings, "night") == ("01:00:00", "05:00:00", "America/New_York")


def test_timezone_quiet_hours_and_max_age_defaults(tmp_path):
    """Unset: UTC, no quiet hours, and alerts given up after seven days."""
    settings = load_settings(write(tmp_path, '[channels.desk]\ntype = "console"\n'), env={})
    assert settings.defaults.timezone == Defaults().timezone == "UTC"
    assert settings.defaults.delivery_max_age == 7 * 86400
    assert settings.channels["desk"].timezone == "UTC"
    assert settings.channels["desk"].quiet_hours is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [('"3d"', 3 * 86400), ("7200", 7200), ('"12h"', 12 * 3600), ('"1d12h"', 36 * 3600), ("60", 60)],
)
def test_delivery_max_age_durations(tmp_path, value, seconds):
    """delivery_max_age is a duration: seconds or a string such as "3d"."""
    path = write(tmp_path, f"[defaults]\ndelivery_max_age = {value}\n")
    assert load_settings(path, env={}).defaults.delivery_max_age == seconds


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            '[defaults]\ntimezone = "Mars/Olympus_Mons"\n',
            "defaults.timezone",
            "'Mars/Olympus_Mons' is not a time zone; use an IANA name such as 'Europe/London' or 'UTC'",
        ),
        ("[defaults]\ntimezone = 1\n", "defaults.timezone", "expected a string, got an integer"),
        (
            '[channels.desk]\ntype = "console"\ntimezone = "London"\n',
            "channels.desk.timezone",
            "'London' is not a time zone; use an IANA name such as 'Europe/London' or 'UTC'",
        ),
        (
            '[channels.desk]\ntype = "console"\nquiet_hours = "25:00-07:00"\n',
            "channels.desk.quiet_hours",
            "'25:00-07:00': 25:00 is not a time of day",
        ),
        (
            '[channels.desk]\ntype = "console"\nquiet_hours = "22:00"\n',
            "channels.desk.quiet_hours",
            "'22:00': write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'",
        ),
        (
            '[channels.desk]\ntype = "console"\nquiet_hours = "22:00-22:00"\n',
            "channels.desk.quiet_hours",
            "'22:00-22:00': quiet hours must not start and end at the same time",
        ),
        (
            '[channels.desk]\ntype = "console"\nquiet_hours = 22\n',
            "channels.desk.quiet_hours",
            "expected a string, got an integer",
        ),
        (
            '[defaults]\ndelivery_max_age = "30s"\n',
            "defaults.delivery_max_age",
            "30 is too small; the minimum is 60",
        ),
        (
            '[defaults]\ndelivery_max_age = "a week"\n',
            "defaults.delivery_max_age",
            '\'a week\' is not a duration; write seconds (90) or a string like "15m", "1h"',
        ),
    ],
)
def test_timezone_quiet_hours_and_max_age_errors(tmp_path, text, key, message):
    """Bad time zones, quiet hours and max ages are reported at their key, and only there."""
    path = write(tmp_path, text)
    errors = errors_of(path)
    assert error_at(errors, path, key).message == message
    assert [e.key for e in errors] == [key]


def test_a_bad_default_timezone_leaves_channels_in_utc(tmp_path):
    """With defaults.timezone wrong, channels keep UTC and only the bad key is blamed."""
    text = (
        '[defaults]\ntimezone = "Nowhere"\n[channels.desk]\ntype = "console"\nquiet_hours = "22:00-07:00"\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigErrors) as info:
        load_settings(path, env={})
    assert [e.key for e in info.value.errors] == ["defaults.timezone"]
    partial = info.value.partial
    assert partial is not None
    assert partial.channels["desk"].timezone == "UTC"
    assert quiet_of(partial, "desk") == ("22:00:00", "07:00:00", "UTC")


def test_a_time_zone_folder_is_a_config_error(tmp_path):
    """`timezone = "Europe"` names a folder of the zone database: an error at its key, not a crash."""
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, '[defaults]\ntimezone = "Europe"\n'), env={})
    assert [e.key for e in info.value.errors] == ["defaults.timezone"]
