"""Delivery schedules, quiet hours and retry backoff: when an alert is due."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.schedule import (
    RETRY_DELAYS,
    RETRY_JITTER,
    QuietHours,
    first_due,
    parse_quiet_hours,
    parse_schedule,
    retry_at,
)
from monitor.types import Severity

LONDON = ZoneInfo("Europe/London")
KARACHI = ZoneInfo("Asia/Karachi")
NEW_YORK = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")
ZONES = [UTC_ZONE, LONDON, KARACHI, NEW_YORK]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in `zone`, as the UTC instant it is."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def slots(text: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    """The first `count` slots of a schedule at or after `start`."""
    schedule = parse_schedule(text, zone)
    found = [schedule.next_slot(start)]
    while len(found) < count:
        found.append(schedule.next_slot(found[-1] + timedelta(microseconds=1)))
    return found


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


# parse_schedule: immediate


@pytest.mark.parametrize("text", ["immediate", "IMMEDIATE", "Immediate", "  immediate\n", "\timmediate "])
def test_immediate_is_case_and_space_insensitive(text: str) -> None:
    """Any case and surrounding space still mean immediate, due at once."""
    schedule = parse_schedule(text, LONDON)
    now = utc(2024, 7, 15, 23, 17, 5)
    assert schedule.immediate
    assert schedule.text == "immediate"
    assert schedule.next_slot(now) == now


# parse_schedule: every N hours / minutes


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (UTC_ZONE, (2024, 7, 15)),
        (LONDON, (2024, 1, 15)),  # GMT
        (LONDON, (2024, 7, 15)),  # BST, an hour off UTC
        (KARACHI, (2024, 7, 15)),  # five hours off UTC, no daylight saving
        (NEW_YORK, (2024, 7, 15)),
    ],
)
def test_every_4h_is_anchored_at_local_midnight(zone: ZoneInfo, day: tuple[int, int, int]) -> None:
    """An "every 4h" schedule fires at 00:00, 04:00 ... 20:00 on the zone's wall clock."""
    found = slots("every 4h", zone, local(zone, *day, 0, 30), 6)
    assert [s.astimezone(zone).strftime("%H:%M") for s in found] == [
        "04:00",
        "08:00",
        "12:00",
        "16:00",
        "20:00",
        "00:00",
    ]
    assert found[0] == local(zone, *day, 4)
    assert all(s.tzinfo is UTC for s in found)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 31 March 2024: 01:00 GMT becomes 02:00 BST; 4h slots stay on the local clock.
        ((2024, 3, 31), [utc(2024, 3, 31, 0), utc(2024, 3, 31, 3), utc(2024, 3, 31, 7)]),
        # 27 October 2024: 02:00 BST becomes 01:00 GMT.
        ((2024, 10, 27), [utc(2024, 10, 26, 23), utc(2024, 10, 27, 4), utc(2024, 10, 27, 8)]),
    ],
)
def test_every_4h_keeps_to_the_local_clock_across_a_daylight_saving_change(
    day: tuple[int, int, int], expected: list[datetime]
) -> None:
    """On a clock-change day the slots stay at local 00:00, 04:00, 08:00 (3 or 5 real hours apart)."""
    found = slots("every 4h", LONDON, local(LONDON, *day, 0), 3)
    assert found == expected
    assert [s.astimezone(LONDON).hour for s in found] == [0, 4, 8]


def test_every_30m_runs_through_a_repeated_hour_every_half_hour() -> None:
    """When the clocks go back, the repeated 01:00-02:00 still gets a slot each real half hour."""
    found = slots("every 30m", LONDON, utc(2024, 10, 26, 23, 40), 6)
    assert found == [utc(2024, 10, 27, 0) + timedelta(minutes=30 * i) for i in range(6)]


