"""The pure parts of the pipeline: planning a story's alerts, telling news from known items, and
dropping repeated items."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ChannelConfig, ConsoleOptions
from monitor.errors import StoreError
from monitor.pipeline import (
    PRUNE_EVERY,
    REKEY_MIN_TEXT,
    batches,
    digest_id,
    plan_alerts,
    prepare,
    prune_if_due,
    triage,
    unique_by_key,
)
from monitor.schedule import parse_quiet_hours
from monitor.store.sqlite import Known, PruneReport
from monitor.stories import fingerprint
from monitor.types import Alert, Digest, Item, Match, Severity, StoryView
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.query import parse_query

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
CHANNELS = ["team", "mail", "stdout"]


def make_item(
    key: str = "k1",
    feed: str = "wire",
    link: str | None = "https://wire.example/1",
    outlet: str | None = None,
    **changes: object,
) -> Item:
    item = Item(
        feed=feed,
        key=key,
        title=f"Title {key}",
        summary="Summary",
        link=link,
        published=datetime(2024, 1, 18, 9, 0, tzinfo=UTC),
        fingerprint=f"fp-{key}",
        outlet=outlet,
    )
    return replace(item, **changes)  # type: ignore[arg-type]


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


def story_of(
    item: Item,
    matches: list[Match],
    outlets: tuple[str, ...] | None = None,
    alerted: frozenset[tuple[str, str]] = frozenset(),
    story_id: int = 1,
) -> StoryView:
    """A story in which `item` made each of `matches`."""
    return StoryView(
        story_id,
        (item.outlet or item.feed,) if outlets is None else outlets,
        {m.watchlist: (item, m.terms) for m in matches},
        alerted,
    )


def plan(item: Item, matches: list[Match], *watchlists: Watchlist, channels: list[str] = CHANNELS):
    return plan_alerts(story_of(item, matches), {w.slug: w for w in watchlists}, channels, NOW)


def test_unrouted_watchlist_goes_to_every_channel():
    """channels = None on a watchlist means every configured channel."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w"))
    assert [a.channel for a in alerts] == CHANNELS


def test_the_ops_channel_gets_only_watchlists_that_name_it():
    """`ops` is for operator notices: an unrouted watchlist skips it, a watchlist naming it reaches it."""
    channels = ["ops", *CHANNELS]
    unrouted = plan(make_item(), [Match("w", ("x",))], make_watchlist("w"), channels=channels)
    assert [a.channel for a in unrouted] == CHANNELS
    named = plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("ops",)), channels=channels)
    assert [a.channel for a in named] == ["ops"]


def test_routed_watchlist_goes_only_to_its_channels():
    """A watchlist listing channels alerts only those."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("mail",)))
    assert [a.channel for a in alerts] == ["mail"]


def test_routes_to_unconfigured_channels_are_dropped():
    """A listed channel that is not configured gets nothing (and the others still do)."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w", channels=("pager", "team")))
    assert [a.channel for a in alerts] == ["team"]


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
    (alert,) = plan(item, [Match("envoys", ("ambassador*", "Tehran"))], w, channels=["team"])
    assert alert.channel == "team"
    assert alert.watchlist == "envoys"
    assert alert.watchlist_name == "Envoys return"
    assert alert.severity is Severity.CRITICAL
    assert (alert.feed, alert.item_key) == ("wire", "k1")
    assert (alert.title, alert.summary, alert.link) == (item.title, item.summary, item.link)
    assert alert.published == item.published
    assert alert.terms == ("ambassador*", "Tehran")
    assert alert.created_at == NOW
    assert (alert.story_id, alert.outlet, alert.sources, alert.min_sources) == (1, "wire", ("wire",), 1)


