"""Cycle benchmark: what one `monitor poll --once` costs against 100, 1,000 and 5,000 feeds.

    python -m bench.bench_cycle              # or: make bench; ~15 min with the peers and the profile
    python -m bench.bench_cycle --quick      # 100 and 300 feeds, 1-2 runs, 50 peer feeds: a smoke test
    python -m bench.bench_cycle --help       # sizes, runs, concurrency, what to skip

Every figure is one process measured from outside (`bench.measure.run_measured`: `os.wait4`
gives the child's own wall time, CPU time over all its threads, and peak resident set; called
from a small process of its own, `python -m bench.measure`, because a child's `ru_maxrss`
starts at its spawner's peak, and this benchmark's process is bigger than a peer), against
a feed farm in a process of its own (`bench.farm`: N feeds of 30 items over 50 loopback
addresses, ETag, Last-Modified, gzip, 50 ms before each response), alerting by email to a
counting SMTP sink on loopback (`bench.sinks`). The configuration is the defaults, except
`allow_private_networks = true` (the farm is on loopback), `max_concurrency` (`--concurrency`,
50 by default) and a temporary `state_path`.

Sections, each timed:

1. Start-up: `monitor --help` and `monitor poll --once` on a configuration without feeds, so a
   reader can tell how much of a small cycle is the fixed cost of starting the CLI.
2. Per size: cold cycles (a fresh state directory each: every feed and item is new), warm cycles
   (nothing changed: the farm must count N 304s), steady cycles (5% of the feeds got 5 new items
   first: the farm must count that many 200s), interleaved with a naive client doing only the
   warm cycle's conditional GETs at the same concurrency (`bench.cycle_worker naive`: raw asyncio
   streams, and a bare httpx client), and the theoretical floor, ceil(N / concurrency) × latency.
   Then one process runs K cycles with the runtime opened once (`bench.cycle_worker cycles`),
   reporting its RSS after each: flat, or growing from cycle to cycle.
3. Peers (`bench.peers`): rss2email and newsboat against 200 feeds, each tool on a fresh farm
   built from the same seed, cold, warm twice, steady, with monitor run the same way.
4. Profile of a cold 1,000-feed cycle with py-spy (`record --subprocesses --threads --function
   --format raw`): parsing and matching run in monitor's worker process (or a thread), which
   pyinstrument, profiling only the thread it starts on, does not see. The raw samples go to
   .cache/profile/ (git-ignored); the top costs go into the results.

Results are printed and written to bench/RESULTS.md as two sections between markers (cycle and
peers), like the other benchmarks' sections. Exit status 1 when a count the farm reports does
not match what a scenario requires (the figures would not mean what they say); targets met or
not are reported, never an error.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import bench
import bench.peers
from bench.bench_matcher import checkout, machine
from bench.farm_client import FarmClient, start_farm
from bench.measure import KilledFromOutside, ProcessRun, Spread, run_measured
from bench.peers import (
    CACHE,
    Newsboat,
    Phase,
    Rss2Email,
    ensure_newsboat,
    ensure_rss2email,
    format_phases,
    run_phase,
    run_phases,
)
from bench.sinks import LOOPBACK, SmtpSink

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
WATCHLISTS_DIR = ROOT / "watchlists"
PROFILE_DIR = CACHE / "profile"  # git-ignored, as all of .cache/
CYCLE_START, CYCLE_END = "<!-- cycle:start -->", "<!-- cycle:end -->"
PEERS_START, PEERS_END = "<!-- peers:start -->", "<!-- peers:end -->"

LATENCY = 0.05  # seconds before each farm response: a distant publisher
FARM_ITEMS = 30  # items per farm feed (the farm's default)
DEFAULT_SIZES = (100, 1_000, 5_000)
QUICK_SIZES = (100, 300)
DEFAULT_CONCURRENCY = 50
DEFAULT_RUNS = 5
# Sizes from here get one cold run (a cold 5,000-feed cycle takes minutes), 3 warm and 2 steady.
LARGE_FROM = 2_000
CHANGE_SHARE, CHANGE_ITEMS = 0.05, 5  # steady: 5% of the feeds get 5 new items each
COLD_BUDGET = 240.0  # seconds of cold runs per size: another run starts only if it would fit
SETTLE_CYCLES = 3  # unmeasured cycles allowed after the cold ones to fetch feeds that failed
MEMORY_CYCLES = 10
OTHER_SIZE_CYCLES = 2  # one warm and one steady cycle in-process at every other size
PEER_FEEDS = 200
PROFILE_FEEDS = 1_000
PROFILE_RATE = 100  # samples a second
RUN_TIMEOUT = 900.0  # seconds for one process; a cold cycle beyond it is reported and skipped
# The farm stops itself after 30 min by default; a 5,000-feed session can take longer. It still
# ends with this process (its stdin closes), so a long lifetime leaves nothing behind.
FARM_ARGS = ("--lifetime", str(6 * 3600))
NAIVE_CLIENTS = ("raw", "httpx")
SENDER, RECIPIENT = "monitor@bench.invalid", "reader@bench.invalid"

TARGET_WARM_FEEDS = 1_000
TARGET_WARM_FLOOR = 2.0  # warm wall at most this times the floor
TARGET_WARM_CPU_MS = 2.0  # client CPU per request, warm
TARGET_COLD_ITEM_MS = 1.0  # client CPU per new item, cold
TARGET_RSS_FEEDS = 5_000
TARGET_RSS_MB = 200.0
TARGET_PEER_SPEEDUP = 5.0  # monitor at least this much faster than rss2email, warm and cold
FLAT_FACTOR, FLAT_SLACK_MB = 1.15, 5.0  # repeated cycles: the soak test's bound (tests/test_soak.py)
FLAT_PER_UNIT = 1.5  # a cost per item or per feed is "flat" across sizes within this ratio
FLAT_HEAP = 1.05  # and the Python heap's live blocks within 5% of the second cycle's

MB = 2**20
SUMMARY = re.compile(
    r"feeds: (?P<ok>\d+) ok, (?P<not_modified>\d+) not modified, (?P<failed>\d+) failed"
    r"(?:, (?P<disabled>\d+) disabled)?; new items: (?P<new_items>\d+); matches: (?P<matches>\d+); "
    r"alerts sent: (?P<sent>\d+); alerts pending: (?P<pending>\d+)"
)

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# One `monitor poll --once`


def monitor_executable() -> Path:
    """The `monitor` console script of the environment this benchmark runs in (.venv/bin)."""
    script = Path(sys.executable).parent / "monitor"
    if not script.is_file():
        raise SystemExit(f"{script} not found: install the project (make bench does) and run from its venv")
    return script


def compile_sources() -> None:
    """Write monitor's bytecode, as installing its wheel does. In an editable install with
    PYTHONDONTWRITEBYTECODE set, none is ever written, and every start compiles the sources
    (a tenth of a second here), which an installed copy never does."""
    if not compileall.compile_dir(ROOT / "monitor", quiet=1):
        raise SystemExit("monitor's sources did not compile")


def cli_environment() -> dict[str, str]:
    """Ours, with monitor's logs as JSON lines (parsed for warnings) and no $MONITOR_CONFIG."""
    env = {name: value for name, value in os.environ.items() if name != "MONITOR_CONFIG"}
    env["MONITOR_LOG_FORMAT"] = "json"
    return env


def write_config(
    directory: Path, urls: Sequence[str], smtp_port: int, concurrency: int, worker_process: bool = True
) -> Path:
    """A config.toml in `directory` with its state beside it: one feed per URL, mail to the sink."""
    directory.mkdir(parents=True, exist_ok=True)
    feeds = "".join(f'[[feeds]]\nname = "f{i}"\nurl = "{url}"\n\n' for i, url in enumerate(urls))
    text = f"""# Written by bench/bench_cycle.py.
[defaults]
allow_private_networks = true  # the farm is on loopback, which monitor refuses otherwise
state_path = "{directory / "state" / "monitor.db"}"
watchlists_dir = "{WATCHLISTS_DIR}"
max_concurrency = {concurrency}
worker_process = {str(worker_process).lower()}

[channels.mail]
type = "email"
host = "{LOOPBACK}"
port = {smtp_port}
security = "none"
sender = "{SENDER}"
recipients = ["{RECIPIENT}"]

{feeds}"""
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Summary:
    """`monitor poll`'s summary line, parsed."""

    ok: int
    not_modified: int
    failed: int
    new_items: int
    matches: int
    sent: int
    pending: int

    @classmethod
    def parse(cls, output: str) -> Summary | None:
        found = SUMMARY.search(output)
        if found is None:
            return None
        values = {name: int(found[name]) for name in ("ok", "not_modified", "failed", "new_items")}
        values |= {name: int(found[name]) for name in ("matches", "sent", "pending")}
        return cls(**values)


