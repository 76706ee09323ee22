"""Watchlists: what analysts watch for, and the matcher that finds it in items."""

from monitor.watchlists.loader import load_watchlist, load_watchlists
from monitor.watchlists.matcher import Matcher
from monitor.watchlists.model import Watchlist

__all__ = ["Matcher", "Watchlist", "load_watchlist", "load_watchlists"]
