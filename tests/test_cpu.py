"""Parsing and matching in the worker process: the same results as here, errors carried back, and
a worker that dies loses one feed's poll and nothing else."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from monitor import cpu
from monitor.cpu import CpuWork
from monitor.errors import ParseError
from monitor.parse import parse_document
from monitor.types import Severity
from monitor.watchlists import Matcher, Watchlist
from monitor.watchlists.query import parse_query
from monitor.worker import analyse
from tests.conftest import fixture_bytes

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
URL = "https://wire.example/feed"
HEADERS = {"Content-Type": "application/rss+xml"}
T = TypeVar("T")


def watchlist(slug: str, query: str) -> Watchlist:
    return Watchlist(slug=slug, name=slug, description="", severity=Severity.MEDIUM, query=parse_query(query))


def run(work: Callable[[CpuWork], Awaitable[T]], **options: Any) -> T:
    async def go() -> T:
        async with CpuWork(True, **options) as cpu_work:
            return await work(cpu_work)

    return asyncio.run(go())


def test_the_worker_parses_as_this_process_does() -> None:
    """A feed parsed in the worker gives exactly the items parse_document gives here."""
    body = fixture_bytes("frontier.xml")

    async def work(cpu_work: CpuWork) -> Any:
        assert await cpu_work.ready()
        return await cpu_work.parse("frontier", body, HEADERS, url=URL, now=NOW)

    parsed = run(work)
    here = parse_document("frontier", body, HEADERS, url=URL, now=NOW)
    assert parsed == here
    assert parsed.items


def test_the_worker_matches_with_the_watchlists_it_is_given() -> None:
    """Matches and fingerprints come back as computed here, and a new matcher replaces the old one."""
    items = parse_document("frontier", fixture_bytes("frontier.xml"), {}, url=URL, now=NOW).items
    first = Matcher([watchlist("rask", "Rask OR Karachi")])
    second = Matcher([watchlist("none", '"no such phrase anywhere"')])

    async def work(cpu_work: CpuWork) -> tuple[Any, Any]:
        assert await cpu_work.ready()
        return (
            await cpu_work.analyse("frontier", first, items),
            await cpu_work.analyse("frontier", second, items),
        )

    with_first, with_second = run(work)
    assert with_first == [analyse(i, first) for i in items]
    assert any(matches for matches, _ in with_first)
    assert with_second == [analyse(i, second) for i in items]
    assert not any(matches for matches, _ in with_second)


def test_a_parse_error_in_the_worker_names_the_feed() -> None:
    """A body that is no feed raises the same ParseError as it does here."""

    async def work(cpu_work: CpuWork) -> None:
        assert await cpu_work.ready()
        await cpu_work.parse("junk", b"this is not a feed", {}, url=URL, now=NOW)

    with pytest.raises(ParseError) as raised:
        run(work)
    assert raised.value.feed == "junk"
    assert "not an RSS or Atom feed" in str(raised.value)


def test_requests_that_never_queue_start_no_worker() -> None:
    """One feed after another, each parsed before the next arrives: the thread keeps up, and no
    process is started for so little."""
    body = fixture_bytes("frontier.xml")

    async def work(cpu_work: CpuWork) -> tuple[bool, list[Any]]:
        parsed = [await cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW) for n in range(3)]
        await asyncio.sleep(0.1)
        return cpu_work._worker is None and cpu_work._starting is None, parsed

    no_worker, parsed = run(work)
    assert no_worker
    assert parsed[0] == parse_document("feed-0", body, {}, url=URL, now=NOW)


def test_without_a_worker_process_none_is_started() -> None:
    """worker_process = false: every request runs on the thread here."""

    async def go() -> tuple[bool, int]:
        async with CpuWork(False) as cpu_work:
            up = await cpu_work.ready(within=1)
            parsed = await cpu_work.parse("frontier", fixture_bytes("frontier.xml"), {}, url=URL, now=NOW)
            return up or cpu_work._worker is not None, len(parsed.items)

    started, count = asyncio.run(go())
    assert not started
    assert count > 0


def test_a_worker_that_dies_fails_one_feed_and_the_rest_are_done_here() -> None:
    """Killed with requests queued: the one it was on fails as a ParseError, the others are
    answered here, and no new worker starts until RESTART_AFTER has passed."""
    body = fixture_bytes("frontier.xml")
    now = [0.0]

    async def work(cpu_work: CpuWork) -> tuple[list[Any], bool, bool]:
        assert await cpu_work.ready()
        worker = cpu_work._worker
        assert worker is not None
        pid = worker.process.pid
        os.kill(pid, signal.SIGSTOP)  # it takes the requests but answers none
        requests = [
            asyncio.create_task(cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW)) for n in range(3)
        ]
        await asyncio.sleep(0)  # each request is written before its task first waits
        assert len(worker.pending) == 3
        os.kill(pid, signal.SIGKILL)
        results = await asyncio.gather(*requests, return_exceptions=True)
        restarted_early = await cpu_work.ready(within=1)
        now[0] += cpu.RESTART_AFTER
        restarted_later = await cpu_work.ready()
        return results, restarted_early, restarted_later

    results, restarted_early, restarted_later = run(work, clock=lambda: now[0])
    assert isinstance(results[0], ParseError)
    assert results[0].feed == "feed-0"
    assert "worker process died (exit status -9)" in str(results[0])
    expected = parse_document("feed-1", body, {}, url=URL, now=NOW)
    assert results[1] == expected
    assert results[2] == parse_document("feed-2", body, {}, url=URL, now=NOW)
    assert not restarted_early
    assert restarted_later


def test_closing_stops_the_worker() -> None:
    """aclose closes the worker's input and it exits by itself."""

    async def go() -> int | None:
        cpu_work = CpuWork(True)
        assert await cpu_work.ready()
        worker = cpu_work._worker
        assert worker is not None
        await cpu_work.aclose()
        return worker.process.returncode

    assert asyncio.run(go()) == 0


