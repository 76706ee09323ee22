"""Running a command once and reading what it cost: wall time, CPU time and peak memory.

The child's own resource usage comes from `os.wait4`, so the figures are the child's alone
(not the harness's, nor the feed farm's), whatever else the machine is doing.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRun:
    argv: tuple[str, ...]
    wall: float  # seconds from start to exit
    cpu: float  # user + system seconds of the child
    max_rss: int  # peak resident set of the child, bytes (VmHWM)
    returncode: int
    output: str  # stdout and stderr, merged; kept for a failure's report

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            tail = self.output[-3000:]
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}:\n{tail}")
        return self


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> ProcessRun:
    """Run `argv` to its end (killed after `timeout` seconds) and return what it cost."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    # Output is drained by a thread so a chatty child never blocks on a full pipe.
    stdout = process.stdout
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(stdout.read()), daemon=True)
    reader.start()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    stdout.close()
    output = b"".join(chunks).decode("utf-8", "replace")
    return ProcessRun(
        tuple(argv),
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss * 1024,
        process.returncode,
        output,
    )


@dataclass(frozen=True)
class Spread:
    """A median with the smallest and largest of the runs it came from."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def format(self, unit: str = "s", digits: int = 2) -> str:
        if self.runs == 1:
            return f"{self.median:.{digits}f} {unit}".strip()
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f}) {unit}".strip()