def log_problems(output: str) -> tuple[str, ...]:
    """The messages of the WARNING and ERROR lines of monitor's JSON log."""
    problems = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                problems.append(f"{record['level']}: {record.get('msg', line)}")
    return tuple(problems)


def requests_of(responses: Mapping[str, int]) -> int:
    return sum(count for status, count in responses.items() if status.isdigit())


@dataclass(frozen=True)
class CliRun:
    """One measured `monitor poll --once`, with what the farm and the sink saw meanwhile."""

    run: ProcessRun
    responses: Mapping[str, int]  # the farm's counts: "200", "304", "bytes"
    messages: int  # mails the sink received
    summary: Summary | None
    problems: tuple[str, ...]
    timed_out: bool

    @property
    def requests(self) -> int:
        return requests_of(self.responses)

    def count(self, status: int) -> int:
        return self.responses.get(str(status), 0)

    @property
    def new_items(self) -> int:
        return self.summary.new_items if self.summary is not None else 0


def retried(run: Callable[[], CliRun], checks: Checks, label: str) -> CliRun:
    """`run()`, once more if something outside killed it: that says nothing about monitor."""
    try:
        return run()
    except KilledFromOutside as e:
        checks.oddities.append(f"{label}: {str(e).splitlines()[0]}; run again")
        return run()


def run_cli(
    config: Path, farm: FarmClient | None, sink: SmtpSink, timeout: float, *, may_time_out: bool = False
) -> CliRun:
    """Run `monitor poll --once` on `config` with the farm's and the sink's counters zeroed first.
    A failure raises; so does running out of time, unless the caller handles it (`may_time_out`)."""
    if farm is not None:
        farm.reset()
    sink.reset()
    argv = [str(monitor_executable()), "poll", "--once", "--config", str(config)]
    run = run_measured(argv, cwd=config.parent, env=cli_environment(), timeout=timeout)
    timed_out = run.returncode < 0 and run.wall >= timeout
    if timed_out and not may_time_out:
        raise RuntimeError(f"monitor poll --once on {config} did not finish within {timeout:.0f} s")
    if run.returncode < 0 and not timed_out:
        # Not our doing: the only signal this benchmark sends is the time limit's SIGKILL.
        name = signal.Signals(-run.returncode).name
        tail = run.output[-1500:]
        raise KilledFromOutside(f"monitor poll --once on {config} was killed by {name} from outside:\n{tail}")
    if run.returncode != 0 and not timed_out:
        run.check()  # raises with the output's tail
    responses = farm.stats() if farm is not None else {}
    summary = Summary.parse(run.output)
    return CliRun(run, responses, sink.count, summary, log_problems(run.output), timed_out)


# ---------------------------------------------------------------------------------------------
# Results of each section


@dataclass(frozen=True)
class NaiveRun:
    client: str
    run: ProcessRun
    responses: Mapping[str, int]

    @property
    def requests(self) -> int:
        return requests_of(self.responses)


@dataclass(frozen=True)
class WorkerCycle:
    """One cycle of `bench.cycle_worker cycles`: a line of its output."""

    number: int
    kind: str
    changed: int
    wall: float
    cpu: float
    responses: Mapping[str, int]
    new_items: int
    rss_mb: float
    hwm_mb: float
    py_blocks: int  # the Python heap's live blocks, after a full collection
    worker_rss_mb: float  # the worker process's part of rss_mb
    cached: int  # entries in monitor.stories' bounded caches
    cache_bound: int  # ... and the most they hold
    index_tokens: int  # distinct tokens in the in-memory story index


@dataclass
class SizeResult:
    feeds: int
    farm: Mapping[str, object] = field(default_factory=dict)
    cold: list[CliRun] = field(default_factory=list)
    # Cold runs with `worker_process = false` (parsing and matching on a thread of the one
    # process), each right after a cold run with the worker: at the repeated-cycles size only.
    cold_in_process: list[CliRun] = field(default_factory=list)
    settle: CliRun | None = None  # an unmeasured cycle after a cold one some feeds failed in
    warm: list[CliRun] = field(default_factory=list)
    steady: list[tuple[int, CliRun]] = field(default_factory=list)  # (feeds changed, run)
    naive_cold: dict[str, NaiveRun] = field(default_factory=dict)
    naive_warm: dict[str, list[NaiveRun]] = field(default_factory=dict)
    cycles: list[WorkerCycle] = field(default_factory=list)
    cycles_run: ProcessRun | None = None
    notes: list[str] = field(default_factory=list)
    cold_timed_out: bool = False
    seconds: float = 0.0

    def floor(self, concurrency: int, latency: float) -> float:
        """The least a warm cycle can take: ceil(N / concurrency) rounds of one latency each."""
        return math.ceil(self.feeds / concurrency) * latency


@dataclass(frozen=True)
class Startup:
    help: list[ProcessRun]
    empty_poll: list[ProcessRun]
    floor_rss: int  # ru_maxrss of /bin/true run the same way: the least any peak RSS can read

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.empty_poll)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.empty_poll)


@dataclass
class Profile:
    feeds: int
    wall: float = 0.0  # under the profiler
    raw_path: Path | None = None
    samples: int = 0  # of running threads
    waiting: int = 0  # samples of threads blocked (WAITING), left out of the shares
    threads: list[tuple[str, float]] = field(default_factory=list)  # (thread group, share)
    self_top: list[tuple[str, float]] = field(default_factory=list)  # (function, share of samples)
    monitor_top: list[tuple[str, float]] = field(default_factory=list)  # inclusive, monitor/ only
    summary: Summary | None = None
    skipped: str | None = None


@dataclass
class PeerResult:
    feeds: int
    tools: dict[str, list[Phase]] = field(default_factory=dict)  # tool -> phases
    versions: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # tool -> why
    problems: list[str] = field(default_factory=list)  # monitor's warnings during its phases


@dataclass
class Checks:
    """Counts that did not come out as the scenario requires, and other things worth a look."""

    failures: list[str] = field(default_factory=list)
    oddities: list[str] = field(default_factory=list)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)


# ---------------------------------------------------------------------------------------------
# Sections


def measure_startup(work: Path, sink: SmtpSink, runs: int, concurrency: int, timeout: float) -> Startup:
    """`monitor --help`, and `monitor poll --once` with no feeds (its database already created by
    an unmeasured first run), interleaved."""
    config = write_config(work / "startup", [], sink.port, concurrency)
    run_cli(config, None, sink, timeout)  # creates and migrates the database
    helps, polls = [], []
    floor = run_measured(["/bin/true"], cwd=work, timeout=timeout).max_rss
    for _ in range(runs):
        helps.append(
            run_measured(
                [str(monitor_executable()), "--help"], cwd=work, env=cli_environment(), timeout=timeout
            ).check()
        )
        polls.append(run_cli(config, None, sink, timeout).run)
    return Startup(helps, polls, floor)


def run_naive(
    client: str,
    urls_file: Path,
    concurrency: int,
    farm: FarmClient,
    timeout: float,
    *,
    validators: Path | None = None,
    save: Path | None = None,
) -> NaiveRun:
    argv = [sys.executable, "-m", "bench.cycle_worker", "naive", "--urls", str(urls_file)]
    argv += ["--concurrency", str(concurrency), "--client", client]
    if validators is not None:
        argv += ["--validators", str(validators)]
    if save is not None:
        argv += ["--save", str(save)]
    farm.reset()
    run = run_measured(argv, cwd=ROOT, timeout=timeout).check()
    return NaiveRun(client, run, farm.stats())


def run_worker_cycles(
    config: Path, farm: FarmClient, count: int, timeout: float
) -> tuple[ProcessRun, list[WorkerCycle]]:
    argv = [sys.executable, "-m", "bench.cycle_worker", "cycles", "--config", str(config)]
    argv += ["--count", str(count), "--control", farm.control]
    argv += ["--share", str(CHANGE_SHARE), "--items", str(CHANGE_ITEMS)]
    run = run_measured(argv, cwd=ROOT, env=cli_environment(), timeout=timeout).check()
    cycles = []
    for line in run.output.splitlines():
        if not line.startswith('{"cycle"'):
            continue
        data = json.loads(line)
        cycles.append(
            WorkerCycle(
                int(data["cycle"]),
                str(data["kind"]),
                int(data["changed"]),
                float(data["wall"]),
                float(data["cpu"]),
                {str(k): int(v) for k, v in data["responses"].items()},
                int(data["new_items"]),
                int(data["rss_kb"]) / 1024,
                int(data["hwm_kb"]) / 1024,
                int(data["py_blocks"]),
                int(data.get("worker_rss_kb", 0)) / 1024,
                int(data["cached"]),
                int(data["cache_bound"]),
                int(data["index_tokens"]),
            )
        )
    return run, cycles


def note_problems(checks: Checks, label: str, problems: Sequence[str]) -> None:
    """Warnings in monitor's log are not expected against the farm: keep a few of them to show."""
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        checks.oddities.append(f"{label}: {len(problems)} warning/error log lines ({shown})")


