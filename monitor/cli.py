"""The `monitor` command: a thin layer that turns library calls into output and exit codes.

Exit codes: 0 success, 1 the service is unhealthy or an operation failed, 2 invalid configuration.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor import __version__
from monitor.app import load_checked_watchlists, open_runtime
from monitor.config import DEFAULT_CONFIG, Settings, load_settings
from monitor.errors import ConfigErrors, MonitorError
from monitor.pipeline import run_cycle
from monitor.store import Store
from monitor.watchlists import Watchlist

F = TypeVar("F", bound=Callable[..., Any])
EXIT_UNHEALTHY = 1
EXIT_CONFIG = 2


def config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG,
        envvar="MONITOR_CONFIG",
        show_default=True,
        help="Configuration file (or $MONITOR_CONFIG).",
    )(f)


def _settings(config_path: Path) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigErrors as e:
        for error in e.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_CONFIG)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monitor")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
def cli(verbose: bool) -> None:
    """Poll news feeds, match watchlists, and deliver each alert once."""
    # Feed text printed to a terminal or pipe that cannot encode it is shown replaced, not fatal.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    _setup_logging(verbose)


@cli.command()
@config_option
def run(config_path: Path) -> None:
    """Run the daemon: poll every feed on its schedule and deliver alerts until SIGINT/SIGTERM."""
    from monitor.daemon import run_daemon

    settings = _settings(config_path)
    try:
        asyncio.run(run_daemon(settings))
    except MonitorError as e:
        raise click.ClickException(str(e)) from e


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Run one cycle and exit (the only mode; `monitor run` schedules).")
def poll(config_path: Path, once: bool) -> None:
    """Poll every feed once, deliver pending alerts (retrying queued ones now), print a summary."""
    settings = _settings(config_path)

    async def cycle() -> str:
        async with open_runtime(settings) as rt:
            report = await run_cycle(rt)
        return report.summary() + ("\nNothing new." if report.new_items == 0 and report.sent == 0 else "")

    try:
        summary = asyncio.run(cycle())
    except MonitorError as e:
        raise click.ClickException(str(e)) from e
    click.echo(summary)


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the configuration and every watchlist; list all errors, exit 2 if there are any."""
    errors: list[MonitorError] = []
    settings: Settings | None
    try:
        settings = load_settings(config_path)
    except ConfigErrors as e:
        errors.extend(e.errors)
        # None when the file could not be read at all: then there is no watchlist location to check.
        settings = e.partial if isinstance(e.partial, Settings) else None
    watchlists: list[Watchlist] = []
    if settings is not None:
        watchlists, watchlist_errors = load_checked_watchlists(settings)
        errors.extend(watchlist_errors)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if errors or settings is None:
        sys.exit(EXIT_CONFIG)
    click.echo(
        f"{settings.path}: ok: {len(settings.feeds)} feeds, {len(settings.channels)} channels, "
        f"{len(watchlists)} watchlists ({', '.join(w.slug for w in watchlists)})"
    )


@cli.command()
@config_option
def feeds(config_path: Path) -> None:
    """Show each feed's health: last poll, last success, consecutive failures, last error."""
    settings = _settings(config_path)
    store = _open_store(settings)
    rows = {row.name: row for row in store.feeds()}
    store.close()
    click.echo(f"{'feed':<24} {'status':<13} {'last success':<20} {'fails':>5} {'items':>6}  last error")
    for feed in settings.feeds:
        row = rows.get(feed.name)
        if row is None:
            click.echo(f"{feed.name:<24} {'never polled':<13}")
            continue
        success = row.last_success_at.strftime("%Y-%m-%d %H:%M") if row.last_success_at else "never"
        click.echo(
            f"{feed.name:<24} {row.last_status or '-':<13} {success:<20} {row.consecutive_failures:>5} "
            f"{row.items_total:>6}  {row.last_error or ''}"
        )


@cli.command()
@config_option
@click.option(
    "--max-age", default="", help="How old the last poll may be (default: 3 x the longest interval)."
)
def health(config_path: Path, max_age: str) -> None:
    """Exit 0 if the last poll is recent and the database is writable, else 1 with the reason."""
    settings = _settings(config_path)
    from monitor.config import parse_duration

    longest = max((settings.interval(f) for f in settings.feeds), default=settings.defaults.poll_interval)
    allowed = parse_duration(max_age) if max_age else 3 * longest + 60
    if allowed is None:
        raise click.BadParameter(f"{max_age!r} is not a duration", param_hint="--max-age")
    try:
        store = Store.open(settings.defaults.state_path)
        try:
            last = store.get_meta("last_cycle_at")
            store.set_meta("health_checked_at", datetime.now(UTC).isoformat())
        finally:
            store.close()
    except MonitorError as e:
        click.echo(f"unhealthy: {e}")
        sys.exit(EXIT_UNHEALTHY)
    if last is None:
        click.echo("unhealthy: no poll has completed yet")
        sys.exit(EXIT_UNHEALTHY)
    age = datetime.now(UTC) - datetime.fromisoformat(last)
    if age > timedelta(seconds=allowed):
        click.echo(f"unhealthy: last poll {int(age.total_seconds())}s ago (allowed {int(allowed)}s)")
        sys.exit(EXIT_UNHEALTHY)
    click.echo(f"healthy: last poll {int(age.total_seconds())}s ago")


def _open_store(settings: Settings) -> Store:
    try:
        return Store.open(settings.defaults.state_path)
    except MonitorError as e:
        raise click.ClickException(str(e)) from e


def main() -> None:
    cli()
