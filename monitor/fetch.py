"""Fetching feeds: conditional GET over HTTP with bounded time and size, and local files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from monitor.config import Defaults, FeedConfig
from monitor.errors import FetchError
from monitor.notify.base import retry_after
from monitor.polling import cache_max_age
from monitor.types import FetchResult, FetchStatus, Validators

# The body has been decoded by the time feedparser sees it, so these no longer describe it.
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Fetcher:
    """Fetches feeds concurrently through one shared client; the transport is injectable for tests."""

    def __init__(self, defaults: Defaults, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._defaults = defaults
        self._client = httpx.AsyncClient(
            headers={"User-Agent": defaults.user_agent, "Accept": _ACCEPT},
            timeout=httpx.Timeout(defaults.timeout),
            follow_redirects=True,
            max_redirects=defaults.max_redirects,
            limits=httpx.Limits(
                max_connections=defaults.max_concurrency,
                max_keepalive_connections=defaults.max_concurrency,
            ),
            transport=transport,
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
            async with asyncio.timeout(self._defaults.fetch_deadline):
                return await self._fetch_http(feed, validators, url)
        except FetchError as e:
            return FetchResult(feed.name, FetchStatus.FAILED, error=str(e), http_status=e.status)
        except TimeoutError:
            message = f"no complete response within {self._defaults.fetch_deadline:g}s (fetch_deadline)"
            return FetchResult(feed.name, FetchStatus.FAILED, error=message)
        except httpx.TimeoutException as e:
            kind = type(e).__name__
            message = f"timed out ({kind}) after {self._defaults.timeout:g}s; the server is slow or down"
            return FetchResult(feed.name, FetchStatus.FAILED, error=message)
        except httpx.TooManyRedirects:
            message = f"more than {self._defaults.max_redirects} redirects; check the feed URL"
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
        async with self._client.stream("GET", url or feed.url, headers=headers) as response:
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


async def _read_capped(response: httpx.Response, limit: int, feed: str) -> bytes:
    """Read the decoded body, stopping as soon as it passes `limit` bytes (a gzip bomb stops here)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            raise FetchError(feed, f"body larger than {limit} bytes (max_feed_bytes); not read further")
        chunks.append(chunk)
    return b"".join(chunks)


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
