"""The worker process's side: its loop answers requests in order, and it imports little."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.parse import parse_document
from monitor.worker import frame, serve, unpickle
from tests.conftest import fixture_bytes

NOW = datetime(2024, 1, 20, 12, 0, tzinfo=UTC)
URL = "https://wire.example/feed"


def replies_to(*requests: tuple[object, ...]) -> list[Any]:
    """What serve replies to `requests`, run here on in-memory pipes."""
    replies = io.BytesIO()
    serve(io.BytesIO(b"".join(frame(r) for r in requests)), replies)
    data, out = replies.getvalue(), []
    while data:
        length = int.from_bytes(data[:4], "little")
        out.append(unpickle(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


def test_the_worker_loop_answers_each_request_in_turn() -> None:
    """Ready first; then a result, a parse error with its feed, and a bug reported, not fatal."""
    body = fixture_bytes("frontier.xml")
    replies = replies_to(
        (1, "parse", "frontier", body, {}, URL, NOW),
        (2, "parse", "junk", b"<html>", {}, URL, NOW),
        (3, "shred", "?"),
        (4, "analyse", []),
    )
    assert replies[0] == ("ready",)
    assert replies[1] == (1, True, parse_document("frontier", body, {}, url=URL, now=NOW))
    number, ok, (kind, feed, message) = replies[2]
    assert (number, ok, kind, feed) == (2, False, "parse", "junk")
    assert "not an RSS or Atom feed" in message
    number, ok, (kind, text) = replies[3]
    assert (number, ok, kind) == (3, False, "bug")
    assert "unknown request 'shred'" in text
    assert replies[4] == (4, True, [])


def test_the_worker_does_not_import_what_it_does_not_use() -> None:
    """No event loop, query parser or schedules in the worker: each would cost it megabytes."""
    code = "import sys, monitor.worker; print(' '.join(sorted(sys.modules)))"
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "monitor.parse" in modules
    assert "monitor.watchlists.matcher" in modules
    for heavy in ("asyncio", "lark", "apscheduler", "httpx", "sqlite_utils"):
        assert heavy not in modules
