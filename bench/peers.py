"""Peer tools run against the feed farm, for comparison with monitor: rss2email and newsboat.

    python -m bench.peers                 # 200 feeds at 50 ms: cold, warm, warm again, steady
    python -m bench.peers --help          # feeds, latency, change share, newsboat threads

- rss2email (`r2e`, PyPI) polls feeds and mails every new item: the closest peer. It is installed
  in a virtualenv of its own under `.cache/` (`ensure_rss2email`): its dependency pins must not
  meet ours. It mails through SMTP to a local sink that counts messages (`bench.sinks.SmtpSink`).
- newsboat (Debian package) fetches, parses and stores feeds (`newsboat -x reload`) and notifies
  nobody: a fetch + parse + store peer only. Skipped, and said so, where it cannot be installed.

What each peer does, as measured against the farm (see `main`):

- rss2email fetches feeds one after another (a loop over the feeds, each fetch in a thread only
  to enforce `feed-timeout`), through feedparser and urllib: gzip, and conditional requests
  (If-None-Match / If-Modified-Since from the ETag and Last-Modified it saved), so an unchanged
  feed costs a 304 from the second run on. On its first run it mails every item in the feed
  (no `--only-new` at `r2e add`, and none here): a cold start is 30 messages per farm feed. It
  opens one SMTP connection per message. With `trust-guid` (the default) an item is known by its
  guid; `date-header` only changes the Date header of the mail, so neither matters here. Its
  state is one JSON file rewritten (and fsynced) at the end of every run.
- newsboat fetches `reload-threads` feeds at once (1 by default; 16 here, monitor's default
  `max_concurrency`), through libcurl (gzip). It sends conditional requests, but only from its
  third run: on the first run the feed's row is created after its ETag and Last-Modified are
  stored, so they are lost, and the second run fetches everything again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.farm_client import FarmClient, start_farm
from bench.measure import ProcessRun, run_measured
from bench.sinks import LOOPBACK, SmtpSink

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"  # git-ignored; holds the peers' own virtualenvs

# The latest rss2email on PyPI that installs here, with the dependencies it resolved to, pinned so
# that a rebuilt virtualenv runs the same code.
RSS2EMAIL_REQUIREMENTS = ("rss2email==3.14", "feedparser==6.0.14", "html2text==2025.4.15")
MAIL_FROM = "r2e@bench.invalid"
MAIL_TO = "reader@bench.invalid"
RUN_TIMEOUT = 1800.0  # seconds: a cold rss2email run over 1,000 feeds mails 30,000 messages

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


def peer_environment(home: Path) -> dict[str, str]:
    """The environment a peer runs in: ours without proxies (the farm is on loopback) or Python
    settings (they would reach into the peer's own virtualenv), with `home` as HOME and XDG
    directories, so nothing of the user's own configuration is read and nothing is left there."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in _PROXY_VARIABLES and not name.startswith("PYTHON")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        # rss2email takes a lock file in XDG_RUNTIME_DIR (else /tmp/rss2email-<uid>): one per
        # working directory, so two benchmarks never wait on each other.
        XDG_RUNTIME_DIR=str(home),
    )
    return env


class Peer(Protocol):
    """What `run_phases` needs of a peer."""

    name: str

    def setup(self, urls: list[str]) -> None: ...

    def run(self) -> ProcessRun: ...

    def version(self) -> str: ...

    def stored(self) -> int: ...


# ---------------------------------------------------------------------------------------------
# rss2email


