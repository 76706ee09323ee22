"""Metrics in a private registry, and the status endpoint serving them on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import parse_settings
from monitor.errors import ConfigErrors, MonitorError
from monitor.metrics import Metrics
from monitor.status import StatusServer, StatusServerError, is_loopback, parse_address
from monitor.types import DeliveryOutcome, FeedOutcome, FetchStatus

NOW = 1_790_000_000.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and label set."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def names_with_label(found: Samples, label: str, value: str) -> set[str]:
    """The metrics with a series carrying this label (not counting the `_created` companions)."""
    return {name for name, labels in found if (label, value) in labels and not name.endswith("_created")}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(clock=lambda: NOW)


def test_polls_are_counted_by_feed_and_status(metrics: Metrics) -> None:
    """Polls, failures, new items and watchlist matches add up per feed and per watchlist."""
    metrics.record_poll(
        FeedOutcome("dawn", FetchStatus.OK, new_items=3, matched={"sistan-baluchestan": 2}), 0.2
    )
    metrics.record_poll(
        FeedOutcome(
            "dawn", FetchStatus.OK, new_items=1, matched={"sistan-baluchestan": 1, "jaish-al-adl": 1}
        ),
        0.3,
    )
    metrics.record_poll(FeedOutcome("dawn", FetchStatus.NOT_MODIFIED), 0.05)
    metrics.record_poll(FeedOutcome("irna", FetchStatus.FAILED, error="connection refused"), 4.0)

    found = samples(metrics.render().decode())
    assert value(found, "monitor_feed_polls_total", feed="dawn", status="ok") == 2
    assert value(found, "monitor_feed_polls_total", feed="dawn", status="not_modified") == 1
    assert value(found, "monitor_feed_polls_total", feed="irna", status="failed") == 1
    assert value(found, "monitor_feed_failures_total", feed="dawn") == 0
    assert value(found, "monitor_feed_failures_total", feed="irna") == 1
    assert value(found, "monitor_items_new_total", feed="dawn") == 4
    assert value(found, "monitor_items_new_total", feed="irna") == 0
    assert value(found, "monitor_watchlist_matches_total", watchlist="sistan-baluchestan") == 3
    assert value(found, "monitor_watchlist_matches_total", watchlist="jaish-al-adl") == 1
    assert value(found, "monitor_feed_poll_seconds_count") == 4
    assert value(found, "monitor_feed_poll_seconds_sum") == pytest.approx(4.55)
    assert value(found, "monitor_feed_poll_seconds_bucket", le="0.25") == 2  # 0.05 and 0.2
    assert value(found, "monitor_feed_poll_seconds_bucket", le="+Inf") == 4


def test_last_success_is_set_only_by_a_fetch_that_worked() -> None:
    """A failed poll leaves the feed's last-success time where the last good poll put it."""
    now = [NOW]
    metrics = Metrics(clock=lambda: now[0])
    metrics.record_poll(FeedOutcome("dawn", FetchStatus.NOT_MODIFIED), 0.1)
    now[0] = NOW + 600
    metrics.record_poll(FeedOutcome("dawn", FetchStatus.FAILED, error="timed out"), 20.0)
    metrics.record_poll(FeedOutcome("irna", FetchStatus.FAILED, error="timed out"), 20.0)

    found = samples(metrics.render().decode())
    assert value(found, "monitor_feed_last_success_timestamp_seconds", feed="dawn") == NOW
    assert ("monitor_feed_last_success_timestamp_seconds", frozenset({("feed", "irna")})) not in found


def test_deliveries_are_delivered_retrying_or_failed(metrics: Metrics) -> None:
    """Delivered, temporary and permanent outcomes are counted apart, per channel."""
    metrics.record_deliveries(
        [
            DeliveryOutcome("a1", "slack", True),
            DeliveryOutcome("a2", "slack", True),
            DeliveryOutcome("a3", "slack", False, "HTTP 503", temporary=True),
            DeliveryOutcome("a4", "hook", False, "HTTP 410", temporary=False),
            DeliveryOutcome("a5", "mail", True, refused=("bounce@example.org",)),
        ]
    )
    found = samples(metrics.render().decode())
    assert value(found, "monitor_deliveries_total", channel="slack", status="delivered") == 2
    assert value(found, "monitor_deliveries_total", channel="slack", status="retrying") == 1
    assert value(found, "monitor_deliveries_total", channel="hook", status="failed") == 1
    assert value(found, "monitor_deliveries_total", channel="mail", status="delivered") == 1
    assert ("monitor_deliveries_total", frozenset({("channel", "hook"), ("status", "retrying")})) not in found


def test_cycle_sets_duration_pending_and_time(metrics: Metrics) -> None:
    """A cycle observes its duration and sets the outbox and last-cycle gauges."""
    metrics.record_cycle(1.5, pending=7)
    metrics.record_cycle(3.0, pending=2)

    found = samples(metrics.render().decode())
    assert value(found, "monitor_cycle_duration_seconds_count") == 2
    assert value(found, "monitor_cycle_duration_seconds_sum") == 4.5
    assert value(found, "monitor_cycle_last_duration_seconds") == 3.0
    assert value(found, "monitor_outbox_pending") == 2
    assert value(found, "monitor_last_cycle_timestamp_seconds") == NOW


