"""Watchlists: what analysts watch for, and the matcher that finds it in items.

Loading them from files (`monitor.watchlists.loader`) is not imported here: the worker process
imports this package to match, and its parser (lark) and schedules (APScheduler) cost it memory.
"""

from monitor.watchlists.matcher import Matcher
from monitor.watchlists.model import Watchlist

__all__ = ["Matcher", "Watchlist"]