def ensure_rss2email(cache_dir: Path = CACHE) -> Path:
    """Install rss2email in `cache_dir/rss2email-venv` (once) and return its `r2e` executable."""
    venv = cache_dir / "rss2email-venv"
    r2e = venv / "bin" / "r2e"
    marker = venv / "bench-requirements.txt"  # written last: its presence means a complete install
    wanted = "\n".join(RSS2EMAIL_REQUIREMENTS) + "\n"
    if r2e.is_file() and marker.is_file() and marker.read_text() == wanted:
        return r2e
    if venv.exists():
        shutil.rmtree(venv)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # `-m venv` from our own virtualenv's interpreter builds on the base Python, not on our venv.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *RSS2EMAIL_REQUIREMENTS], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not r2e.is_file():
        raise RuntimeError(f"installing {' '.join(RSS2EMAIL_REQUIREMENTS)} failed:\n{done.stderr[-3000:]}")
    marker.write_text(wanted)
    return r2e


class Rss2Email:
    """rss2email with its configuration and state in `workdir`, mailing to an SMTP sink."""

    name = "rss2email"

    def __init__(self, workdir: Path, r2e: Path, smtp_port: int) -> None:
        self.workdir = workdir
        self.r2e = r2e
        self.smtp_port = smtp_port
        self.config_path = workdir / "rss2email.cfg"
        self.data_path = workdir / "rss2email.json"
        self.env = peer_environment(workdir)

    def setup(self, urls: list[str]) -> None:
        """Write the configuration with one section per feed, and no state: the next run is cold.

        `r2e add` loads and rewrites the whole configuration and data file for each feed
        (quadratic over a few hundred feeds), so the sections are written directly, as `r2e add`
        would write them; a feed in the configuration but not in the data file starts with
        nothing seen, which is what `r2e add` without `--only-new` gives."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_path.unlink(missing_ok=True)
        settings = {
            "from": MAIL_FROM,
            "to": MAIL_TO,
            "email-protocol": "smtp",
            # Plain SMTP on loopback: no AUTH (which would also start TLS), no SSL.
            "smtp-server": LOOPBACK,
            "smtp-port": str(self.smtp_port),
            "smtp-auth": "False",
            "smtp-ssl": "False",
            "feed-timeout": "60",
            "same-server-fetch-interval": "0",  # the default; no pause between feeds of a host
            # Warnings and errors only: at "info" it logs several lines per feed and per message.
            "verbose": "warning",
        }
        lines = ["[DEFAULT]", *(f"{key} = {value}" for key, value in settings.items()), ""]
        for index, url in enumerate(urls):
            lines += [f"[feed.farm-{index:05d}]", f"url = {url}", ""]
        self.config_path.write_text("\n".join(lines), encoding="utf-8")

    def argv(self, *command: str) -> list[str]:
        return [str(self.r2e), "-c", str(self.config_path), "-d", str(self.data_path), *command]

    def run(self, *, strict: bool = True) -> ProcessRun:
        """One `r2e run`, measured. rss2email logs a feed it could not fetch, or a message it
        could not send, and goes on (exit status 0): with `strict`, an ERROR line fails the run
        as a nonzero exit does, since a failed feed is a cheap one and would flatter the peer."""
        run = run_measured(self.argv("run"), cwd=self.workdir, env=self.env, timeout=RUN_TIMEOUT).check()
        if strict and "[ERROR]" in run.output:
            errors = [line for line in run.output.splitlines() if "[ERROR]" in line]
            raise RuntimeError(f"rss2email logged {len(errors)} errors:\n" + "\n".join(errors[:20]))
        return run

    def version(self) -> str:
        """E.g. "rss2email 3.14 (feedparser 6.0.14, html2text 2025.4.15, Python 3.11.7)"."""
        done = subprocess.run(
            [str(self.r2e), "--full-version"], capture_output=True, text=True, env=self.env, check=True
        )
        # One "name version" line per package: rss2email, python, feedparser, html2text.
        found = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        html2text = ".".join(re.findall(r"\d+", found.get("html2text", "?"))) or "?"
        python = found.get("python", "?").split(" ", 1)[0]
        return (
            f"rss2email {found.get('rss2email', '?')} (feedparser {found.get('feedparser', '?')}, "
            f"html2text {html2text}, Python {python})"
        )

    def stored(self) -> int:
        """Items rss2email has recorded as seen, over all feeds."""
        if not self.data_path.is_file():
            return 0
        data = json.loads(self.data_path.read_text(encoding="utf-8"))
        return sum(len(feed.get("seen", {})) for feed in data["feeds"])


# ---------------------------------------------------------------------------------------------
# newsboat


def ensure_newsboat() -> Path | None:
    """The `newsboat` executable, installed from Debian's archive if it is not there yet and we
    can (root, apt-get); None when it cannot be had, and the benchmark skips it."""
    found = shutil.which("newsboat")
    if found:
        return Path(found)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", "newsboat"]
    for attempt in ([install], [[apt, "update"], install]):  # the package lists may be stale
        try:
            for argv in attempt:
                subprocess.run(argv, env=env, capture_output=True, check=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            continue
        found = shutil.which("newsboat")
        if found:
            return Path(found)
    return None


class Newsboat:
    """newsboat's `-x reload` with its URLs, configuration and cache in `workdir`."""

    name = "newsboat"

    def __init__(self, workdir: Path, newsboat: Path, reload_threads: int = 16) -> None:
        self.workdir = workdir
        self.newsboat = newsboat
        self.reload_threads = reload_threads
        self.urls_path = workdir / "urls"
        self.config_path = workdir / "config"
        self.cache_path = workdir / "cache.db"
        self.error_log = workdir / "error.log"
        self.env = peer_environment(workdir)

    def setup(self, urls: list[str]) -> None:
        """Write the URLs file and the configuration, with an empty cache: the next run is cold."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path in (self.cache_path, self.error_log, self.workdir / "cache.db.lock"):
            path.unlink(missing_ok=True)
        self.urls_path.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
        settings = [
            f"reload-threads {self.reload_threads}",
            "download-timeout 60",
            "download-retries 1",
            # newsboat exits 0 whatever failed; errors during a reload go to this file.
            f'error-log "{self.error_log}"',
        ]
        self.config_path.write_text("\n".join(settings) + "\n", encoding="utf-8")

    def argv(self) -> list[str]:
        return [
            str(self.newsboat),
            "--execute=reload",
            f"--url-file={self.urls_path}",
            f"--cache-file={self.cache_path}",
            f"--config-file={self.config_path}",
        ]

    def run(self, *, strict: bool = True) -> ProcessRun:
        """One `newsboat -x reload`, measured; with `strict`, any line in its error log fails it."""
        self.error_log.unlink(missing_ok=True)
        run = run_measured(self.argv(), cwd=self.workdir, env=self.env, timeout=RUN_TIMEOUT).check()
        errors = self.error_log.read_text(errors="replace").strip() if self.error_log.exists() else ""
        if strict and errors:
            raise RuntimeError(f"newsboat logged errors:\n{errors[-3000:]}")
        return run

    def version(self) -> str:
        """E.g. "newsboat 2.21.0"."""
        done = subprocess.run(
            [str(self.newsboat), "-v"], capture_output=True, text=True, env=self.env, check=True
        )
        first = done.stdout.splitlines()[0] if done.stdout else "newsboat ?"
        return first.split(" - ", 1)[0].strip()

    def stored(self) -> int:
        """Items in newsboat's cache."""
        if not self.cache_path.is_file():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{self.cache_path}?mode=ro", uri=True)) as db:
            count: int = db.execute("SELECT count(*) FROM rss_item").fetchone()[0]
            return count


