"""Fetching feeds: conditional GET over HTTP with bounded time and size, and local files.

Whatever a feed server sends costs bounded time and memory: the whole fetch has a deadline
(`fetch_deadline`) besides the per-read `timeout`; the body is decoded here, a bounded slice at a
time, and dropped as soon as the decoded bytes pass `max_feed_bytes`, so a compression bomb
inflates no further than the cap; redirects stop at `max_redirects`, their own bodies unread; and
connections to private networks are refused after DNS resolution, at every hop (monitor.netguard).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from monitor.config import Defaults, FeedConfig
from monitor.errors import FetchError
from monitor.netguard import AddressRefused, GuardedTransport
from monitor.notify.base import retry_after
from monitor.polling import cache_max_age
from monitor.types import FetchResult, FetchStatus, Validators

try:
    import brotli  # type: ignore[import-untyped]  # published without type hints
except ImportError:  # an optional part of httpx[brotli]: without it, "br" is not offered
    brotli = None
# Bounded brotli decoding (output_buffer_limit) arrived in brotli 1.2; older ones are not used.
_BROTLI = brotli is not None and hasattr(brotli.Decompressor, "can_accept_more_data")

# The body has been decoded by the time feedparser sees it, so these no longer describe it.
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Fetcher:
    """Fetches feeds concurrently through one shared client.

    Every connection it opens goes through the private-network guard (`GuardedTransport`), unless
    `defaults.allow_private_networks` is set. Proxies named in the environment (HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY) are never used: a proxy resolves the host itself, out of the guard's
    sight. An injected `transport` (tests use respx or httpx.MockTransport) replaces the guarded
    one entirely, and the guard then does not apply.
    """

    def __init__(self, defaults: Defaults, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._defaults = defaults
        # At most max_concurrency fetches at once, whichever pools their hosts fall in.
        self._slots = asyncio.Semaphore(defaults.max_concurrency)
        self.ssl_context: ssl.SSLContext | None = None  # the pools' own, when they are ours
        if transport is None:
            # Each pool may hold every connection the fetches can use at once; idle, the pools
            # keep twice max_concurrency between them, enough for one connection per host of a
            # cycle's feeds with room for hosts to fall unevenly.
            limits = httpx.Limits(
                max_connections=defaults.max_concurrency,
                max_keepalive_connections=-(-2 * defaults.max_concurrency // POOLS),
            )
            verify = self.ssl_context = httpx.create_ssl_context()  # loading the CAs takes a while: once
            transport = _Pools(
                [
                    httpx.AsyncHTTPTransport(limits=limits, verify=verify)
                    if defaults.allow_private_networks
                    else GuardedTransport(limits=limits, verify=verify)
                    for _ in range(POOLS)
                ]
            )
        self._client = httpx.AsyncClient(
            headers={"User-Agent": defaults.user_agent, "Accept": _ACCEPT, "Accept-Encoding": _CODINGS},
            timeout=httpx.Timeout(defaults.timeout),
            transport=transport,
            trust_env=False,  # no proxies or .netrc from the environment, whatever the transport
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, feed: FeedConfig, validators: Validators, url: str | None = None) -> FetchResult:
        """Fetch one feed (from `url` when a permanent redirect moved it away from the configured
        address); every failure becomes a FAILED result, never an exception."""
        try:
            if feed.is_local:
                return await asyncio.to_thread(_read_local, feed, validators, self._defaults.max_feed_bytes)
            async with self._slots, asyncio.timeout(self._defaults.fetch_deadline):
                return await self._fetch_http(feed, validators, url)
        except FetchError as e:
            return FetchResult(feed.name, FetchStatus.FAILED, error=str(e), http_status=e.status)
        except AddressRefused as e:
            redirected = e.host != httpx.URL(url or feed.url).raw_host.decode("ascii")
            return FetchResult(feed.name, FetchStatus.FAILED, error=e.describe(redirected=redirected))
        except TimeoutError:
            message = f"no complete response within {self._defaults.fetch_deadline:g}s (fetch_deadline)"
            return FetchResult(feed.name, FetchStatus.FAILED, error=message)
        except httpx.TimeoutException as e:
            kind = type(e).__name__
            message = f"timed out ({kind}) after {self._defaults.timeout:g}s; the server is slow or down"
            return FetchResult(feed.name, FetchStatus.FAILED, error=message)
        except httpx.HTTPError as e:
            message = f"connection failed: {type(e).__name__}: {e or 'no detail'}"
            return FetchResult(feed.name, FetchStatus.FAILED, error=message)

    async def _fetch_http(self, feed: FeedConfig, validators: Validators, url: str | None) -> FetchResult:
        headers = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        response = await self._open(url or feed.url, headers, feed.name)
        try:
            final_url = str(response.url)
            status = response.status_code
            if status >= 300 and status != 304:
                # 429 and 503 say when to come back; the feed's backoff honours it.
                wait = retry_after(response) if status in (429, 503) else None
                return FetchResult(
                    feed.name,
                    FetchStatus.FAILED,
                    url=final_url,
                    http_status=status,
                    error=_status_message(response),
                    retry_after=wait,
                )
            moved_to = _permanent_move(response)
            fresh_for = cache_max_age(response.headers.get("cache-control"))
            if status == 304:
                # No body, but its end is read all the same: closed before that, the response
                # takes its connection with it, and every unchanged feed costs a new connection.
                await response.aread()
                return FetchResult(
                    feed.name,
                    FetchStatus.NOT_MODIFIED,
                    url=final_url,
                    validators=validators,
                    http_status=304,
                    retry_after=fresh_for,
                    moved_to=moved_to,
                )
            body = await _read_capped(response, self._defaults.max_feed_bytes, feed.name)
            return FetchResult(
                feed.name,
                FetchStatus.OK,
                body=body,
                headers={k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS},
                url=final_url,
                validators=Validators(
                    etag=_validator(response.headers.get("etag")),
                    last_modified=_validator(response.headers.get("last-modified")),
                ),
                http_status=status,
                retry_after=fresh_for,
                moved_to=moved_to,
            )
        finally:
            await response.aclose()

    async def _open(self, url: str, headers: dict[str, str], feed: str) -> httpx.Response:
        """GET `url`, following redirects, and return the last response with its body unread.

        httpx's own redirect handling reads the body of every redirect whole, decoded and uncapped,
        so a 302 carrying a compression bomb or an endless body would escape max_feed_bytes. Here a
        redirect's body is never read: the connection is dropped and its Location followed.
        """
        request = self._client.build_request("GET", url, headers=headers)
        history: list[httpx.Response] = []
        while True:
            response = await self._client.send(request, stream=True, follow_redirects=False)
            next_request = response.next_request
            if next_request is None:
                response.history = history
                return response
            await response.aclose()
            history.append(response)
            if len(history) > self._defaults.max_redirects:
                limit = self._defaults.max_redirects
                raise FetchError(feed, f"more than {limit} redirects; check the feed URL")
            request = next_request


# httpcore's connection pool looks over every connection it holds each time a request starts or
# ends (expired? idle? free for this host?): with fifty hosts in one pool that was most of a warm
# cycle's CPU. The hosts are spread over a few pools instead, each looking over its own.
POOLS = 8


class _Pools(httpx.AsyncBaseTransport):
    """Several transports, each request going to the one its origin (scheme, host, port) hashes to."""

    def __init__(self, transports: Sequence[httpx.AsyncBaseTransport]) -> None:
        self._transports = tuple(transports)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self._transports[hash((url.scheme, url.host, url.port)) % len(self._transports)]
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()


def _permanent_move(response: httpx.Response) -> str | None:
    """The new address when every redirect on the way was permanent (301, 308); a temporary hop
    (302, 307) anywhere means the old address stays the one to ask."""
    hops = response.history
    if hops and all(h.status_code in (301, 308) for h in hops):
        return str(response.url)
    return None


_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"


def _validator(value: str | None) -> str | None:
    """A cache validator we can send back: printable ASCII only (httpx cannot send anything else)."""
    return value if value and value.isascii() and value.isprintable() and len(value) <= 1024 else None


# The codings decoded below; sent explicitly so the server is never offered one we cannot bound.
_CODINGS = "gzip, deflate, br" if _BROTLI else "gzip, deflate"
# The most any decoding step produces at once: a bomb is inflated one slice at a time, and the
# cap is checked between slices. (httpx's own decoders inflate a whole network read at once:
# 64 KiB of brotli can become gigabytes.)
_SLICE = 64 * 1024
# Real servers apply one coding, a misconfigured proxy sometimes a second; more is an attack.
_MAX_CODINGS = 2


class _OverCap(Exception):
    """A decoder produced more than its cap; becomes the max_feed_bytes FetchError."""


class _Coding:
    """One content coding's decoder: takes compressed bytes, gives back at most _SLICE bytes per
    call, and keeps the rest of its input for the next calls (with empty input)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap  # the most it may produce in all
        self.produced = 0

    def decode(self, data: bytes) -> bytes:
        out = self._step(data)
        self.produced += len(out)
        if self.produced > self.cap:
            raise _OverCap
        return out

    def _step(self, data: bytes) -> bytes:
        raise NotImplementedError


