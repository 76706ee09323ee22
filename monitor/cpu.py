"""The CPU work of a poll, parsing a feed and matching its new items, away from the event loop.

Both are pure Python. Run in the event loop's process, even on a thread of their own, they hold the
GIL against it: fetching and storing wait for them, and a second core does nothing. A worker
process (`python -m monitor.worker`, started from the same interpreter) does them instead; requests
and results go over its standard input and output, pickled. It imports only what parsing and
matching need. It is started when work first queues up behind the thread here, so a poll with
little to parse never starts one; until it is up (a few tenths of a second), and whenever it is
down, the work runs on that thread, as it always does with `worker_process = false`. Both places
run the same pure functions, so the results are the same. Requests wait here and go to the worker
a few at a time, matching before parsing (`_Worker.call`); a worker left without requests for
IDLE_STOP seconds is stopped, and the next burst of work starts another.

A worker that dies takes the feed it was working on with it: that poll fails and is tried again at
the next one. The requests queued behind it are done here, and a new worker is started at the next
request, at most once a minute, so a feed that kills it every time cannot keep us starting one.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import heapq
import logging
import pickle
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from monitor.errors import ParseError
from monitor.parse import ParsedFeed, parse_document
from monitor.types import Item
from monitor.watchlists import Matcher
from monitor.worker import HEADER, Analysis, analyse_all, frame, unpickle

log = logging.getLogger("monitor")
_T = TypeVar("_T")

RESTART_AFTER = 60.0  # seconds before a worker that died is replaced
STOP_TIMEOUT = 5.0  # seconds a worker gets to exit once its input is closed
# Requests in the worker at once: enough that it finds the next one waiting when it answers one,
# while the event loop is busy storing a feed; few, so that a matching request is not queued
# behind many feeds' parsing.
WINDOW = 3
MATCHING, PARSING = 0, 1  # urgency: the lower goes first
# Seconds without a request after which the worker is stopped: a daemon gets its memory back
# between bursts of new items, and the next burst starts another.
IDLE_STOP = 300.0

# One thread does the work here, one feed after another: more threads only fight over the GIL.
_THREAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-cpu")


class _Requeue(Exception):
    """The worker went away before it took up this request: do it here instead."""


class _Worker:
    """A worker process, the requests it has been sent and not answered, and those waiting to be
    sent.

    Only WINDOW requests are in the worker at a time; the rest wait here, matching before parsing
    (see `call`). The worker answers in the order it was sent.
    """

    def __init__(self, process: asyncio.subprocess.Process, settled: asyncio.Event) -> None:
        self.process = process
        self.pending: dict[int, asyncio.Future[Any]] = {}  # sent or waiting, by request number
        self.sent: collections.deque[int] = collections.deque()  # in the worker, oldest first
        self.waiting: list[tuple[int, int, tuple[Any, ...], Matcher | None]] = []  # a heap
        self.ready = False
        self.alive = True
        self.settled = settled  # set once it is ready, or dead
        self.matcher: Matcher | None = None  # whose watchlists the worker holds
        self._ids = 0
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def call(self, urgency: int, request: tuple[Any, ...], matcher: Matcher | None = None) -> Any:
        """The worker's answer to `request`, sent once fewer than WINDOW are in the worker and no
        more urgent one (lower `urgency`) waits; with `matcher`'s watchlists in the worker.

        The event loop gives matching the lead: a feed that has been parsed is a matching request
        away from being stored, which frees its place for the next fetch. Sent as they come, the
        parsing of fifty fetched feeds went ahead of every one of their matching requests, and
        the event loop's process waited for the worker with nothing to store.
        """
        self._ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self._ids] = future
        heapq.heappush(self.waiting, (urgency, self._ids, request, matcher))
        self._send_next()
        return await future

    def _send_next(self) -> None:
        assert self.process.stdin is not None
        # Once its input is closed (being stopped), what waits is done here when the worker exits.
        while self.alive and self.waiting and len(self.sent) < WINDOW and not self.process.stdin.is_closing():
            _, number, request, matcher = heapq.heappop(self.waiting)
            if self.pending[number].done():  # its caller has given up on it
                del self.pending[number]
                continue
            if matcher is not None and self.matcher is not matcher:
                # Requests are answered in order, so this one and every later one see them.
                self.send((0, "watchlists", matcher.watchlists))
                self.matcher = matcher
            self.send((number, *request))
            self.sent.append(number)

    def send(self, message: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame(message))

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        try:
            while True:
                (length,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
                message = unpickle(await stdout.readexactly(length))
                if message == ("ready",):
                    self.ready = True
                    self.settled.set()
                    continue
                number, ok, payload = message
                if self.sent.popleft() != number:
                    raise ValueError(f"the worker answered request {number} out of turn")
                future = self.pending.pop(number, None)
                self._send_next()
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(payload)
                elif payload[0] == "parse":
                    future.set_exception(ParseError(payload[1], payload[2]))
                else:
                    future.set_exception(RuntimeError(f"in the worker process: {payload[1]}"))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, ValueError, IndexError):
            pass
        finally:
            self.alive = False
            self.settled.set()
            await self._died()

    async def _died(self) -> None:
        try:  # its output has ended: it has exited, or is exiting
            status: int | None = await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            status = await self.process.wait()
        working_on = self.sent[0] if self.sent else None
        requests, self.waiting = self.pending, []
        self.pending, self.sent = {}, collections.deque()
        for number, future in requests.items():
            if future.done():
                continue
            if number == working_on:
                future.set_exception(_WorkerDied(status))
            else:
                future.set_exception(_Requeue())


async def _stop(worker: _Worker) -> None:
    """Close the worker's input, and kill it if it has not exited STOP_TIMEOUT later."""
    if worker.process.stdin is not None:
        worker.process.stdin.close()
    try:  # the reader ends when the worker's output does, once it has exited
        await asyncio.wait_for(asyncio.shield(worker.reader), STOP_TIMEOUT)
    except TimeoutError:  # still busy, or stopped
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        await worker.reader


