"""Fetcher: conditional GET with bounded time, size and redirects (respx-mocked), and local files."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import os
import sys
import zlib
from pathlib import Path

import brotli
import httpx
import pytest
import respx

from monitor import PROJECT_URL, USER_AGENT
from monitor.config import Defaults, FeedConfig
from monitor.fetch import Fetcher
from monitor.types import FetchResult, FetchStatus, Validators
from tests.conftest import Route

URL = "https://feeds.example/world.xml"
FEED = FeedConfig(name="world", url=URL)
BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def fetch(
    feed: FeedConfig = FEED, validators: Validators | None = None, defaults: Defaults | None = None
) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(defaults or Defaults()) as fetcher:
            return await fetcher.fetch(feed, validators or Validators())

    return asyncio.run(run())


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


def test_ok_response(mock):
    """A 200 gives OK with the body, the final URL and the HTTP status."""
    mock.get(URL).respond(200, content=BODY, headers={"Content-Type": "application/rss+xml"})
    result = fetch()
    assert result.status is FetchStatus.OK
    assert result.body == BODY
    assert result.url == URL
    assert result.http_status == 200
    assert result.error is None
    assert result.headers["content-type"] == "application/rss+xml"


def test_user_agent_names_monitor_and_its_url(mock):
    """Every request says who we are and where to find us."""
    route = mock.get(URL).respond(200, content=BODY)
    fetch()
    agent = route.calls.last.request.headers["User-Agent"]
    assert agent == USER_AGENT
    assert agent.startswith("monitor/")
    assert PROJECT_URL in agent


def test_configured_user_agent_is_sent(mock):
    """defaults.user_agent replaces the built-in one."""
    route = mock.get(URL).respond(200, content=BODY)
    fetch(defaults=Defaults(user_agent="desk-bot/2 (+https://desk.example)"))
    assert route.calls.last.request.headers["User-Agent"] == "desk-bot/2 (+https://desk.example)"


def test_accept_header_prefers_feeds(mock):
    """The Accept header asks for RSS and Atom first."""
    route = mock.get(URL).respond(200, content=BODY)
    fetch()
    accept = route.calls.last.request.headers["Accept"]
    assert accept.startswith("application/rss+xml, application/atom+xml")


def test_conditional_headers_sent_from_validators(mock):
    """Stored validators become If-None-Match and If-Modified-Since."""
    route = mock.get(URL).respond(304)
    validators = Validators(etag='"abc"', last_modified="Sat, 20 Jan 2024 11:00:00 GMT")
    result = fetch(validators=validators)
    request = route.calls.last.request
    assert request.headers["If-None-Match"] == '"abc"'
    assert request.headers["If-Modified-Since"] == "Sat, 20 Jan 2024 11:00:00 GMT"
    assert result.status is FetchStatus.NOT_MODIFIED
    assert result.validators == validators
    assert result.http_status == 304


def test_no_conditional_headers_without_validators(mock):
    """A first fetch is unconditional."""
    route = mock.get(URL).respond(200, content=BODY)
    fetch()
    headers = route.calls.last.request.headers
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers


def test_validators_captured_from_response(mock):
    """ETag and Last-Modified of a 200 become the new validators."""
    mock.get(URL).respond(
        200, content=BODY, headers={"ETag": 'W/"v2"', "Last-Modified": "Sun, 21 Jan 2024 08:00:00 GMT"}
    )
    result = fetch(validators=Validators(etag='"v1"'))
    assert result.validators == Validators(etag='W/"v2"', last_modified="Sun, 21 Jan 2024 08:00:00 GMT")


def test_response_without_validators_clears_them(mock):
    """A 200 with no validators leaves none, so stale ones are not sent again."""
    mock.get(URL).respond(200, content=BODY)
    assert fetch(validators=Validators(etag='"v1"')).validators == Validators()


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (500, "HTTP 500 Internal Server Error"),
        (503, "HTTP 503 Service Unavailable"),
        (404, "HTTP 404 Not Found; the feed may have moved"),
        (410, "HTTP 410 Gone; the publisher removed this feed"),
        (403, "HTTP 403 Forbidden"),
        (429, "rate limited"),
    ],
)
def test_http_errors_fail_with_status_and_message(mock, status, needle):
    """An error status is FAILED with the status code and a message saying what it means."""
    mock.get(URL).respond(status, content=b"<html>error page</html>")
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.http_status == status
    assert result.error is not None
    assert needle in result.error
    assert result.body == b""


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (httpx.ReadTimeout("read timed out"), "timed out (ReadTimeout)"),
        (httpx.ConnectTimeout("connect timed out"), "timed out (ConnectTimeout)"),
        (httpx.ConnectError("connection refused"), "connection failed: ConnectError"),
        (httpx.RemoteProtocolError("server hung up"), "connection failed: RemoteProtocolError"),
    ],
)
def test_network_errors_fail(mock, error, needle):
    """Timeouts and connection errors become FAILED results, never exceptions."""
    mock.get(URL).mock(side_effect=error)
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.http_status is None
    assert result.error is not None
    assert needle in result.error


def test_whole_fetch_deadline():
    """A response that does not complete within fetch_deadline fails, however it trickles."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=BODY)

    with respx.mock(assert_all_called=False) as mock:  # the call is cancelled before respx records it
        mock.get(URL).mock(side_effect=slow)
        result = fetch(defaults=Defaults(fetch_deadline=0.2))
    assert result.status is FetchStatus.FAILED
    assert result.error == "no complete response within 0.2s (fetch_deadline)"


