"""Persistent state: feeds, items, matches and the alert outbox, in SQLite."""

from monitor.store.sqlite import Store

__all__ = ["Store"]
