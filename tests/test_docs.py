"""The README stays true: every command, option and configuration key is documented."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from monitor import config
from monitor.cli import cli

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_documented(command: str) -> None:
    """Each `monitor` subcommand appears in the CLI reference."""
    assert f"`monitor {command}" in README


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(config.Defaults)])
def test_every_default_is_documented(key: str) -> None:
    """Each [defaults] key has a row in the configuration reference."""
    assert f"| `{key}` |" in README


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(config.FeedConfig)])
def test_every_feed_key_is_documented(key: str) -> None:
    """Each [[feeds]] key has a row in the configuration reference."""
    assert f"| `{key}` |" in README


@pytest.mark.parametrize(
    "options",
    [config.SlackOptions, config.WebhookOptions, config.EmailOptions],
    ids=lambda o: o.__name__,
)
def test_every_channel_key_is_documented(options: type) -> None:
    """Each channel option is named in the channels table."""
    for field in dataclasses.fields(options):
        assert f"`{field.name}`" in README, field.name


def test_channel_types_are_documented() -> None:
    """Each channel type the config accepts is listed."""
    for kind in ("console", "slack", "webhook", "email"):
        assert f"| `{kind}` |" in README


def test_readme_example_watchlist_is_valid(tmp_path: Path) -> None:
    """The watchlist example in the README loads."""
    from monitor.watchlists.loader import load_watchlist

    block = re.search(r"## Watchlist format.*?```toml\n(.*?)```", README, re.S)
    assert block is not None
    path = tmp_path / "example.toml"
    path.write_text(block.group(1), encoding="utf-8")
    watchlist = load_watchlist(path)
    assert watchlist.name == "Sistan-Baluchestan incidents"


def test_shipped_config_uses_only_documented_keys() -> None:
    """config.toml's keys all appear in the reference (and it parses)."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    for key in raw.get("defaults", {}):
        assert f"| `{key}` |" in README
    for feed in raw["feeds"]:
        for key in feed:
            assert f"| `{key}` |" in README
