"""The `monitor` command: a thin layer that turns library calls into output and exit codes.

Exit codes: 0 success, 1 the service is unhealthy or an operation failed, 2 invalid configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import click

from monitor import __version__
from monitor.app import load_checked_watchlists, open_runtime
from monitor.config import DEFAULT_CONFIG, Settings, load_settings, parse_duration
from monitor.errors import ConfigErrors, MonitorError, OpmlError, StoreError
from monitor.feed_config import (
    Appended,
    FeedCheck,
    NewFeed,
    append_feeds,
    check_feed,
    configured,
    exportable,
    feed_address,
    feed_name,
    normalise_url,
)
from monitor.feed_health import health_json, health_lines
from monitor.fetch import Fetcher
from monitor.notify.console import ConsoleNotifier
from monitor.notify.email import preview_html
from monitor.opml import OpmlFeed, export_opml, parse_opml
from monitor.pipeline import run_cycle, send_to
from monitor.store import Store
from monitor.store.faults import storage_error
from monitor.stories import PairScores
from monitor.tuning import (
    DEFAULT_CORPUS,
    DEFAULT_STORY_CORPUS,
    SampleItem,
    backtest,
    read_items,
    render_highlighted,
    render_trace,
    score,
    scores_json,
    story_scores,
)
from monitor.types import Match
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.loader import load_watchlists
from monitor.watchlists.matcher import item_fields
from monitor.watchlists.model import FIELDS
from monitor.watchlists.reference import trace

F = TypeVar("F", bound=Callable[..., Any])
EXIT_UNHEALTHY = 1
PROGRESS_MIN = 6  # steps of work below which a progress bar would only flicker
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
    from monitor.logs import protect, secrets_of

    try:
        settings = load_settings(config_path)
    except ConfigErrors as e:
        for error in e.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_CONFIG)
    protect(secrets_of(settings))
    return settings


def _setup_logging(verbose: bool) -> None:
    from monitor.logs import setup_logging

    setup_logging(verbose)


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
            with _progress(len(settings.feeds), "polling feeds") as bar:
                report = await run_cycle(rt, on_polled=lambda _: bar.update(1))
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


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="The rows as JSON: full error text, ISO times.")
@config_option
@click.pass_context
def feeds(ctx: click.Context, as_json: bool, config_path: Path) -> None:
    """Each feed's health: state, last success, next poll, items a day, backoff, last error.

    The subcommands add feeds to the config file (by URL, or from an OPML file) and export them."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(config_path)
    now = datetime.now(UTC)
    store = _open_store(settings)
    try:
        rows = {row.name: row for row in store.feeds(now)}
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(health_json(settings.feeds, rows), ensure_ascii=False, indent=2))
        return
    for line in health_lines(settings.feeds, rows, now):
        click.echo(line)


RELOAD_HINT = "the running daemon picks it up on SIGHUP (kill -HUP <pid>) or restart"
CHECK_CONCURRENCY = 8