def big_feed(items: int) -> bytes:
    entries = "".join(
        f"<item><title>Report {n} from the border</title><link>https://wire.example/{n}</link>"
        f"<guid>wire-{n}</guid><description>{'A long summary of the day. ' * 40}</description></item>"
        for n in range(items)
    )
    channel = f"<channel><title>W</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def test_requests_wait_for_a_starting_worker_rather_than_queue_behind_the_thread() -> None:
    """A burst queues up behind the thread: a worker is started, the thread takes one request at
    a time meanwhile, and the rest go to the worker once it is up (queued on the thread, all
    would be done here)."""
    body = big_feed(1000)

    async def work(cpu_work: CpuWork) -> tuple[int, int]:
        results = await asyncio.gather(
            *(cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW) for n in range(6))
        )
        assert all(len(r.items) == 1000 for r in results)
        worker = cpu_work._worker
        assert worker is not None
        return worker._ids, len(results)

    to_worker, answered = run(work)
    assert answered == 6
    assert to_worker >= 3


def test_items_sent_to_a_worker_that_just_started_are_matched_with_the_watchlists() -> None:
    """Matching requests that waited for the worker to start reach it with the watchlists first,
    never with the empty set it starts with."""
    body = big_feed(1000)
    items = parse_document("frontier", fixture_bytes("frontier.xml"), {}, url=URL, now=NOW).items
    matcher = Matcher([watchlist("rask", "Rask OR Karachi")])

    async def work(cpu_work: CpuWork) -> tuple[list[Any], int]:
        # Parses keep the thread busy, so the matching requests queue until the worker is up.
        parses = [cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW) for n in range(3)]
        matches = [cpu_work.analyse("frontier", matcher, items) for _ in range(3)]
        results = await asyncio.gather(*parses, *matches)
        worker = cpu_work._worker
        assert worker is not None
        return list(results[3:]), worker._ids

    analysed, to_worker = run(work)
    expected = [analyse(i, matcher) for i in items]
    assert any(matches for matches, _ in expected)
    assert analysed == [expected] * 3
    assert to_worker >= 1


