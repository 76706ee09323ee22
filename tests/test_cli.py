"""The `monitor` command: exit codes, error messages, the demo, health."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, Route, Server, fixture_bytes, write_config

ROOT = Path(__file__).parent.parent


def monitor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """The bundled demo, copied so its state starts empty and stays in tmp_path."""
    shutil.copytree(ROOT / "demo", tmp_path / "demo")
    shutil.copytree(ROOT / "watchlists", tmp_path / "watchlists")
    (tmp_path / "state").mkdir()
    return tmp_path / "demo" / "config.toml"


def test_version() -> None:
    """`python -m monitor --version` names the program."""
    result = monitor("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("monitor, version ")


def test_check_accepts_the_shipped_config() -> None:
    """The config.toml and watchlists in the repository are valid."""
    result = monitor("check", "--config", str(ROOT / "config.toml"))
    assert result.returncode == 0, result.stderr
    for slug in ("chinese-diplomacy", "sistan-baluchestan", "ambassador-returns"):
        assert slug in result.stdout


BROKEN = {
    "unknown key": ('[defaults]\npoll_intervall = "5m"\n', "defaults.poll_intervall: unknown key"),
    "missing key": ('[[feeds]]\nname = "dawn"\n', "feeds[0].url: missing"),
    "malformed url": (
        '[[feeds]]\nname = "x"\nurl = "htp:/nowhere"\n',
        "feeds[0].url: 'htp:/nowhere' is not a feed address",
    ),
    "unset variable": (
        '[channels.ops]\ntype = "slack"\nwebhook_url = "${MONITOR_TEST_UNSET_SLACK}"\n',
        "channels.ops.webhook_url: ${MONITOR_TEST_UNSET_SLACK} is not set",
    ),
    "toml syntax": (
        '[defaults\npoll_interval = "5m"\n',
        "TOML syntax error: Expected ']' at the end of a table declaration (at line 1",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_check_names_file_and_key_and_exits_2(tmp_path: Path, case: str) -> None:
    """Each kind of configuration error names the file and the key or line; `check` exits 2."""
    text, expected = BROKEN[case]
    config = write_config(tmp_path / "config.toml", text)
    result = monitor("check", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: {expected}" in result.stderr


def test_check_lists_every_error_at_once(tmp_path: Path) -> None:
    """Mistakes in config.toml and in watchlists are all reported in one run."""
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    (watchlists / "bad.toml").write_text(
        'name = "Bad"\nseverity = "urgent"\nchannels = ["pager"]\nquery = "(Zahedan OR"\n'
    )
    config = write_config(
        tmp_path / "config.toml",
        f'[defaults]\nwatchlists_dir = "{watchlists}"\ncolour = "blue"\n[channels.x]\ntype = "pager"\n',
    )
    result = monitor("check", "--config", str(config))
    assert result.returncode == 2
    assert "defaults.colour: unknown key" in result.stderr
    assert "channels.x.type: unknown channel type 'pager'" in result.stderr
    assert f"{watchlists / 'bad.toml'}: severity:" in result.stderr
    assert f"{watchlists / 'bad.toml'}: channels: channel 'pager' is not defined" in result.stderr
    assert f"{watchlists / 'bad.toml'}: query: expected a term, the query ends at column 12" in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist says so and exits 2."""
    result = monitor("poll", "--once", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml: file not found" in result.stderr


def test_demo_prints_alerts_then_nothing_new(demo_copy: Path) -> None:
    """The offline demo alerts on each shipped signal; a second run finds nothing new."""
    first = monitor("poll", "--once", "--config", str(demo_copy))
    assert first.returncode == 0, first.stderr
    for name in ("Sistan-Baluchestan", "Chinese diplomacy", "Ambassadors return"):
        assert name in first.stdout
    assert "3 ok" in first.stdout
    assert "alerts pending: 0" in first.stdout

    second = monitor("poll", "--once", "--config", str(demo_copy))
    assert second.returncode == 0, second.stderr
    assert "Nothing new." in second.stdout
    assert "[" not in second.stdout.split("feeds:")[0]  # no alert lines before the summary


def test_health_follows_the_last_poll(demo_copy: Path) -> None:
    """`monitor health` fails before any poll, passes after one, fails once the poll is stale."""
    before = monitor("health", "--config", str(demo_copy))
    assert before.returncode == 1
    assert "no poll has completed" in before.stdout

    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    healthy = monitor("health", "--config", str(demo_copy))
    assert healthy.returncode == 0, healthy.stdout

    db = demo_copy.parent.parent / "state" / "demo.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '2020-01-01T00:00:00+00:00' WHERE key = 'last_cycle_at'")
    stale = monitor("health", "--config", str(demo_copy))
    assert stale.returncode == 1
    assert "last poll" in stale.stdout