def test_backoff_and_disabled_gauges(metrics: Metrics) -> None:
    """A feed's backoff and disabled state are gauges that follow the latest value."""
    metrics.set_feed_backoff("dawn", 1800.0, disabled=False)
    metrics.set_feed_backoff("gone", 0.0, disabled=True)
    metrics.set_feed_backoff("dawn", 0.0, disabled=False)

    found = samples(metrics.render().decode())
    assert value(found, "monitor_feed_backoff_seconds", feed="dawn") == 0
    assert value(found, "monitor_feed_disabled", feed="dawn") == 0
    assert value(found, "monitor_feed_disabled", feed="gone") == 1


def test_forget_feed_removes_its_series_only(metrics: Metrics) -> None:
    """A feed dropped from the config disappears from every per-feed metric; others stay."""
    for feed in ("dawn", "irna"):
        metrics.record_poll(FeedOutcome(feed, FetchStatus.OK, new_items=1), 0.1)
        metrics.record_poll(FeedOutcome(feed, FetchStatus.FAILED, error="x"), 0.1)
        metrics.set_feed_backoff(feed, 60.0, disabled=False)
    metrics.forget_feed("irna")
    metrics.forget_feed("never-configured")  # nothing to remove is not an error

    found = samples(metrics.render().decode())
    assert names_with_label(found, "feed", "irna") == set()
    assert names_with_label(found, "feed", "dawn") == {
        "monitor_feed_polls_total",
        "monitor_feed_failures_total",
        "monitor_items_new_total",
        "monitor_feed_last_success_timestamp_seconds",
        "monitor_feed_backoff_seconds",
        "monitor_feed_disabled",
    }


def test_each_metrics_has_its_own_registry() -> None:
    """Two Metrics in one process neither clash on registration nor share counts."""
    first, second = Metrics(), Metrics()
    first.record_poll(FeedOutcome("dawn", FetchStatus.OK, new_items=5), 0.1)
    found = samples(second.render().decode())
    assert ("monitor_items_new_total", frozenset({("feed", "dawn")})) not in found


def test_labels_never_carry_urls_or_errors(metrics: Metrics) -> None:
    """A failed poll's error text and a feed's URL are never label values."""
    metrics.record_poll(
        FeedOutcome("dawn", FetchStatus.FAILED, error="GET https://dawn.example/feed?token=abc: 500"), 1.0
    )
    metrics.record_deliveries([DeliveryOutcome("a1", "slack", False, "https://hooks.slack.com/x")])
    text = metrics.render().decode()
    assert "https://" not in text
    assert "token" not in text


# The status server


class Health:
    """A health callable the test flips, as the daemon's in-memory state would."""

    def __init__(self) -> None:
        self.healthy = True
        self.reason = "last cycle 12 s ago"
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            self.calls += 1
        return self.healthy, self.reason


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def server(metrics: Metrics, health: Health) -> Iterator[StatusServer]:
    status = StatusServer("127.0.0.1:0", metrics, health)
    status.start()
    yield status
    status.stop()


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5)


def test_healthz_follows_the_health_callable(server: StatusServer, health: Health) -> None:
    """/healthz is 200 'ok: reason' while healthy and 503 'unhealthy: reason' once not, asked each time."""
    assert server.url.startswith("http://127.0.0.1:")
    assert not server.url.endswith(":0")

    ok = get(server.url + "/healthz")
    assert ok.status_code == 200
    assert ok.text == "ok: last cycle 12 s ago\n"
    assert ok.headers["content-type"].startswith("text/plain")

    health.healthy, health.reason = False, "no cycle for 45 min"
    bad = get(server.url + "/healthz")
    assert bad.status_code == 503
    assert bad.text == "unhealthy: no cycle for 45 min\n"
    assert health.calls == 2


def test_healthz_when_the_check_raises(metrics: Metrics) -> None:
    """A health callable that raises makes /healthz 503, not a dropped connection."""

    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    status = StatusServer("127.0.0.1:0", metrics, broken)
    status.start()
    try:
        response = get(status.url + "/healthz")
    finally:
        status.stop()
    assert response.status_code == 503
    assert response.text.startswith("unhealthy: ")


def test_metrics_endpoint_serves_the_registry(server: StatusServer, metrics: Metrics) -> None:
    """/metrics has Prometheus' content type and parses with its own parser to the recorded values."""
    metrics.record_poll(FeedOutcome("dawn", FetchStatus.OK, new_items=2, matched={"jaish-al-adl": 1}), 0.4)
    metrics.record_cycle(2.0, pending=3)

    response = get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == Metrics.content_type
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert value(found, "monitor_items_new_total", feed="dawn") == 2
    assert value(found, "monitor_watchlist_matches_total", watchlist="jaish-al-adl") == 1
    assert value(found, "monitor_outbox_pending") == 3

    metrics.record_cycle(2.0, pending=0)  # served live, not a snapshot taken at start
    assert value(samples(get(server.url + "/metrics").text), "monitor_outbox_pending") == 0


