"""Watchlists that follow their files: edits are picked up, a broken edit never takes one down."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from monitor.errors import LocatedError
from monitor.watchlists.loader import TERMS_DIR, load_watchlists
from monitor.watchlists.model import Watchlist

log = logging.getLogger("monitor")

Signature = tuple[tuple[str, int, int], ...]


class LiveWatchlists:
    """The watchlists of a directory as last loaded without error, reloaded when a file changes.

    When a watchlist file (or a shared term set it uses) has an error, the last good version of
    that watchlist keeps running and the error is logged with its position. A deleted file's
    watchlist is dropped; a new file's is added.
    """

    def __init__(self, directory: Path, channels: Iterable[str] | None = None) -> None:
        self.directory = directory
        self.channels = None if channels is None else tuple(channels)
        self.errors: list[LocatedError] = []
        self._signature: Signature | None = None
        self._current: dict[str, Watchlist] = {}

    @property
    def watchlists(self) -> list[Watchlist]:
        return list(self._current.values())

    def signature(self) -> Signature:
        """What the files look like now: a change to any of them (or a new or deleted one) shows."""
        paths = [*self.directory.glob("*.toml"), *(self.directory / TERMS_DIR).glob("*.toml")]
        entries = []
        for path in sorted(paths):
            try:
                stat = path.stat()
            except OSError:
                continue  # deleted between listing and stat: the next check sees it gone
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def invalidate(self) -> None:
        """Make the next reload read the files even if none changed (the channels may have)."""
        self._signature = None

    def reload(self) -> bool:
        """Load again if any file changed; True when the running set of watchlists changed."""
        signature = self.signature()
        if signature == self._signature:
            return False
        self._signature = signature
        loaded, errors = load_watchlists(self.directory, self.channels)
        self.errors = errors
        fresh = {w.slug: w for w in loaded}
        on_disk = {Path(name).stem for name, _, _ in signature if Path(name).parent == self.directory}
        # A broken shared term set breaks the watchlists that use it, with errors that may name
        # only the set's file: then every watchlist that failed to load keeps its last version.
        shared_broken = any(Path(e.file).parent == self.directory / TERMS_DIR for e in errors)
        failed = {Path(e.file).stem for e in errors} | (on_disk if shared_broken else set())
        kept = {slug for slug in failed & on_disk if slug not in fresh and slug in self._current}
        for slug in kept:
            fresh[slug] = self._current[slug]
        for error in errors:
            note = (
                "; the last good version keeps running"
                if Path(error.file).stem in kept or shared_broken
                else ""
            )
            log.error("watchlist error%s: %s", note, error)
        ordered = {slug: fresh[slug] for slug in sorted(fresh)}
        changed = ordered != self._current
        if changed and self._current:
            log.info("watchlists reloaded: %s", ", ".join(ordered) or "none")
        self._current = ordered
        return changed