class _Zlib(_Coding):
    def __init__(self, cap: int, wbits: int) -> None:
        super().__init__(cap)
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._tail = b""
        self._started = False

    def _step(self, data: bytes) -> bytes:
        data = self._tail + data
        try:
            out = self._inflate.decompress(data, _SLICE)
        except zlib.error:
            # "deflate" means zlib-wrapped, but some servers send raw deflate; httpx accepts
            # both, and so do we, decided on the first bytes.
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            self._wbits = -zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(self._wbits)
            out = self._inflate.decompress(data, _SLICE)
        self._started = True
        self._tail = self._inflate.unconsumed_tail
        return out


_DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error, brotli.error) if _BROTLI else (zlib.error,)


class _Brotli(_Coding):
    def __init__(self, cap: int) -> None:
        super().__init__(cap)
        self._decompressor = brotli.Decompressor()
        self._held = b""

    def _step(self, data: bytes) -> bytes:
        # The decompressor takes new input only once it has given out what the last input made.
        self._held += data
        if self._held and self._decompressor.can_accept_more_data():
            data, self._held = self._held, b""
        else:
            data = b""
        out: bytes = self._decompressor.process(data, output_buffer_limit=_SLICE)
        return out


def _codings(response: httpx.Response, limit: int, feed: str) -> list[_Coding]:
    """The decoders of the response's Content-Encoding, in decoding order (the last applied first)."""
    names = [
        name.strip().lower()
        for value in response.headers.get_list("content-encoding")
        for name in value.split(",")
    ]
    # A compressed form of a body within the cap is hardly larger than the cap; the slack keeps an
    # incompressible body that was compressed twice from being refused.
    cap = limit + limit // 64 + _SLICE
    codings: list[_Coding] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip"):
            codings.append(_Zlib(cap, zlib.MAX_WBITS | 16))
        elif name == "deflate":
            codings.append(_Zlib(cap, zlib.MAX_WBITS))
        elif name == "br" and _BROTLI:
            codings.append(_Brotli(cap))
        elif name == "br":
            message = "the body is brotli-compressed, which needs the brotli package 1.2 or newer"
            raise FetchError(feed, f"{message}; install it (pip install 'brotli>=1.2')")
        # Anything else ("identity", or a label broken servers put there, such as "utf-8") is
        # passed through undecoded, as httpx does; the parser then judges the bytes.
    if len(codings) > _MAX_CODINGS:
        encoding = ", ".join(names)
        raise FetchError(feed, f"Content-Encoding {encoding!r} applies more than {_MAX_CODINGS} codings")
    if codings:
        codings[-1].cap = limit  # the innermost produces the body itself
    return codings