def test_every_30m_skips_the_missing_hour_when_the_clocks_go_forward() -> None:
    """When 01:00-02:00 does not exist, the slots after 00:30 GMT are 02:00 and 02:30 BST."""
    found = slots("every 30m", LONDON, utc(2024, 3, 31, 0, 10), 3)
    assert [s.astimezone(LONDON).strftime("%H:%M") for s in found] == ["00:30", "02:00", "02:30"]
    assert found == [utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1), utc(2024, 3, 31, 1, 30)]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 7, 15, 10, 10), utc(2024, 7, 15, 10, 30)),
        (utc(2024, 7, 15, 10, 31), utc(2024, 7, 15, 11, 0)),
        (utc(2024, 7, 15, 23, 59, 59), utc(2024, 7, 16, 0, 0)),
    ],
)
def test_every_30m_fires_on_the_hour_and_half_hour(now: datetime, expected: datetime) -> None:
    """An "every 30m" schedule fires at :00 and :30."""
    assert parse_schedule("every 30m", UTC_ZONE).next_slot(now) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("every 4h", 4 * 3600),
        ("every 4 hours", 4 * 3600),
        ("every 1 hour", 3600),
        ("EVERY  2H", 2 * 3600),
        ("every 30m", 1800),
        ("every 30min", 1800),
        ("every 30 minutes", 1800),
        ("every 15 minutes", 900),
        ("every 5m", 300),
        ("every 168h", 7 * 86400),
        ("every 10080m", 7 * 86400),
    ],
)
def test_interval_spellings_and_lengths(text: str, seconds: int) -> None:
    """Units may be m/min/minutes or h/hour/hours; consecutive slots are the interval apart."""
    first, second = slots(text, UTC_ZONE, utc(2024, 7, 15, 9, 1), 2)
    assert (second - first).total_seconds() == seconds


@pytest.mark.parametrize("text", ["every 4m", "every 0m", "every 0h", "every 169h", "every 10081m"])
def test_intervals_under_5_minutes_or_over_7_days_are_rejected(text: str) -> None:
    """A digest interval must be between 5 minutes and 7 days."""
    with pytest.raises(ValueError, match="between 5 minutes and 7 days") as info:
        parse_schedule(text, UTC_ZONE)
    assert str(info.value).startswith(repr(text))


# parse_schedule: daily at HH:MM


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        (LONDON, utc(2024, 1, 15, 7, 59), utc(2024, 1, 15, 8, 0)),  # GMT
        (LONDON, utc(2024, 7, 15, 6, 0), utc(2024, 7, 15, 7, 0)),  # BST: 08:00 is 07:00 UTC
        (LONDON, utc(2024, 7, 15, 7, 30), utc(2024, 7, 16, 7, 0)),  # past 08:00 BST: tomorrow
        (KARACHI, utc(2024, 7, 15, 2, 0), utc(2024, 7, 15, 3, 0)),  # 07:00 PKT: today at 08:00
        (KARACHI, utc(2024, 7, 15, 3, 1), utc(2024, 7, 16, 3, 0)),  # 08:01 PKT: tomorrow
        (KARACHI, utc(2024, 7, 15, 20, 0), utc(2024, 7, 16, 3, 0)),  # already the 16th in Karachi
    ],
)
def test_daily_at_0800_in_the_zone(zone: ZoneInfo, now: datetime, expected: datetime) -> None:
    """A "daily at 08:00" slot is 08:00 on the zone's clock, the next day once it has passed."""
    slot = parse_schedule("daily at 08:00", zone).next_slot(now)
    assert slot == expected
    assert slot.tzinfo is UTC
    assert slot.astimezone(zone).time() == time(8, 0)


@pytest.mark.parametrize("text", ["daily at 8:05", "Daily At 08:05", "daily  at  08:05"])
def test_daily_spellings(text: str) -> None:
    """One-digit hours, any case and extra spaces are accepted."""
    assert parse_schedule(text, UTC_ZONE).next_slot(utc(2024, 7, 15, 9)) == utc(2024, 7, 16, 8, 5)


# parse_schedule: cron