# ---------------------------------------------------------------------------------------------
# Phases: cold, warm, steady


@dataclass(frozen=True)
class Phase:
    """One measured run of a peer against the farm."""

    name: str
    run: ProcessRun
    responses: Mapping[str, int]  # the farm's counts for the run: "200", "304", "bytes"
    messages: int  # mails the sink received during the run (0 for a peer that sends none)
    stored: int  # items the peer holds after the run

    @property
    def full(self) -> int:
        return self.responses.get("200", 0)

    @property
    def not_modified(self) -> int:
        return self.responses.get("304", 0)


def run_phase(
    name: str, peer: Peer, farm: FarmClient, sink: SmtpSink | None = None, expect_messages: int = 0
) -> Phase:
    """Run the peer once, with the farm's counters (and the sink's) zeroed beforehand."""
    farm.reset()
    if sink is not None:
        sink.reset()
    run = peer.run()
    responses = farm.stats()
    messages = sink.wait_for(expect_messages, timeout=5) if sink is not None else 0
    return Phase(name, run, responses, messages, peer.stored())


def run_phases(
    peer: Peer,
    farm: FarmClient,
    feeds: int,
    *,
    sink: SmtpSink | None = None,
    share: float = 0.05,
    items: int = 5,
    seed: int = 1,
    warm_runs: int = 2,
) -> list[Phase]:
    """Cold (first run, nothing stored), `warm_runs` runs with nothing changed, then steady: a
    run after `share` of the feeds got `items` new items each."""
    peer.setup(farm.urls(feeds))
    phases = [run_phase("cold", peer, farm, sink, expect_messages=feeds * 30)]
    for number in range(warm_runs):
        phases.append(run_phase("warm" if number == 0 else f"warm {number + 1}", peer, farm, sink))
    changed = farm.change(share, items, seed)
    phases.append(run_phase("steady", peer, farm, sink, expect_messages=changed * items))
    return phases