def test_several_matches_each_get_alerts():
    """One alert per (matched watchlist, routed channel)."""
    alerts = plan(
        make_item(),
        [Match("a", ("x",)), Match("b", ("y",))],
        make_watchlist("a"),
        make_watchlist("b", channels=("team",)),
    )
    assert [(a.watchlist, a.channel) for a in alerts] == [
        ("a", "team"),
        ("a", "mail"),
        ("a", "stdout"),
        ("b", "team"),
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
        story_of(make_item(), [Match("a", ("other",))], outlets=("wire", "dawn"), story_id=9),
        {"a": make_watchlist("a")},
        CHANNELS,
        NOW + timedelta(days=1),
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


# Stories: corroboration, what is already queued, routing, sources


def test_min_sources_holds_until_enough_distinct_outlets():
    """A watchlist wanting N outlets owes nothing while the story has fewer; at N it alerts, and
    says it waited; other watchlists of the same story are not held."""
    item = make_item(outlet="Dawn")
    patient = make_watchlist("patient", min_sources=3)
    eager = make_watchlist("eager")
    matches = [Match("patient", ("x",)), Match("eager", ("y",))]
    watchlists = {"patient": patient, "eager": eager}
    for outlets in [("Dawn",), ("Dawn", "Reuters")]:
        alerts = plan_alerts(story_of(item, matches, outlets), watchlists, ["team"], NOW)
        assert [a.watchlist for a in alerts] == ["eager"], outlets
    (held, free) = plan_alerts(story_of(item, matches, ("Dawn", "Reuters", "BBC")), watchlists, ["team"], NOW)
    assert (held.watchlist, held.min_sources) == ("patient", 3)
    assert held.sources == ("Dawn", "Reuters", "BBC")
    assert held.also_reported_by == ("Reuters", "BBC")
    assert (free.watchlist, free.min_sources) == ("eager", 1)


def test_min_sources_counts_what_the_story_says_not_the_items():
    """More outlets than asked for release the alert too."""
    w = make_watchlist("w", min_sources=2)
    story = story_of(make_item(), [Match("w", ("x",))], outlets=("a", "b", "c", "d"))
    assert len(plan_alerts(story, {"w": w}, ["team"], NOW)) == 1


def test_pairs_already_queued_for_the_story_are_skipped():
    """Only (watchlist, channel) pairs the story has not alerted yet are planned."""
    story = story_of(
        make_item(),
        [Match("a", ("x",)), Match("b", ("y",))],
        alerted=frozenset({("a", "team"), ("a", "mail"), ("b", "stdout")}),
    )
    alerts = plan_alerts(story, {"a": make_watchlist("a"), "b": make_watchlist("b")}, CHANNELS, NOW)
    assert [(a.watchlist, a.channel) for a in alerts] == [("a", "stdout"), ("b", "team"), ("b", "mail")]
    everything = frozenset((w, c) for w in "ab" for c in CHANNELS)
    assert plan_alerts(replace(story, alerted=everything), {"a": make_watchlist("a")}, CHANNELS, NOW) == []


def test_a_watchlist_removed_since_it_matched_owes_nothing():
    """A story matched by a watchlist that is gone now plans nothing for it, and no error."""
    story = story_of(make_item(), [Match("gone", ("x",)), Match("kept", ("y",))])
    alerts = plan_alerts(story, {"kept": make_watchlist("kept")}, ["team"], NOW)
    assert [a.watchlist for a in alerts] == ["kept"]
    assert plan_alerts(story, {}, ["team"], NOW) == []


def test_routing_applies_to_story_alerts():
    """Each watchlist of a story goes to its own channels, and only to configured ones."""
    story = story_of(make_item(), [Match("all", ("x",)), Match("mail", ("y",)), Match("pager", ("z",))])
    watchlists = {
        "all": make_watchlist("all"),
        "mail": make_watchlist("mail", channels=("mail", "pager")),
        "pager": make_watchlist("pager", channels=("pager",)),
    }
    alerts = plan_alerts(story, watchlists, CHANNELS, NOW)
    assert [(a.watchlist, a.channel) for a in alerts] == [
        ("all", "team"),
        ("all", "mail"),
        ("all", "stdout"),
        ("mail", "mail"),
    ]


def test_alerts_carry_the_story_the_outlet_and_its_sources():
    """The alert shows the item that matched: its outlet (the feed's name when it has none), the
    story's id and every outlet the story has."""
    dawn = make_item("d", feed="dawn-rss", outlet="Dawn")
    bare = make_item("b", feed="wire")
    story = StoryView(
        42,
        ("Reuters", "Dawn", "wire"),
        {"one": (dawn, ("x",)), "two": (bare, ("y", "z"))},
        frozenset(),
    )
    one, two = plan_alerts(story, {"one": make_watchlist("one"), "two": make_watchlist("two")}, ["team"], NOW)
    assert (one.story_id, one.feed, one.item_key, one.outlet, one.terms) == (
        42,
        "dawn-rss",
        "d",
        "Dawn",
        ("x",),
    )
    assert one.sources == ("Reuters", "Dawn", "wire")
    assert one.also_reported_by == ("Reuters", "wire")
    assert (two.story_id, two.feed, two.item_key, two.outlet, two.terms) == (
        42,
        "wire",
        "b",
        "wire",
        ("y", "z"),
    )
    assert two.also_reported_by == ("Reuters", "Dawn")


def test_alert_ids_follow_the_item_that_matched_not_the_story():
    """The id is the matched item's story key: the same article planned in another story view
    (after a merge, or with more outlets) keeps its id."""
    item = make_item()
    w = {"a": make_watchlist("a")}
    (first,) = plan_alerts(story_of(item, [Match("a", ("x",))]), w, ["team"], NOW)
    (merged,) = plan_alerts(
        story_of(item, [Match("a", ("x",))], outlets=("wire", "dawn"), story_id=3), w, ["team"], NOW
    )
    assert first.id == merged.id


# Triage: which items are news


def known(
    fingerprints: dict[str, str] | None = None,
    tombstoned: set[str] = frozenset(),  # type: ignore[assignment]
    feed_fingerprints: set[str] = frozenset(),  # type: ignore[assignment]
    old_links: set[str] = frozenset(),  # type: ignore[assignment]
) -> Known:
    return Known(
        fingerprints or {}, frozenset(tombstoned), frozenset(feed_fingerprints), frozenset(old_links)
    )


def links_of(*items: Item) -> dict[str, str | None]:
    return {i.key: i.link for i in items}


def test_triage_sorts_new_edited_unchanged_and_tombstoned_items():
    new = make_item("new")
    edited = make_item("edited", fingerprint="fp-edited-v2")
    unchanged = make_item("same")
    returning = make_item("pruned")
    items = [new, edited, unchanged, returning]
    state = known(
        fingerprints={"edited": "fp-edited", "same": "fp-same"},
        tombstoned={"pruned"},
        feed_fingerprints={"fp-edited", "fp-same", "fp-pruned"},
    )
    result = triage(items, state, links_of(*items))
    assert result.new == [new]
    assert result.edited == [edited]
    assert result.seen_tombstones == ["pruned"]


def test_triage_of_an_unknown_feed_is_all_new_in_order():
    items = [make_item(k, link=f"https://wire.example/{k}") for k in "cab"]
    result = triage(items, known(), links_of(*items))
    assert (result.new, result.edited, result.seen_tombstones) == (items, [], [])


def test_a_tombstoned_item_with_new_text_is_still_not_news():
    """A pruned item the feed still lists is remembered by key, whatever its text now."""
    item = make_item("pruned", fingerprint="fp-rewritten")
    result = triage([item], known(tombstoned={"pruned"}), links_of(item))
    assert (result.new, result.edited, result.seen_tombstones) == ([], [], ["pruned"])


def test_the_same_text_under_a_new_key_is_a_rekeyed_item_not_news():
    """A feed that re-mints guids re-publishes the same text: with enough text, it is not news."""
    text = "x" * (REKEY_MIN_TEXT - len("Title k2"))
    rekeyed = make_item("k2", summary=text, fingerprint="fp-old")
    assert len(rekeyed.title) + len(rekeyed.summary) == REKEY_MIN_TEXT
    state = known(fingerprints={"k1": "fp-old"}, feed_fingerprints={"fp-old"})
    result = triage([rekeyed], state, links_of(rekeyed))
    assert (result.new, result.edited, result.seen_tombstones) == ([], [], [])
    # The text of a pruned item counts too.
    assert triage([rekeyed], known(feed_fingerprints={"fp-old"}), links_of(rekeyed)).new == []
    # Another text under a new key is news.
    other = replace(rekeyed, fingerprint="fp-new")
    assert triage([other], state, links_of(other)).new == [other]


def test_short_or_empty_items_with_the_same_text_are_not_treated_as_rekeyed():
    """Untitled, empty entries all share one fingerprint: below REKEY_MIN_TEXT each is its own item."""
    empty = make_item("e2", title="", summary="", fingerprint="fp-empty")
    short = make_item("s2", summary="x" * (REKEY_MIN_TEXT - 1 - len("Title s2")), fingerprint="fp-short")
    assert len(short.title) + len(short.summary) == REKEY_MIN_TEXT - 1
    state = known(
        fingerprints={"e1": "fp-empty", "s1": "fp-short"}, feed_fingerprints={"fp-empty", "fp-short"}
    )
    assert triage([empty, short], state, links_of(empty, short)).new == [empty, short]


def test_a_copy_of_a_pruned_article_is_not_news():
    """An item whose story link belongs to a pruned item (of any feed) is an old story coming back."""
    old_link = "https://wire.example/old"
    copy = make_item("copy", feed="dawn", link="https://dawn.example/mirror")
    fresh = make_item("fresh", feed="dawn", link="https://dawn.example/fresh")
    unlinked = make_item("unlinked", feed="dawn", link=None)
    links = {"copy": old_link, "fresh": "https://dawn.example/fresh", "unlinked": None}
    result = triage([copy, fresh, unlinked], known(old_links={old_link}), links)
    assert result.new == [fresh, unlinked]
    assert (result.edited, result.seen_tombstones) == ([], [])


def test_prepare_matches_and_fingerprints_the_item():
    """prepare gives the store the item, its matches, its story fingerprint and its story link."""
    item = make_item(title="Gunmen attack police in Saravan", summary="Nine Iranian border guards killed.")
    w = make_watchlist("places", query=parse_query("Saravan"))
    other = make_watchlist("elsewhere", query=parse_query("Quetta"))
    result = prepare(item, Matcher([w, other]), "https://wire.example/1")
    assert result.item is item
    assert [m.watchlist for m in result.matches] == ["places"]
    assert result.fingerprint == fingerprint(item.title, item.summary, item.published)
    assert result.fingerprint.tokens  # names and numbers were found
    assert result.story_link == "https://wire.example/1"
    assert prepare(item, Matcher([other]), None).matches == []


# Pruning at most once an hour


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.meta: dict[str, str] = {}
        self.prunes: list[tuple[datetime, timedelta, timedelta]] = []
        self.fail = fail

    def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value

    def prune(self, now: datetime, retention: timedelta, window: timedelta) -> PruneReport:
        if self.fail:
            raise StoreError("disk full")
        self.prunes.append((now, retention, window))
        return PruneReport(1, 1, 0, 3, 0)


def runtime(store: FakeStore, clock: list[datetime]) -> Any:
    defaults = SimpleNamespace(retention_days=30, story_window=72 * 3600.0)
    return SimpleNamespace(settings=SimpleNamespace(defaults=defaults), store=store, clock=lambda: clock[0])


def test_prune_if_due_prunes_with_the_settings_at_most_once_an_hour():
    store = FakeStore()
    clock = [NOW]
    rt = runtime(store, clock)
    prune_if_due(rt)
    assert store.prunes == [(NOW, timedelta(days=30), timedelta(hours=72))]
    clock[0] = NOW + PRUNE_EVERY - timedelta(seconds=1)
    prune_if_due(rt)
    assert len(store.prunes) == 1
    clock[0] = NOW + PRUNE_EVERY
    prune_if_due(rt)
    assert [p[0] for p in store.prunes] == [NOW, NOW + PRUNE_EVERY]


def test_prune_if_due_logs_a_store_error(caplog: pytest.LogCaptureFixture):
    store = FakeStore(fail=True)
    prune_if_due(runtime(store, [NOW]))
    assert "cannot prune old items: disk full" in caplog.text
    assert store.get_meta("last_prune_at") is None  # tried again at the next cycle


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


# Delivery schedules and quiet hours in planning; digests in delivery


def test_a_digest_watchlist_plans_digest_alerts_due_at_the_next_slot():
    """A watchlist delivered "daily at 08:00" plans digest alerts due at the next 08:00."""
    w = make_watchlist("w", delivery="daily at 08:00")
    alerts = plan(make_item(), [Match("w", ("x",))], w)
    assert [(a.channel, a.digest, a.due_at) for a in alerts] == [
        (c, True, datetime(2024, 1, 21, 8, 0, tzinfo=UTC)) for c in CHANNELS
    ]


def test_immediate_alerts_are_due_now():
    """Immediate delivery plans alerts due at once, outside any digest."""
    alerts = plan(make_item(), [Match("w", ("x",))], make_watchlist("w"))
    assert [(a.digest, a.due_at) for a in alerts] == [(False, NOW)] * len(CHANNELS)


def test_delivery_is_chosen_per_channel():
    """A channel named in the watchlist's delivery table gets its own schedule."""
    w = make_watchlist("w", delivery_by_channel={"mail": "daily at 18:00"})
    alerts = {a.channel: (a.digest, a.due_at) for a in plan(make_item(), [Match("w", ("x",))], w)}
    assert alerts == {
        "team": (False, NOW),
        "mail": (True, datetime(2024, 1, 20, 18, 0, tzinfo=UTC)),
        "stdout": (False, NOW),
    }


def channel(name: str, quiet_hours: str | None = None, timezone: str = "UTC") -> ChannelConfig:
    hours = parse_quiet_hours(quiet_hours, ZoneInfo(timezone)) if quiet_hours else None
    return ChannelConfig(name, "console", ConsoleOptions(), hours, timezone)


def test_a_channel_keeps_its_digest_schedule_in_its_own_time_zone():
    """08:00 for a channel in Asia/Karachi is 03:00 UTC."""
    w = make_watchlist("w", delivery="daily at 08:00")
    story = story_of(make_item(), [Match("w", ("x",))])
    configs = {"mail": channel("mail", timezone="Asia/Karachi"), "team": channel("team")}
    alerts = {a.channel: a.due_at for a in plan_alerts(story, {"w": w}, configs, NOW)}
    assert alerts == {
        "mail": datetime(2024, 1, 21, 3, 0, tzinfo=UTC),
        "team": datetime(2024, 1, 21, 8, 0, tzinfo=UTC),
    }


@pytest.mark.parametrize(
    ("severity", "held_until"),
    [
        (Severity.LOW, datetime(2024, 1, 20, 13, 0, tzinfo=UTC)),
        (Severity.HIGH, datetime(2024, 1, 20, 13, 0, tzinfo=UTC)),
        (Severity.CRITICAL, NOW),
    ],
)
def test_quiet_hours_of_a_channel_hold_non_critical_alerts(severity, held_until):
    """Quiet hours 16:00-18:00 in Karachi (11:00-13:00 UTC) hold all but critical alerts; channels
    without quiet hours, or given without a config, are not held."""
    w = make_watchlist("w", severity=severity)
    story = story_of(make_item(), [Match("w", ("x",))])
    configs = {
        "team": channel("team", "16:00-18:00", "Asia/Karachi"),
        "mail": channel("mail"),
        "stdout": None,
    }
    alerts = {a.channel: (a.digest, a.due_at) for a in plan_alerts(story, {"w": w}, configs, NOW)}
    assert alerts == {"team": (False, held_until), "mail": (False, NOW), "stdout": (False, NOW)}


SLOT_1 = datetime(2024, 1, 20, 16, 0, tzinfo=UTC)
SLOT_2 = datetime(2024, 1, 21, 8, 0, tzinfo=UTC)


def an_alert(alert_id: str, *, digest: bool = False, due_at=NOW, published_hour: int = 9, chan="mail"):
    (base,) = plan(make_item(), [Match("w", ("x",))], make_watchlist("w"), channels=[chan])
    published = datetime(2024, 1, 18, published_hour, 0, tzinfo=UTC)
    return replace(base, id=alert_id, digest=digest, due_at=due_at, published=published)


def test_batches_send_immediate_alerts_first_then_one_digest_per_slot():
    """Immediate alerts come first, oldest first; then each slot's digest, earliest slot first."""
    late = an_alert("late", published_hour=11)
    early = an_alert("early", published_hour=10)
    second_a = an_alert("d1", digest=True, due_at=SLOT_2)
    first = an_alert("d2", digest=True, due_at=SLOT_1)
    second_b = an_alert("d3", digest=True, due_at=SLOT_2, published_hour=8)
    assert batches([second_a, late, first, early, second_b]) == [
        early,
        late,
        Digest(digest_id("mail", SLOT_1), "mail", (first,), SLOT_1),
        Digest(digest_id("mail", SLOT_2), "mail", (second_a, second_b), SLOT_2),
    ]


def test_batches_of_nothing():
    """No alerts, nothing to send."""
    assert batches([]) == []


def test_digest_ids_depend_on_the_channel_and_the_slot_only():
    """The same (channel, slot) is the same id whatever the digest holds; another slot or channel
    is another id."""
    assert digest_id("mail", SLOT_1) == digest_id("mail", SLOT_1)
    assert len({digest_id("mail", SLOT_1), digest_id("mail", SLOT_2), digest_id("team", SLOT_1)}) == 3
    (alone,) = batches([an_alert("a", digest=True, due_at=SLOT_1)])
    (together,) = batches(
        [an_alert("b", digest=True, due_at=SLOT_1), an_alert("c", digest=True, due_at=SLOT_1)]
    )
    assert isinstance(alone, Digest)
    assert isinstance(together, Digest)
    assert alone.id == together.id == digest_id("mail", SLOT_1)
    (other,) = batches([an_alert("a", digest=True, due_at=SLOT_1, chan="team")])
    assert isinstance(other, Digest)
    assert other.id != alone.id


_planned = st.lists(
    st.tuples(st.booleans(), st.sampled_from([NOW, SLOT_1, SLOT_2]), st.integers(0, 23)),
    max_size=12,
)


@given(_planned)
def test_batches_send_every_alert_once_in_order(planned):
    """Each alert is sent once: immediate ones oldest first, then digests by slot, each holding
    exactly the alerts due at its slot."""
    alerts = [
        an_alert(f"a{i}", digest=digest, due_at=due, published_hour=hour)
        for i, (digest, due, hour) in enumerate(planned)
    ]
    sent = batches(alerts)
    immediate = [b for b in sent if isinstance(b, Alert)]
    digests = [b for b in sent if isinstance(b, Digest)]
    assert sent == [*immediate, *digests]
    assert sorted(a.id for a in immediate) == sorted(a.id for a in alerts if not a.digest)
    assert [(a.published, a.id) for a in immediate] == sorted((a.published, a.id) for a in immediate)
    assert [d.period_end for d in digests] == sorted({a.due_at for a in alerts if a.digest})
    for d in digests:
        assert list(d.alerts) == [a for a in alerts if a.digest and a.due_at == d.period_end]
        assert d.id == digest_id("mail", d.period_end)