def test_gzip_body_is_decoded(mock):
    """A gzip-encoded body is returned decoded, without the encoding headers."""
    compressed = gzip.compress(BODY)
    mock.get(URL).respond(
        200,
        content=compressed,
        headers={
            "Content-Encoding": "gzip",
            "Content-Length": str(len(compressed)),
            "Content-Type": "text/xml",
        },
    )
    result = fetch()
    assert result.status is FetchStatus.OK
    assert result.body == BODY
    lower = {k.lower() for k in result.headers}
    assert "content-encoding" not in lower
    assert "content-length" not in lower
    assert "content-type" in lower


def test_body_over_max_feed_bytes_fails(mock):
    """A body whose Content-Length passes max_feed_bytes is FAILED before it is read."""
    mock.get(URL).respond(200, content=b"x" * 2048)
    result = fetch(defaults=Defaults(max_feed_bytes=1024))
    assert result.status is FetchStatus.FAILED
    assert result.error == (
        "body of 2048 bytes (Content-Length) is larger than 1024 bytes (max_feed_bytes); not read"
    )
    assert result.body == b""


def test_streamed_body_over_max_feed_bytes_fails(mock):
    """A body with no Content-Length is cut while streaming, once it passes max_feed_bytes."""
    mock.get(URL).respond(200, stream=httpx.ByteStream(b"x" * 2048))
    result = fetch(defaults=Defaults(max_feed_bytes=1024))
    assert result.status is FetchStatus.FAILED
    assert result.error == "body larger than 1024 bytes (max_feed_bytes); not read further"
    assert result.body == b""


def test_body_at_max_feed_bytes_is_read(mock):
    """A body exactly at the limit is fine."""
    mock.get(URL).respond(200, content=b"x" * 1024)
    assert fetch(defaults=Defaults(max_feed_bytes=1024)).status is FetchStatus.OK