class _WorkerDied(Exception):
    def __init__(self, status: int | None) -> None:
        super().__init__(f"the worker process died (exit status {status})")


class CpuWork:
    """Where parsing and matching run: a worker process when `use_process`, else a thread."""

    def __init__(
        self, use_process: bool, *, clock: Callable[[], float] = time.monotonic, idle_stop: float = IDLE_STOP
    ) -> None:
        self.use_process = use_process
        self._clock = clock
        self._idle_stop = idle_stop
        self._idle_timer: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()  # idle workers being stopped
        self._worker: _Worker | None = None
        self._starting: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()  # of the worker being started
        self._died_at: float | None = None
        self._thread_job: asyncio.Future[Any] | None = None  # the last request given to the thread

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one runs (a benchmark reads its CPU and memory)."""
        worker = self._worker
        return worker.process.pid if worker is not None and worker.alive else None

    async def parse(
        self, feed: str, body: bytes, headers: Mapping[str, str], *, url: str, now: datetime
    ) -> ParsedFeed:
        """`parse_document` of a fetched body; raises ParseError as it does."""
        headers = dict(headers)
        local = functools.partial(parse_document, feed, body, headers, url=url, now=now)
        return await self._run(feed, local, ("parse", feed, body, headers, url, now), PARSING)

    async def analyse(self, feed: str, matcher: Matcher, items: Sequence[Item]) -> list[Analysis]:
        """`analyse` of each item, in order."""
        items = list(items)
        if not items:
            return []
        local = functools.partial(analyse_all, items, matcher)
        return await self._run(feed, local, ("analyse", items), MATCHING, matcher)

    async def _run(
        self,
        feed: str,
        local: Callable[[], _T],
        request: tuple[Any, ...],
        urgency: int,
        matcher: Matcher | None = None,
    ) -> _T:
        while True:
            worker = self._available()
            if worker is not None:
                if self._idle_timer is not None:
                    self._idle_timer.cancel()
                try:
                    result: _T = await worker.call(urgency, request, matcher)
                    return result
                except _Requeue:
                    return await self._on_thread(local)
                except _WorkerDied as e:
                    log.error("feed %s: %s while reading it; it is polled again next time", feed, e)
                    raise ParseError(feed, f"{e} while reading this feed") from None
                finally:
                    if worker is self._worker and not worker.pending:
                        self._idle_timer = asyncio.get_running_loop().call_later(
                            self._idle_stop, self._stop_idle
                        )
            busy = self._thread_job
            if busy is None:
                return await self._on_thread(local)
            # Work is queuing up: now a worker is worth its start (a few feeds changed since the
            # last poll never get here, and cost no process). While it starts, the thread takes one
            # request at a time, and the others wait for whichever is free first instead of
            # queuing behind the thread (a cold cycle's first fifty feeds arrive at once).
            self.start()
            coming = self._coming()
            if coming is None:  # no worker, and none coming: the thread it is
                return await self._on_thread(local)
            waiting = asyncio.ensure_future(coming.wait())
            try:
                await asyncio.wait((waiting, busy), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

    async def _on_thread(self, local: Callable[[], _T]) -> _T:
        job = asyncio.get_running_loop().run_in_executor(_THREAD, local)
        self._thread_job = job
        try:
            return await job
        finally:
            if self._thread_job is job:
                self._thread_job = None

    def _coming(self) -> asyncio.Event | None:
        """While a worker is starting, or started but not ready: the event set when it is ready
        (or has failed)."""
        if not self.use_process:
            return None
        worker = self._worker
        if worker is not None:
            return worker.settled if worker.alive and not worker.ready else None
        return self._settled if self._starting is not None else None

    def _available(self) -> _Worker | None:
        """The worker, when it is up and in use."""
        worker = self._worker
        if not self.use_process:  # turned off by a reload: a running worker stays idle until closed
            return None
        return worker if worker is not None and worker.alive and worker.ready else None

    def start(self) -> None:
        """Start a worker now, unless one runs or is starting, or the last one died under a minute
        ago; without waiting for it to be ready."""
        worker = self._worker
        if worker is not None and not worker.alive:
            self._worker = None
            self._died_at = self._clock()
        if not self.use_process or self._starting is not None or self._worker is not None:
            return
        if self._died_at is not None and self._clock() - self._died_at < RESTART_AFTER:
            return
        self._settled = asyncio.Event()
        self._starting = asyncio.get_running_loop().create_task(self._start(self._settled))

    async def ready(self, within: float = 30.0) -> bool:
        """Start a worker if there is none, and wait until it takes requests; whether it does."""
        self.start()
        if self._starting is not None:
            await self._starting
        worker = self._worker
        if worker is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.settled.wait(), within)
        return worker.alive and worker.ready

    async def _start(self, settled: asyncio.Event) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            log.error("cannot start the worker process (%s); parsing in this process", e)
            self._died_at = self._clock()
            settled.set()
        else:
            self._worker = _Worker(process, settled)
        finally:
            self._starting = None

    def _stop_idle(self) -> None:
        self._idle_timer = None
        worker = self._worker
        if worker is None or worker.pending or not worker.alive:  # busy, or dead (see `start`)
            return
        self._worker = None
        log.debug("worker process %d idle for %g s: stopped", worker.process.pid, self._idle_stop)
        task = asyncio.get_running_loop().create_task(_stop(worker))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def aclose(self) -> None:
        """Stop the worker: its input is closed, and it is killed if it does not exit in time."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._starting is not None:
            await self._starting
        worker, self._worker = self._worker, None
        if worker is not None:
            await _stop(worker)
        if self._stopping:
            await asyncio.gather(*self._stopping)

    async def __aenter__(self) -> CpuWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
