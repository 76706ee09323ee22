"""Child processes of the cycle benchmark (`bench.bench_cycle`), each measured from outside.

    python -m bench.cycle_worker cycles --config C --count 10 --control URL
    python -m bench.cycle_worker naive --urls FILE --concurrency 50 --client raw [--validators FILE]

`cycles` opens monitor's runtime once (`monitor.app.open_runtime`, as `monitor poll` does) and
runs `--count` cycles (`monitor.pipeline.run_cycle`) in that one process, alternating a warm
cycle (nothing changed) and a steady one (a share of the farm's feeds changed first, through the
farm's control URL). After each it prints one JSON line: the cycle's wall and CPU seconds, the
farm's response counts, the process's resident size (VmRSS) and peak (VmHWM) from
/proc/self/status, and the Python heap's live blocks. monitor's worker process (parsing and
matching) is counted in: its CPU time (from /proc/PID/stat) in the cycle's, its VmRSS in the
resident size and beside it; its heap is its own and is not read. A leak shows as RSS that keeps rising from
cycle to cycle, which separate `monitor poll --once` processes would hide (each starts from
nothing); the heap's blocks tell Python objects kept alive from SQLite's page cache filling.

`naive` is the baseline for a warm cycle: the least a Python client can do to poll the same
feeds at the same concurrency: one GET per URL, conditional when a validators file gives the
feed's ETag and Last-Modified, the body read and counted, never decompressed or parsed, nothing
stored. `--client raw` speaks HTTP/1.1 over asyncio streams (keep-alive, one idle-connection
pool per host); `--client httpx` uses a bare `httpx.AsyncClient`, the library monitor fetches
with. With `--save FILE` it writes the validators it received, for the next, conditional, run.
It prints one JSON line: responses by status and bytes received.

Each mode imports only what it uses, so that the raw client's figures carry no httpx import.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import asyncio

    import httpx

# asyncio and httpx are imported where used, not here: the raw client carries no httpx import.

# ---------------------------------------------------------------------------------------------
# cycles: K cycles in one process


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A `kB` field of /proc/PID/status (VmRSS: resident now; VmHWM: the peak so far); 0 when
    the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def process_cpu(pid: int | None) -> float:
    """User and system seconds of another process so far (0 when there is none)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command's closing parenthesis, utime and stime are the 12th and 13th fields.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_heap_blocks() -> int:
    """Blocks the Python allocator holds for live objects, after a full collection (RSS read
    first: the collection is not the daemon's doing). A leak of Python objects grows it; SQLite's
    page cache and the allocator's free lists, which RSS includes, do not."""
    gc.collect()
    return sys.getallocatedblocks()


