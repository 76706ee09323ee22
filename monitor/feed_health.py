"""The feed health table of `monitor feeds`: stored feed state -> lines of text or JSON (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from monitor.config import FeedConfig
from monitor.store.sqlite import FeedRow
from monitor.text import collapse_space

ERROR_WIDTH = 60
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def span(seconds: float) -> str:
    """A duration, rounded down, in its largest unit: 45s, 12m, 3h, 12d. Under ten hours or days
    the next unit follows, since "1h" would hide the better part of an hour: 1h55m, 2d3h."""
    whole = int(max(seconds, 0.0))
    for i, (unit, size) in enumerate(_UNITS):
        count, rest = divmod(whole, size)
        if count:
            text = f"{count}{unit}"
            if unit in ("d", "h") and count < 10:
                small, small_size = _UNITS[i + 1]
                if rest // small_size:
                    text += f"{rest // small_size}{small}"
            return text
    return "0s"


def ago(delta: timedelta) -> str:
    """How long ago, for a time `delta` in the past: "12m ago" (a future time counts as now)."""
    seconds = delta.total_seconds()
    return "just now" if seconds < 1 else f"{span(seconds)} ago"


def until(delta: timedelta) -> str:
    """How long until a time `delta` ahead: "in 4m", or "due" once it has come."""
    seconds = delta.total_seconds()
    # Rounded up, so a poll a few seconds away never reads "in 0s".
    return "due" if seconds <= 0 else f"in {span(math.ceil(seconds))}"


def never_polled(feed: FeedConfig) -> FeedRow:
    """The row of a configured feed the store has no state for yet."""
    return FeedRow(
        name=feed.name,
        url=feed.url,
        last_polled_at=None,
        last_success_at=None,
        last_status=None,
        last_error=None,
        consecutive_failures=0,
        items_total=0,
        config_url=feed.url,
    )


def is_current(feed: FeedConfig, row: FeedRow) -> bool:
    """Whether the stored state is of the address config.toml gives now. After an edit of the
    address the old state (a move, a 410, a backoff) is forgotten at the feed's next poll."""
    return row.config_url is None or row.config_url == feed.url


def feed_state(feed: FeedConfig, row: FeedRow | None) -> str:
    if row is None or row.last_polled_at is None:
        return "never polled"
    if row.disabled_at is not None and is_current(feed, row):
        return "disabled"
    if row.last_status == "failed":
        return f"failing x{row.consecutive_failures}"
    if row.last_status == "not_modified":
        return "unchanged"
    return row.last_status or "-"


def health_lines(feeds: Sequence[FeedConfig], rows: Mapping[str, FeedRow], now: datetime) -> list[str]:
    """One line per configured feed (in config order), and a note under moved or disabled ones.
    Feeds the store knows but config.toml no longer lists are left out."""
    width = min(max([4, *(len(feed.name) for feed in feeds)]), 40)
    header = (
        f"{'feed':<{width}} {'state':<12} {'last success':<12} {'next poll':<10} {'items/day':>9} "
        f"{'backoff':<7} last error"
    )
    lines = [header]
    for feed in feeds:
        row = rows.get(feed.name)
        state = feed_state(feed, row)
        if row is None or row.last_polled_at is None:
            lines.append(f"{feed.name:<{width}} {state}")
            continue
        current = is_current(feed, row)
        success = ago(now - row.last_success_at) if row.last_success_at else "never"
        disabled = row.disabled_at is not None and current
        next_poll = "-" if disabled or row.next_poll_at is None else until(row.next_poll_at - now)
        backoff = f"+{span(row.backoff)}" if row.backoff > 0 else "-"
        error = _truncate(collapse_space(row.last_error), ERROR_WIDTH) if row.last_error else ""
        line = (
            f"{feed.name:<{width}} {state:<12} {success:<12} {next_poll:<10} {row.items_per_day:>9.1f} "
            f"{backoff:<7} {error}"
        )
        lines.append(line.rstrip())
        if not current:
            lines.append(f"  config.toml names a new address; the state above is of {row.config_url}")
        elif row.moved:
            lines.append(f"  moved permanently to {row.url} (update config.toml)")
        if disabled:
            lines.append(f"  disabled: {row.disabled_reason or 'no reason recorded'}")
    return lines


def health_json(feeds: Sequence[FeedConfig], rows: Mapping[str, FeedRow]) -> list[dict[str, Any]]:
    """The stored rows of the configured feeds, with their state: full error text, ISO times."""
    out = []
    for feed in feeds:
        row = rows.get(feed.name) or never_polled(feed)
        data: dict[str, Any] = {"state": feed_state(feed, rows.get(feed.name))}
        for field in fields(row):
            value = getattr(row, field.name)
            data[field.name] = value.isoformat() if isinstance(value, datetime) else value
        data["items_per_day"] = round(row.items_per_day, 2)
        data["moved"] = row.moved and is_current(feed, row)
        out.append(data)
    return out


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."