def test_gzip_bomb_is_stopped(mock):
    """The limit applies to the decoded body: a small gzip that inflates past it fails."""
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 10_000
    mock.get(URL).respond(200, content=bomb, headers={"Content-Encoding": "gzip"})
    result = fetch(defaults=Defaults(max_feed_bytes=100_000))
    assert result.status is FetchStatus.FAILED
    assert "max_feed_bytes" in (result.error or "")


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", deflate_raw),  # what some servers send as "deflate"
        ("br", brotli.compress),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("GZIP", gzip.compress),
        ("identity", lambda b: b),
        ("utf-8", lambda b: b),  # a broken server's label: passed through, as httpx does
    ],
)
def test_content_codings_are_decoded(mock, encoding, encode):
    """Every coding we offer is decoded, alone or stacked; an unknown label passes the bytes through."""
    mock.get(URL).respond(200, content=encode(BODY), headers={"Content-Encoding": encoding})
    result = fetch()
    assert (result.status, result.body) == (FetchStatus.OK, BODY)


def test_only_codings_we_can_bound_are_offered(mock):
    """Accept-Encoding names exactly the codings the fetcher decodes itself."""
    route = mock.get(URL).respond(200, content=BODY)
    fetch()
    assert route.calls.last.request.headers["Accept-Encoding"] == "gzip, deflate, br"


