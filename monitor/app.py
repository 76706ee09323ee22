"""Wiring: settings in, a ready Runtime out. The one place that builds the real parts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from monitor.config import Settings
from monitor.cpu import CpuWork
from monitor.errors import LocatedError
from monitor.fetch import Fetcher
from monitor.notify import Notifier, build_notifiers, notification_client
from monitor.pipeline import Runtime
from monitor.store import Store
from monitor.store.lock import exclusive
from monitor.watchlists import Watchlist
from monitor.watchlists.live import LiveWatchlists
from monitor.watchlists.loader import load_watchlists

log = logging.getLogger("monitor")


def load_checked_watchlists(settings: Settings) -> tuple[list[Watchlist], list[LocatedError]]:
    return load_watchlists(settings.defaults.watchlists_dir, settings.channels.keys())


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    notifiers: dict[str, Notifier] | None = None,
) -> AsyncIterator[Runtime]:
    """Open the store, the HTTP clients and the notifiers; close them all on exit.

    A broken watchlist is logged and skipped: the others keep working.
    """
    library = LiveWatchlists(settings.defaults.watchlists_dir, settings.channels.keys())
    library.reload()  # logs each broken watchlist; the others keep working
    with exclusive(settings.defaults.state_path):
        store = Store.open(settings.defaults.state_path)
        try:
            async with (
                Fetcher(settings.defaults, transport) as fetcher,
                notification_client(settings.defaults.timeout, fetcher.ssl_context) as client,
                CpuWork(settings.defaults.worker_process) as cpu,
            ):
                yield Runtime(
                    settings=settings,
                    store=store,
                    fetcher=fetcher,
                    watchlists=library.watchlists,
                    library=library,
                    notifiers=notifiers if notifiers is not None else build_notifiers(settings, client),
                    http=client,
                    cpu=cpu,
                )
        finally:
            store.close()