def test_matching_goes_ahead_of_parsing_that_waits_to_be_sent() -> None:
    """WINDOW requests are in the worker at a time; of those waiting, matching is sent first, so
    a parsed feed is not held up behind the parsing of every feed fetched after it."""
    body = fixture_bytes("frontier.xml")
    items = parse_document("frontier", body, {}, url=URL, now=NOW).items
    matcher = Matcher([watchlist("rask", "Rask OR Karachi")])

    async def work(cpu_work: CpuWork) -> tuple[list[str], int]:
        assert await cpu_work.ready()
        worker = cpu_work._worker
        assert worker is not None
        os.kill(worker.process.pid, signal.SIGSTOP)
        finished: list[str] = []

        async def timed(name: str, request: Awaitable[Any]) -> None:
            await request
            finished.append(name)

        parses = [
            asyncio.create_task(timed(f"parse-{n}", cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW)))
            for n in range(cpu.WINDOW + 2)
        ]
        await asyncio.sleep(0)
        matching = asyncio.create_task(timed("match", cpu_work.analyse("frontier", matcher, items)))
        await asyncio.sleep(0)
        in_worker = len(worker.sent)
        os.kill(worker.process.pid, signal.SIGCONT)
        await asyncio.gather(*parses, matching)
        return finished, in_worker

    finished, in_worker = run(work)
    assert in_worker == cpu.WINDOW
    parses_first = [f"parse-{n}" for n in range(cpu.WINDOW)]
    assert finished == [*parses_first, "match", f"parse-{cpu.WINDOW}", f"parse-{cpu.WINDOW + 1}"]


def test_a_request_given_up_before_it_is_sent_never_reaches_the_worker() -> None:
    """A caller that stops waiting (a deadline, a cycle cancelled) takes its request back; the
    worker goes on answering the others in turn."""
    body = fixture_bytes("frontier.xml")

    async def work(cpu_work: CpuWork) -> tuple[list[int], bool]:
        assert await cpu_work.ready()
        worker = cpu_work._worker
        assert worker is not None
        sent: list[int] = []
        send = worker.send
        worker.send = lambda message: (sent.append(message[0]), send(message))[1]  # type: ignore[method-assign]
        os.kill(worker.process.pid, signal.SIGSTOP)
        requests = [
            asyncio.create_task(cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW))
            for n in range(cpu.WINDOW + 1)
        ]
        await asyncio.sleep(0)
        requests[-1].cancel()
        os.kill(worker.process.pid, signal.SIGCONT)
        await asyncio.gather(*requests[:-1])
        later = await cpu_work.parse("later", body, {}, url=URL, now=NOW)
        return sent, bool(later.items) and not worker.pending and not worker.sent

    sent, settled = run(work)
    assert sent == [*range(1, cpu.WINDOW + 1), cpu.WINDOW + 2]
    assert settled


def test_an_idle_worker_is_stopped_and_the_next_burst_starts_another() -> None:
    """After idle_stop seconds without a request the worker exits (its memory back to the system);
    it did not die, so the next burst starts one without waiting RESTART_AFTER."""
    body = fixture_bytes("frontier.xml")

    async def work(cpu_work: CpuWork) -> tuple[int | None, int | None, bool, bool]:
        assert await cpu_work.ready()
        first = cpu_work._worker
        assert first is not None
        await cpu_work.parse("frontier", body, {}, url=URL, now=NOW)
        await asyncio.sleep(0.6)
        stopped = cpu_work.worker_pid is None
        restarted = await cpu_work.ready(within=5)
        second = cpu_work._worker
        assert second is not None
        return first.process.returncode, second.process.returncode, stopped, restarted

    first_status, second_status, stopped, restarted = run(work, idle_stop=0.2)
    assert stopped
    assert first_status == 0
    assert restarted
    assert second_status is None  # running until closed


def test_a_busy_worker_is_not_stopped() -> None:
    """Requests one after another, each shorter than idle_stop apart: one worker answers them all."""
    body = big_feed(300)

    async def work(cpu_work: CpuWork) -> set[int | None]:
        assert await cpu_work.ready()
        pids = set()
        for n in range(6):
            await cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW)
            pids.add(cpu_work.worker_pid)
            await asyncio.sleep(0.05)
        return pids

    pids = run(work, idle_stop=0.2)
    assert len(pids) == 1
    assert None not in pids


def test_closing_with_requests_waiting_loses_none_of_them() -> None:
    """Closed while requests wait to be sent: those in the worker are answered before it exits,
    and the waiting ones are done here; none reaches a closed pipe and is lost."""
    body = big_feed(1000)

    async def go() -> list[Any]:
        cpu_work = CpuWork(True)
        assert await cpu_work.ready()
        requests = [
            asyncio.create_task(cpu_work.parse(f"feed-{n}", body, {}, url=URL, now=NOW))
            for n in range(cpu.WINDOW + 2)
        ]
        await asyncio.sleep(0)
        await cpu_work.aclose()
        return await asyncio.gather(*requests, return_exceptions=True)

    results = asyncio.run(go())
    assert [len(r.items) for r in results] == [1000] * (cpu.WINDOW + 2)