def test_other_paths_and_methods(server: StatusServer) -> None:
    """Unknown paths are 404; anything but GET is 405 naming GET."""
    assert get(server.url + "/").status_code == 404
    assert get(server.url + "/metrics/extra").status_code == 404
    assert get(server.url + "/healthz?verbose=1").status_code == 200
    posted = httpx.post(server.url + "/metrics", content=b"x", timeout=5)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"
    assert httpx.delete(server.url + "/healthz", timeout=5).status_code == 405


def test_requests_are_not_logged_to_stderr(server: StatusServer, capfd: pytest.CaptureFixture[str]) -> None:
    """http.server's per-request lines do not reach standard error."""
    get(server.url + "/healthz")
    get(server.url + "/nope")
    server.stop()  # joins the serving thread, so anything it wrote has been written
    assert capfd.readouterr().err == ""


def test_stop_closes_the_port(metrics: Metrics, health: Health) -> None:
    """After stop() nothing listens, and a new server can take the same port."""
    first = StatusServer("127.0.0.1:0", metrics, health)
    first.start()
    port = first.url.rsplit(":", 1)[1]
    first.stop()
    first.stop()  # a second stop is harmless
    with pytest.raises(httpx.ConnectError):
        get(f"http://127.0.0.1:{port}/healthz")
    again = StatusServer(f"127.0.0.1:{port}", metrics, health)
    again.start()
    try:
        assert get(again.url + "/healthz").status_code == 200
    finally:
        again.stop()


def test_a_taken_port_is_a_clear_error(server: StatusServer, metrics: Metrics, health: Health) -> None:
    """A second server on a port in use raises StatusServerError naming the address and the reason."""
    address = server.url.removeprefix("http://")
    second = StatusServer(address, metrics, health)
    with pytest.raises(StatusServerError) as raised:
        second.start()
    assert isinstance(raised.value, MonitorError)
    assert str(raised.value) == f"cannot listen on {address}: Address already in use"
    assert get(server.url + "/healthz").status_code == 200  # the first one is unharmed


def test_ipv6_loopback(metrics: Metrics, health: Health) -> None:
    """[::1]:0 listens on the IPv6 loopback and its url is bracketed."""
    status = StatusServer("[::1]:0", metrics, health)
    try:
        status.start()
    except StatusServerError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    try:
        assert status.url.startswith("http://[::1]:")
        assert get(status.url + "/healthz").status_code == 200
    finally:
        status.stop()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9464", ("::1", 9464)),
        ("monitor.internal:80", ("monitor.internal", 80)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    """HOST:PORT and [IPv6]:PORT give the host and the port."""
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("9464", "has no port"),
        (":9464", "has no host"),
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:", "port must be a number"),
        ("127.0.0.1:65536", "port must be a number from 0 to 65535"),
        ("127.0.0.1:-1", "port must be a number"),
        ("::1:9464", "put an IPv6 address in brackets"),
        ("[not-v6]:9464", "is not an IPv6 address"),
        ("bad host:9464", "is not a host name or IP address"),
        ("http://127.0.0.1:9464", "without a scheme or path"),
    ],
)
def test_parse_address_errors(address: str, problem: str) -> None:
    """Each malformed address is refused with what is wrong."""
    with pytest.raises(ValueError, match=problem):
        parse_address(address)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:9464", True),
        ("127.0.0.2:9464", True),
        ("localhost:9464", True),
        ("[::1]:9464", True),
        ("0.0.0.0:9464", False),
        ("[::]:9464", False),
        ("192.168.1.10:9464", False),
        ("monitor.internal:9464", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    """Only loopback addresses and `localhost` count as loopback."""
    assert is_loopback(address) is loopback


def test_config_status_address() -> None:
    """[defaults] status_address is off by default, read when set, and off when empty."""
    assert parse_settings({}, Path("config.toml"), env={}).defaults.status_address is None
    set_ = parse_settings({"defaults": {"status_address": "0.0.0.0:9464"}}, Path("config.toml"), env={})
    assert set_.defaults.status_address == "0.0.0.0:9464"
    from_env = parse_settings(
        {"defaults": {"status_address": "${STATUS_ADDRESS:-}"}}, Path("config.toml"), env={}
    )
    assert from_env.defaults.status_address is None


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("127.0.0.1:99999", "the port must be a number from 0 to 65535"),
        ("127.0.0.1", "has no port"),
        (9464, "expected a string"),
    ],
)
def test_config_status_address_errors(written: object, problem: str) -> None:
    """A bad status_address is a config error naming the key."""
    with pytest.raises(ConfigErrors) as raised:
        parse_settings({"defaults": {"status_address": written}}, Path("config.toml"), env={})
    [error] = raised.value.errors
    assert error.key == "defaults.status_address"
    assert problem in error.message