def test_feeds_shows_health_table(demo_copy: Path) -> None:
    """`monitor feeds` lists every configured feed with its status after a poll."""
    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    result = monitor("feeds", "--config", str(demo_copy))
    assert result.returncode == 0
    for name in ("dawn", "aljazeera", "regional-wire"):
        assert any(line.startswith(name) and " ok " in line for line in result.stdout.splitlines())


# Tuning: match, explain, eval, backtest (on small watchlists written here, not the shipped ones)

RASK_WATCHLIST = """
name = "Rask incidents"
query = '''
@towns AND (attack* OR killed) AND NOT title:cricket
'''
[terms]
towns = ["Rask", "Zahedan"]
"""
ENVOYS_WATCHLIST = 'name = "Envoys"\nquery = "ambassador* NEAR/5 return*"\n'
ITEMS = [
    {
        "id": "a1",
        "title": "Gunmen attack police station in Rask",
        "summary": "Eleven killed.",
        "link": "https://x.example/a1",
        "labels": ["rask"],
    },
    {"id": "a2", "title": "Ambassadors return to posts", "summary": "", "labels": ["envoys", "rask"]},
    {"id": "a3", "title": "Cricket attack in Zahedan", "summary": "", "labels": []},
    {"id": "a4", "title": "Markets", "summary": "quiet"},
    {"id": "a5", "title": "Zahedan attack drill", "summary": "", "labels": []},
]


@pytest.fixture
def tuning(tmp_path: Path) -> Path:
    """tmp_path with watchlists/ (rask, envoys) and items.jsonl."""
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    (watchlists / "rask.toml").write_text(RASK_WATCHLIST, encoding="utf-8")
    (watchlists / "envoys.toml").write_text(ENVOYS_WATCHLIST, encoding="utf-8")
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(i) for i in ITEMS) + "\n", encoding="utf-8")
    return tmp_path


