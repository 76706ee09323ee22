"""What a digest says, as data: its sections, their order and their caps. Every channel renders
the same sections, so a digest reads the same in Slack, in a mail client and in a webhook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.types import Alert

# Past this many alerts for one watchlist a digest says "and N more" instead of listing them.
SECTION_LIMIT = 20


@dataclass(frozen=True, slots=True)
class DigestSection:
    watchlist: str  # slug
    watchlist_name: str
    alerts: tuple[Alert, ...]  # the ones shown: most severe first, then newest first
    more: int  # how many were left out

    @property
    def total(self) -> int:
        return len(self.alerts) + self.more


def sections(alerts: Sequence[Alert], limit: int = SECTION_LIMIT) -> list[DigestSection]:
    """Group by watchlist; the most severe watchlist first (then by name), and in each the most
    severe alerts first, newest first among equals. Each section shows at most `limit` alerts.
    """
    by_watchlist: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_watchlist.setdefault(alert.watchlist, []).append(alert)
    result = []
    for slug, group in by_watchlist.items():
        ordered = sorted(group, key=lambda a: (-a.severity, -a.published.timestamp(), a.id))
        result.append(
            DigestSection(slug, ordered[0].watchlist_name, tuple(ordered[:limit]), len(ordered[limit:]))
        )
    result.sort(key=lambda s: (-max(a.severity for a in s.alerts), s.watchlist_name, s.watchlist))
    return result
