"""The console channel: alerts printed to standard output, for `make run`, the demo and tailing logs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from monitor.digest import sections
from monitor.notify.base import deliver_each
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome, Digest


def format_alert(alert: Alert) -> str:
    when = alert.published.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"[{alert.severity.label.upper()}] {alert.watchlist_name}: {alert.title}",
        f"  {alert.outlet or alert.feed} · {when}" + (f" · {alert.link}" if alert.link else ""),
        # An operator notice matched nothing: what to do is in its summary.
        f"  matched: {', '.join(alert.terms)}" if alert.terms else f"  {alert.summary}",
    ]
    note = corroboration_note(alert.sources, alert.outlet or alert.feed, alert.min_sources)
    if note:
        lines.append(f"  {note}")
    return "\n".join(lines)


class ConsoleNotifier:
    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        return await deliver_each(alerts, self.name, self._print)

    async def _print(self, alert: Alert) -> None:
        print(format_alert(alert), file=self._stream or sys.stdout, flush=True)

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        lines = [f"=== digest: {len(digest.alerts)} alerts, due {digest.period_end:%Y-%m-%d %H:%M UTC} ==="]
        for section in sections(digest.alerts):
            lines.append(f"--- {section.watchlist_name} ({section.total}) ---")
            lines.extend(format_alert(a) for a in section.alerts)
            if section.more:
                lines.append(f"  and {section.more} more")
        print("\n".join(lines), file=self._stream or sys.stdout, flush=True)
        return [DeliveryOutcome(a.id, self.name, True) for a in digest.alerts]