def expect_counts(checks: Checks, label: str, run: CliRun, want: Mapping[str, int]) -> None:
    """The farm's counts must be what the scenario sets up, and no feed may fail; when monitor
    reports failed feeds (its log says why), that is its own doing and is reported as an oddity,
    not as a miscount by the harness."""
    counts = ", ".join(f"{run.count(int(status))} {status}s (expected {n})" for status, n in want.items())
    failed = run.summary.failed if run.summary is not None else None
    if failed:
        checks.oddities.append(f"{label}: monitor reported {failed} feeds failed; the farm counted {counts}")
    else:
        checks.expect(
            failed == 0 and all(run.count(int(status)) == n for status, n in want.items()),
            f"{label}: the farm counted {counts}" + ("; no summary line" if failed is None else ""),
        )
    note_problems(checks, label, run.problems)


def measure_size(
    feeds: int, args: argparse.Namespace, sink: SmtpSink, work: Path, checks: Checks, say: Say
) -> SizeResult:
    """Cold, warm (interleaved with the naive clients), steady, then repeated cycles in one process.
    A failure ends the size, keeping what was measured before it."""
    result = SizeResult(feeds)
    started = time.perf_counter()
    try:
        _measure_size(result, args, sink, work, checks, say)
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
        result.notes.append(f"stopped by an error: {str(e)[-600:]}")
        checks.failures.append(f"{feeds:,} feeds: {str(e).strip().splitlines()[0][:300]}")
        say(f"  ERROR: {e}")
    result.seconds = time.perf_counter() - started
    return result


def _measure_size(
    result: SizeResult, args: argparse.Namespace, sink: SmtpSink, work: Path, checks: Checks, say: Say
) -> None:
    feeds = result.feeds
    large = feeds >= LARGE_FROM
    cold_runs = args.cold_runs or (1 if large else min(args.runs, 3))
    warm_runs = min(args.runs, 3) if large else args.runs
    steady_runs = min(args.runs, 2 if large else 3)
    here = work / f"feeds-{feeds}"
    with start_farm(feeds, args.latency, FARM_ARGS) as farm:
        result.farm = farm.ready
        urls = farm.urls(feeds)
        say(f"  farm: {feeds:,} feeds built in {farm.ready['build_seconds']} s")

        config = None
        for number in range(cold_runs):
            label = f"{feeds:,} feeds, cold run {number + 1}"
            directory = here / f"cold-{number}"

            def cold(directory: Path = directory) -> CliRun:
                shutil.rmtree(directory, ignore_errors=True)  # a fresh state, also for a second try
                fresh = write_config(directory, urls, sink.port, args.concurrency)
                return run_cli(fresh, farm, sink, args.timeout, may_time_out=True)

            if config is not None:
                shutil.rmtree(config.parent)  # only the last cold run's state is used again
            run = retried(cold, checks, label)
            config = directory / "config.toml"
            if run.timed_out:
                result.notes.append(
                    f"cold run {number + 1} exceeded the {args.timeout:.0f} s limit and was stopped "
                    f"(by then {run.run.cpu:.0f} s of CPU, peak RSS {run.run.max_rss / MB:.0f} MB, "
                    f"{run.count(200):,} feeds fetched); warm and steady cycles need a complete cold "
                    "one, so they were not measured"
                )
                say(f"  cold {number + 1}: TIMED OUT after {run.run.wall:.0f} s")
                result.cold_timed_out = True
                return
            result.cold.append(run)
            say(f"  cold {number + 1}: {describe(run)}")
            expect_counts(checks, label, run, {"200": feeds})
            if feeds == args.memory_feeds:
                alone = here / f"cold-in-process-{number}"

                def cold_in_process(directory: Path = alone) -> CliRun:
                    shutil.rmtree(directory, ignore_errors=True)
                    fresh = write_config(directory, urls, sink.port, args.concurrency, worker_process=False)
                    return run_cli(fresh, farm, sink, args.timeout)

                in_process = retried(cold_in_process, checks, f"{label}, worker_process = false")
                shutil.rmtree(alone)
                result.cold_in_process.append(in_process)
                say(f"  cold {number + 1}, worker_process = false: {describe(in_process)}")
                expect_counts(checks, f"{label}, worker_process = false", in_process, {"200": feeds})
            spent = sum(r.run.wall for r in result.cold)
            if number + 1 < cold_runs and spent + run.run.wall > COLD_BUDGET:
                # Another run like the last would take the cold runs past their budget.
                result.notes.append(
                    f"{number + 1} cold run{'s' if number else ''} instead of {cold_runs}: "
                    f"{spent:.0f} s so far, and another would pass the {COLD_BUDGET:.0f} s given to "
                    "cold runs at one size"
                )
                break
        assert config is not None
        settle = result.cold[-1]
        for _ in range(SETTLE_CYCLES):
            if settle.summary is not None and settle.summary.ok + settle.summary.not_modified == feeds:
                break
            # Feeds that failed have no validators yet: another cycle fetches them, so that the
            # warm cycles measured next see every feed answer 304.
            settle = result.settle = run_cli(config, farm, sink, args.timeout)
            say(f"  settling cycle (not measured): {describe(settle)}")

        urls_file = here / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        validators = {}
        for client in NAIVE_CLIENTS:
            validators[client] = here / f"validators-{client}.json"
            naive = run_naive(
                client, urls_file, args.concurrency, farm, args.timeout, save=validators[client]
            )
            result.naive_cold[client] = naive
            checks.expect(
                naive.responses.get("200", 0) == feeds,
                f"{feeds:,} feeds, naive {client} client, unconditional: "
                f"{naive.responses.get('200', 0)} 200s",
            )

        # Warm rounds: monitor and the naive clients one after another in each round, so that
        # a noisy neighbour slows them alike.
        result.naive_warm = {client: [] for client in NAIVE_CLIENTS}
        state: Path = config
        for number in range(warm_runs):
            label = f"{feeds:,} feeds, warm run {number + 1}"
            run = retried(lambda: run_cli(state, farm, sink, args.timeout), checks, label)
            result.warm.append(run)
            expect_counts(checks, label, run, {"304": feeds})
            for client in NAIVE_CLIENTS:
                naive = run_naive(
                    client, urls_file, args.concurrency, farm, args.timeout, validators=validators[client]
                )
                result.naive_warm[client].append(naive)
                checks.expect(
                    naive.responses.get("304", 0) == feeds,
                    f"{label}, naive {client}: {naive.responses.get('304', 0)} 304s",
                )
            raw_wall = result.naive_warm["raw"][-1].run.wall
            say(f"  warm {number + 1}: {describe(run)}; naive raw client {raw_wall:.2f} s")

        for number in range(steady_runs):
            changed = farm.change(CHANGE_SHARE, CHANGE_ITEMS, seed=number + 1)
            run = run_cli(config, farm, sink, args.timeout)
            result.steady.append((changed, run))
            label = f"{feeds:,} feeds, steady run {number + 1} ({changed} feeds changed)"
            expect_counts(checks, label, run, {"200": changed, "304": feeds - changed})
            say(f"  steady {number + 1} ({changed} changed): {describe(run)}")

        count = args.cycles if feeds == args.memory_feeds else OTHER_SIZE_CYCLES
        if count:
            result.cycles_run, result.cycles = run_worker_cycles(config, farm, count, args.timeout)
            for cycle in result.cycles:
                want = {"200": cycle.changed, "304": feeds - cycle.changed}
                for status, expected in want.items():
                    checks.expect(
                        cycle.responses.get(status, 0) == expected,
                        f"{feeds:,} feeds, in-process cycle {cycle.number} ({cycle.kind}): "
                        f"{cycle.responses.get(status, 0)} {status}s, not {expected}",
                    )
            note_problems(
                checks, f"{feeds:,} feeds, in-process cycles", log_problems(result.cycles_run.output)
            )
            rss = ", ".join(f"{c.rss_mb:.0f}" for c in result.cycles)
            say(f"  {len(result.cycles)} cycles in one process: RSS after each {rss} MB")


def describe(run: CliRun) -> str:
    summary = run.summary
    items = f", {summary.new_items:,} new items, {summary.failed} failed" if summary else ""
    return (
        f"{run.run.wall:.2f} s, CPU {run.run.cpu:.2f} s, peak RSS {run.run.max_rss / MB:.0f} MB, "
        f"200: {run.count(200)}, 304: {run.count(304)}{items}"
    )


