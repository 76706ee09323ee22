"""When an alert is due: delivery schedules ("immediate", digests), quiet hours, retry backoff.

Pure functions of (settings, now): the store only records the times they give.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.types import Severity

IMMEDIATE = "immediate"
UTC_ZONE = ZoneInfo("UTC")
_EVERY = re.compile(r"^every\s+(\d+)\s*(m|min|minutes?|h|hours?)$", re.IGNORECASE)
_DAILY = re.compile(r"^daily\s+at\s+(\d{1,2}):(\d{2})$", re.IGNORECASE)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")

# Delay before each retry of an alert whose delivery failed temporarily; then every 12 hours
# until the alert is older than the configured maximum age.
RETRY_DELAYS = (30, 120, 600, 3600, 6 * 3600, 12 * 3600)
RETRY_JITTER = 0.2  # each delay is stretched or shrunk by up to this share, so retries spread out


@dataclass(frozen=True, slots=True)
class Schedule:
    """How a (watchlist, channel) pair is delivered: at once, or as a digest at fixed times."""

    text: str  # as configured, for messages and digest ids
    trigger: CronTrigger | IntervalTrigger | None  # None: immediate

    @property
    def immediate(self) -> bool:
        return self.trigger is None

    def next_slot(self, now: datetime) -> datetime:
        """The first digest time at or after `now` (now itself for immediate delivery)."""
        if self.trigger is None:
            return now
        if isinstance(self.trigger, IntervalTrigger):
            return _wall_clock_slot(self.trigger, now)
        when: datetime | None = self.trigger.get_next_fire_time(None, now)
        assert when is not None  # neither trigger kind has an end date
        return when.astimezone(UTC)


def parse_schedule(text: str, zone: ZoneInfo) -> Schedule:
    """`immediate`, `every 4h`, `every 30m`, `daily at 08:00`, or a five-field cron expression,
    in the configured time zone. Raises ValueError with a message saying what is accepted.
    """
    spec = " ".join(text.split())
    if spec.lower() == IMMEDIATE:
        return Schedule(IMMEDIATE, None)
    if m := _EVERY.match(spec):
        amount, unit = int(m.group(1)), m.group(2).lower()
        seconds = amount * (3600 if unit.startswith("h") else 60)
        if not 5 * 60 <= seconds <= 7 * 86400:
            raise ValueError(f"{text!r}: a digest interval must be between 5 minutes and 7 days")
        # Anchored at a local midnight, so "every 4h" means 00:00, 04:00, 08:00 ... every day.
        anchor = datetime(2000, 1, 3, tzinfo=zone)
        return Schedule(spec, IntervalTrigger(seconds=seconds, start_date=anchor, timezone=zone))
    if m := _DAILY.match(spec):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r}: not a time of day (use HH:MM, 00:00 to 23:59)")
        return Schedule(spec, CronTrigger(hour=hour, minute=minute, timezone=zone))
    if len(fields := spec.split()) == 5:
        try:
            fields[4] = _cron_weekdays(fields[4])
            return Schedule(spec, CronTrigger.from_crontab(" ".join(fields), timezone=zone))
        except ValueError as e:
            raise ValueError(f"{text!r}: not a valid cron expression ({e})") from e
    raise ValueError(
        f"{text!r}: use 'immediate', 'every 4h', 'every 30m', 'daily at 08:00' "
        "or a cron expression such as '0 8 * * 1-5'"
    )


def _wall_clock_slot(trigger: IntervalTrigger, now: datetime) -> datetime:
    """The first slot at or after `now` of an interval counted on the local wall clock, so that
    "every 4h" stays at 00:00, 04:00 ... local time on both sides of a daylight-saving change.
    A time repeated when the clocks go back is a slot both times; a skipped one, at the moment
    the clocks jump."""
    zone: ZoneInfo = trigger.timezone
    step: timedelta = trigger.interval
    anchor: datetime = trigger.start_date.replace(tzinfo=None)

    def wall(t: datetime) -> datetime:
        return t.astimezone(zone).replace(tzinfo=None)

    # A clock change moves the wall clock by at most _SHIFT: look that far either side of now.
    n = -((anchor - (wall(now) - _SHIFT)) // step)  # ceiling division
    best: datetime | None = None
    while best is None or anchor + n * step < wall(best) + _SHIFT:
        clock = anchor + n * step
        first, second = (clock.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
        for when in (first, second) if second > first else (first,):
            if when >= now and (best is None or when < best):
                best = when
        n += 1
    return best


_SHIFT = timedelta(hours=2)


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """Standard cron's day-of-week field (0 or 7 is Sunday, 1 Monday) as day names, which the
    cron trigger reads as meant; its own day numbers start at Monday."""
    if field in ("*", "?"):
        return "*"

    def day(text: str) -> int:
        if text.isdigit() and int(text) <= 7:
            return int(text)
        if text in _WEEKDAYS:
            return _WEEKDAYS.index(text)
        raise ValueError(f"{text!r} is not a day of the week (0-7 or sun-sat)")

    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"{part!r}: the step must be a whole number from 1")
        if span == "*":
            first, last = 0, 6
        else:
            start, _, end = span.partition("-")
            first_day = day(start)
            last_day = day(end) if end else (7 if slash else first_day)
            if last_day == 0 and first_day > 0:
                last_day = 7  # "fri-sun"
            if last_day < first_day:
                raise ValueError(f"{span!r}: a range of days must run forwards")
            first, last = first_day, last_day
        days.update(d % 7 for d in range(first, last + 1, int(step_text or 1)))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


@functools.lru_cache(maxsize=256)
def _schedule(text: str, zone: str) -> Schedule:
    return parse_schedule(text, ZoneInfo(zone))


def first_due(
    delivery: str, severity: Severity, now: datetime, *, zone: str = "UTC", quiet: QuietHours | None = None
) -> tuple[datetime, bool]:
    """When an alert queued `now` is first due, and whether it goes in a digest: its schedule's
    next slot, moved past the channel's quiet hours unless the alert is critical. Alerts of one
    digest slot land on one time, so they stay together."""
    schedule = _schedule(delivery, zone)
    when = schedule.next_slot(now)
    if quiet is not None and severity < Severity.CRITICAL:
        when = quiet.release(when)
    return when, not schedule.immediate


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time (may cross midnight) in which non-critical alerts wait."""

    start: time
    end: time
    zone: ZoneInfo

    def release(self, when: datetime) -> datetime:
        """`when` itself outside quiet hours; inside them, the moment they end."""
        local = when.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            quiet = self.start <= clock < self.end
        else:
            quiet = clock >= self.start or clock < self.end
        if not quiet:
            return when
        end_day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        # Built from the wall clock, so the end is right across a daylight-saving change.
        return datetime.combine(end_day, self.end, tzinfo=self.zone).astimezone(UTC)


def parse_quiet_hours(text: str, zone: ZoneInfo) -> QuietHours:
    """`22:00-07:00` (or with a space or en dash around the dash). Raises ValueError."""
    parts = [p.strip() for p in re.split(r"\s*[-–]\s*", text.strip())]
    clocks = [_CLOCK.match(p) for p in parts]
    if len(parts) != 2 or not all(clocks):
        raise ValueError(f"{text!r}: write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'")
    times = []
    for m in clocks:
        assert m is not None
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r}: {m.group(0)} is not a time of day")
        times.append(time(hour, minute))
    if times[0] == times[1]:
        raise ValueError(f"{text!r}: quiet hours must not start and end at the same time")
    return QuietHours(times[0], times[1], zone)


def retry_at(
    attempts: int,
    now: datetime,
    *,
    requested: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to try again after the `attempts`-th failed attempt: the backoff schedule with jitter,
    but never sooner than the receiver asked (Retry-After)."""
    delay = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1] * (
        1 + (rng or random).uniform(-RETRY_JITTER, RETRY_JITTER)
    )
    return now + timedelta(seconds=max(delay, requested or 0.0))
