"""Running a command once and reading what it cost: wall time, CPU time and peak memory.

The child's own resource usage comes from `os.wait4`, so the figures are the child's alone
(not the harness's, nor the feed farm's), whatever else the machine is doing.

CPU time includes the child's own children that it waited for (monitor's worker process). Memory
is the peak of the child plus the peaks of its descendants: each process's high-water mark
(VmHWM) is read from /proc while it runs, every SAMPLE_EVERY seconds, and the last reading of
each kept. A sum of peaks is never less than the peak of the sum, so the figure errs high.

The command is spawned from a small process of its own (`python -m bench.measure`, standard
library only): on Linux a child's `ru_maxrss` starts at the peak resident size of the process
that spawned it, carried over exec, so a command spawned straight from a benchmark holding a
farm client, an SMTP sink and monitor's modules (~55 MB) could never report less than that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
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
    max_rss: int  # peak resident set of the child and its descendants, bytes (see above)
    returncode: int
    output: str  # stdout and stderr, merged; kept for a failure's report
    children_max_rss: int = 0  # the descendants' share of max_rss

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            tail = self.output[-3000:]
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}:\n{tail}")
        return self


class KilledFromOutside(RuntimeError):
    """A run ended by a signal the benchmark did not send (another user of a shared machine)."""


ROOT = Path(__file__).resolve().parent.parent


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> ProcessRun:
    """Run `argv` to its end (killed after `timeout` seconds), from a small spawner, and return
    what it cost."""
    spawner = [sys.executable, "-m", "bench.measure", "--timeout", str(timeout)]
    spawner += ["--cwd", str(cwd or Path.cwd()), "--", *argv]
    done = subprocess.run(
        spawner,
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        capture_output=True,
        timeout=timeout + 120,
        check=False,
    )
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise KilledFromOutside(f"{' '.join(argv[:4])} ... was killed by {name} from outside (its spawner)")
    if done.returncode != 0 or not done.stdout.strip():
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"measuring {' '.join(argv)} failed ({done.returncode}):\n{tail}")
    data = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    data["argv"] = tuple(data["argv"])
    return ProcessRun(**data)


def _run_here(argv: Sequence[str], *, cwd: Path | None, timeout: float) -> ProcessRun:
    """Run `argv` as a child of this process and read its cost with `os.wait4`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
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
    peaks: dict[int, int] = {}  # pid -> the last VmHWM read, bytes
    sampled = 0.0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        if time.perf_counter() - sampled >= SAMPLE_EVERY:
            sampled = time.perf_counter()
            for each in _tree(process.pid):
                peak = _high_water_mark(each)
                if peak:
                    peaks[each] = peak
        time.sleep(0.005)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    stdout.close()
    output = b"".join(chunks).decode("utf-8", "replace")
    children = sum(peak for each, peak in peaks.items() if each != process.pid)
    # ru_maxrss is exact for the child itself, or for the largest child it reaped: with none, it is
    # the whole answer; with some, the child's last reading plus theirs, or ru_maxrss if larger.
    own = peaks.get(process.pid, 0)
    return ProcessRun(
        tuple(argv),
        wall,
        usage.ru_utime + usage.ru_stime,
        max(usage.ru_maxrss * 1024, own + children),
        process.returncode,
        output,
        children,
    )


SAMPLE_EVERY = 0.05


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants now living (every thread's children, from /proc)."""
    found, queue = [], [pid]
    while queue:
        each = queue.pop()
        found.append(each)
        try:
            for task in Path(f"/proc/{each}/task").iterdir():
                queue.extend(int(child) for child in (task / "children").read_text("ascii").split())
        except OSError:  # it exited meanwhile
            continue
    return found


def _high_water_mark(pid: int) -> int:
    try:
        with Path(f"/proc/{pid}/status").open(encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


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


def main(args: Sequence[str] | None = None) -> int:
    """The spawner: run COMMAND and print its ProcessRun as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.measure", description=main.__doc__)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--cwd", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(args)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    run = _run_here(command, cwd=options.cwd, timeout=options.timeout)
    print(json.dumps(dataclasses.asdict(run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
