"""The worker process: parsing and matching for the process that started it (`monitor.cpu`).

    python -m monitor.worker    # reads requests on stdin, writes replies on stdout

Each message on either pipe is a frame: a 4-byte length, then a pickle. The worker answers its
requests one at a time, in order: `parse` (a feed body, as `parse_document`), `analyse` (items,
with the watchlists last sent in a `watchlists` message, which has no reply). A request that
fails is answered with the error; the worker goes on. It imports only what those need: not
asyncio, the query parser or the schedules, which would double its memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Sequence
from typing import IO, Any

from monitor.errors import ParseError
from monitor.parse import parse_document
from monitor.stories import Fingerprint, fingerprint
from monitor.types import Item, Match
from monitor.watchlists import Matcher

Analysis = tuple[list[Match], Fingerprint]

HEADER = struct.Struct("<I")  # a frame's length, before its pickle
PIPE_BYTES = 1 << 20  # Linux lets any process give a pipe this much (/proc/sys/fs/pipe-max-size)


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def unpickle(data: bytes) -> Any:
    # Only ever what the other end of our own pipe wrote: this process or the worker it started.
    return pickle.loads(data)  # noqa: S301


def analyse(item: Item, matcher: Matcher) -> Analysis:
    """An item's matches (terms only, no spans) and its story fingerprint."""
    return matcher.match(item, spans=False), fingerprint(item.title, item.summary, item.published)


def analyse_all(items: Sequence[Item], matcher: Matcher) -> list[Analysis]:
    return [analyse(item, matcher) for item in items]


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The worker's loop: answer each request in turn until its input ends."""

    def reply(message: object) -> None:
        replies.write(frame(message))
        replies.flush()

    matcher = Matcher(())
    reply(("ready",))
    while True:
        header = requests.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        (length,) = HEADER.unpack(header)
        number, kind, *args = unpickle(requests.read(length))
        if kind == "watchlists":
            matcher = Matcher(args[0])
            continue
        try:
            if kind == "parse":
                feed, body, headers, url, now = args
                result: object = parse_document(feed, body, headers, url=url, now=now)
            elif kind == "analyse":
                result = analyse_all(args[0], matcher)
            else:
                raise ValueError(f"unknown request {kind!r}")
        except ParseError as e:
            reply((number, False, ("parse", e.feed, str(e))))
        except Exception:  # a bug: reported to the caller, which logs it; the worker goes on
            reply((number, False, ("bug", traceback.format_exc(limit=-3))))
        else:
            reply((number, True, result))


def main() -> None:
    # It stops when its input closes, which is when the process that started it exits, however
    # that happens; a Ctrl-C, a terminal's hangup or a TERM sent to the group is for that process.
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    # Replies go out on the original standard output; anything else printed goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for pipe in (sys.stdin.fileno(), replies.fileno()):
        _widen(pipe)
    with contextlib.suppress(BrokenPipeError):  # the process that started it is gone: so are we
        serve(sys.stdin.buffer, replies)


def _widen(pipe: int) -> None:
    """Let a pipe hold many feeds, not one (64 KiB by default on Linux).

    The event loop reads replies and writes requests only between its own pieces of work (storing
    a feed takes milliseconds). With room for one feed, the worker waited for it after every
    feed, and the two processes took turns instead of working side by side.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or a limit lower than asked
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


if __name__ == "__main__":
    main()
