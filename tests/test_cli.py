"""The `monitor` command: exit codes, error messages, the demo, health."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config

ROOT = Path(__file__).parent.parent


def monitor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """The bundled demo, copied so its state starts empty and stays in tmp_path."""
    shutil.copytree(ROOT / "demo", tmp_path / "demo")
    shutil.copytree(ROOT / "watchlists", tmp_path / "watchlists")
    (tmp_path / "state").mkdir()
    return tmp_path / "demo" / "config.toml"


def test_version() -> None:
    """`python -m monitor --version` names the program."""
    result = monitor("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("monitor, version ")


def test_check_accepts_the_shipped_config() -> None:
    """The config.toml and watchlists in the repository are valid."""
    result = monitor("check", "--config", str(ROOT / "config.toml"))
    assert result.returncode == 0, result.stderr
    for slug in ("chinese-diplomacy", "sistan-baluchestan", "ambassador-returns"):
        assert slug in result.stdout


BROKEN = {
    "unknown key": ('[defaults]\npoll_intervall = "5m"\n', "defaults.poll_intervall: unknown key"),
    "missing key": ('[[feeds]]\nname = "dawn"\n', "feeds[0].url: missing"),
    "malformed url": (
        '[[feeds]]\nname = "x"\nurl = "htp:/nowhere"\n',
        "feeds[0].url: 'htp:/nowhere' is not a feed address",
    ),
    "unset variable": (
        '[channels.ops]\ntype = "slack"\nwebhook_url = "${MONITOR_TEST_UNSET_SLACK}"\n',
        "channels.ops.webhook_url: ${MONITOR_TEST_UNSET_SLACK} is not set",
    ),
    "toml syntax": (
        '[defaults\npoll_interval = "5m"\n',
        "TOML syntax error: Expected ']' at the end of a table declaration (at line 1",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_check_names_file_and_key_and_exits_2(tmp_path: Path, case: str) -> None:
    """Each kind of configuration error names the file and the key or line; `check` exits 2."""
    text, expected = BROKEN[case]
    config = write_config(tmp_path / "config.toml", text)
    result = monitor("check", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: {expected}" in result.stderr


def test_check_lists_every_error_at_once(tmp_path: Path) -> None:
    """Mistakes in config.toml and in watchlists are all reported in one run."""
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    (watchlists / "bad.toml").write_text(
        'name = "Bad"\nseverity = "urgent"\nchannels = ["pager"]\nquery = "(Zahedan OR"\n'
    )
    config = write_config(
        tmp_path / "config.toml",
        f'[defaults]\nwatchlists_dir = "{watchlists}"\ncolour = "blue"\n[channels.x]\ntype = "pager"\n',
    )
    result = monitor("check", "--config", str(config))
    assert result.returncode == 2
    assert "defaults.colour: unknown key" in result.stderr
    assert "channels.x.type: unknown channel type 'pager'" in result.stderr
    assert f"{watchlists / 'bad.toml'}: severity:" in result.stderr
    assert f"{watchlists / 'bad.toml'}: channels: channel 'pager' is not defined" in result.stderr
    assert f"{watchlists / 'bad.toml'}: query: expected a term, the query ends at column 12" in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist says so and exits 2."""
    result = monitor("poll", "--once", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml: file not found" in result.stderr


def test_demo_prints_alerts_then_nothing_new(demo_copy: Path) -> None:
    """The offline demo alerts on each shipped signal; a second run finds nothing new."""
    first = monitor("poll", "--once", "--config", str(demo_copy))
    assert first.returncode == 0, first.stderr
    for name in ("Sistan-Baluchestan", "Chinese diplomacy", "Ambassadors return"):
        assert name in first.stdout
    assert "3 ok" in first.stdout
    assert "alerts pending: 0" in first.stdout

    second = monitor("poll", "--once", "--config", str(demo_copy))
    assert second.returncode == 0, second.stderr
    assert "Nothing new." in second.stdout
    assert "[" not in second.stdout.split("feeds:")[0]  # no alert lines before the summary


def test_health_follows_the_last_poll(demo_copy: Path) -> None:
    """`monitor health` fails before any poll, passes after one, fails once the poll is stale."""
    before = monitor("health", "--config", str(demo_copy))
    assert before.returncode == 1
    assert "no poll has completed" in before.stdout

    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    healthy = monitor("health", "--config", str(demo_copy))
    assert healthy.returncode == 0, healthy.stdout

    db = demo_copy.parent.parent / "state" / "demo.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '2020-01-01T00:00:00+00:00' WHERE key = 'last_cycle_at'")
    stale = monitor("health", "--config", str(demo_copy))
    assert stale.returncode == 1
    assert "last poll" in stale.stdout


def test_feeds_shows_health_table(demo_copy: Path) -> None:
    """`monitor feeds` lists every configured feed with its status after a poll."""
    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    result = monitor("feeds", "--config", str(demo_copy))
    assert result.returncode == 0
    for name in ("dawn", "aljazeera", "regional-wire"):
        assert any(line.startswith(name) and " ok " in line for line in result.stdout.splitlines())
