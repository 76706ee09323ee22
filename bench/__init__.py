"""Benchmarks: `python -m bench.bench_matcher` (or `make bench`); results in bench/RESULTS.md."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, text: str, start_marker: str, end_marker: str) -> None:
    """Put `text` (a section between the two markers) into `path`, replacing the previous one."""
    if path.exists():
        current = path.read_text(encoding="utf-8")
    else:
        current = "# Benchmarks\n\nEach benchmark writes its own section between its markers.\n"
    start, end = current.find(start_marker), current.find(end_marker)
    if start >= 0 and end > start:
        updated = current[:start] + text + current[end + len(end_marker) :]
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated, encoding="utf-8")
