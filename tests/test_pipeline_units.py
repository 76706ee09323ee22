"""The pure parts of the pipeline: planning alerts from matches, and dropping repeated items."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.pipeline import plan_alerts, unique_by_key
from monitor.types import Item, Match, Severity
from monitor.watchlists import Watchlist
from monitor.watchlists.query import parse_query

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
CHANNELS = ["ops", "mail", "stdout"]


def make_item(key: str = "k1", feed: str = "wire", link: str | None = "https://wire.example/1") -> Item:
    return Item(
        feed=feed,
        key=key,
        title=f"Title {key}",
        summary="Summary",
        link=link,
        published=datetime(2024, 1, 18, 9, 0, tzinfo=UTC),
    )


def make_watchlist(slug: str, channels: tuple[str, ...] | None = None, **changes: object) -> Watchlist:
    w = Watchlist(
        slug=slug,
        name=f"Watchlist {slug}",
        description="",
        severity=Severity.HIGH,
        query=parse_query("x"),
        channels=channels,
    )
    return replace(w, **changes)  # type: ignore[arg-type]


def plan(item: Item, matches: list[Match], *watchlists: Watchlist, channels: list[str] = CHANNELS):
    return plan_alerts(item, matches, {w.slug: w for w in watchlists}, channels, NOW)


def test_unrouted_watchlist_goes_to_every_channel():
    """channels = None on a watchlist means every configured channel."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w"))
    assert [a.channel for a in alerts] == CHANNELS


def test_routed_watchlist_goes_only_to_its_channels():
    """A watchlist listing channels alerts only those."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("mail",)))
    assert [a.channel for a in alerts] == ["mail"]


def test_routes_to_unconfigured_channels_are_dropped():
    """A listed channel that is not configured gets nothing (and the others still do)."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("pager", "ops")))
    assert [a.channel for a in alerts] == ["ops"]


def test_routed_to_nothing_configured():
    """A watchlist routed only to absent channels produces no alerts."""
    assert plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("pager",))) == []


def test_no_channels_no_alerts():
    """Without channels nothing is planned."""
    assert plan(make_item(), [Match("w", ("x",))], make_watchlist("w"), channels=[]) == []


def test_no_matches_no_alerts():
    """An item that matched nothing owes nothing."""
    assert plan(make_item(), [], make_watchlist("w")) == []


def test_alert_fields_come_from_item_watchlist_and_match():
    """Each alert carries the item's text, the watchlist's name and severity, the match's terms."""
    item = make_item()
    w = make_watchlist("envoys", name="Envoys return", severity=Severity.CRITICAL)
    (alert,) = plan(item, [Match("envoys", ("ambassador*", "Tehran"))], w, channels=["ops"])
    assert alert.channel == "ops"
    assert alert.watchlist == "envoys"
    assert alert.watchlist_name == "Envoys return"
    assert alert.severity is Severity.CRITICAL
    assert (alert.feed, alert.item_key) == ("wire", "k1")
    assert (alert.title, alert.summary, alert.link) == (item.title, item.summary, item.link)
    assert alert.published == item.published
    assert alert.terms == ("ambassador*", "Tehran")
    assert alert.created_at == NOW


def test_several_matches_each_get_alerts():
    """One alert per (matched watchlist, routed channel)."""
    alerts = plan(
        make_item(),
        [Match("a", ("x",)), Match("b", ("y",))],
        make_watchlist("a"),
        make_watchlist("b", channels=("ops",)),
    )
    assert [(a.watchlist, a.channel) for a in alerts] == [
        ("a", "ops"),
        ("a", "mail"),
        ("a", "stdout"),
        ("b", "ops"),
    ]
    assert [a.terms for a in alerts] == [("x",)] * 3 + [("y",)]


def test_alert_ids_are_distinct_per_channel_and_watchlist():
    """Every planned alert has its own id."""
    alerts = plan(
        make_item(), [Match("a", ("x",)), Match("b", ("x",))], make_watchlist("a"), make_watchlist("b")
    )
    ids = [a.id for a in alerts]
    assert len(ids) == 6
    assert len(set(ids)) == 6


def test_alert_ids_are_stable():
    """Planning the same item again, later, gives the same ids: retries and restarts are recognisable."""
    first = plan(make_item(), [Match("a", ("x",))], make_watchlist("a"))
    again = plan_alerts(
        make_item(), [Match("a", ("other",))], {"a": make_watchlist("a")}, CHANNELS, NOW + timedelta(days=1)
    )
    assert [a.id for a in first] == [a.id for a in again]


def test_alert_ids_differ_between_items():
    """Different items (different keys and links) get different ids."""
    w = make_watchlist("a")
    one = plan(make_item("k1", link="https://wire.example/1"), [Match("a", ("x",))], w)
    two = plan(make_item("k2", link="https://wire.example/2"), [Match("a", ("x",))], w)
    assert not {a.id for a in one} & {a.id for a in two}
    three = plan(make_item("k3", link=None), [Match("a", ("x",))], w)
    four = plan(make_item("k4", link=None), [Match("a", ("x",))], w)
    assert not {a.id for a in three} & {a.id for a in four}


def test_unique_by_key_keeps_first_occurrence_in_order():
    """A key listed twice yields its first item; order is otherwise kept."""
    a1 = make_item("a")
    b = make_item("b")
    a2 = replace(make_item("a"), title="Edited")
    c = make_item("c")
    result = unique_by_key([a1, b, a2, c])
    assert result == [a1, b, c]
    assert result[0].title == "Title a"


def test_unique_by_key_of_nothing():
    """No items, no items."""
    assert unique_by_key([]) == []


def test_unique_by_key_is_by_key_only():
    """Items with different keys stay, even if their text is the same."""
    items = [make_item("a"), make_item("b")]
    assert unique_by_key(items) == items