def test_a_body_that_is_not_what_its_coding_says_fails():
    """A body that is not valid gzip under Content-Encoding: gzip is FAILED, saying so."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = httpx.ByteStream(b"<rss>plain</rss>")
        return httpx.Response(200, stream=body, headers={"Content-Encoding": "gzip"})

    async def run() -> FetchResult:
        async with Fetcher(Defaults(), transport=httpx.MockTransport(answer)) as fetcher:
            return await fetcher.fetch(FEED, Validators())

    result = asyncio.run(run())
    assert result.status is FetchStatus.FAILED
    assert (result.error or "").startswith("the body is not valid gzip as its Content-Encoding says (")


def test_more_than_two_codings_fail(mock):
    """Three stacked codings are refused before any is decoded."""
    body = gzip.compress(gzip.compress(gzip.compress(BODY)))
    mock.get(URL).respond(200, content=body, headers={"Content-Encoding": "gzip, gzip, gzip"})
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.error == "Content-Encoding 'gzip, gzip, gzip' applies more than 2 codings"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, gzip"])
def test_a_bomb_in_any_coding_is_stopped_at_the_cap(mock, encoding):
    """The cap is on the decoded body, whatever the coding, and stacked codings do not evade it."""
    plain = b"\0" * 2_000_000
    body = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "gzip, gzip": lambda b: gzip.compress(gzip.compress(b)),
    }[encoding](plain)
    mock.get(URL).respond(200, content=body, headers={"Content-Encoding": encoding})
    result = fetch(defaults=Defaults(max_feed_bytes=100_000))
    assert result.status is FetchStatus.FAILED
    assert result.error == "body larger than 100000 bytes (max_feed_bytes); not read further"


def test_a_compressed_body_exactly_at_the_cap_is_read(mock):
    """An incompressible body of exactly max_feed_bytes, compressed twice, is still read whole."""
    plain = os.urandom(200_000)
    body = gzip.compress(gzip.compress(plain))
    mock.get(URL).respond(200, content=body, headers={"Content-Encoding": "gzip, gzip"})
    result = fetch(defaults=Defaults(max_feed_bytes=200_000))
    assert (result.status, result.body) == (FetchStatus.OK, plain)


def redirect_chain(mock: respx.MockRouter, hops: int) -> str:
    """URL -> /r1 -> ... -> /r{hops} serving the feed; returns the final URL."""
    urls = [URL] + [f"https://feeds.example/r{i}" for i in range(1, hops + 1)]
    for here, there in itertools.pairwise(urls):
        mock.get(here).respond(301, headers={"Location": there})
    mock.get(urls[-1]).respond(200, content=BODY)
    return urls[-1]


def test_redirects_followed_up_to_the_limit(mock):
    """Redirects up to max_redirects are followed, and the final URL reported."""
    final = redirect_chain(mock, 3)
    result = fetch(defaults=Defaults(max_redirects=3))
    assert result.status is FetchStatus.OK
    assert result.body == BODY
    assert result.url == final


def test_too_many_redirects_fail():
    """One redirect more than max_redirects is FAILED, saying so."""
    with respx.mock(assert_all_called=False) as mock:
        redirect_chain(mock, 4)
        result = fetch(defaults=Defaults(max_redirects=3))
    assert result.status is FetchStatus.FAILED
    assert result.error == "more than 3 redirects; check the feed URL"


@pytest.mark.parametrize(
    ("statuses", "moved"),
    [
        ((301,), True),
        ((308,), True),
        ((301, 308), True),
        ((302,), False),
        ((307,), False),
        ((301, 302), False),
    ],
)
def test_only_an_all_permanent_redirect_chain_moves_the_feed(mock, statuses, moved):
    """301/308 all the way: the feed moved, and the new address is reported. A temporary hop
    anywhere (302, 307) means the old address stays the one to ask."""
    urls = [URL] + [f"https://feeds.example/r{i}" for i in range(1, len(statuses) + 1)]
    for (here, there), status in zip(itertools.pairwise(urls), statuses, strict=True):
        mock.get(here).respond(status, headers={"Location": there})
    mock.get(urls[-1]).respond(200, content=BODY)
    result = fetch()
    assert result.status is FetchStatus.OK
    assert result.moved_to == (urls[-1] if moved else None)


def test_a_permanent_redirect_to_an_unchanged_feed_still_reports_the_move(mock):
    """A 301 then a 304: not modified, and moved."""
    mock.get(URL).respond(301, headers={"Location": "https://feeds.example/new"})
    mock.get("https://feeds.example/new").respond(304)
    result = fetch(validators=Validators(etag='"e"'))
    assert (result.status, result.moved_to) == (FetchStatus.NOT_MODIFIED, "https://feeds.example/new")


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {"Retry-After": "120"}, 120.0),
        (503, {"Retry-After": "3600"}, 3600.0),
        (429, {}, None),
        (500, {"Retry-After": "120"}, None),  # only 429 and 503 carry a wait we honour
        (429, {"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_is_reported_on_429_and_503(mock, status, headers, wait):
    mock.get(URL).respond(status, headers=headers)
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.retry_after == wait


def test_retry_after_as_an_http_date(mock):
    mock.get(URL).respond(503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert fetch().retry_after == 24 * 3600  # far future: capped at a day


@pytest.mark.parametrize(("status", "code"), [(200, FetchStatus.OK), (304, FetchStatus.NOT_MODIFIED)])
def test_cache_control_max_age_is_reported_as_freshness(mock, status, code):
    mock.get(URL).respond(
        status, content=BODY if status == 200 else b"", headers={"Cache-Control": "max-age=1800"}
    )
    result = fetch(validators=Validators(etag='"e"'))
    assert (result.status, result.retry_after) == (code, 1800.0)


def test_a_moved_feed_is_fetched_from_its_new_address(mock):
    """The caller passes the address a 301 gave; the configured one is not asked."""
    mock.get("https://feeds.example/new").respond(200, content=BODY)

    async def run() -> FetchResult:
        async with Fetcher(Defaults()) as fetcher:
            return await fetcher.fetch(FEED, Validators(), url="https://feeds.example/new")

    result = asyncio.run(run())
    assert (result.status, result.url) == (FetchStatus.OK, "https://feeds.example/new")


def test_redirect_without_location_fails(mock):
    """A 3xx with no Location cannot be followed: FAILED, with a hint."""
    mock.get(URL).respond(302)
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.http_status == 302
    assert "redirect without a usable Location" in (result.error or "")


# Local files


def local_feed(path: Path | str, name: str = "local") -> FeedConfig:
    return FeedConfig(name=name, url=str(path))


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-url"])
def test_local_file_read(tmp_path, as_uri):
    """A feed path or file:// URL is read from disk, with a modification-time validator."""
    path = tmp_path / "my feeds" / "world.xml"
    path.parent.mkdir()
    path.write_bytes(BODY)
    feed = local_feed(path.as_uri() if as_uri else path)
    assert feed.is_local
    result = fetch(feed)
    assert result.status is FetchStatus.OK
    assert result.body == BODY
    assert result.url == path.as_uri()
    assert result.validators.etag
    assert result.headers == {"content-type": "application/xml"}