class MonitorPeer:
    """monitor in `bench.peers`' terms: `monitor poll --once` with the email channel."""

    name = "monitor"

    def __init__(self, workdir: Path, smtp_port: int, concurrency: int, timeout: float) -> None:
        self.workdir = workdir
        self.smtp_port = smtp_port
        self.concurrency = concurrency
        self.timeout = timeout
        self.config: Path | None = None
        self.problems: list[str] = []

    def setup(self, urls: list[str]) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.config = write_config(self.workdir, urls, self.smtp_port, self.concurrency)

    def run(self) -> ProcessRun:
        assert self.config is not None
        argv = [str(monitor_executable()), "poll", "--once", "--config", str(self.config)]
        run = run_measured(argv, cwd=self.workdir, env=cli_environment(), timeout=self.timeout).check()
        self.problems += log_problems(run.output)
        return run

    def version(self) -> str:
        return f"monitor {metadata.version('monitor')} (max_concurrency {self.concurrency})"

    def stored(self) -> int:
        path = self.workdir / "state" / "monitor.db"
        if not path.is_file():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            count: int = db.execute("SELECT count(*) FROM items").fetchone()[0]
            return count


def monitor_phases(peer: MonitorPeer, farm: FarmClient, feeds: int, sink: SmtpSink) -> list[Phase]:
    """The phases of `bench.peers.run_phases` (cold, warm, warm 2, steady, with the same change),
    without waiting for a mail per item: monitor sends one mail per delivery run, not per item."""
    peer.setup(farm.urls(feeds))
    phases = [run_phase("cold", peer, farm, sink), run_phase("warm", peer, farm, sink)]
    phases.append(run_phase("warm 2", peer, farm, sink))
    farm.change(CHANGE_SHARE, CHANGE_ITEMS, seed=1)  # run_phases' default seed: the same change
    phases.append(run_phase("steady", peer, farm, sink))
    return phases


def measure_peers(
    args: argparse.Namespace, sink: SmtpSink, work: Path, checks: Checks, say: Say
) -> PeerResult:
    """monitor, rss2email and newsboat on `--peer-feeds` feeds, each on a fresh farm of the same seed."""
    feeds = args.peer_feeds
    result = PeerResult(feeds)

    def measure_monitor() -> None:
        monitor = MonitorPeer(work / "peer-monitor", sink.port, args.concurrency, args.timeout)
        result.versions["monitor"] = monitor.version()
        with start_farm(feeds, args.latency, FARM_ARGS) as farm:
            try:
                result.tools["monitor"] = monitor_phases(monitor, farm, feeds, sink)
            finally:
                result.problems = monitor.problems
        say(format_phases(result.tools["monitor"]))

    def measure_rss2email() -> None:
        try:
            r2e = ensure_rss2email()
        except (RuntimeError, subprocess.CalledProcessError) as e:
            result.skipped["rss2email"] = f"could not be installed: {str(e)[:300]}"
            return
        rss2email = Rss2Email(work / "peer-rss2email", r2e, sink.port)
        result.versions["rss2email"] = rss2email.version()
        with start_farm(feeds, args.latency, FARM_ARGS) as farm:
            phases = run_phases(rss2email, farm, feeds, sink=sink, share=CHANGE_SHARE, items=CHANGE_ITEMS)
        result.tools["rss2email"] = phases
        say(format_phases(phases))

    def measure_newsboat() -> None:
        if args.skip_newsboat:
            result.skipped["newsboat"] = "--skip-newsboat"
            return
        newsboat_path = ensure_newsboat()
        if newsboat_path is None:
            result.skipped["newsboat"] = "not installed and not installable here"
            return
        # As many fetches at once as monitor makes.
        newsboat = Newsboat(work / "peer-newsboat", newsboat_path, args.concurrency)
        result.versions["newsboat"] = newsboat.version() + f" (reload-threads {args.concurrency})"
        with start_farm(feeds, args.latency, FARM_ARGS) as farm:
            phases = run_phases(newsboat, farm, feeds, share=CHANGE_SHARE, items=CHANGE_ITEMS)
        result.tools["newsboat"] = phases
        say(format_phases(phases))

    for tool, measure in (
        ("monitor", measure_monitor),
        ("rss2email", measure_rss2email),
        ("newsboat", measure_newsboat),
    ):
        say(f"  {tool}")
        try:
            measure()
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            result.skipped[tool] = f"stopped by an error: {first}"
            checks.failures.append(f"peers, {tool}: {first}")
            say(f"  ERROR ({tool}): {e}")
    for tool, phases in result.tools.items():
        for phase in phases:
            if phase.name == "cold":
                checks.expect(phase.full == feeds, f"peers, {tool} cold: {phase.full} 200s of {feeds}")
            elif phase.name == "warm 2":
                checks.expect(phase.not_modified == feeds, f"peers, {tool} warm 2: {phase.not_modified} 304s")
    note_problems(checks, f"peers, monitor on {feeds} feeds", result.problems)
    return result


def py_spy() -> Path | None:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    return Path(found) if found else None


def run_group(argv: Sequence[str], cwd: Path, timeout: float) -> tuple[int | None, float, str]:
    """Run `argv` in a process group of its own; after `timeout` seconds kill the whole group and
    return None as its exit status. py-spy runs monitor as its child: killing py-spy alone (as
    `measured` would) would leave that monitor running."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=cli_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        returncode: int | None
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = None
        wall = time.perf_counter() - started
        log.seek(0)
        return returncode, wall, log.read().decode("utf-8", "replace")


def run_profile(args: argparse.Namespace, sink: SmtpSink, work: Path, say: Say) -> Profile:
    """A cold cycle under py-spy, every thread sampled; its samples summarised."""
    profile = Profile(args.profile_feeds)
    spy = py_spy()
    if spy is None:
        profile.skipped = "py-spy not installed (pip install -e '.[bench]')"
        return profile
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    raw = PROFILE_DIR / f"cold-{profile.feeds}.txt"
    with start_farm(profile.feeds, args.latency, FARM_ARGS) as farm:
        config = write_config(work / "profile", farm.urls(profile.feeds), sink.port, args.concurrency)
        argv = [str(spy), "record", "--subprocesses", "--threads", "--function", "--rate", str(PROFILE_RATE)]
        argv += ["--format", "raw", "--output", str(raw), "--"]
        argv += [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)]
        raw.unlink(missing_ok=True)
        returncode, profile.wall, output = run_group(argv, config.parent, args.timeout)
    if returncode != 0 or not raw.is_file():
        why = "did not finish within the time limit" if returncode is None else f"exited {returncode}"
        tail = " ".join(output.strip().splitlines()[-3:])
        profile.skipped = f"py-spy {why}: {tail[-400:]}"
        return profile
    profile.raw_path = raw
    profile.summary = Summary.parse(output)
    summarise_profile(profile, raw.read_text(encoding="utf-8", errors="replace"))
    say(f"  {profile.samples:,} samples, raw output in {raw}")
    return profile


_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """`Store.record_poll (monitor/store/sqlite.py:412)` -> `Store.record_poll (monitor/store/sqlite.py)`."""
    found = _FRAME.match(frame)
    return f"{found['function']} ({found['file']})" if found else frame


_THREAD = re.compile(r"^thread \((?P<tid>\w+)\)(?:: (?P<name>.*))?$")
# Leaf frames of a thread blocked in C (py-spy's idle detection lets some through): a pool worker
# waiting for work, the event loop waiting in epoll, a lock. Counted as waiting, not as a cost.
WAITING = frozenset(
    {
        "_worker (concurrent/futures/thread.py)",
        "EpollSelector.select (selectors.py)",
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
        "Thread._wait_for_tstate_lock (threading.py)",
        # Worker threads importing a module another thread is importing wait on its lock.
        "_ModuleLock.acquire (<frozen importlib._bootstrap>)",
        "_get_module_lock (<frozen importlib._bootstrap>)",
    }
)
# monitor's ways in, on the stack of nearly every sample: they say nothing about where time goes.
ENTRY_POINTS = frozenset(
    {
        "<module> (monitor/__main__.py)",
        "main (monitor/cli.py)",
        "cli (monitor/cli.py)",
        "poll (monitor/cli.py)",
        "poll.<locals>.cycle (monitor/cli.py)",
        "run_cycle (monitor/pipeline.py)",
        "run_cycle.<locals>.bounded (monitor/pipeline.py)",
        "poll_feed (monitor/pipeline.py)",
        "_poll_feed (monitor/pipeline.py)",
    }
)


_POOL_SUFFIX = re.compile(r"_?\d+$")  # asyncio_3 -> asyncio


def _thread_group(name: str) -> str:
    """`MainThread` runs the event loop; a pool's threads (`asyncio_0`, `asyncio_1`, or a named
    executor's `name_0`) are one group, named by their prefix."""
    if name == "MainThread":
        return "event loop (main thread)"
    if not name:
        return "threads not yet named"
    return f"`{_POOL_SUFFIX.sub('', name)}*` threads"


