"""Benchmarks: `python -m bench.bench_matcher` (or `make bench`); results in bench/RESULTS.md."""
