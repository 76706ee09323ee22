"""feedparser's own test corpus (about 2,250 feeds, BSD licence) through parse and match.

    python -m bench.corpus --download   # or: make corpus (downloads once)
    python -m bench.corpus DIR          # any folder of feed files

Every file goes through `monitor.parse.parse_feed`, with the headers its leading comment names
(`Header: Content-type: ...`, as feedparser's own test server sends them), and each item through
the matcher of the shipped watchlists. The report counts files, feeds parsed, feeds refused with
a recorded ParseError, exceptions that escaped (there must be none), items and matches, and names
the slowest file. Exit status 1 if anything escaped.

The corpus is feedparser's source distribution's `tests/` folder, fetched with
`pip download --no-binary :all: --no-deps feedparser==<installed version>` into a git-ignored
`.cache/feedparser-corpus/`, with feedparser's LICENSE beside it.
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.watchlists import Matcher
from monitor.watchlists.loader import load_watchlists

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "feedparser-corpus"
NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
_HEADER = re.compile(rb"^Header:\s+([^:\r\n]+):([^\r\n]+)$", re.MULTILINE)
SUFFIXES = (".xml", ".gz", ".z")


@dataclass(frozen=True, slots=True)
class CorpusReport:
    files: int
    parsed: int  # feeds read, with or without a warning
    refused: int  # ParseError: the feed's problem, recorded
    escaped: tuple[tuple[str, str], ...]  # (file, exception) for anything else: must stay empty
    items: int
    matches: int
    warnings: int
    slowest: tuple[str, float]  # file, seconds to parse and match it
    seconds: float

    def lines(self) -> list[str]:
        return [
            f"files: {self.files}",
            f"parsed: {self.parsed} ({self.warnings} with a warning)",
            f"refused (ParseError, recorded): {self.refused}",
            f"exceptions escaping: {len(self.escaped)}",
            *(f"  {name}: {error}" for name, error in self.escaped),
            f"items: {self.items}",
            f"matches: {self.matches}",
            f"slowest: {self.slowest[0]} ({self.slowest[1] * 1000:.1f} ms)",
            f"total: {self.seconds:.1f} s",
        ]


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def headers_of(data: bytes) -> dict[str, str]:
    """The response headers a corpus file asks for in its leading comment."""
    found = _HEADER.findall(data)
    return {k.decode("latin-1").strip().lower(): v.decode("latin-1").strip() for k, v in found}


def body_of(path: Path) -> tuple[bytes, dict[str, str]]:
    """The body and headers as the fetcher would pass them on: compressed files decompressed."""
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            return gzip.decompress(data), {"content-type": "application/xml"}
        except (OSError, EOFError, zlib.error):
            return data, {"content-type": "application/xml"}
    if path.suffix.lower() == ".z":
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
            try:
                return zlib.decompress(data, wbits), {"content-type": "application/xml"}
            except zlib.error:
                continue
        return data, {"content-type": "application/xml"}
    return data, headers_of(data)


def run(files: Iterable[Path], matcher: Matcher, base: Path | None = None) -> CorpusReport:
    """Parse and match every file; one file's failure is counted, never raised."""
    started = time.perf_counter()
    files = list(files)
    parsed = refused = items = matches = warnings = 0
    escaped: list[tuple[str, str]] = []
    slowest = ("", 0.0)
    for path in files:
        name = str(path.relative_to(base)) if base else path.name
        begun = time.perf_counter()
        try:
            body, headers = body_of(path)
            found, warning = parse_feed("corpus", body, headers, url=f"http://corpus.example/{name}", now=NOW)
            matches += sum(len(matcher.match(item)) for item in found)
        except ParseError:
            refused += 1
        except Exception as e:  # the point of the run: anything else is a bug to report
            escaped.append((name, f"{type(e).__name__}: {e}"[:300]))
        else:
            parsed += 1
            items += len(found)
            warnings += warning is not None
        took = time.perf_counter() - begun
        if took > slowest[1]:
            slowest = (name, took)
    return CorpusReport(
        files=len(files),
        parsed=parsed,
        refused=refused,
        escaped=tuple(escaped),
        items=items,
        matches=matches,
        warnings=warnings,
        slowest=slowest,
        seconds=time.perf_counter() - started,
    )


def shipped_matcher() -> Matcher:
    watchlists, errors = load_watchlists(ROOT / "watchlists")
    if errors:
        raise SystemExit(f"the shipped watchlists do not load: {errors}")
    return Matcher(watchlists)


def download(target: Path = CACHE) -> Path:
    """feedparser's tests/ folder and LICENSE from its sdist, for the installed version, once."""
    if (target / "tests").is_dir():
        return target
    version = metadata.version("feedparser")
    with tempfile.TemporaryDirectory() as scratch:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps"]
        subprocess.run([*pip, f"feedparser=={version}", "--dest", scratch], check=True)
        (sdist,) = Path(scratch).glob("feedparser-*.tar.gz")
        partial = target.with_name(target.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as archive:
            wanted = [
                m
                for m in archive.getmembers()
                if m.isfile() and m.name.split("/", 1)[-1].startswith(("tests/", "LICENSE"))
            ]
            for member in wanted:
                member.name = member.name.split("/", 1)[-1]
            archive.extractall(partial, members=wanted, filter="data")
        partial.rename(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, help=f"feed files (default: {CACHE})")
    parser.add_argument("--download", action="store_true", help="fetch the corpus first if missing")
    args = parser.parse_args(argv)
    folder = args.folder or (download() if args.download else CACHE)
    files = corpus_files(folder)
    if not files:
        print(f"no feed files in {folder}; run `make corpus` to download the corpus", file=sys.stderr)
        return 2
    report = run(files, shipped_matcher(), base=folder)
    print("\n".join(report.lines()))
    return 1 if report.escaped else 0


if __name__ == "__main__":
    sys.exit(main())