def test_unchanged_local_file_is_not_modified(tmp_path):
    """Fetching an unchanged file again with its validators is NOT_MODIFIED."""
    path = tmp_path / "world.xml"
    path.write_bytes(BODY)
    first = fetch(local_feed(path))
    second = fetch(local_feed(path), first.validators)
    assert second.status is FetchStatus.NOT_MODIFIED
    assert second.validators == first.validators
    assert second.body == b""


def test_changed_local_file_is_read_again(tmp_path):
    """A file whose content changed is OK again, with a new validator."""
    path = tmp_path / "world.xml"
    path.write_bytes(BODY)
    first = fetch(local_feed(path))
    path.write_bytes(BODY + b"<!-- more -->")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = fetch(local_feed(path), first.validators)
    assert second.status is FetchStatus.OK
    assert second.body.endswith(b"<!-- more -->")
    assert second.validators != first.validators


def test_missing_local_file_fails_naming_the_path(tmp_path):
    """A missing file is FAILED with its path in the message."""
    path = tmp_path / "gone.xml"
    result = fetch(local_feed(path))
    assert result.status is FetchStatus.FAILED
    assert str(path) in (result.error or "")
    assert "No such file" in (result.error or "")


def test_local_file_over_max_feed_bytes_fails(tmp_path):
    """The size limit applies to files too."""
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2048)
    result = fetch(local_feed(path), defaults=Defaults(max_feed_bytes=1024))
    assert result.status is FetchStatus.FAILED
    assert str(path) in (result.error or "")
    assert "max_feed_bytes" in (result.error or "")


def test_local_directory_fails(tmp_path):
    """A directory is not a feed: FAILED naming it, no exception."""
    result = fetch(local_feed(tmp_path))
    assert result.status is FetchStatus.FAILED
    assert str(tmp_path) in (result.error or "")


def test_concurrent_fetches_share_one_client(mock):
    """Several feeds fetched at once each get their own result."""
    urls = [f"https://feeds.example/{i}.xml" for i in range(5)]
    for i, url in enumerate(urls):
        mock.get(url).respond(200, content=f"<rss>{i}</rss>".encode())

    async def run() -> list[FetchResult]:
        async with Fetcher(Defaults(max_concurrency=2)) as fetcher:
            feeds = [FeedConfig(name=f"f{i}", url=u) for i, u in enumerate(urls)]
            return await asyncio.gather(*(fetcher.fetch(f, Validators()) for f in feeds))

    results = asyncio.run(run())
    assert [(r.feed, r.body) for r in results] == [(f"f{i}", f"<rss>{i}</rss>".encode()) for i in range(5)]


def test_brotli_without_bounded_decoding_fails_saying_what_to_install(mock, monkeypatch):
    """Where only an old brotli (no output limit) is installed, a brotli body is refused, not
    inflated whole."""
    monkeypatch.setattr("monitor.fetch._BROTLI", False)
    mock.get(URL).respond(200, content=brotli.compress(BODY), headers={"Content-Encoding": "br"})
    result = fetch()
    assert result.status is FetchStatus.FAILED
    assert result.error == (
        "the body is brotli-compressed, which needs the brotli package 1.2 or newer; "
        "install it (pip install 'brotli>=1.2')"
    )