@pytest.mark.parametrize(
    "now",
    [
        utc(2024, 7, 19, 18, 0),  # Friday evening
        utc(2024, 7, 19, 7, 0, 1),  # Friday just after 08:00 BST
        utc(2024, 7, 20, 8, 0),  # Saturday 09:00 BST
        utc(2024, 7, 21, 23, 0),  # Monday 00:00 BST
        utc(2024, 7, 22, 7, 0),  # Monday 08:00 BST exactly
    ],
)
def test_weekday_cron_after_friday_is_monday_0800(now: datetime) -> None:
    """Cron "0 8 * * 1-5" is 08:00 Monday to Friday: after Friday's slot, the next is Monday 08:00."""
    assert parse_schedule("0 8 * * 1-5", LONDON).next_slot(now) == utc(2024, 7, 22, 7, 0)


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("sun", ["Sun"]),
        ("6,0", ["Sun", "Sat"]),
        ("5-7", ["Sun", "Fri", "Sat"]),
        ("fri-sun", ["Sun", "Fri", "Sat"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ("1-5/2", ["Mon", "Wed", "Fri"]),
        ("*", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_cron_weekdays_count_from_sunday(weekdays: str, expected: list[str]) -> None:
    """The day-of-week field is standard cron's: 0 and 7 are Sunday, 1 is Monday."""
    sunday = utc(2024, 7, 14)
    found = slots(f"0 8 * * {weekdays}", UTC_ZONE, sunday, 8)
    week = [s for s in found if s < sunday + timedelta(days=7)]
    assert [s.strftime("%a") for s in week] == expected
    assert all(s.time() == time(8, 0) for s in week)


def test_cron_keeps_its_text() -> None:
    """A cron schedule's text is the expression as written (spaces collapsed), for digest ids."""
    assert parse_schedule(" 0  8 * * 1-5 ", LONDON).text == "0 8 * * 1-5"


# parse_schedule: errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "use 'immediate', 'every 4h', 'every 30m', 'daily at 08:00' or a cron expression"),
        ("soon", "use 'immediate', 'every 4h'"),
        ("digest", "use 'immediate', 'every 4h'"),
        ("every 4 days", "use 'immediate', 'every 4h'"),
        ("every -5m", "use 'immediate', 'every 4h'"),
        ("daily at 8", "use 'immediate', 'every 4h'"),
        ("0 8 * * 1 2", "use 'immediate', 'every 4h'"),
        ("daily at 24:00", "not a time of day (use HH:MM, 00:00 to 23:59)"),
        ("daily at 08:60", "not a time of day"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 8 * * 8", "not a valid cron expression"),
        ("0 8 * * 5-1", "not a valid cron expression"),
        ("0 8 * * */0", "not a valid cron expression"),
        ("0 8 * * funday", "not a valid cron expression"),
        ("0 8 32 * *", "not a valid cron expression"),
    ],
)
def test_invalid_schedules_say_what_is_accepted(text: str, message: str) -> None:
    """An invalid schedule is a ValueError quoting it and saying what would do."""
    with pytest.raises(ValueError, match=r"^.+$") as info:
        parse_schedule(text, UTC_ZONE)
    assert str(info.value).startswith(f"{text!r}: ")
    assert message in str(info.value)


# next_slot at a slot


@pytest.mark.parametrize(
    ("text", "zone", "slot"),
    [
        ("every 4h", LONDON, local(LONDON, 2024, 7, 15, 4)),
        ("every 30m", KARACHI, local(KARACHI, 2024, 7, 15, 10, 30)),
        ("daily at 08:00", KARACHI, local(KARACHI, 2024, 7, 15, 8)),
        ("0 8 * * 1-5", LONDON, local(LONDON, 2024, 7, 19, 8)),
    ],
)
def test_now_exactly_at_a_slot_is_that_slot(text: str, zone: ZoneInfo, slot: datetime) -> None:
    """At a slot, next_slot is now itself; a microsecond later it is the following slot."""
    schedule = parse_schedule(text, zone)
    assert schedule.next_slot(slot) == slot
    assert schedule.next_slot(slot + timedelta(microseconds=1)) > slot


_SCHEDULES = {
    "every 4h": timedelta(hours=4),
    "every 30m": timedelta(minutes=30),
    "every 90m": timedelta(minutes=90),
    "every 168h": timedelta(days=7),
    "daily at 08:00": timedelta(days=1),
    "0 8 * * 1-5": timedelta(days=3),
    "*/15 * * * *": timedelta(minutes=15),
}


@given(
    text=st.sampled_from(sorted(_SCHEDULES)),
    zone=st.sampled_from(ZONES),
    first=instants,
    second=instants,
)
def test_next_slot_invariants(text: str, zone: ZoneInfo, first: datetime, second: datetime) -> None:
    """A slot is never before now nor further than one period (and a clock change) away, a slot's
    next slot is itself, and a later now never gives an earlier slot."""
    schedule = parse_schedule(text, zone)
    slot = schedule.next_slot(first)
    assert slot.tzinfo is UTC
    assert first <= slot <= first + _SCHEDULES[text] + timedelta(hours=1)
    assert schedule.next_slot(slot) == slot
    early, late = sorted((first, second))
    assert schedule.next_slot(early) <= schedule.next_slot(late)


@given(zone=st.sampled_from(ZONES), now=instants)
def test_every_4h_slots_are_on_four_hour_marks_of_the_local_clock(zone: ZoneInfo, now: datetime) -> None:
    """Whatever the date and zone, an "every 4h" slot is at a local hour divisible by four."""
    slot = parse_schedule("every 4h", zone).next_slot(now).astimezone(zone)
    assert (slot.hour % 4, slot.minute, slot.second, slot.microsecond) == (0, 0, 0, 0)


# QuietHours


def quiet(text: str, zone: ZoneInfo = UTC_ZONE) -> QuietHours:
    return parse_quiet_hours(text, zone)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (utc(2024, 7, 15, 23, 0), utc(2024, 7, 16, 7, 0)),  # late evening: next morning
        (utc(2024, 7, 15, 3, 0), utc(2024, 7, 15, 7, 0)),  # small hours: this morning
        (utc(2024, 7, 15, 0, 0), utc(2024, 7, 15, 7, 0)),
        (utc(2024, 7, 15, 6, 59, 59), utc(2024, 7, 15, 7, 0)),
        (utc(2024, 7, 15, 22, 0), utc(2024, 7, 16, 7, 0)),  # the start is quiet
        (utc(2024, 7, 15, 7, 0), utc(2024, 7, 15, 7, 0)),  # the end is not
        (utc(2024, 7, 15, 12, 0), utc(2024, 7, 15, 12, 0)),
        (utc(2024, 7, 15, 21, 59, 59), utc(2024, 7, 15, 21, 59, 59)),
    ],
)
def test_quiet_hours_across_midnight(when: datetime, expected: datetime) -> None:
    """22:00-07:00 holds from 22:00 (inclusive) to 07:00 (exclusive), across midnight."""
    assert quiet("22:00-07:00").release(when) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (utc(2024, 7, 15, 11, 59), utc(2024, 7, 15, 11, 59)),
        (utc(2024, 7, 15, 12, 0), utc(2024, 7, 15, 14, 0)),
        (utc(2024, 7, 15, 13, 30), utc(2024, 7, 15, 14, 0)),
        (utc(2024, 7, 15, 14, 0), utc(2024, 7, 15, 14, 0)),
        (utc(2024, 7, 15, 23, 0), utc(2024, 7, 15, 23, 0)),
        (utc(2024, 7, 15, 1, 0), utc(2024, 7, 15, 1, 0)),
    ],
)
def test_quiet_hours_within_one_day(when: datetime, expected: datetime) -> None:
    """12:00-14:00 holds only from noon to two, the same day."""
    assert quiet("12:00-14:00").release(when) == expected