def _decoded(codings: Sequence[_Coding], data: bytes) -> Iterator[bytes]:
    """`data` decoded through every coding, lazily, one bounded slice at a time."""
    if not codings:
        if data:
            yield data
        return
    first, rest = codings[0], codings[1:]
    out = first.decode(data)
    while out:
        yield from _decoded(rest, out)
        out = first.decode(b"")


async def _read_capped(response: httpx.Response, limit: int, feed: str) -> bytes:
    """Read and decode the body, stopping as soon as it passes `limit` decoded bytes, so a
    compression bomb costs at most `limit` bytes of memory and the work of producing them."""
    too_big = f"body larger than {limit} bytes (max_feed_bytes); not read further"
    codings = _codings(response, limit, feed)
    if not codings:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            message = (
                f"body of {declared} bytes (Content-Length) is larger than {limit} bytes (max_feed_bytes)"
            )
            raise FetchError(feed, message + "; not read")
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            for piece in _decoded(codings, raw):
                if len(body) + len(piece) > limit:
                    raise FetchError(feed, too_big)
                body += piece
        for piece in _decoded(codings, b""):
            if len(body) + len(piece) > limit:
                raise FetchError(feed, too_big)
            body += piece
    except _OverCap:
        raise FetchError(feed, too_big) from None
    except _DECODE_ERRORS as e:
        encoding = response.headers.get("content-encoding", "")
        message = f"the body is not valid {encoding} as its Content-Encoding says ({e}); the server is broken"
        raise FetchError(feed, message) from e
    return bytes(body)


def _status_message(response: httpx.Response) -> str:
    reason = response.reason_phrase or "error"
    hint = {
        404: "; the feed may have moved: check its URL",
        410: "; the publisher removed this feed: delete it from config.toml",
        401: "; the feed needs credentials",
        403: "; the server refuses us (blocked user agent or region?)",
        429: "; rate limited: lengthen this feed's interval",
    }.get(response.status_code, "")
    if 300 <= response.status_code < 400:
        hint = "; redirect without a usable Location"
    return f"HTTP {response.status_code} {reason}{hint}"


def _local_path(url: str) -> Path:
    if url.startswith("file:"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


def _read_local(feed: FeedConfig, validators: Validators, limit: int) -> FetchResult:
    """A file as a feed: its modification time and size act as an ETag, so an unchanged file is a 304."""
    path = _local_path(feed.url)
    try:
        stat = path.stat()
        tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if validators.etag == tag:
            return FetchResult(feed.name, FetchStatus.NOT_MODIFIED, url=path.as_uri(), validators=validators)
        if stat.st_size > limit:
            raise FetchError(feed.name, f"{path}: larger than {limit} bytes (max_feed_bytes)")
        body = path.read_bytes()
    except OSError as e:
        raise FetchError(feed.name, f"{path}: {e.strerror or e}") from e
    # No charset: feedparser takes the encoding from the XML prolog, as it should for a file.
    headers = {"content-type": "application/xml"}
    return FetchResult(
        feed.name,
        FetchStatus.OK,
        body=body,
        headers=headers,
        url=path.as_uri(),
        validators=Validators(etag=tag),
    )