def summarise_profile(profile: Profile, raw: str, top: int = 12) -> None:
    """Shares of py-spy's samples of running threads (idle ones excluded: py-spy's default, and
    the WAITING leaves here) by thread group, by the function running (self), and by monitor's
    own functions on the stack (inclusive)."""
    stacks: list[tuple[tuple[str, str], list[str], int]] = []  # ((process, thread id), frames, samples)
    names: dict[tuple[str, str], str] = {}
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        parts = stack.split(";")
        process = ""  # with --subprocesses, each stack starts with its process and its parents
        while len(parts) > 1 and parts[0].startswith("process "):
            process = parts.pop(0)
        label, *frames = parts
        thread = _THREAD.match(label)
        tid = (process, thread["tid"] if thread else label)
        if thread and thread["name"]:
            names[tid] = thread["name"]  # some samples are taken before the thread has its name
        stacks.append((tid, [_frame_name(f) for f in frames], int(number)))
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    waiting = 0
    for tid, frames, samples in stacks:
        if not frames or frames[-1] in WAITING:
            waiting += samples
            continue
        in_worker = "monitor.worker" in tid[0]
        threads["worker process" if in_worker else _thread_group(names.get(tid, ""))] += samples
        own[frames[-1]] += samples
        for name in set(frames):
            if "(monitor/" in name and name not in ENTRY_POINTS:
                inclusive[name] += samples
    total = sum(threads.values())
    profile.samples = total
    profile.waiting = waiting
    if total:
        profile.threads = [(name, count / total) for name, count in threads.most_common()]
        profile.self_top = [(name, count / total) for name, count in own.most_common(top)]
        profile.monitor_top = [(name, count / total) for name, count in inclusive.most_common(top)]


# ---------------------------------------------------------------------------------------------
# Report