def tuning_command(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A tuning command run in `base` on its watchlists (no config.toml there)."""
    return monitor(*args, "--watchlists", str(base / "watchlists"), cwd=base)


def test_match_json_prints_one_object_per_item(tuning: Path) -> None:
    result = tuning_command(tuning, "match", "items.jsonl", "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in objects] == ["a1", "a2", "a3", "a4", "a5"]
    for o in objects:
        assert set(o) == {"id", "link", "title", "watchlists", "matches"}
    a1, a2, a3, a4, a5 = objects
    assert a1["link"] == "https://x.example/a1"
    assert a1["title"] == ITEMS[0]["title"]
    assert a1["watchlists"] == ["rask"]
    (match,) = a1["matches"]
    assert set(match) == {"watchlist", "score", "terms", "hits"}
    assert match["watchlist"] == "rask"
    assert match["terms"] == ["attack*", "Rask", "killed"]
    assert match["score"] == 5.0  # attack* and Rask in the title (2 each), killed in the summary (1)
    texts = {"title": ITEMS[0]["title"], "summary": ITEMS[0]["summary"]}
    assert [(h["term"], h["field"], texts[h["field"]][h["start"] : h["end"]]) for h in match["hits"]] == [
        ("attack*", "title", "attack"),
        ("Rask", "title", "Rask"),
        ("killed", "summary", "killed"),
    ]
    assert a2["watchlists"] == ["envoys"]
    assert a2["link"] is None
    assert a2["matches"][0]["terms"] == ["ambassador*", "return*"]
    for unmatched in (a3, a4):
        assert unmatched["watchlists"] == []
        assert unmatched["matches"] == []
    assert a5["watchlists"] == ["rask"]


def test_match_reads_rss_atom_and_json_lines_together(tuning: Path) -> None:
    result = tuning_command(
        tuning, "match", "items.jsonl", str(FIXTURES / "frontier.xml"), str(FIXTURES / "wire.atom"), "--json"
    )
    assert result.returncode == 0, result.stderr
    by_id = {o["id"]: o["watchlists"] for o in map(json.loads, result.stdout.splitlines())}
    assert len(by_id) == 9
    assert by_id["frontier-rask-1"] == ["rask"]
    assert by_id["frontier-psl-1"] == []
    assert by_id["urn:example:regional-wire:ambassadors-return"] == ["envoys"]
    assert by_id["urn:example:regional-wire:markets-0126"] == []


def test_match_text_output(tuning: Path) -> None:
    result = tuning_command(tuning, "match", "items.jsonl")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        "a1  Gunmen attack police station in Rask",
        "    -> rask (score 5): attack*, Rask, killed",
        "a2  Ambassadors return to posts",
        "    -> envoys (score 4): ambassador*, return*",
        "a3  Cricket attack in Zahedan",
        "    -> no watchlist",
    ]


def test_match_reports_a_bad_file_with_its_line(tuning: Path) -> None:
    (tuning / "bad.jsonl").write_text('{"title": "ok"}\n{"title": \n', encoding="utf-8")
    result = tuning_command(tuning, "match", "bad.jsonl")
    assert result.returncode == 1
    assert "bad.jsonl: line 2: not JSON" in result.stderr


def test_match_reports_broken_watchlists_and_uses_the_others(tuning: Path) -> None:
    (tuning / "watchlists" / "broken.toml").write_text('name = "B"\nquery = "(x"\n', encoding="utf-8")
    result = tuning_command(tuning, "match", "items.jsonl", "--json")
    assert result.returncode == 0
    assert "broken.toml: query: expected ')', the query ends at column 3" in result.stderr
    assert json.loads(result.stdout.splitlines()[0])["watchlists"] == ["rask"]


def test_explain_text_shows_spans_in_brackets_and_the_tree(tuning: Path) -> None:
    result = tuning_command(tuning, "explain", "rask", "--text", "Gunmen attack police station in Rask")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "rask: matched, score 4",
        "  title:   Gunmen [attack] police station in [Rask]",
        "",
        "  ✓ AND",
        "    ✓ @towns: Rask  (title word 6)",
        "    ✓ OR",
        "      ✓ attack*  (title word 2)",
        "      ✗ killed",
        "    ✓ NOT",
        "      ✗ title:cricket",
    ]
    assert "\x1b[" not in result.stdout  # stdout is a pipe, not a terminal


def test_explain_says_no_match_and_which_node_failed(tuning: Path) -> None:
    result = tuning_command(
        tuning, "explain", "rask", "--text", "Cricket attack in Zahedan", "--summary", "Rask attack"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["rask: no match", "  title:   Cricket attack in Zahedan", "  summary: Rask attack"]
    assert "  ✗ AND" in lines
    assert "    ✗ NOT" in lines
    assert "      ✓ title:cricket  (title word 1)" in lines


def test_explain_near(tuning: Path) -> None:
    result = tuning_command(tuning, "explain", "envoys", "--text", "The ambassador will return")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "envoys: matched, score 4",
        "  title:   The [ambassador] will [return]",
        "",
        "  ✓ NEAR/5  (title words 2-4)",
        "    ✓ ambassador*  (title word 2)",
        "    ✓ return*  (title word 4)",
    ]


def test_explain_an_unknown_watchlist_fails_clearly(tuning: Path) -> None:
    result = tuning_command(tuning, "explain", "nope", "--text", "x")
    assert result.returncode == 1
    assert "no usable watchlist 'nope' (loaded: envoys, rask)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [(), ("--text", "Rask", "--item", "1")], ids=["neither", "both"])
def test_explain_needs_text_or_item_not_both(tuning: Path, args: tuple[str, ...]) -> None:
    result = tuning_command(tuning, "explain", "rask", *args)
    assert result.returncode == 2
    assert "give either --text TEXT or --item ID" in result.stderr
    assert "Usage:" in result.stderr


def test_eval_prints_scores_and_mistakes(tuning: Path) -> None:
    result = tuning_command(tuning, "eval", "--corpus", "items.jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "4 labelled items from items.jsonl"  # a4 has no labels
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["watchlist", "TP", "FP", "FN"])
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 3]}
    # envoys: a2 found. rask: a1 found, a5 wrongly found, a2 missed.
    assert rows == {
        "envoys": ["1", "0", "0", "1.000", "1.000", "1.000"],
        "rask": ["1", "1", "1", "0.500", "0.500", "0.500"],
    }
    text = result.stdout
    assert "rask: false positives\n  a5  Zahedan attack drill  [Zahedan, attack*]\n" in text
    assert "rask: false negatives\n  a2  Ambassadors return to posts\n" in text
    assert "envoys: false" not in text


def test_eval_json(tuning: Path) -> None:
    result = tuning_command(tuning, "eval", "--corpus", "items.jsonl", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["items"] == 4
    by_slug = {w["watchlist"]: w for w in report["watchlists"]}
    assert by_slug["rask"] == {
        "watchlist": "rask",
        "true_positives": 1,
        "false_positives": [{"id": "a5", "title": "Zahedan attack drill", "terms": ["Zahedan", "attack*"]}],
        "false_negatives": [{"id": "a2", "title": "Ambassadors return to posts"}],
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
    }
    assert by_slug["envoys"]["true_positives"] == 1
    assert (by_slug["envoys"]["precision"], by_slug["envoys"]["recall"]) == (1.0, 1.0)


def test_tuning_commands_without_usable_watchlists_exit_2(tmp_path: Path) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "items.jsonl").write_text('{"title": "x"}\n', encoding="utf-8")
    result = tuning_command(tmp_path, "match", "items.jsonl")
    assert result.returncode == 2
    assert "no usable watchlist in" in result.stderr


# backtest and explain --item on a store filled by a real poll


def backtest_config(tmp_path: Path, feeds: Server) -> Path:
    feeds.routes["/frontier.xml"] = Route(fixture_bytes("frontier.xml"))
    feeds.routes["/wire.atom"] = Route(fixture_bytes("wire.atom"), content_type="application/atom+xml")
    return write_config(
        tmp_path / "config.toml",
        f"""
[defaults]
state_path = "{tmp_path / "state" / "monitor.db"}"
watchlists_dir = "{tmp_path / "watchlists"}"
allow_private_networks = true

[[feeds]]
name = "frontier"
url = "{feeds.url("/frontier.xml")}"

[[feeds]]
name = "wire"
url = "{feeds.url("/wire.atom")}"

[channels.console]
type = "console"
""",
    )


def test_backtest_after_an_edit_lists_added_and_dropped_items(tmp_path: Path, feed_server: Server) -> None:
    watchlists = tmp_path / "watchlists"
    watchlists.mkdir()
    watchlist = watchlists / "incidents.toml"
    watchlist.write_text('name = "Incidents"\nquery = "Rask OR markets"\n', encoding="utf-8")
    config = backtest_config(tmp_path, feed_server)
    polled = monitor("poll", "--once", "--config", str(config))
    assert polled.returncode == 0, polled.stderr
    assert "new items: 4; matches: 2" in polled.stdout

    watchlist.write_text('name = "Incidents"\nquery = "Rask OR ambassadors"\n', encoding="utf-8")
    args = ("--config", str(config), "--watchlists", str(watchlists))
    result = monitor("backtest", "incidents", "--since", "1d", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("incidents: 4 items since ")
    assert lines[0].endswith("; matched then 2, now 2: 1 added, 1 dropped")

    added = re.search(r"^Added:\n  #(\d+) (\S+) wire: (.*)$", result.stdout, re.M)
    dropped = re.search(r"^Dropped:\n  #(\d+) (\S+) wire: (.*)$", result.stdout, re.M)
    assert added is not None, result.stdout
    assert dropped is not None, result.stdout
    assert added.group(3) == "Iran and Pakistan ambassadors return to their posts  [ambassadors]"
    assert dropped.group(3) == "Asian markets close higher on tech rally"
    day = added.group(2)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day)
    assert abs(date.fromisoformat(day) - datetime.now(UTC).date()) <= timedelta(days=1)
    assert f"  {day}      4     2     2      1        1" in lines

    fewer = monitor("backtest", "incidents", "--limit", "0", *args)
    assert "  ... and 1 more (--limit)" in fewer.stdout
    assert "#" not in fewer.stdout

    explained = monitor("explain", "incidents", "--item", added.group(1), *args)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.splitlines()[:2] == [
        "incidents: matched, score 2",
        "  title:   Iran and Pakistan [ambassadors] return to their posts",
    ]
    assert "  ✓ OR" in explained.stdout
    assert "    ✓ ambassadors  (title word 4)" in explained.stdout
    assert "    ✗ Rask" in explained.stdout
    assert "  source:  wire" in explained.stdout

    gone = monitor("explain", "incidents", "--item", dropped.group(1), *args)
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith("incidents: no match\n")

    missing = monitor("explain", "incidents", "--item", "9999", *args)
    assert missing.returncode == 1
    assert "no stored item with id 9999" in missing.stderr


def test_backtest_rejects_a_bad_duration(tmp_path: Path, feed_server: Server) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "w.toml").write_text('name = "W"\nquery = "x"\n', encoding="utf-8")
    config = backtest_config(tmp_path, feed_server)
    result = monitor("backtest", "w", "--since", "a while", "--config", str(config))
    assert result.returncode == 2
    assert "'a while' is not a duration" in result.stderr


def test_eval_stories_reports_both_methods_on_each_corpus() -> None:
    """`eval-stories --json` scores the grouping and the shingle baseline on each corpus given."""
    corpus = str(ROOT / "tests" / "corpus" / "stories.jsonl")
    result = monitor("eval-stories", "--corpus", corpus, "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)[corpus]
    assert set(scores) == {"salient", "shingles"}
    assert scores["salient"]["true_pairs"] == scores["shingles"]["true_pairs"] > 0
    assert scores["salient"]["recall"] > scores["shingles"]["recall"]


def test_eval_stories_refuses_a_bad_window() -> None:
    result = monitor("eval-stories", "--window", "soon")
    assert result.returncode == 2
    assert "'soon' is not a duration" in result.stderr


def test_stories_lists_grouped_copies(tmp_path: Path) -> None:
    """`monitor stories` on an empty state says there is nothing yet, rather than failing."""
    config = tmp_path / "config.toml"
    config.write_text(f'[defaults]\nstate_path = "{tmp_path / "state.db"}"\n')
    result = monitor("stories", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "no story carried by 2 or more outlets in the last 3d" in result.stdout


def test_deliveries_lists_the_outbox_and_retry_needs_failed_alerts(demo_copy: Path) -> None:
    """`deliveries` lists sent alerts; `deliveries retry --all` with nothing failed exits 1."""
    assert monitor("deliveries", "--config", str(demo_copy)).stdout.strip() == "the outbox is empty"
    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    listing = monitor("deliveries", "--config", str(demo_copy))
    assert listing.returncode == 0, listing.stderr
    assert " sent " in listing.stdout
    assert "Rask police station" in listing.stdout
    assert monitor("deliveries", "--failed", "--config", str(demo_copy)).stdout.strip() == "no failed alerts"
    retry = monitor("deliveries", "retry", "--all", "--config", str(demo_copy))
    assert (retry.returncode, retry.stdout.strip()) == (1, "0 alerts queued again")
    assert monitor("deliveries", "retry", "--config", str(demo_copy)).returncode == 2


def test_digest_preview_shows_pending_alerts_without_sending(demo_copy: Path, tmp_path: Path) -> None:
    """`digest --preview` renders what is pending, as text and HTML, and marks nothing sent."""
    assert monitor("digest", "--preview", "--config", str(demo_copy)).stdout.strip() == "nothing pending"
    assert monitor("poll", "--once", "--config", str(demo_copy)).returncode == 0
    db = demo_copy.parent.parent / "state" / "demo.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE outbox SET status = 'pending'")
    conn.close()
    html = tmp_path / "preview.html"
    preview = monitor("digest", "--preview", "--config", str(demo_copy), "--html", str(html))
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("# channel console")
    assert "Rask police station" in preview.stdout
    assert "Rask police station" in html.read_text(encoding="utf-8")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM outbox WHERE status != 'pending'").fetchone()[0] == 0
    conn.close()
    unknown = monitor("digest", "--preview", "--channel", "nope", "--config", str(demo_copy))
    assert unknown.returncode == 2


# Progress bars: on a terminal only


def poll_with_stderr_on(tmp_path: Path, terminal: bool) -> str:
    """`monitor poll --once` over eight local feeds, stderr a pseudo-terminal or a pipe."""
    import os
    import pty

    feeds = "".join(f'[[feeds]]\nname = "f{i}"\nurl = "{FIXTURES / "frontier.xml"}"\n\n' for i in range(8))
    config = write_config(
        tmp_path / "config.toml",
        f'[defaults]\nstate_path = "{tmp_path / "m.db"}"\nwatchlists_dir = "{ROOT / "watchlists"}"\n'
        f"\n{feeds}",
    )
    command = [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)]
    if not terminal:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stderr
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is done writing
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_poll_of_many_feeds_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    shown = poll_with_stderr_on(tmp_path, terminal=True)
    assert "polling feeds" in shown
    assert "8/8" in shown or "100%" in shown


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    logged = poll_with_stderr_on(tmp_path, terminal=False)
    assert "polling feeds" not in logged
    assert all(json.loads(line) for line in logged.splitlines())  # JSON log lines only
