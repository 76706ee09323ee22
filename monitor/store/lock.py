"""One process per state database: two daemons (or a daemon and `poll --once`) sharing an outbox
would both send the same alerts."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import StoreError


@contextmanager
def exclusive(state_path: Path) -> Iterator[None]:
    """Hold an advisory lock beside the database for as long as the block runs.

    The kernel drops the lock when the process dies, so a killed monitor never leaves it stale.
    """
    path = Path(f"{state_path}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as e:
        raise StoreError(f"{path}: cannot create the lock file: {e.strerror}") from e
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StoreError(
                f"{state_path}: another monitor process (pid {holder}) is using this database; "
                "stop it first, or give this run its own defaults.state_path",
                kind="busy",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