@feeds.command("add")
@click.argument("url")
@click.option("--name", default=None, help="The feed's name (default: from its title, else its URL).")
@click.option("--interval", default=None, help="Its poll interval, e.g. 30m (default: the configured one).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeatable.")
@click.option("--no-check", is_flag=True, help="Add it without fetching it first.")
@config_option
def feeds_add(
    url: str, name: str | None, interval: str | None, tags: tuple[str, ...], no_check: bool, config_path: Path
) -> None:
    """Add the feed at URL (or a local file) to the config file, after fetching it once to make
    sure it is a feed; its name comes from its title unless --name is given."""
    settings = _settings(config_path)
    address = feed_address(url, Path.cwd())
    if address is None:
        raise click.BadParameter(
            f"{url!r} is not a feed address; use an http(s):// URL, a file:// URL or a path "
            "(and add an address holding ${...} to the file by hand)",
            param_hint="URL",
        )
    seconds = parse_duration(interval) if interval is not None else None
    if interval is not None and (seconds is None or seconds < 10):
        raise click.BadParameter(f"{interval!r} is not a duration of 10s or more", param_hint="--interval")
    title = None
    if not no_check:
        check = _check_feeds(settings, [address], progress=False)[0]
        if check.error:
            _fail(f"{address} is not a usable feed: {check.error}")
        if check.url != address:
            click.echo(f"{address} moved permanently to {check.url}; adding the new address")
        address, title = check.url, check.title
    existing = configured(settings.feeds, address)
    if existing is not None:
        _fail(f"{address} is already configured as {existing.name}")
    chosen = name or feed_name(title or "", address, [f.name for f in settings.feeds])
    new = NewFeed(chosen, address, interval, tuple(dict.fromkeys(tags)))
    result = _append_feeds(config_path, [new])
    if not result.added:
        _fail(f"{address} not added: {result.skipped[0].reason}")
    click.echo(f"added feed {chosen}: {address}" + (f" ({title})" if title else ""))
    click.echo(RELOAD_HINT)


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.option("--check/--no-check", default=False, show_default=True, help="Fetch each feed; skip failures.")
@click.option("--tag", "tags", multiple=True, help="A tag for every imported feed; repeatable.")
@config_option
def feeds_import(
    opml_file: Path, dry_run: bool, check: bool, tags: tuple[str, ...], config_path: Path
) -> None:
    """Add the feeds of an OPML file (a reader's export) to the config file, in one write.

    Feeds already configured, or listed twice, are skipped; folders become tags."""
    settings = _settings(config_path)
    try:
        listed = parse_opml(opml_file.read_bytes(), str(opml_file))
    except OpmlError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{opml_file}: cannot read: {e.strerror or e}")
    skipped: list[tuple[str, str, str]] = []  # (address, kind, why), in the order met
    seen: set[str] = set()  # normalised addresses met so far in the file

    def duplicate(address: str) -> tuple[str, str] | None:
        """Why `address` must not be added again (kind, detail), or None; notes it as met."""
        existing = configured(settings.feeds, address)
        if existing is not None:
            return "already configured", f"already configured as {existing.name}"
        key = normalise_url(address)
        if key in seen:
            return "listed twice", "listed twice in the file"
        seen.add(key)
        return None

    candidates: list[OpmlFeed] = []
    for entry in listed:
        address = feed_address(entry.url, opml_file.parent)
        if address is None:
            skipped.append((entry.url, "not a feed address", "not an http(s) or file address"))
        elif found := duplicate(address):
            skipped.append((address, *found))
        else:
            candidates.append(dataclasses.replace(entry, url=address))
    if check and candidates:
        checks = _check_feeds(settings, [c.url for c in candidates], progress=len(candidates) > 5)
        kept = []
        for entry, result in zip(candidates, checks, strict=True):
            if result.error:
                skipped.append((entry.url, "failed the check", result.error))
            elif result.url != entry.url and (found := duplicate(result.url)):
                skipped.append((entry.url, found[0], f"moved to {result.url}, {found[1]}"))
            else:
                title = entry.title or result.title or ""
                kept.append(dataclasses.replace(entry, url=result.url, title=title))
        candidates = kept
    taken = [f.name for f in settings.feeds]
    new_feeds = []
    for entry in candidates:
        taken.append(feed_name(entry.title, entry.url, taken))
        new_feeds.append(NewFeed(taken[-1], entry.url, None, tuple(dict.fromkeys((*entry.tags, *tags)))))
    if new_feeds and not dry_run:
        appended = _append_feeds(config_path, new_feeds)
        new_feeds = list(appended.added)
        skipped += [(s.feed.url, "already configured", s.reason) for s in appended.skipped]
    for feed in new_feeds:
        labels = f"  [{', '.join(feed.tags)}]" if feed.tags else ""
        click.echo(f"  + {feed.name}  {feed.url}{labels}")
    for address, _, why in skipped:
        click.echo(f"  - {address}: {why}")
    kinds = Counter(kind for _, kind, _ in skipped)
    if len(kinds) == 1:
        detail = f" ({next(iter(kinds))})"
    else:
        detail = f" ({', '.join(f'{n} {kind}' for kind, n in kinds.items())})" if kinds else ""
    verb = ("would add", "would skip") if dry_run else ("added", "skipped")
    click.echo(f"{verb[0]} {len(new_feeds)}, {verb[1]} {len(skipped)}{detail}")
    if new_feeds and not dry_run:
        click.echo(RELOAD_HINT)