def format_phases(phases: Sequence[Phase]) -> str:
    head = "| run | wall s | CPU s | peak RSS MB | 200 | 304 | KB received | mails | items stored |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for phase in phases:
        run = phase.run
        lines.append(
            f"| {phase.name} | {run.wall:.2f} | {run.cpu:.2f} | {run.max_rss / 2**20:.0f} "
            f"| {phase.full} | {phase.not_modified} | {phase.responses.get('bytes', 0) / 1024:,.0f} "
            f"| {phase.messages:,} | {phase.stored:,} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each feed response")
    parser.add_argument("--share", type=float, default=0.05, help="share of feeds changed before steady")
    parser.add_argument("--items", type=int, default=5, help="new items in each changed feed")
    parser.add_argument("--newsboat-threads", type=int, default=16, help="newsboat's reload-threads")
    parser.add_argument("--skip-newsboat", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=CACHE, help="where rss2email's venv lives")
    args = parser.parse_args(argv)

    print(f"Farm: {args.feeds} feeds, 30 items each, {args.latency * 1000:.0f} ms per response; ", end="")
    print(f"steady: {args.share:.0%} of feeds get {args.items} new items.\n")

    r2e = ensure_rss2email(args.cache_dir)
    # One farm per peer, built from the same seed, so each peer sees the same feeds and changes.
    with (
        tempfile.TemporaryDirectory(prefix="bench-r2e-") as workdir,
        start_farm(args.feeds, args.latency) as farm,
        SmtpSink() as sink,
    ):
        rss2email = Rss2Email(Path(workdir), r2e, sink.port)
        print(f"## {rss2email.version()}\n")
        phases = run_phases(rss2email, farm, args.feeds, sink=sink, share=args.share, items=args.items)
        print(format_phases(phases) + "\n")

    newsboat_path = None if args.skip_newsboat else ensure_newsboat()
    if newsboat_path is None:
        why = "--skip-newsboat" if args.skip_newsboat else "not installed and not installable here"
        print(f"## newsboat: skipped ({why})")
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-newsboat-") as workdir,
        start_farm(args.feeds, args.latency) as farm,
    ):
        newsboat = Newsboat(Path(workdir), newsboat_path, args.newsboat_threads)
        print(f"## {newsboat.version()} (reload-threads {args.newsboat_threads}; stores, mails nothing)\n")
        phases = run_phases(newsboat, farm, args.feeds, share=args.share, items=args.items)
        print(format_phases(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