def test_quiet_hours_are_on_the_zone_clock() -> None:
    """22:00-07:00 in Karachi is 17:00-02:00 UTC."""
    hours = quiet("22:00-07:00", KARACHI)
    assert hours.release(utc(2024, 7, 15, 18, 0)) == utc(2024, 7, 16, 2, 0)
    assert hours.release(utc(2024, 7, 15, 16, 59)) == utc(2024, 7, 15, 16, 59)
    assert hours.release(utc(2024, 7, 15, 17, 0)) == utc(2024, 7, 16, 2, 0)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Saturday 30 March 23:00 GMT; the clocks go forward overnight: 07:00 BST is 06:00 UTC.
        (utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 6, 0)),
        (utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 6, 0)),  # before the change
        (utc(2024, 3, 31, 2, 0), utc(2024, 3, 31, 6, 0)),  # after it
        # Saturday 26 October 23:00 BST; the clocks go back overnight: 07:00 GMT is 07:00 UTC.
        (utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 7, 0)),
        (utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 7, 0)),  # 01:30 BST, the first time
        (utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 7, 0)),  # 01:30 GMT, the second time
    ],
)
def test_quiet_hours_end_on_the_wall_clock_on_a_daylight_saving_change(
    when: datetime, expected: datetime
) -> None:
    """On the night the clocks change, quiet hours still end at 07:00 local time."""
    released = quiet("22:00-07:00", LONDON).release(when)
    assert released == expected
    assert released.astimezone(LONDON).time() == time(7, 0)


_clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@given(start=_clock, end=_clock, zone=st.sampled_from(ZONES), when=instants)
def test_release_invariants(start: time, end: time, zone: ZoneInfo, when: datetime) -> None:
    """Release never moves a time earlier; it leaves times outside the span alone, and moves those
    inside to the end of the span, less than a day (and a clock change) later."""
    if start == end:
        return
    hours = QuietHours(start, end, zone)
    released = hours.release(when)
    clock = when.astimezone(zone).time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if inside:
        assert when < released <= when + timedelta(days=1, hours=1)
        assert released.tzinfo is UTC
        # The end on the wall clock; an end the clocks skip that day comes when they jump past it.
        after_gap = (datetime.combine(released.date(), end) + timedelta(hours=1)).time()
        assert released.astimezone(zone).time() in (end, after_gap)
    else:
        assert released == when


# parse_quiet_hours


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("22:00-07:00", time(22), time(7)),
        ("22:00 - 07:00", time(22), time(7)),
        ("22:00–07:00", time(22), time(7)),
        (" 7:30 – 9:05 ", time(7, 30), time(9, 5)),
        ("00:00-23:59", time(0), time(23, 59)),
    ],
)
def test_quiet_hours_spellings(text: str, start: time, end: time) -> None:
    """HH:MM-HH:MM, with spaces or an en dash around the dash, and one-digit hours."""
    assert parse_quiet_hours(text, LONDON) == QuietHours(start, end, LONDON)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00-07:00", "25:00 is not a time of day"),
        ("22:00-07:60", "07:60 is not a time of day"),
        ("22:00", "write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'"),
        ("", "write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'"),
        ("22-07", "write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'"),
        ("10pm-7am", "write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'"),
        ("22:00-07:00-08:00", "write quiet hours as HH:MM-HH:MM, e.g. '22:00-07:00'"),
        ("22:00-22:00", "quiet hours must not start and end at the same time"),
        ("7:00-07:00", "quiet hours must not start and end at the same time"),
    ],
)
def test_quiet_hours_errors(text: str, message: str) -> None:
    """Malformed or empty spans are ValueErrors quoting the text and saying how to write it."""
    with pytest.raises(ValueError, match=r"^.+$") as info:
        parse_quiet_hours(text, UTC_ZONE)
    assert str(info.value) == f"{text!r}: {message}"


# first_due


NIGHT = utc(2024, 7, 15, 23, 0)
MORNING = utc(2024, 7, 16, 7, 0)


def test_critical_alerts_go_through_quiet_hours() -> None:
    """A critical immediate alert is due at once, even in quiet hours."""
    assert first_due("immediate", Severity.CRITICAL, NIGHT, quiet=quiet("22:00-07:00")) == (NIGHT, False)


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.MEDIUM, Severity.HIGH])
def test_non_critical_alerts_wait_for_the_end_of_quiet_hours(severity: Severity) -> None:
    """Anything below critical queued in quiet hours is due when they end."""
    assert first_due("immediate", severity, NIGHT, quiet=quiet("22:00-07:00")) == (MORNING, False)


@pytest.mark.parametrize("severity", list(Severity))
def test_outside_quiet_hours_or_without_them_alerts_are_due_now(severity: Severity) -> None:
    """Quiet hours that are not on, or none at all, hold nothing."""
    noon = utc(2024, 7, 15, 12, 0)
    assert first_due("immediate", severity, noon, quiet=quiet("22:00-07:00")) == (noon, False)
    assert first_due("immediate", severity, NIGHT) == (NIGHT, False)


def test_a_digest_slot_inside_quiet_hours_moves_to_their_end() -> None:
    """A digest due at 23:00 with quiet hours 22:00-07:00 goes out at 07:00; a critical one at 23:00."""
    noon = utc(2024, 7, 15, 12, 0)
    hours = quiet("22:00-07:00")
    assert first_due("daily at 23:00", Severity.HIGH, noon, quiet=hours) == (MORNING, True)
    assert first_due("daily at 23:00", Severity.CRITICAL, noon, quiet=hours) == (NIGHT, True)
    assert first_due("daily at 23:00", Severity.HIGH, noon) == (NIGHT, True)


def test_a_digest_slot_is_in_the_given_zone() -> None:
    """The zone of the channel sets the clock of its digest schedule and its quiet hours."""
    now = utc(2024, 7, 15, 12, 0)
    assert first_due("daily at 08:00", Severity.LOW, now, zone="Asia/Karachi") == (
        utc(2024, 7, 16, 3, 0),
        True,
    )
    hours = quiet("07:00-09:00", KARACHI)
    assert first_due("daily at 08:00", Severity.LOW, now, zone="Asia/Karachi", quiet=hours) == (
        utc(2024, 7, 16, 4, 0),
        True,
    )