def test_httpcore_finds_sniffio_instead_of_searching_for_it_at_every_request(monkeypatch):
    """httpcore imports sniffio each time it sets up a lock or an event; when it is missing,
    every attempt asks each import finder again (walking sys.path), which cost a sixth of a warm
    cycle's CPU. Installed, it is found in sys.modules and no finder is asked."""
    import httpcore._synchronization as synchronization

    asked: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            asked.append(name)

    async def libraries() -> set[str]:
        return {synchronization.current_async_library() for _ in range(100)}

    assert asyncio.run(libraries()) == {"asyncio"}  # sniffio, imported once
    monkeypatch.setattr(sys, "meta_path", [Recorder, *sys.meta_path])
    assert asyncio.run(libraries()) == {"asyncio"}
    assert "sniffio" not in asked


def test_unchanged_feeds_reuse_one_connection(feed_server):
    """A 304 has no body, but its end must still be read: a response closed before that drops
    its connection, and every unchanged feed would cost a new one (and a TLS handshake)."""
    feed_server.routes["/a.xml"] = Route(body=BODY, etag='"v1"')
    feed_server.routes["/b.xml"] = Route(body=BODY, etag='"v2"')
    defaults = Defaults(allow_private_networks=True)  # the server is on loopback

    async def run() -> list[FetchStatus]:
        async with Fetcher(defaults) as fetcher:
            return [
                (
                    await fetcher.fetch(
                        FeedConfig(name=path, url=feed_server.url(f"/{path}.xml")), Validators(tag)
                    )
                ).status
                for path, tag in [("a", '"v1"'), ("b", '"v2"'), ("a", '"v1"'), ("b", None)]
            ]

    assert asyncio.run(run()) == [FetchStatus.NOT_MODIFIED] * 3 + [FetchStatus.OK]
    assert len({r.client_port for r in feed_server.requests}) == 1


def test_each_origin_keeps_to_one_pool_and_the_origins_spread_over_the_pools():
    """Requests go to the pool their (scheme, host, port) hashes to: the same one every time, so
    connections are reused, and the hosts of a cycle are spread over several pools."""
    from monitor.fetch import _Pools

    handled: dict[int, list[str]] = {n: [] for n in range(4)}

    def pool(number: int) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            handled[number].append(str(request.url.copy_with(path="/")))
            return httpx.Response(200)

        return httpx.MockTransport(answer)

    origins = [f"https://feeds{n}.example/" for n in range(20)] + ["http://feeds0.example:8080/"]

    async def run() -> None:
        async with httpx.AsyncClient(transport=_Pools([pool(n) for n in range(4)])) as client:
            for _ in range(2):
                for origin in origins:
                    await client.get(origin + "feed.xml")

    asyncio.run(run())
    where = {origin: {n for n, seen in handled.items() if origin in seen} for origin in origins}
    assert all(len(pools) == 1 for pools in where.values())
    assert sum(len(seen) for seen in handled.values()) == 2 * len(origins)
    assert len({n for n, seen in handled.items() if seen}) >= 3


def test_fetches_stay_under_max_concurrency_whatever_pools_their_hosts_are_in():
    """max_concurrency bounds the fetches of one Fetcher, not each pool's connections."""
    in_flight = most = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, stream=httpx.ByteStream(b"<rss/>"))

    async def run() -> None:
        async with Fetcher(Defaults(max_concurrency=2), httpx.MockTransport(answer)) as fetcher:
            feeds = [FeedConfig(name=f"f{n}", url=f"https://host{n}.example/feed") for n in range(8)]
            await asyncio.gather(*(fetcher.fetch(f, Validators()) for f in feeds))

    asyncio.run(run())
    assert most == 2


@pytest.mark.parametrize("allow_private_networks", [False, True])
def test_the_pools_share_one_load_of_the_certificate_authorities(ca_loads, allow_private_networks):
    """Loading the CAs takes tens of milliseconds and a megabyte or two: done once for all the pools,
    guarded or not."""

    async def go() -> None:
        async with Fetcher(Defaults(allow_private_networks=allow_private_networks)):
            pass

    asyncio.run(go())
    assert len(ca_loads) == 1