def times(value: float, base: float = 1.0) -> str:
    """value / base as `12×`, `3.4×` or `0.25×`; a dash when there is no base (a zero floor, with
    `--latency 0`)."""
    if base <= 0:
        return "–"
    ratio = value / base
    return f"{ratio:.0f}×" if ratio >= 10 else (f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×")


def spread(values: Sequence[float], unit: str = "", digits: int = 2) -> str:
    if not values:
        return "–"
    return Spread.of(values).format(unit, digits)


def libraries() -> str:
    versions = []
    for package in ("httpx", "httpcore", "h11", "feedparser", "sqlite-utils", "pyahocorasick", "google-re2"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    return ", ".join(versions) + f"; SQLite {sqlite3.sqlite_version}"


def tool_versions() -> str:
    found = []
    for package in ("aiosmtpd", "py-spy"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)


def worker_rows(sizes: Sequence[SizeResult]) -> list[str]:
    """Cold cycles with the worker process and without it, side by side."""
    pairs = [s for s in sizes if s.cold_in_process]
    if not pairs:
        return []
    size = pairs[0]
    lines = [
        f"Cold cycles with the worker process (the default) and with `worker_process = false` "
        f"({size.feeds:,} feeds, {len(size.cold_in_process)} runs of each, each without right after "
        "one with; medians with min–max; peak RSS counts both processes, the worker's share beside):",
        "",
        "| worker_process | wall s | CPU s | CPU ms / new item | CPU / wall | peak RSS MB "
        "| of which the worker |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in (("true", size.cold), ("false", size.cold_in_process)):
        per_item = [r.run.cpu / r.new_items * 1000 for r in runs if r.new_items]
        lines.append(
            f"| {name} | {spread([r.run.wall for r in runs])} | {spread([r.run.cpu for r in runs])} "
            f"| {spread(per_item)} | {statistics.median(r.run.cpu / r.run.wall for r in runs):.2f} "
            f"| {spread([r.run.max_rss / MB for r in runs], digits=0)} "
            f"| {spread([r.run.children_max_rss / MB for r in runs], digits=0)} |"
        )
    ratio = statistics.median(r.run.wall for r in size.cold_in_process) / statistics.median(
        r.run.wall for r in size.cold
    )
    lines += ["", f"Without the worker a cold cycle takes {ratio:.2f}× as long.", ""]
    return lines


def scenario_rows(sizes: Sequence[SizeResult], startup: Startup | None) -> str:
    net_cpu = startup.cpu if startup is not None else 0.0
    lines = [
        "| feeds | cycle | runs | wall s, median (min–max) | CPU s | CPU ms / request | "
        "CPU ms / request, net of start-up | CPU ms / new item | peak RSS MB | 200 / 304 | new items | "
        "alerts sent (mails) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        groups: list[tuple[str, list[CliRun]]] = [
            ("cold", size.cold),
            ("warm", size.warm),
            (f"steady ({CHANGE_SHARE:.0%} changed)", [run for _, run in size.steady]),
        ]
        for name, runs in groups:
            if not runs:
                continue
            cpu = [r.run.cpu for r in runs]
            per_request = [r.run.cpu / max(r.requests, 1) * 1000 for r in runs]
            net = [max(r.run.cpu - net_cpu, 0.0) / max(r.requests, 1) * 1000 for r in runs]
            per_item = [r.run.cpu / r.new_items * 1000 for r in runs if r.new_items and name == "cold"]
            counts = f"{statistics.median(r.count(200) for r in runs):,.0f} / "
            counts += f"{statistics.median(r.count(304) for r in runs):,.0f}"
            sent = statistics.median(r.summary.sent if r.summary else 0 for r in runs)
            mails = statistics.median(r.messages for r in runs)
            lines.append(
                f"| {size.feeds:,} | {name} | {len(runs)} | {spread([r.run.wall for r in runs])} "
                f"| {spread(cpu)} | {spread(per_request)} | {spread(net)} "
                f"| {spread(per_item) if per_item else '–'} "
                f"| {spread([r.run.max_rss / MB for r in runs], digits=0)} | {counts} "
                f"| {statistics.median(r.new_items for r in runs):,.0f} | {sent:,.0f} ({mails:,.0f}) |"
            )
    return "\n".join(lines)


def floor_rows(sizes: Sequence[SizeResult], concurrency: int, latency: float) -> str:
    lines = [
        "| feeds | floor: ceil(N / c) × latency | naive raw client wall s | naive httpx client wall s "
        "| monitor warm wall s | monitor / floor | monitor / raw client | monitor / httpx client "
        "| monitor warm cycle alone (in-process) s | alone / floor | CPU ms / request: monitor, raw, httpx |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        if not size.warm:
            continue
        floor = size.floor(concurrency, latency)
        warm = statistics.median(r.run.wall for r in size.warm)
        raw = [n.run.wall for n in size.naive_warm.get("raw", [])]
        bare = [n.run.wall for n in size.naive_warm.get("httpx", [])]
        alone = [c.wall for c in size.cycles if c.kind == "warm"]
        cpu = [
            statistics.median(r.run.cpu / max(r.requests, 1) * 1000 for r in size.warm),
            *(
                statistics.median(n.run.cpu / max(n.requests, 1) * 1000 for n in size.naive_warm[c])
                for c in NAIVE_CLIENTS
                if size.naive_warm.get(c)
            ),
        ]
        alone_text = spread(alone) if alone else "–"
        alone_ratio = times(statistics.median(alone), floor) if alone else "–"
        raw_ratio = times(warm, statistics.median(raw)) if raw else "–"
        bare_ratio = times(warm, statistics.median(bare)) if bare else "–"
        lines.append(
            f"| {size.feeds:,} | {floor:.2f} | {spread(raw)} | {spread(bare)} "
            f"| {spread([r.run.wall for r in size.warm])} | {times(warm, floor)} | {raw_ratio} "
            f"| {bare_ratio} | {alone_text} | {alone_ratio} | {', '.join(f'{v:.2f}' for v in cpu)} |"
        )
    return "\n".join(lines)


def cycles_rows(size: SizeResult) -> str:
    lines = [
        "| cycle | kind | feeds changed | wall s | CPU s | 200 / 304 | new items | RSS after, MB "
        "| of which the worker | peak so far, MB | Python heap, blocks | word caches, entries "
        "| story index, tokens |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in size.cycles:
        lines.append(
            f"| {c.number} | {c.kind} | {c.changed} | {c.wall:.2f} | {c.cpu:.2f} "
            f"| {c.responses.get('200', 0)} / {c.responses.get('304', 0)} | {c.new_items:,} "
            f"| {c.rss_mb:.1f} | {c.worker_rss_mb:.1f} | {c.hwm_mb:.1f} | {c.py_blocks:,} | {c.cached:,} "
            f"| {c.index_tokens:,} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Growth:
    first: float
    base: float  # after the warm-up cycles (one warm and one steady)
    last: float
    cycles: int
    per_cycle: float  # MB a cycle after the warm-up, least squares
    blocks_base: int
    blocks_last: int

    @property
    def rss_flat(self) -> bool:
        return self.last <= self.base * FLAT_FACTOR + FLAT_SLACK_MB

    @property
    def heap_flat(self) -> bool:
        return self.blocks_last <= self.blocks_base * FLAT_HEAP

    @property
    def flat(self) -> bool:
        return self.rss_flat and self.heap_flat


def growth_of(size: SizeResult) -> Growth | None:
    if len(size.cycles) < 3:
        return None
    rss = [c.rss_mb for c in size.cycles]
    after = rss[1:]
    slope = statistics.linear_regression(range(len(after)), after).slope
    blocks = [c.py_blocks for c in size.cycles]
    return Growth(rss[0], rss[1], rss[-1], len(rss), slope, blocks[1], blocks[-1])


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("**met**" if met else "**not met**")


def nearest(
    sizes: Sequence[SizeResult], wanted: int, scenario: Callable[[SizeResult], bool]
) -> SizeResult | None:
    """The size measured at `wanted` feeds, else the largest below it that has the scenario."""
    candidates = [s for s in sizes if scenario(s) and s.feeds <= wanted]
    exact = [s for s in candidates if s.feeds == wanted]
    return exact[0] if exact else (max(candidates, key=lambda s: s.feeds) if candidates else None)


def at(size: SizeResult, wanted: int) -> str:
    return f"at {size.feeds:,} feeds" + ("" if size.feeds == wanted else f" ({wanted:,} not measured)")


def targets(
    sizes: Sequence[SizeResult],
    peers: PeerResult | None,
    startup: Startup | None,
    concurrency: int,
    latency: float,
) -> list[str]:
    lines = []
    warm = nearest(sizes, TARGET_WARM_FEEDS, lambda s: bool(s.warm))
    if warm is None:
        lines.append(
            f"- Warm {TARGET_WARM_FEEDS:,} feeds within {TARGET_WARM_FLOOR:g}× the floor: not measured."
        )
    else:
        floor = warm.floor(concurrency, latency)
        wall = statistics.median(r.run.wall for r in warm.warm)
        alone = [c.wall for c in warm.cycles if c.kind == "warm"]
        alone_text = (
            f"; the cycle alone, in a process already started, {statistics.median(alone):.2f} s "
            f"({times(statistics.median(alone), floor)})"
            if alone
            else ""
        )
        lines.append(
            f"- Warm {at(warm, TARGET_WARM_FEEDS)} within {TARGET_WARM_FLOOR:g}× the floor "
            f"({floor:.2f} s at concurrency {concurrency}): `monitor poll --once` took {wall:.2f} s, "
            f"{times(wall, floor)} ({verdict(wall <= TARGET_WARM_FLOOR * floor)}){alone_text}."
        )
        cpu = statistics.median(r.run.cpu / max(r.requests, 1) * 1000 for r in warm.warm)
        net = ""
        if startup is not None:
            rest = statistics.median(
                max(r.run.cpu - startup.cpu, 0) / max(r.requests, 1) * 1000 for r in warm.warm
            )
            net = f"; net of start-up {rest:.2f} ms"
        lines.append(
            f"- Warm client CPU ≤ {TARGET_WARM_CPU_MS:g} ms per request {at(warm, TARGET_WARM_FEEDS)}: "
            f"{cpu:.2f} ms, start-up included ({verdict(cpu <= TARGET_WARM_CPU_MS)}){net}."
        )
    cold = nearest(sizes, TARGET_WARM_FEEDS, lambda s: any(r.new_items for r in s.cold))
    if cold is None:
        lines.append(f"- Cold client CPU < {TARGET_COLD_ITEM_MS:g} ms per item: not measured.")
    else:
        per_item = statistics.median(r.run.cpu / r.new_items * 1000 for r in cold.cold if r.new_items)
        lines.append(
            f"- Cold client CPU < {TARGET_COLD_ITEM_MS:g} ms per item {at(cold, TARGET_WARM_FEEDS)}: "
            f"{per_item:.2f} ms ({verdict(per_item < TARGET_COLD_ITEM_MS)})."
        )
    large = [s for s in sizes if s.feeds == TARGET_RSS_FEEDS and (s.cold or s.warm)]
    if large:
        runs = [*large[0].cold, *large[0].warm, *(r for _, r in large[0].steady)]
        peak = max(r.run.max_rss for r in runs) / MB
        lines.append(
            f"- Peak RSS < {TARGET_RSS_MB:.0f} MB at {TARGET_RSS_FEEDS:,} feeds: {peak:.0f} MB, the most of "
            f"its {len(runs)} runs ({verdict(peak < TARGET_RSS_MB)})."
        )
    else:
        lines.append(f"- Peak RSS < {TARGET_RSS_MB:.0f} MB at {TARGET_RSS_FEEDS:,} feeds: not measured.")
    grown = [(s, g) for s in sizes if (g := growth_of(s)) is not None]
    if grown:
        size, growth = grown[-1]
        heap = growth.blocks_last / growth.blocks_base - 1 if growth.blocks_base else 0.0
        lines.append(
            f"- No growth across {growth.cycles} cycles in one process ({size.feeds:,} feeds): RSS "
            f"{growth.first:.1f} MB after the first, {growth.base:.1f} MB after the second, "
            f"{growth.last:.1f} MB after the last ({growth.per_cycle:+.2f} MB a cycle from the second on); "
            f"the Python heap {heap:+.1%} from the second to the last. Flat means RSS within "
            f"{FLAT_FACTOR - 1:.0%} + {FLAT_SLACK_MB:g} MB of the second (the soak test's bound; SQLite's "
            f"page cache fills as the database grows) and the heap within {FLAT_HEAP - 1:.0%} "
            f"({verdict(growth.flat)}). Over the same cycles the word caches of `monitor.stories` went from "
            f"{size.cycles[1].cached:,} to {size.cycles[-1].cached:,} entries (bounded at "
            f"{size.cycles[-1].cache_bound:,}) and the story index from {size.cycles[1].index_tokens:,} to "
            f"{size.cycles[-1].index_tokens:,} tokens (bounded by pruning), both held by design; heap growth "
            "beyond what they add would be a leak."
        )
    else:
        lines.append("- No growth across repeated cycles: not measured.")
    if peers is not None and "rss2email" in peers.tools and "monitor" in peers.tools:
        ratios = phase_ratios(peers.tools["rss2email"], peers.tools["monitor"])
        for name in ("cold", "warm", "warm 2"):
            if name in ratios:
                ratio = ratios[name]
                lines.append(
                    f"- monitor ≥ {TARGET_PEER_SPEEDUP:g}× faster than rss2email, {name}, "
                    f"{peers.feeds} feeds: {times(ratio)} ({verdict(ratio >= TARGET_PEER_SPEEDUP)})."
                )
    return lines


def phase_ratios(theirs: Sequence[Phase], ours: Sequence[Phase]) -> dict[str, float]:
    mine = {p.name: p.run.wall for p in ours}
    return {p.name: p.run.wall / mine[p.name] for p in theirs if p.name in mine and mine[p.name] > 0}


def reading(sizes: Sequence[SizeResult], startup: Startup | None, concurrency: int, latency: float) -> str:
    """A few sentences generated from the figures: what grows with N, and what should not."""
    sentences = []
    cold = [s for s in sizes if any(r.new_items for r in s.cold)]
    if len(cold) >= 2:
        per_item = {
            s.feeds: statistics.median(r.run.cpu / r.new_items * 1000 for r in s.cold if r.new_items)
            for s in cold
        }
        spread_ratio = max(per_item.values()) / min(per_item.values())
        shape = (
            "flat, as it should be: an item costs the same however many are stored before it"
            if spread_ratio < FLAT_PER_UNIT
            else f"not flat ({spread_ratio:.1f}× between sizes): an item's cost depends on how many are "
            "stored before it, which it should not"
        )
        values = ", ".join(f"{v:.2f} ms at {k:,} feeds" for k, v in per_item.items())
        sentences.append(f"Cold CPU per new item is {values}: {shape}.")
    warm = [s for s in sizes if s.warm]
    if warm and startup is not None:
        net = {
            s.feeds: statistics.median(
                max(r.run.cpu - startup.cpu, 0) / max(r.requests, 1) * 1000 for r in s.warm
            )
            for s in warm
        }
        first = warm[0]
        first_wall = statistics.median(r.run.wall for r in first.warm)
        sentences.append(
            f"Start-up (`monitor poll --once` with no feeds) takes {startup.wall:.2f} s and "
            f"{startup.cpu:.2f} s of CPU: {startup.wall / first_wall:.0%} of the warm "
            f"{first.feeds:,}-feed cycle's wall time. "
            "It is fixed; what should grow linearly with N is the rest: net of start-up, warm CPU per "
            "request is " + ", ".join(f"{v:.2f} ms at {k:,}" for k, v in net.items()) + "."
        )
        walls = ", ".join(
            f"{times(statistics.median(r.run.wall for r in s.warm), s.floor(concurrency, latency))} "
            f"at {s.feeds:,}"
            for s in warm
        )
        sentences.append(
            f"The warm wall time against its floor (ceil(N / {concurrency}) × {latency * 1000:.0f} ms, which "
            f"grows linearly with N): {walls}; the ratio falls as N grows when start-up is most of it, and "
            "stays above 1 by what the client spends between responses."
        )
    rss = [s for s in sizes if s.cold]
    if len(rss) >= 2:
        peaks = ", ".join(
            f"{statistics.median(r.run.max_rss for r in s.cold) / MB:.0f} MB at {s.feeds:,}" for s in rss
        )
        sentences.append(
            f"Peak RSS of a cold cycle: {peaks} feeds. The configuration, a row per feed and SQLite's "
            "page cache (up to its `cache_size`) grow with N; the feeds' bodies and items should not, "
            "since each feed is parsed, stored and dropped, at most `max_concurrency` at a time."
        )
    steady = [s for s in sizes if s.steady]
    if len(steady) >= 2 and startup is not None:
        per_feed = {
            s.feeds: statistics.median(
                max(r.run.cpu - startup.cpu, 0) / max(r.requests, 1) * 1000 for _, r in s.steady
            )
            for s in steady
        }
        values = ", ".join(f"{v:.2f} ms at {k:,}" for k, v in per_feed.items())
        ratio = max(per_feed.values()) / max(min(per_feed.values()), 1e-9)
        shape = "flat" if ratio < FLAT_PER_UNIT else f"not flat ({ratio:.1f}× between sizes)"
        sentences.append(
            f"A steady cycle ({CHANGE_SHARE:.0%} of the feeds with {CHANGE_ITEMS} new items each) is 304s "
            "and new items, both linear in N, so its CPU per feed, net of start-up, should stay flat: "
            f"{values}, {shape}."
        )
    return " ".join(sentences)


def profile_text(profile: Profile | None) -> list[str]:
    if profile is None:
        return []
    lines = [f"### Profile: a cold {profile.feeds:,}-feed cycle", ""]
    if profile.skipped:
        return [*lines, f"Skipped: {profile.skipped}.", ""]
    summary = profile.summary
    items = f"; {summary.new_items:,} new items, {summary.failed} feeds failed" if summary else ""
    lines += [
        f"py-spy {PROFILE_RATE} samples a second, every thread of monitor and of its worker process "
        "(`py-spy record --subprocesses --threads --function --format raw`), idle threads excluded, "
        f"on `python -m monitor poll --once`: {profile.samples:,} "
        f"samples of running threads ({profile.waiting:,} more of threads blocked waiting, left out) in "
        f"{profile.wall:.1f} s of wall time under the profiler{items}. Raw samples: "
        f"`{profile.raw_path.relative_to(ROOT) if profile.raw_path else '?'}` (collapsed stacks; "
        "flamegraph.pl or speedscope.app read them).",
        "",
        "By thread (the worker process's samples together): "
        + ", ".join(f"{name} {share:.0%}" for name, share in profile.threads if share >= 0.005)
        + ".",
        "",
        "| function running (self) | share of samples | | monitor's functions on the stack (inclusive) "
        "| share |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    for index in range(max(len(profile.self_top), len(profile.monitor_top))):
        own = profile.self_top[index] if index < len(profile.self_top) else ("", 0.0)
        mine = profile.monitor_top[index] if index < len(profile.monitor_top) else ("", 0.0)
        own_share = f"{own[1]:.1%}" if own[0] else ""
        mine_share = f"{mine[1]:.1%}" if mine[0] else ""
        own_name = f"`{own[0]}`" if own[0] else ""
        mine_name = f"`{mine[0]}`" if mine[0] else ""
        lines.append(f"| {own_name} | {own_share} | | {mine_name} | {mine_share} |")
    return [*lines, ""]


def cycle_section(
    args: argparse.Namespace,
    startup: Startup | None,
    sizes: Sequence[SizeResult],
    profile: Profile | None,
    peers: PeerResult | None,
    checks: Checks,
    timings: Mapping[str, float],
    elapsed: float,
) -> str:
    info = machine()
    sized = ", ".join(
        f"{s.feeds:,} feeds: {len(s.cold)} cold, {len(s.warm)} warm, {len(s.steady)} steady"
        for s in sizes
        if s.cold or s.warm
    )
    farm = next((s.farm for s in sizes if s.farm), {})
    lines = [
        CYCLE_START,
        "## Poll cycles: cold, warm and steady, against a naive client",
        "",
        f"`make bench` (`{args.command}`), "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, in {elapsed:.0f} s ("
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
        + ").",
        "",
        f"- Machine: {info['cpu']}, {info['cores']}; {info['platform']}. Shared and noisy: medians with "
        "min–max, and ratios taken between runs interleaved in the same benchmark.",
        f"- {info['python']}; {libraries()}; harness: {tool_versions()}. Code: {args.code}.",
        "- Measured: each run is one process (`.venv/bin/monitor poll --once --config <tmp>/config.toml`), "
        "its own wall time and CPU time (user + system, all threads, and its worker process, which it "
        "waits for) read with `os.wait4` (bench/measure.py), so the farm's and the harness's work are "
        "not counted; peak RSS is the process's own plus its worker process's, each one's high-water "
        "mark (VmHWM) read from /proc every 50 ms (a sum of peaks: never less than the peak of the sum). "
        "monitor's bytecode is compiled before the first run, as pip compiles an installed wheel's (the "
        "Docker image); an editable install under PYTHONDONTWRITEBYTECODE would compile the sources "
        "again at every start of either process.",
        f"- Farm (bench/farm.py, its own process): N feeds × {FARM_ITEMS} items over 50 loopback addresses, "
        f"{args.latency * 1000:.0f} ms before every response, ETag + Last-Modified, gzip "
        f"(~{int(str(farm.get('bytes_per_feed', 0))) // 1024} KB a feed, "
        f"~{int(str(farm.get('gzip_bytes_per_feed', 0))) // 1024} KB gzipped). Config: the defaults, with "
        f"`allow_private_networks = true`, `max_concurrency = {args.concurrency}`, the shipped "
        "watchlists, and an email channel to a counting SMTP sink on loopback (bench/sinks.py).",
        f"- Cycles ({sized}): **cold** = a fresh state directory, every feed and item new; "
        f"**warm** = nothing changed, the farm counted N 304s; **steady** = {CHANGE_SHARE:.0%} of "
        f"the feeds got {CHANGE_ITEMS} new items before each run, the farm counted that many 200s. "
        f"Sizes from {LARGE_FROM:,} feeds get one cold run (minutes each: their cold row is a single "
        f"measurement), 3 warm and 2 steady; smaller ones stop repeating cold runs past "
        f"{COLD_BUDGET:.0f} s.",
        "- Floor and baseline: the floor is ceil(N / concurrency) × latency, what a warm cycle takes if the "
        "client costs nothing. The naive clients (bench/cycle_worker.py `naive`) make only the warm "
        "cycle's conditional GETs at the same concurrency, bodies counted and never parsed: **raw** = "
        "HTTP/1.1 over asyncio streams with a keep-alive pool per host, **httpx** = a bare "
        "`httpx.AsyncClient` (monitor's HTTP library). Each runs as a process measured like monitor, "
        "in the same rounds as monitor's warm runs.",
    ]
    if startup is not None:
        lines.append(
            f"- Start-up ({len(startup.empty_poll)} runs each): `monitor --help` "
            f"{spread([r.wall for r in startup.help])} s wall, "
            f"{spread([r.cpu for r in startup.help])} s CPU; "
            f"`monitor poll --once` with no feeds {spread([r.wall for r in startup.empty_poll])} s wall, "
            f"{spread([r.cpu for r in startup.empty_poll])} s CPU, peak RSS "
            f'{spread([r.max_rss / MB for r in startup.empty_poll], digits=0)} MB. "Net of start-up" '
            "below subtracts the latter's median CPU. A process's peak RSS, on Linux, starts at "
            "the spawning process's peak: every command is spawned from a small process "
            f"(`python -m bench.measure`), so no figure can read below {startup.floor_rss / MB:.0f} MB "
            "(`/bin/true` measured the same way)."
        )
    lines += ["", scenario_rows(sizes, startup), ""]
    lines += worker_rows(sizes)
    if any(s.warm for s in sizes):
        lines += [
            "Warm cycles against the floor and the naive clients (medians; the ratios are of medians):",
            "",
        ]
        lines += [floor_rows(sizes, args.concurrency, args.latency), ""]
    for size in sizes:
        if size.feeds == args.memory_feeds and size.cycles:
            lines += [
                f"Repeated cycles in one process ({size.feeds:,} feeds; bench/cycle_worker.py `cycles`: "
                "`open_runtime` once, then `run_cycle` again and again, warm and steady in turn; RSS is "
                "VmRSS after each cycle):",
                "",
                cycles_rows(size),
                "",
            ]
    lines += profile_text(profile)
    lines += ["Targets:", "", *targets(sizes, peers, startup, args.concurrency, args.latency), ""]
    notes = [f"- {s.feeds:,} feeds: {note.rstrip('.')}." for s in sizes for note in s.notes]
    notes += [
        f"- {s.feeds:,} feeds: an unmeasured cycle after the cold ones fetched the feeds that had failed "
        f"({describe(s.settle)})."
        for s in sizes
        if s.settle is not None
    ]
    failures = [f"- count mismatch: {message}" for message in checks.failures]
    oddities = [f"- {message}" for message in checks.oddities]
    if notes or failures or oddities:
        lines += ["Checks and oddities:", "", *failures, *notes, *oddities, ""]
    else:
        lines += ["Checks: every farm count matched its scenario; no warning or error in monitor's logs.", ""]
    lines += [reading(sizes, startup, args.concurrency, args.latency), CYCLE_END]
    return "\n".join(lines)


def peers_section(args: argparse.Namespace, peers: PeerResult, seconds: float) -> str:
    info = machine()
    lines = [
        PEERS_START,
        "## Against rss2email and newsboat",
        "",
        f"`make bench` (`{args.command}`), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, in {seconds:.0f} s.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']}; {info['platform']}. Code: {args.code}.",
        "- Versions: " + "; ".join(peers.versions.values()) + ".",
        f"- The same {peers.feeds} farm feeds ({FARM_ITEMS} items each, {args.latency * 1000:.0f} ms per "
        "response), a fresh farm per tool built from the same seed: cold (nothing stored), warm twice "
        f"(nothing changed), steady ({CHANGE_SHARE:.0%} of the feeds got {CHANGE_ITEMS} new items, the same "
        "change for every tool). One run per phase, measured as in the cycle section (`os.wait4`). "
        "rss2email mails every new item (a cold start is 30 mails a feed, one SMTP connection each) and "
        "fetches one feed after another; monitor mails the alerts its watchlists raise, one message per "
        "delivery run; newsboat fetches, parses and stores and mails nothing (bench/peers.py has the "
        "details, including newsboat's first warm run refetching everything).",
    ]
    for tool, why in peers.skipped.items():
        lines.append(f"- {tool}: skipped ({why}).")
    monitor = peers.tools.get("monitor", [])
    others = [tool for tool in peers.tools if tool != "monitor"]
    head = "| phase | monitor wall s | " + " | ".join(f"{t} wall s | {t} / monitor" for t in others)
    head += " | peak RSS MB: " + ", ".join(["monitor", *others]) + " |"
    lines += ["", head, "| --- | ---: | " + " | ".join("---: | ---:" for _ in others) + " | ---: |"]
    ratios = {tool: phase_ratios(peers.tools[tool], monitor) for tool in others}
    for phase in monitor:
        cells = [f"{phase.run.wall:.2f}"]
        peaks = [f"{phase.run.max_rss / MB:.0f}"]
        for tool in others:
            theirs = {p.name: p for p in peers.tools[tool]}.get(phase.name)
            cells.append(f"{theirs.run.wall:.2f}" if theirs else "–")
            cells.append(times(ratios[tool][phase.name]) if phase.name in ratios[tool] else "–")
            peaks.append(f"{theirs.run.max_rss / MB:.0f}" if theirs else "–")
        lines.append(f"| {phase.name} | " + " | ".join(cells) + " | " + ", ".join(peaks) + " |")
    lines.append("")
    for tool, phases in peers.tools.items():
        lines += [f"{peers.versions.get(tool, tool)}:", "", format_phases(phases), ""]
    if "rss2email" in ratios:
        verdicts = [
            f"{name} {times(ratios['rss2email'][name])} "
            f"({verdict(ratios['rss2email'][name] >= TARGET_PEER_SPEEDUP)})"
            for name in ("cold", "warm", "warm 2")
            if name in ratios["rss2email"]
        ]
        lines.append(
            f"Target: monitor ≥ {TARGET_PEER_SPEEDUP:g}× faster than rss2email, cold and warm: "
            + ", ".join(verdicts)
            + "."
        )
    lines.append(PEERS_END)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str, say: Say) -> Iterator[None]:
    started = time.perf_counter()
    say(f"\n## {name}")
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - started
        say(f"## {name}: {timings[name]:.0f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cycle", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="100 and 300 feeds, 1-2 runs, small peers and profile"
    )
    parser.add_argument("--sizes", help="feed counts, comma-separated (default 100,1000,5000)")
    parser.add_argument(
        "--runs",
        type=int,
        help=f"warm and start-up runs per size (default {DEFAULT_RUNS}; "
        "cold and steady get at most 3; from 2,000 feeds: 1 cold, 3 warm, 2 steady)",
    )
    parser.add_argument("--cold-runs", type=int, help="cold runs per size (default: see --runs)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="max_concurrency (50)")
    parser.add_argument("--latency", type=float, default=LATENCY, help="farm latency in seconds (0.05)")
    parser.add_argument(
        "--cycles", type=int, help=f"cycles in one process at --memory-feeds ({MEMORY_CYCLES})"
    )
    parser.add_argument("--memory-feeds", type=int, help="size of the repeated-cycles run (1000)")
    parser.add_argument("--peer-feeds", type=int, help=f"feeds for the peers ({PEER_FEEDS})")
    parser.add_argument(
        "--profile-feeds", type=int, help=f"feeds of the profiled cold cycle ({PROFILE_FEEDS})"
    )
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, help="seconds allowed for one process")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-newsboat", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="Markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    args = parser.parse_args(argv)
    # The command as run, for the results' header, less where they were written (no bearing on them).
    given, shown = list(sys.argv[1:] if argv is None else argv), []
    while given:
        option = given.pop(0)
        if option == "--output":
            given[:1] = []
        elif not option.startswith("--output=") and option != "--no-write":
            shown.append(option)
    args.command = " ".join(["python -m bench.bench_cycle", *shown])
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.sizes:
        sizes = tuple(int(part.replace("_", "")) for part in args.sizes.split(",") if part.strip())
    args.sizes = tuple(sorted(set(sizes)))
    args.runs = args.runs or (2 if args.quick else DEFAULT_RUNS)
    args.cold_runs = args.cold_runs or (1 if args.quick else None)
    args.cycles = args.cycles if args.cycles is not None else (4 if args.quick else MEMORY_CYCLES)
    args.peer_feeds = args.peer_feeds or (50 if args.quick else PEER_FEEDS)
    args.profile_feeds = args.profile_feeds or (100 if args.quick else PROFILE_FEEDS)
    if args.memory_feeds is None:
        # 1,000 feeds, else the largest size measured below it.
        below = [n for n in args.sizes if n <= 1_000]
        args.memory_feeds = max(below) if below else min(args.sizes)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def say(text: str) -> None:
        print(text, flush=True)

    monitor_executable()
    compile_sources()
    args.code = checkout()  # again at the end: a checkout that changes meanwhile is reported
    checks = Checks()
    timings: dict[str, float] = {}
    sizes: list[SizeResult] = []
    startup: Startup | None = None
    peers: PeerResult | None = None
    profile: Profile | None = None
    say(
        f"sizes {', '.join(f'{n:,}' for n in args.sizes)} feeds; concurrency {args.concurrency}; latency "
        f"{args.latency * 1000:.0f} ms; {args.runs} runs (warm); timeout {args.timeout:.0f} s per process"
    )
    with SmtpSink() as sink, tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        work = Path(tmp)
        with timed(timings, "start-up", say):
            startup = measure_startup(work, sink, args.runs, args.concurrency, args.timeout)
            say(
                f"  monitor --help {spread([r.wall for r in startup.help])} s; poll with no feeds "
                f"{spread([r.wall for r in startup.empty_poll])} s, CPU {startup.cpu:.2f} s"
            )
        stop_cold = False
        for feeds in args.sizes:
            with timed(timings, f"{feeds:,} feeds", say):
                if stop_cold:
                    result = SizeResult(feeds)
                    result.notes.append("not measured: a smaller size's cold cycle exceeded the time limit")
                    sizes.append(result)
                    continue
                result = measure_size(feeds, args, sink, work, checks, say)
                sizes.append(result)
                # A larger size would only take longer.
                stop_cold = result.cold_timed_out
        if not args.skip_peers:
            with timed(timings, "peers", say):
                try:
                    peers = measure_peers(args, sink, work, checks, say)
                except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                    checks.failures.append(f"peers: {str(e).splitlines()[0][:200]}")
                    say(f"  ERROR: {e}")
        if not args.skip_profile:
            with timed(timings, "profile", say):
                profile = run_profile(args, sink, work, say)
    elapsed = time.perf_counter() - started
    if (now := checkout()) != args.code:
        checks.oddities.append(
            f"the code changed during the run (from {args.code} to {now}): sections measured different code"
        )
        args.code = f"{now} (at the start: {args.code})"
    text = cycle_section(args, startup, sizes, profile, peers, checks, timings, elapsed)
    say("\n" + text)
    if peers is not None:
        peer_text = peers_section(args, peers, timings.get("peers", 0.0))
        say("\n" + peer_text)
    if not args.no_write:
        bench.write_section(args.output, text, CYCLE_START, CYCLE_END)
        if peers is not None:
            bench.write_section(args.output, peer_text, PEERS_START, PEERS_END)
        say(f"\nwritten to {args.output}")
    say(f"\ntotal {elapsed:.0f} s")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