async def run_cycles(config: Path, count: int, control: str, share: float, items: int, seed: int) -> int:
    # Imported here: the other modes must not pay for monitor's imports.
    import httpx

    from monitor.app import open_runtime
    from monitor.config import load_settings
    from monitor.logs import setup_logging
    from monitor.pipeline import run_cycle
    from monitor.stories import bounded_caches

    setup_logging(False)  # as the CLI does: warnings and errors reach stderr, counted by the parent
    settings = load_settings(config)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as farm, open_runtime(settings) as rt:
        for number in range(count):
            # Warm first: the parent leaves the state up to date with the farm.
            kind = "steady" if number % 2 else "warm"
            changed = 0
            if kind == "steady":
                params = {"share": share, "items": items, "seed": seed + number}
                response = await farm.post(f"{control}/change", params=params)
                changed = int(response.raise_for_status().json()["changed"])
            (await farm.post(f"{control}/reset")).raise_for_status()
            worker = rt.cpu.worker_pid
            # process_time: every thread of this process; the worker's own CPU added
            wall, cpu = time.perf_counter(), time.process_time() + process_cpu(worker)
            report = await run_cycle(rt)
            # A worker started during the cycle counted 0 before it: all its CPU is this cycle's.
            worker = rt.cpu.worker_pid
            wall, cpu = time.perf_counter() - wall, time.process_time() + process_cpu(worker) - cpu
            worker_rss = proc_status_kb("VmRSS", worker) if worker is not None else 0
            stats = (await farm.get(f"{control}/stats")).raise_for_status().json()
            line = {
                "cycle": number + 1,
                "kind": kind,
                "changed": changed,
                "wall": wall,
                "cpu": cpu,
                "responses": {key: int(value) for key, value in stats.items()},
                "new_items": report.new_items,
                "summary": report.summary(),
                "rss_kb": proc_status_kb("VmRSS") + worker_rss,
                "worker_rss_kb": worker_rss,
                "hwm_kb": proc_status_kb("VmHWM") + (proc_status_kb("VmHWM", worker) if worker else 0),
                "py_blocks": python_heap_blocks(),
                # What the heap holds by design and bounds: the word caches, the story index.
                "cached": sum(size for size, _ in bounded_caches()),
                "cache_bound": sum(bound for _, bound in bounded_caches()),
                "index_tokens": rt.store.indexed_tokens(),
            }
            print(json.dumps(line), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# naive: conditional GETs and nothing else

Validators = dict[str, tuple[str | None, str | None]]  # url -> (ETag, Last-Modified)


def conditional_headers(url: str, validators: Validators) -> dict[str, str]:
    etag, modified = validators.get(url, (None, None))
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    return headers


class RawClient:
    """HTTP/1.1 GETs over asyncio streams, keeping idle connections per host for reuse. Enough
    for the farm (Content-Length on every response, no chunking, no redirects); not a client for
    the open internet."""

    def __init__(self) -> None:
        import asyncio

        self.errors: tuple[type[Exception], ...] = (OSError, asyncio.IncompleteReadError, ValueError)
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
        split = urlsplit(url)
        host, port = split.hostname or "", split.port or 80
        pool = self._idle.setdefault((host, port), [])
        if pool:
            reader, writer = pool.pop()
        else:
            import asyncio

            reader, writer = await asyncio.open_connection(host, port)
        lines = [f"GET {split.path} HTTP/1.1", f"Host: {split.netloc}", "Accept-Encoding: gzip"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name:
                fields[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            pool.append((reader, writer))
        return status, fields, len(body)

    async def aclose(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
        self._idle.clear()


class BareHttpx:
    """A bare httpx.AsyncClient: the body is streamed raw (still compressed) and counted."""

    def __init__(self, concurrency: int) -> None:
        import httpx  # only this client pays for it

        self.errors: tuple[type[Exception], ...] = (OSError, httpx.HTTPError, ValueError)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client: httpx.AsyncClient = httpx.AsyncClient(
            limits=limits, trust_env=False, timeout=30, headers={"Accept-Encoding": "gzip"}
        )

    async def get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
        async with self._client.stream("GET", url, headers=headers) as response:
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
            return response.status_code, dict(response.headers), size

    async def aclose(self) -> None:
        await self._client.aclose()


async def run_naive(
    urls: list[str], validators: Validators, concurrency: int, kind: str
) -> tuple[Counter[str], Validators]:
    client: RawClient | BareHttpx = RawClient() if kind == "raw" else BareHttpx(concurrency)
    import asyncio

    limit = asyncio.Semaphore(concurrency)
    counts: Counter[str] = Counter()
    received: Validators = {}

    async def one(url: str) -> None:
        async with limit:
            try:
                status, fields, size = await client.get(url, conditional_headers(url, validators))
            except client.errors:
                counts["errors"] += 1
                return
        counts[str(status)] += 1
        counts["bytes"] += size
        received[url] = (fields.get("etag"), fields.get("last-modified"))

    try:
        await asyncio.gather(*(one(url) for url in urls))
    finally:
        await client.aclose()
    return counts, received


def naive_main(args: argparse.Namespace) -> int:
    urls = Path(args.urls).read_text(encoding="utf-8").split()
    validators: Validators = {}
    if args.validators:
        saved = json.loads(Path(args.validators).read_text(encoding="utf-8"))
        validators = {url: (pair[0], pair[1]) for url, pair in saved.items()}
    started = time.perf_counter()
    import asyncio

    counts, received = asyncio.run(run_naive(urls, validators, args.concurrency, args.client))
    if args.save:
        Path(args.save).write_text(json.dumps(received), encoding="utf-8")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line = {
        "client": args.client,
        "responses": dict(counts),
        "wall": time.perf_counter() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    print(json.dumps(line), flush=True)
    return 1 if counts["errors"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cycle_worker", description=__doc__.split("\n\n")[0]
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    cycles = modes.add_parser("cycles", help="K warm/steady cycles in one process, RSS after each")
    cycles.add_argument("--config", type=Path, required=True)
    cycles.add_argument("--count", type=int, default=10)
    cycles.add_argument("--control", required=True, help="the farm's control URL (…/_farm)")
    cycles.add_argument(
        "--share", type=float, default=0.05, help="share of feeds changed before a steady cycle"
    )
    cycles.add_argument("--items", type=int, default=5, help="new items in each changed feed")
    cycles.add_argument("--seed", type=int, default=1000, help="seed of the first change (then +1 per cycle)")
    naive = modes.add_parser("naive", help="conditional GETs only: the warm cycle's baseline")
    naive.add_argument("--urls", type=Path, required=True, help="a file of URLs, one per line")
    naive.add_argument("--concurrency", type=int, default=50)
    naive.add_argument("--client", choices=("raw", "httpx"), default="raw")
    naive.add_argument("--validators", type=Path, help="JSON {url: [etag, last_modified]} to send")
    naive.add_argument("--save", type=Path, help="write the validators received here")
    args = parser.parse_args(argv)
    if args.mode == "cycles":
        import asyncio

        return asyncio.run(
            run_cycles(args.config, args.count, args.control, args.share, args.items, args.seed)
        )
    return naive_main(args)


if __name__ == "__main__":
    sys.exit(main())