@pytest.mark.parametrize(
    ("delivery", "quiet_hours", "first", "second", "due"),
    [
        ("every 4h", None, utc(2024, 7, 15, 8, 1), utc(2024, 7, 15, 11, 59), utc(2024, 7, 15, 12, 0)),
        ("daily at 08:00", None, utc(2024, 7, 15, 8, 1), utc(2024, 7, 16, 7, 0), utc(2024, 7, 16, 8, 0)),
        # Two hourly slots inside quiet hours both move to their end, and so stay together.
        ("every 1h", "22:00-07:00", utc(2024, 7, 15, 22, 10), utc(2024, 7, 16, 2, 50), MORNING),
    ],
)
def test_alerts_of_one_digest_slot_are_due_together(
    delivery: str, quiet_hours: str | None, first: datetime, second: datetime, due: datetime
) -> None:
    """Alerts queued at different times for the same slot get the same due time."""
    hours = quiet(quiet_hours) if quiet_hours else None
    assert first_due(delivery, Severity.MEDIUM, first, quiet=hours) == (due, True)
    assert first_due(delivery, Severity.LOW, second, quiet=hours) == (due, True)


# retry_at


NOW = utc(2024, 7, 15, 12, 0)


def delay_after(attempts: int, seed: int, requested: float | None = None) -> float:
    return (retry_at(attempts, NOW, requested=requested, rng=random.Random(seed)) - NOW).total_seconds()


@pytest.mark.parametrize(
    ("attempts", "base"),
    [
        *((i + 1, delay) for i, delay in enumerate(RETRY_DELAYS)),
        (0, RETRY_DELAYS[0]),  # no attempt counted yet: as after the first
        (len(RETRY_DELAYS) + 1, RETRY_DELAYS[-1]),
        (100, RETRY_DELAYS[-1]),
    ],
)
def test_retry_delay_per_attempt_within_jitter(attempts: int, base: float) -> None:
    """The n-th failure waits the n-th delay (the last one from then on), give or take the jitter,
    and the jitter really spreads the retries."""
    delays = [delay_after(attempts, seed) for seed in range(200)]
    assert all(base * (1 - RETRY_JITTER) <= d <= base * (1 + RETRY_JITTER) for d in delays)
    assert min(delays) < base * (1 - RETRY_JITTER / 2)
    assert max(delays) > base * (1 + RETRY_JITTER / 2)


@given(attempts=st.integers(-5, 50), seed=st.integers(0, 2**32))
def test_retry_delays_grow_and_stay_in_bounds(attempts: int, seed: int) -> None:
    """Any attempt count gives a delay within the jitter of its step, and never a shorter step later."""
    step = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]
    assert step * (1 - RETRY_JITTER) <= delay_after(attempts, seed) <= step * (1 + RETRY_JITTER)
    assert delay_after(attempts + 1, seed) >= delay_after(attempts, seed) or step == RETRY_DELAYS[-1]


def test_a_longer_retry_after_wins() -> None:
    """When the receiver asks for more time than the backoff, it gets exactly that."""
    asked = RETRY_DELAYS[0] * (1 + RETRY_JITTER) * 10
    assert delay_after(1, 1, requested=asked) == asked


@pytest.mark.parametrize("requested", [None, 0.0, 1.0, RETRY_DELAYS[2] * (1 - RETRY_JITTER)])
def test_a_shorter_retry_after_does_not_shorten_the_backoff(requested: float | None) -> None:
    """A Retry-After shorter than the backoff leaves the backoff as it was."""
    assert delay_after(3, 42, requested=requested) == delay_after(3, 42)


def test_a_seeded_random_gives_repeatable_retries() -> None:
    """The same seed gives the same time; different seeds spread."""
    assert retry_at(4, NOW, rng=random.Random(7)) == retry_at(4, NOW, rng=random.Random(7))
    assert len({retry_at(4, NOW, rng=random.Random(seed)) for seed in range(10)}) > 1


def test_retry_without_a_random_source_is_still_in_bounds() -> None:
    """Without an rng the module's random source is used, within the same bounds."""
    when = retry_at(2, NOW)
    base = RETRY_DELAYS[1]
    assert NOW + timedelta(seconds=base * (1 - RETRY_JITTER)) <= when
    assert when <= NOW + timedelta(seconds=base * (1 + RETRY_JITTER))
