"""The cycle benchmark's parts (bench/farm.py, bench/farm_client.py, bench/measure.py) do what
the results rely on: feeds spread over many loopback hosts, conditional requests answered with
304, a share of feeds changed on demand, responses counted, and a real `monitor poll --once`
measured against them, cold then warm.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.farm_client import FarmClient, start_farm
from bench.measure import Spread, run_measured

ROOT = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-m", "monitor"]


@pytest.fixture(scope="module")
def farm() -> Iterator[FarmClient]:
    with start_farm(
        6, latency=0.0, extra_args=["--hosts", "3", "--items", "4", "--lifetime", "120"]
    ) as running:
        yield running


def test_feeds_are_spread_over_hosts_and_answer_conditional_requests(farm: FarmClient) -> None:
    urls = farm.urls()
    assert {httpx.URL(u).host for u in urls} == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    with httpx.Client(trust_env=False) as client:
        first = client.get(urls[0], headers={"Accept-Encoding": "identity"})
        assert first.status_code == 200
        assert first.text.count("<item>") == 4
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert client.get(urls[0], headers={"If-None-Match": etag}).status_code == 304
        assert client.get(urls[0], headers={"If-Modified-Since": modified}).status_code == 304
        with client.stream("GET", urls[0], headers={"Accept-Encoding": "gzip"}) as zipped:
            assert zipped.headers["content-encoding"] == "gzip"
            assert gzip.decompress(b"".join(zipped.iter_raw())) == first.content

        tags = {u: client.get(u).headers["etag"] for u in urls}
        assert farm.change(0.5, items=2, seed=1) == 3
        statuses = [client.get(u, headers={"If-None-Match": tags[u]}).status_code for u in urls]
        assert sorted(statuses) == [200, 200, 200, 304, 304, 304]
        changed = client.get(urls[statuses.index(200)], headers={"Accept-Encoding": "identity"})
        assert changed.text.count("<item>") == 4  # two new items on top, the oldest two gone


def test_a_real_poll_is_measured_cold_then_warm(farm: FarmClient, tmp_path: Path) -> None:
    feeds = "".join(f'[[feeds]]\nname = "f{i}"\nurl = "{url}"\n\n' for i, url in enumerate(farm.urls()))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[defaults]\nstate_path = "{tmp_path / "state.db"}"\nwatchlists_dir = "{ROOT / "watchlists"}"\n'
        f'allow_private_networks = true\n\n{feeds}[channels.console]\ntype = "console"\n',
        encoding="utf-8",
    )
    argv = [*MONITOR, "poll", "--once", "--config", str(config)]
    farm.reset()
    cold = run_measured(argv, cwd=ROOT, timeout=120).check()
    assert farm.stats().get("200") == 6
    farm.reset()
    warm = run_measured(argv, cwd=ROOT, timeout=120).check()
    warm_stats = farm.stats()
    assert 1 <= warm_stats.pop("connections") <= 6  # counted as the client opens them
    assert warm_stats == {"304": 6, "bytes": 0}
    for run in (cold, warm):
        assert run.wall > 0
        assert run.cpu > 0
        assert run.max_rss > 10 * 2**20  # a Python process with its libraries loaded
    assert "new items: 24" in cold.output
    assert "6 not modified" in warm.output


def test_a_killed_command_is_reported_not_waited_for() -> None:
    run = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert run.returncode != 0
    assert run.wall < 10
    with pytest.raises(RuntimeError, match="exited"):
        run.check()


def test_a_spread_is_a_median_with_its_range() -> None:
    spread = Spread.of([3.0, 1.0, 2.0])
    assert (spread.median, spread.low, spread.high, spread.runs) == (2.0, 1.0, 3.0, 3)
    assert spread.format() == "2.00 (1.00–3.00) s"
    assert Spread.of([1.5]).format("ms", 1) == "1.5 ms"
