"""A feed farm: N RSS feeds served on loopback from many addresses, as real feeds are.

    python -m bench.farm --feeds 1000 --latency 0.05          # prints one JSON line when ready

Feed `i` is `http://127.0.0.<2 + i % hosts>:<port>/feeds/<i>.xml`: one listening socket per
address (127.0.0.2 to 127.0.0.51 by default), so a client keeps a connection pool per host as it
would against real publishers, instead of reusing a handful of connections to one origin.

Each feed holds `--items` items (news-like titles and HTML summaries of about 1.5 KB, a share of
them wire copies carried by several feeds, a few carrying watchlist signals), answers with an ETag
and a Last-Modified, and a conditional request for an unchanged feed gets 304 Not Modified. Bodies
are gzip-compressed when the client accepts it (most publishers do). An optional latency delays
every response, as a distant server would.

Control, on the first address: `POST /_farm/change?share=0.05&items=5` puts 5 new items at the top
of 5% of the feeds (a new ETag for each), `GET /_farm/stats` counts responses by status since the
last `POST /_farm/reset`, `POST /_farm/stop` ends the farm. The farm also ends by itself after
`--lifetime` seconds or `--max-requests` responses, and when its standard input closes (its
parent died), so a broken benchmark never leaves it running.

Written on asyncio's protocol layer rather than a web framework: a feed server must cost the
client-side benchmark as little of the machine's two cores as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import email.utils
import gzip
import html
import json
import os
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bench.bench_matcher import generate_items
from bench.bench_stories import compose, new_cast

HOSTS = 50
FIRST_HOST = 2  # 127.0.0.2: 127.0.0.1 is left to everything else on the machine
WIRE_SHARE = 0.1  # items that are a wire story several feeds carry, each under its own link
WIRE_POOL = 400
SIGNAL_SHARE = 0.01  # items carrying a shipped watchlist's signal (most news matches nothing)
GZIP_LEVEL = 6


def host_of(index: int, hosts: int = HOSTS) -> str:
    return f"127.0.0.{FIRST_HOST + index % hosts}"


def feed_url(index: int, port: int, hosts: int = HOSTS) -> str:
    return f"http://{host_of(index, hosts)}:{port}/feeds/{index}.xml"


@dataclass
class Feed:
    index: int
    items: deque[str]  # rendered <item> elements, newest first
    next_number: int = 0
    generation: int = 0
    changed_at: float = 0.0
    body: bytes = b""
    gzipped: bytes = b""
    etag: str = ""
    last_modified: str = ""


@dataclass
class Farm:
    feeds: int
    items: int
    latency: float
    seed: int
    started: float = field(default_factory=time.time)
    stats: Counter[str] = field(default_factory=Counter)
    all_responses: int = 0
    _feeds: list[Feed] = field(default_factory=list)
    _wire: list[tuple[str, str]] = field(default_factory=list)

    def build(self) -> None:
        rng = random.Random(f"wire-{self.seed}")
        self._wire = [_article(rng) for _ in range(WIRE_POOL)]
        for index in range(self.feeds):
            feed = Feed(index, deque(maxlen=self.items))
            self._add_items(feed, self.items)
            self._render(feed)
            self._feeds.append(feed)

    def change(self, share: float, count: int, seed: int) -> int:
        rng = random.Random(f"change-{self.seed}-{seed}")
        chosen = rng.sample(range(self.feeds), round(self.feeds * share))
        for index in chosen:
            feed = self._feeds[index]
            self._add_items(feed, count)
            self._render(feed)
        return len(chosen)

    def _add_items(self, feed: Feed, count: int) -> None:
        seed = f"{self.seed}-{feed.index}-{feed.next_number}"
        rng = random.Random(seed)
        now = dt.datetime.now(dt.UTC)
        for offset in range(count):
            number = feed.next_number
            feed.next_number += 1
            roll = rng.random()
            if roll < SIGNAL_SHARE:
                signal = generate_items(1, seed=f"{seed}-{offset}", signal_share=1.0)[0]  # type: ignore[arg-type]
                title, summary = signal.title, signal.summary
            elif roll < SIGNAL_SHARE + WIRE_SHARE:
                title, summary = rng.choice(self._wire)
            else:
                title, summary = _article(rng)
            published = now - dt.timedelta(minutes=5 * (count - offset))
            feed.items.appendleft(_render_item(feed.index, number, title, summary, published))

    def _render(self, feed: Feed) -> None:
        feed.generation += 1
        feed.changed_at = time.time()
        head = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Farm outlet {feed.index}</title>"
            f"<link>https://outlet{feed.index}.example/</link>"
            f"<description>News from outlet {feed.index}</description>"
            f"<lastBuildDate>{email.utils.formatdate(feed.changed_at, usegmt=True)}</lastBuildDate>"
        )
        feed.body = (head + "".join(feed.items) + "</channel></rss>\n").encode()
        feed.gzipped = gzip.compress(feed.body, GZIP_LEVEL, mtime=0)
        feed.etag = f'"f{feed.index}-g{feed.generation}"'
        feed.last_modified = email.utils.formatdate(feed.changed_at, usegmt=True)

    def respond(self, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for a GET of `path`."""
        parts = path.split("/")
        if len(parts) != 3 or parts[1] != "feeds" or not parts[2].endswith(".xml"):
            return 404, [], b"no such feed\n"
        number = parts[2][:-4]
        if not number.isdigit() or int(number) >= self.feeds:
            return 404, [], b"no such feed\n"
        feed = self._feeds[int(number)]
        validators = [("ETag", feed.etag), ("Last-Modified", feed.last_modified)]
        if_none = headers.get("if-none-match")
        if if_none is not None:
            if feed.etag in (tag.strip() for tag in if_none.split(",")):
                return 304, validators, b""
        elif headers.get("if-modified-since") == feed.last_modified:
            return 304, validators, b""
        extra = [("Content-Type", "application/rss+xml; charset=utf-8"), *validators]
        if "gzip" in headers.get("accept-encoding", ""):
            return 200, [*extra, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")], feed.gzipped
        return 200, extra, feed.body


def _article(rng: random.Random) -> tuple[str, str]:
    """A title and a summary of about 1.5 KB about one cast of people and places: the story
    generator of the store benchmark (long-tailed names, towns and numbers, as news has), its
    paragraphs concatenated to a full summary's length."""
    cast = new_cast(rng)
    title, summary = compose(rng, cast)
    paragraphs = [summary]
    while sum(map(len, paragraphs)) < 1400:
        paragraphs.append(compose(rng, cast)[1])
    return title, " ".join(paragraphs)


def _render_item(feed: int, number: int, title: str, summary: str, published: dt.datetime) -> str:
    link = f"https://outlet{feed}.example/news/{number:06d}"
    # Summaries carry HTML, as most feeds' do: paragraphs, a link, emphasis, entities.
    sentences = summary.split(". ")
    middle = len(sentences) // 2
    markup = (
        f"<p>{html.escape('. '.join(sentences[:middle]))}.</p>"
        f'<p><a href="{link}?ref=rss">Read more</a> — <b>{html.escape(title)}</b></p>'
        f"<p>{html.escape('. '.join(sentences[middle:]))}</p>"
    )
    return (
        f"<item><title>{html.escape(title)}</title><link>{link}</link>"
        f'<guid isPermaLink="false">farm-{feed}-{number}</guid>'
        f"<pubDate>{email.utils.format_datetime(published, usegmt=True)}</pubDate>"
        f"<category>World</category><description>{html.escape(markup)}</description></item>"
    )


_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 400: "Bad Request"}


class FeedProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, enough for feed clients: GET and POST without bodies."""

    def __init__(self, server: FarmServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.pending = 0
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.farm.stats["connections"] += 1  # how well the client reuses them

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self._handle(head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def _handle(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._send(400, [], b"bad request\n", close=True)
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        status, extra, body = self.server.route(method, target, headers)
        if method == "GET" and self.server.farm.latency > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(self.server.farm.latency, self._send, status, extra, body, close)
        else:
            self._send(status, extra, body, close)

    def _send(self, status: int, extra: list[tuple[str, str]], body: bytes, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in extra]
        if close:
            lines.append("Connection: close")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if close:
            self.transport.close()


class FarmServer:
    def __init__(self, farm: Farm, max_requests: int) -> None:
        self.farm = farm
        self.max_requests = max_requests
        self.done = asyncio.Event()

    def route(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        split = urlsplit(target)
        if split.path.startswith("/_farm/"):
            return self._control(method, split.path, parse_qs(split.query))
        self.farm.all_responses += 1
        if self.farm.all_responses >= self.max_requests:
            self.done.set()
        status, extra, body = self.farm.respond(split.path, headers)
        self.farm.stats[str(status)] += 1
        self.farm.stats["bytes"] += len(body)
        return status, extra, body

    def _control(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        def number(name: str, default: float) -> float:
            return float(query.get(name, [default])[0])

        if path == "/_farm/stats":
            payload: object = dict(self.farm.stats)
        elif path == "/_farm/reset" and method == "POST":
            self.farm.stats.clear()
            payload = {"reset": True}
        elif path == "/_farm/change" and method == "POST":
            changed = self.farm.change(number("share", 0.05), int(number("items", 5)), int(number("seed", 0)))
            payload = {"changed": changed}
        elif path == "/_farm/stop" and method == "POST":
            self.done.set()
            payload = {"stopping": True}
        else:
            return 404, [], b"unknown control\n"
        return 200, [("Content-Type", "application/json")], json.dumps(payload).encode()


async def serve(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    farm = Farm(args.feeds, args.items, args.latency, args.seed)
    farm.build()
    server = FarmServer(farm, args.max_requests)
    loop = asyncio.get_running_loop()
    listeners = []
    port = args.port
    for address in (host_of(i, args.hosts) for i in range(min(args.hosts, args.feeds))):
        listener = await loop.create_server(
            lambda: FeedProtocol(server), address, port, backlog=1024, reuse_address=True
        )
        port = port or listener.sockets[0].getsockname()[1]
        listeners.append(listener)
    ready = {
        "port": port,
        "hosts": len(listeners),
        "feeds": args.feeds,
        "control": f"http://{host_of(0)}:{port}/_farm",
        "build_seconds": round(time.perf_counter() - started, 2),
        "bytes_per_feed": sum(len(f.body) for f in farm._feeds) // max(1, args.feeds),
        "gzip_bytes_per_feed": sum(len(f.gzipped) for f in farm._feeds) // max(1, args.feeds),
    }
    print(json.dumps(ready), flush=True)
    # The parent holds our stdin: when it goes away (even killed), so does the farm.
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: None if os.read(stdin, 1) else server.done.set())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.done.wait(), timeout=args.lifetime)
    for listener in listeners:
        listener.close()


def feed_urls(port: int, count: int, hosts: int = HOSTS) -> Iterator[str]:
    return (feed_url(i, port, hosts) for i in range(count))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=30, help="items per feed")
    parser.add_argument("--hosts", type=int, default=HOSTS, help="loopback addresses to spread feeds over")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each feed response")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=20240118)
    parser.add_argument("--lifetime", type=float, default=1800, help="seconds before the farm stops itself")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="feed responses before it stops")
    args = parser.parse_args(argv)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