@feeds.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the OPML to this file, not to standard output.",
)
@config_option
def feeds_export(output: Path | None, config_path: Path) -> None:
    """The configured feeds as an OPML 2.0 file, for a feed reader or another monitor."""
    settings = _settings(config_path)
    text = export_opml(exportable(settings), f"monitor feeds ({settings.path.name})")
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        _fail(f"{output}: cannot write: {e.strerror or e}")
    click.echo(f"{len(settings.feeds)} feeds written to {output}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_UNHEALTHY)


def _check_feeds(settings: Settings, urls: Sequence[str], *, progress: bool) -> list[FeedCheck]:
    """Fetch and read each URL, a few at a time; a bar on a terminal's stderr when asked for."""

    async def check_all(advance: Callable[[], None]) -> list[FeedCheck]:
        limit = asyncio.Semaphore(CHECK_CONCURRENCY)
        async with Fetcher(settings.defaults) as fetcher:

            async def one(url: str) -> FeedCheck:
                async with limit:
                    result = await check_feed(fetcher, url, datetime.now(UTC))
                advance()
                return result

            return list(await asyncio.gather(*(one(url) for url in urls)))

    with _progress(len(urls) if progress else 0, "checking feeds") as bar:
        return asyncio.run(check_all(lambda: bar.update(1)))


def _append_feeds(config_path: Path, new: Sequence[NewFeed]) -> Appended:
    """Append to the config file; on a validation error the file is left as it was."""
    try:
        return append_feeds(config_path, new)
    except ConfigErrors as e:
        for error in e.errors:
            click.echo(f"error: {error}", err=True)
        _fail(f"{config_path} left unchanged")
    except OSError as e:
        _fail(f"{config_path}: cannot write: {e.strerror or e}")


@cli.command()
@config_option
@click.option(
    "--max-age", default="", help="How old the last poll may be (default: 3 x the longest interval)."
)
def health(config_path: Path, max_age: str) -> None:
    """Exit 0 if the last poll is recent, some feed answers and the database is writable, else 1.

    Prints exactly one line, `healthy: ...` or `unhealthy: <reason>`: Docker's HEALTHCHECK runs
    it and shows that line in `docker inspect`.
    """

    def verdict(ok: bool, text: str) -> NoReturn:
        click.echo(("healthy: " if ok else "unhealthy: ") + " ".join(text.split()))
        sys.exit(0 if ok else EXIT_UNHEALTHY)

    def feeds_failing(n: int) -> str:
        return f"{n} feed{'' if n == 1 else 's'} failing"

    try:
        settings = load_settings(config_path)
    except ConfigErrors as e:
        # Exit 1, not the usual 2: Docker reserves a health check's exit code 2.
        more = f" (and {len(e.errors) - 1} more; run `monitor check`)" if len(e.errors) > 1 else ""
        verdict(False, f"{e.errors[0]}{more}")
    longest = max((settings.interval(f) for f in settings.feeds), default=settings.defaults.poll_interval)
    allowed = parse_duration(max_age) if max_age else 3 * longest + 60
    if allowed is None:
        raise click.BadParameter(f"{max_age!r} is not a duration", param_hint="--max-age")
    now = datetime.now(UTC)
    path = settings.defaults.state_path
    try:
        store = Store.open(path)
    except StoreError as e:
        verdict(False, str(e))
    try:
        try:
            store.check_writable(now)
        except StoreError as e:
            verdict(False, f"database not writable: {e}")
        try:
            meta = {key: store.get_meta(key) for key in ("last_cycle_at", "last_success_at", "storage_error")}
            configured = {f.name for f in settings.feeds}
            rows = [row for row in store.feeds(now) if row.name in configured]
            failing_channels = [h for h in store.failing_channels() if h.channel in settings.channels]
            pending = store.outbox_counts().get("pending", 0)
        except sqlite3.DatabaseError as e:  # a damaged page that opening the file did not touch
            verdict(False, str(storage_error(path, e, "reading it")))
    finally:
        store.close()

    # The daemon records a write that failed (a full disk) until one succeeds again.
    if meta["storage_error"]:
        verdict(False, meta["storage_error"])
    if meta["last_cycle_at"] is None:
        verdict(False, "no poll has completed yet")
    age = int((now - datetime.fromisoformat(meta["last_cycle_at"])).total_seconds())
    if age > allowed:
        verdict(False, f"last poll {age}s ago (allowed {int(allowed)}s)")
    failing = sorted(
        (r for r in rows if r.consecutive_failures > 0 or r.disabled_at is not None),
        key=lambda r: (-r.consecutive_failures, r.name),
    )
    if settings.feeds:
        # Cycles still complete when every fetch fails (the network is down): only a success
        # says the feeds are reachable. Stores written before the meta key existed fall back
        # on the feeds' own last successes.
        successes = [r.last_success_at for r in rows if r.last_success_at is not None]
        success = meta["last_success_at"] or (max(successes).isoformat() if successes else None)
        since = None if success is None else int((now - datetime.fromisoformat(success)).total_seconds())
        if since is None or since > allowed:
            worst_feed = failing[0] if failing else None
            example = (
                f"; e.g. {worst_feed.name}: {worst_feed.last_error or worst_feed.disabled_reason}"
                if worst_feed
                else ""
            )
            detail = f"({feeds_failing(len(failing))}{example})"
            when = "yet" if since is None else f"in {since}s"
            verdict(False, f"no feed polled successfully {when} {detail}")
    if failing_channels:
        worst = failing_channels[0]
        more = f" (and {len(failing_channels) - 1} more channels)" if len(failing_channels) > 1 else ""
        verdict(
            False,
            f"channel {worst.channel} failing since {worst.failing_since:%Y-%m-%d %H:%M} UTC: "
            f"{worst.last_error}{more}",
        )
    counts = f"{len(settings.feeds)} feed{'' if len(settings.feeds) == 1 else 's'} ({len(failing)} failing)"
    verdict(True, f"last poll {age}s ago, {counts}, {pending} alerts pending")


# Tuning: match, explain, backtest, eval


def watchlists_option(f: F) -> F:
    return click.option(
        "--watchlists",
        "watchlists_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Watchlist directory (default: the one config.toml names, else ./watchlists).",
    )(f)


def _tuning_watchlists(config_path: Path, watchlists_dir: Path | None) -> list[Watchlist]:
    """The watchlists on disk now; broken ones are reported on stderr and left out."""
    channels: Iterable[str] | None = None
    if watchlists_dir is None:
        watchlists_dir = Path("watchlists")
        if config_path.exists():
            try:
                settings: Settings | None = load_settings(config_path)
            except ConfigErrors as e:
                settings = e.partial if isinstance(e.partial, Settings) else None
            if settings is not None:
                watchlists_dir, channels = settings.defaults.watchlists_dir, settings.channels.keys()
    watchlists, errors = load_watchlists(watchlists_dir, channels)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if not watchlists:
        click.echo(f"error: no usable watchlist in {watchlists_dir}", err=True)
        sys.exit(EXIT_CONFIG)
    return watchlists


def _read_samples(paths: Iterable[Path]) -> list[SampleItem]:
    try:
        return [sample for path in paths for sample in read_items(path)]
    except MonitorError as e:
        raise click.ClickException(str(e)) from e


def _match_json(sample: SampleItem, matches: list[Match]) -> dict[str, Any]:
    return {
        "id": sample.id,
        "link": sample.item.link,
        "title": sample.item.title,
        "watchlists": [m.watchlist for m in matches],
        "matches": [
            {
                "watchlist": m.watchlist,
                "score": m.score,
                "terms": list(m.terms),
                "hits": [{"term": h.term, "field": h.field, "start": h.start, "end": h.end} for h in m.hits],
            }
            for m in matches
        ],
    }


@cli.command("match")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@watchlists_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item (JSON Lines).")
@config_option
def match_command(
    files: tuple[Path, ...], watchlists_dir: Path | None, as_json: bool, config_path: Path
) -> None:
    """Match items from FILES (RSS/Atom XML or JSON Lines) against the watchlists on disk."""
    matcher = Matcher(_tuning_watchlists(config_path, watchlists_dir))
    for sample in _read_samples(files):
        matches = matcher.match(sample.item)
        if as_json:
            click.echo(json.dumps(_match_json(sample, matches), ensure_ascii=False))
            continue
        click.echo(f"{sample.id}  {sample.item.title}")
        for m in matches:
            click.echo(f"    -> {m.watchlist} (score {m.score:g}): {', '.join(m.terms)}")
        if not matches:
            click.echo("    -> no watchlist")


@cli.command()
@click.argument("watchlist")
@click.option("--text", default=None, help="Text to test, matched as an item's title.")
@click.option("--summary", default="", help="With --text: a summary to match as well.")
@click.option("--item", "item_id", type=int, default=None, help="A stored item's id (from `backtest`).")
@watchlists_option
@config_option
def explain(
    watchlist: str,
    text: str | None,
    summary: str,
    item_id: int | None,
    watchlists_dir: Path | None,
    config_path: Path,
) -> None:
    """Show why WATCHLIST matches (or not) a text or a stored item: spans and the query tree."""
    if (text is None) == (item_id is None):
        raise click.UsageError("give either --text TEXT or --item ID")
    chosen = _one_watchlist(_tuning_watchlists(config_path, watchlists_dir), watchlist)
    if item_id is not None:
        store = _open_store(_settings(config_path))
        try:
            stored = store.stored_item(item_id)
        finally:
            store.close()
        if stored is None:
            raise click.ClickException(f"no stored item with id {item_id}")
        fields = item_fields(stored)
    else:
        fields = {"title": text or "", "summary": summary, "source": "", "link": ""}
    matches = Matcher([chosen]).match_fields(fields)
    verdict = f"matched, score {matches[0].score:g}" if matches else "no match"
    click.echo(f"{chosen.slug}: {verdict}")
    highlight = sys.stdout.isatty()
    for name in FIELDS:
        if fields.get(name):
            hits = [h for m in matches for h in m.hits if h.field == name]
            click.echo(f"  {name + ':':<9}{render_highlighted(fields[name], hits, ansi=highlight)}")
    click.echo("")
    for line in render_trace(trace(chosen.query, fields)):
        click.echo(f"  {line}")


def _one_watchlist(watchlists: list[Watchlist], slug: str) -> Watchlist:
    for w in watchlists:
        if w.slug == slug:
            return w
    known = ", ".join(w.slug for w in watchlists)
    raise click.ClickException(f"no usable watchlist {slug!r} (loaded: {known})")


@cli.command("backtest")
@click.argument("watchlist")
@click.option("--since", default="30d", show_default=True, help="How far back: 90m, 12h, 30d...")
@click.option("--limit", default=20, show_default=True, help="How many added and dropped items to list.")
@watchlists_option
@config_option
def backtest_command(
    watchlist: str, since: str, limit: int, watchlists_dir: Path | None, config_path: Path
) -> None:
    """Run WATCHLIST as it is now on stored items: what it would add and drop, per day."""
    from monitor.config import parse_duration

    seconds = parse_duration(since)
    if seconds is None:
        raise click.BadParameter(f"{since!r} is not a duration", param_hint="--since")
    settings = _settings(config_path)
    chosen = _one_watchlist(_tuning_watchlists(config_path, watchlists_dir), watchlist)
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    store = _open_store(settings)
    try:
        stored = store.stored_items(start, chosen.slug)
    finally:
        store.close()
    with _progress(len(stored), f"matching {len(stored)} stored items") as bar:
        result = backtest(Matcher([chosen]), chosen.slug, stored, on_item=lambda: bar.update(1))
    click.echo(
        f"{chosen.slug}: {result.items} items since {start:%Y-%m-%d %H:%M}; "
        f"matched then {result.matched_then}, now {result.matched_now}: "
        f"{len(result.added)} added, {len(result.dropped)} dropped"
    )
    if result.days:
        click.echo(f"\n  {'day':<10} {'items':>6} {'then':>5} {'now':>5} {'added':>6} {'dropped':>8}")
        for day, c in result.days.items():
            click.echo(
                f"  {day.isoformat():<10} {c.items:>6} {c.then:>5} {c.now:>5} {c.added:>6} {c.dropped:>8}"
            )
    for heading, rows in (
        ("Added", [(r, m.terms) for r, m in result.added]),
        ("Dropped", [(r, ()) for r in result.dropped]),
    ):
        if rows:
            click.echo(f"\n{heading}:")
            for row, terms in rows[:limit]:
                extra = f"  [{', '.join(terms)}]" if terms else ""
                click.echo(f"  #{row.id} {row.first_seen:%Y-%m-%d} {row.item.feed}: {row.item.title}{extra}")
            if len(rows) > limit:
                click.echo(f"  ... and {len(rows) - limit} more (--limit)")


@cli.command("eval")
@click.option(
    "--corpus",
    "corpus_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"Labelled JSON Lines (`labels`: list of slugs); repeatable. Default: {DEFAULT_CORPUS}.",
)
@watchlists_option
@click.option("--json", "as_json", is_flag=True, help="Scores as one JSON object.")
@config_option
def eval_command(
    corpus_paths: tuple[Path, ...], watchlists_dir: Path | None, as_json: bool, config_path: Path
) -> None:
    """Precision, recall and F1 of each watchlist on a labelled corpus, with its mistakes."""
    paths = corpus_paths or (DEFAULT_CORPUS,)
    if not corpus_paths and not DEFAULT_CORPUS.exists():
        raise click.UsageError(f"{DEFAULT_CORPUS} not found; pass --corpus FILE")
    samples = _read_samples(paths)
    scored = score(Matcher(_tuning_watchlists(config_path, watchlists_dir)), samples)
    labelled = sum(s.labels is not None for s in samples)
    # A watchlist no item is labelled with cannot be judged by this corpus: every match would
    # count as a false positive. It is named, not scored.
    used = {label for s in samples for label in s.labels or ()}
    results = [r for r in scored if r.watchlist in used]
    unscored = [r.watchlist for r in scored if r.watchlist not in used]
    if as_json:
        click.echo(
            json.dumps(
                {"items": labelled, "watchlists": [scores_json(r) for r in results]}, ensure_ascii=False
            )
        )
        return
    click.echo(f"{labelled} labelled items from {', '.join(map(str, paths))}\n")
    click.echo(f"  {'watchlist':<24} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>10} {'recall':>7} {'F1':>6}")
    for r in results:
        click.echo(
            f"  {r.watchlist:<24} {r.true_positives:>4} {len(r.false_positives):>4} "
            f"{len(r.false_negatives):>4} {r.precision:>10.3f} {r.recall:>7.3f} {r.f1:>6.3f}"
        )
    if unscored:
        click.echo(f"\n  not scored (no item in the corpus carries its label): {', '.join(unscored)}")
    for r in results:
        for heading, misses in (
            ("false positives", r.false_positives),
            ("false negatives", r.false_negatives),
        ):
            if misses:
                click.echo(f"\n{r.watchlist}: {heading}")
                for miss in misses:
                    terms = f"  [{', '.join(miss.terms)}]" if miss.terms else ""
                    click.echo(f"  {miss.id}  {miss.title}{terms}")


@cli.command("eval-stories")
@click.option(
    "--corpus",
    "corpus_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"JSON Lines with `story` (and `family`) per item; repeatable. Default: {DEFAULT_STORY_CORPUS}.",
)
@click.option("--window", default="72h", show_default=True, help="Story window, as in config.")
@click.option("--json", "as_json", is_flag=True, help="Scores as one JSON object.")
def eval_stories_command(corpus_paths: tuple[Path, ...], window: str, as_json: bool) -> None:
    """Pairing precision and recall of story grouping on a labelled corpus, against the shingle baseline."""
    seconds = parse_duration(window)
    if seconds is None:
        raise click.BadParameter(f"{window!r} is not a duration", param_hint="--window")
    paths = corpus_paths or (DEFAULT_STORY_CORPUS,)
    results = {}
    for path in paths:
        samples = _read_samples([path])
        results[str(path)] = {
            method: story_scores(samples, timedelta(seconds=seconds), shingles=method == "shingles")
            for method in ("salient", "shingles")
        }
    if as_json:
        click.echo(
            json.dumps(
                {
                    name: {method: _pair_json(r) for method, r in by_method.items()}
                    for name, by_method in results.items()
                }
            )
        )
        return
    click.echo(f"  {'corpus':<40} {'method':<9} {'precision':>9} {'recall':>7} {'wrong merges':>18}")
    for name, by_method in results.items():
        for method, r in by_method.items():
            merges = f"{r.wrong_merges}/{r.hard_negatives}"
            click.echo(f"  {name:<40} {method:<9} {r.precision:>9.3f} {r.recall:>7.3f} {merges:>18}")


def _pair_json(r: PairScores) -> dict[str, float | int]:
    return {
        "precision": round(r.precision, 4),
        "recall": round(r.recall, 4),
        "true_pairs": r.true_pairs,
        "pairs_found": r.found,
        "correct_pairs": r.correct,
        "hard_negative_pairs": r.hard_negatives,
        "wrong_merges": r.wrong_merges,
    }


@cli.command("stories")
@click.option("--since", default="3d", show_default=True, help="How far back, as a duration.")
@click.option("--min-outlets", default=2, show_default=True, help="Only stories with this many outlets.")
@config_option
def stories_command(since: str, min_outlets: int, config_path: Path) -> None:
    """Recent stories and the outlets carrying each: how copies were grouped."""
    seconds = parse_duration(since)
    if seconds is None:
        raise click.BadParameter(f"{since!r} is not a duration", param_hint="--since")
    store = _open_store(_settings(config_path))
    try:
        stories = store.recent_stories(datetime.now(UTC) - timedelta(seconds=seconds), min_outlets)
    finally:
        store.close()
    if not stories:
        click.echo(f"no story carried by {min_outlets} or more outlets in the last {since}")
    for story_id, items in stories:
        outlets = list(dict.fromkeys(i.outlet or i.feed for i in items))
        click.echo(f"story {story_id}: {len(items)} items, {len(outlets)} outlets ({', '.join(outlets)})")
        for item in items:
            click.echo(f"  {item.published:%Y-%m-%d %H:%M}  {item.outlet or item.feed}: {item.title}")


# Delivery: the outbox, retries, digest previews


@cli.group(invoke_without_command=True)
@click.option("--failed", "failed_only", is_flag=True, help="Only alerts that failed for good.")
@click.option("--limit", default=50, show_default=True, help="How many to list, newest first.")
@config_option
@click.pass_context
def deliveries(ctx: click.Context, failed_only: bool, limit: int, config_path: Path) -> None:
    """List queued, sent and failed alerts, and channels that are failing."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(config_path)
    store = _open_store(settings)
    try:
        failing = store.failing_channels()
        rows = store.deliveries(failed_only=failed_only, limit=limit)
    finally:
        store.close()
    for h in failing:
        click.echo(f"channel {h.channel} FAILING since {h.failing_since:%Y-%m-%d %H:%M} UTC: {h.last_error}")
    if not rows:
        click.echo("no failed alerts" if failed_only else "the outbox is empty")
        return
    click.echo(f"{'id':<12} {'status':<8} {'channel':<12} {'tries':>5} {'when':<17} title / error")
    for r in rows:
        when = r.sent_at if r.status == "sent" else (r.next_attempt_at if r.status == "pending" else None)
        click.echo(
            f"{r.id[:12]:<12} {r.status:<8} {r.channel[:12]:<12} {r.attempts:>5} "
            f"{(when or r.created_at):%Y-%m-%d %H:%M} {r.title[:60]}"
        )
        if r.last_error:
            click.echo(f"{'':<12} {r.last_error}")
        if r.refused:
            click.echo(f"{'':<12} refused by: {', '.join(r.refused)}")


@deliveries.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every failed alert.")
@config_option
def deliveries_retry(ids: tuple[str, ...], retry_all: bool, config_path: Path) -> None:
    """Queue failed alerts again, due now: by id (or its first 6+ characters), or --all."""
    if bool(ids) == retry_all:
        raise click.UsageError("give alert ids or --all")
    settings = _settings(config_path)
    store = _open_store(settings)
    try:
        count = store.requeue(None if retry_all else list(ids), datetime.now(UTC))
    finally:
        store.close()
    click.echo(f"{count} alert{'s' if count != 1 else ''} queued again")
    if count == 0:
        sys.exit(EXIT_UNHEALTHY)


@cli.command("digest")
@click.option("--preview", is_flag=True, required=True, help="Show, do not send (the only mode).")
@click.option("--channel", default=None, help="Only this channel.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the email HTML here.",
)
@config_option
def digest_command(preview: bool, channel: str | None, html_path: Path | None, config_path: Path) -> None:
    """What would be sent now if every pending alert were due: each channel's immediate alerts and
    digests, as the console shows them. Nothing is sent or marked."""
    settings = _settings(config_path)
    if channel is not None and channel not in settings.channels:
        raise click.BadParameter(f"no channel {channel!r} in {config_path}", param_hint="--channel")
    store = _open_store(settings)
    try:
        names = [channel] if channel else list(settings.channels)
        alerts = store.due_alerts(None, names, limit=10_000)
    finally:
        store.close()
    if not alerts:
        click.echo("nothing pending")
        return
    html_parts = []
    for name in names:
        pending = [a for a in alerts if a.channel == name]
        if not pending:
            continue
        click.echo(f"# channel {name}")
        out = io.StringIO()
        # The console channel renders exactly what delivery would send, batch by batch.
        asyncio.run(send_to(ConsoleNotifier(name, out), pending))
        click.echo(out.getvalue().rstrip())
        html_parts.append(preview_html(pending))
    if html_path is not None:
        html_path.write_text("\n".join(html_parts), encoding="utf-8")
        click.echo(f"HTML written to {html_path}")


class _Progress(Protocol):
    def update(self, steps: int) -> None: ...


class _NoProgress:
    def update(self, steps: int) -> None:
        pass


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[_Progress]:
    """A progress bar on stderr for long work, when stderr is a terminal; silent otherwise (logs,
    pipes and CI get no bar characters)."""
    if total < PROGRESS_MIN or not sys.stderr.isatty():
        yield _NoProgress()
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


def _open_store(settings: Settings) -> Store:
    try:
        return Store.open(settings.defaults.state_path)
    except MonitorError as e:
        raise click.ClickException(str(e)) from e


def main() -> None:
    cli()
