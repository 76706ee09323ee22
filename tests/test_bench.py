"""The matching benchmark (bench/bench_matcher.py) still works: generation, agreement, report.

No timing is asserted: only that the benchmark runs, is deterministic, and that the compiled
matcher and the naive loop agree on which watchlists the generated items match.
"""

from __future__ import annotations

from pathlib import Path

from bench import bench_matcher as bench
from monitor.watchlists import load_watchlists
from monitor.watchlists.model import leaves


def test_generated_watchlists_and_items_are_deterministic_and_well_formed() -> None:
    watchlists = bench.generate_watchlists(12, seed=5)
    assert watchlists == bench.generate_watchlists(12, seed=5)
    assert all(len(leaves(w.query)) == bench.TERMS_PER_WATCHLIST for w in watchlists)
    items = bench.generate_items(30, seed=5)
    assert items == bench.generate_items(30, seed=5)
    assert all(40 <= len(item.title) <= 110 for item in items)
    assert all(1_200 <= len(item.summary) <= 1_800 for item in items)


def test_the_compiled_matcher_and_the_naive_loop_agree() -> None:
    shipped, _ = load_watchlists(bench.WATCHLISTS_DIR)
    assert shipped
    generated = bench.generate_watchlists(10)
    items = bench.generate_items(40, signal_share=0.5)  # half carry shipped-watchlist terms
    agreement = bench.check_agreement([*shipped, *generated], items)
    assert agreement.disagreements == []
    assert agreement.exact_decisions == agreement.exact_agree > 0
    assert agreement.exact_matches > 0  # the check is not vacuous


def test_the_benchmark_runs_end_to_end_and_keeps_one_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    args = ["--items", "30", "--generated", "4", "--runs", "1", "--agreement-items", "10"]
    args += ["--compiled-seconds", "0.01", "--naive-seconds", "0.01", "--output", str(results)]
    assert bench.main(args) == 0
    assert bench.main(args) == 0  # a second run replaces the section
    text = results.read_text()
    assert text.count(bench.START_MARKER) == 1
    assert text.count(bench.END_MARKER) == 1
    assert "kept" in text
    assert "| shipped + 4 generated (" in text
