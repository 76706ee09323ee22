"""Starting a feed farm (`bench.farm`) in a child process and driving it from a benchmark.

    with start_farm(200, latency=0.05) as farm:
        urls = farm.urls(200)
        farm.reset()
        ...  # a client polls the feeds
        print(farm.stats())  # {"200": 200, "bytes": ...}
        farm.change(0.05, items=5, seed=1)

The farm runs in its own process so its work is not counted as the client's (`run_measured`
reads the client's own resource usage) and it holds a core of its own when it has work to do.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.farm import feed_url

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 300.0  # building a large farm renders and compresses every feed first


@dataclass
class FarmClient:
    """A running farm: its port and control URL, and its control calls."""

    port: int
    control: str
    feeds: int
    hosts: int  # loopback addresses the feeds are spread over
    ready: dict[str, object]  # the farm's ready line: hosts, build time, bytes per feed
    process: subprocess.Popen[bytes]
    # The farm is on loopback: trust_env=False keeps a proxy from the environment out of the way.
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False, timeout=30))

    def urls(self, count: int | None = None) -> list[str]:
        """The URLs of the first `count` feeds (all of them by default)."""
        count = self.feeds if count is None else count
        return [feed_url(index, self.port, self.hosts) for index in range(count)]

    def change(self, share: float, items: int = 5, seed: int = 0) -> int:
        """Put `items` new items at the top of `share` of the feeds; return how many changed."""
        params = {"share": share, "items": items, "seed": seed}
        response = self._http.post(f"{self.control}/change", params=params)
        response.raise_for_status()
        changed: int = response.json()["changed"]
        return changed

    def stats(self) -> dict[str, int]:
        """Feed responses by status ("200", "304", ...) and body "bytes" since the last reset."""
        response = self._http.get(f"{self.control}/stats")
        response.raise_for_status()
        return {str(key): int(value) for key, value in response.json().items()}

    def reset(self) -> None:
        self._http.post(f"{self.control}/reset").raise_for_status()

    def stop(self) -> None:
        """Ask the farm to stop, close its stdin (which stops it too) and wait for it."""
        if self.process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                self._http.post(f"{self.control}/stop", timeout=5)
        self._http.close()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"the feed farm was not ready after {timeout:.0f} s")
    # The farm prints its ready line in one flushed write, so a readable pipe holds all of it.
    return process.stdout.readline()


@contextlib.contextmanager
def start_farm(feeds: int, latency: float, extra_args: Sequence[str] = ()) -> Iterator[FarmClient]:
    """Run `python -m bench.farm` with `feeds` feeds and `latency` seconds per response until the
    block ends. Its stdin is a pipe held here: if this process dies, the farm ends too."""
    argv = [sys.executable, "-m", "bench.farm", "--feeds", str(feeds), "--latency", str(latency)]
    process = subprocess.Popen([*argv, *extra_args], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = _read_ready_line(process, READY_TIMEOUT)
        if not line:
            raise RuntimeError(f"the feed farm exited ({process.wait()}) before it was ready")
        ready = json.loads(line)
        farm = FarmClient(
            int(ready["port"]), str(ready["control"]), feeds, int(ready["hosts"]), ready, process
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield farm
    finally:
        farm.stop()
