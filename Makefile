# Every target creates .venv and installs the project into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test demo lint check bench soak corpus fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The benchmarks' extra (the profiler) on top: only `make bench` needs it, so `make test` and CI do not.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

run: $(STAMP)  ## start the daemon on config.toml (SQLite in state/)
	$(BIN)/monitor run

test: $(STAMP)  ## run the test suite
	$(BIN)/pytest -q

demo: $(STAMP)  ## one offline cycle on the bundled sample feeds; run it twice
	$(BIN)/monitor poll --once --config demo/config.toml

check: $(STAMP)  ## validate config.toml and the watchlists
	$(BIN)/monitor check

lint: $(STAMP)  ## ruff, mypy and hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

bench: $(BENCH_STAMP)  ## matcher; story decisions at 1k vs 1M items; poll cycles at 100-5,000 feeds, peers, profile (~17 min); updates bench/RESULTS.md
	$(BIN)/python -m bench.bench_matcher
	$(BIN)/python -m bench.bench_stories
	$(BIN)/python -m bench.bench_cycle

soak: $(STAMP)  ## ten minutes of `monitor run` on 200 changing feeds; memory must stay flat
	$(BIN)/pytest -q -s -m slow tests/test_soak.py

corpus: $(STAMP)  ## feedparser's own ~2,250 test feeds through parse and match (downloads them once)
	$(BIN)/python -m bench.corpus --download

fuzz: $(STAMP)  ## ten minutes of generated hostile feeds through parse, normalise and match
	MONITOR_FUZZ_SECONDS=$${MONITOR_FUZZ_SECONDS:-600} $(BIN)/pytest -q -s tests/test_fuzz.py -k for_the_time_given

clean:
	rm -rf $(VENV) state/demo.db*
