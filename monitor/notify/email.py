"""Email over SMTP: one message per delivery run, with a plain-text and an HTML part."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
from collections import Counter
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

import jinja2

from monitor.config import ChannelConfig, EmailOptions
from monitor.errors import DeliveryError
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor", "templates"),
    # Feed text goes into HTML: autoescape makes a <script> in a summary inert text.
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
SMTP_TIMEOUT = 30
_TEMPLATES.globals["corroboration"] = lambda alert: corroboration_note(
    alert.sources, alert.outlet or alert.feed, alert.min_sources
)


def subject(alerts: Sequence[Alert]) -> str:
    counts = Counter(a.watchlist_name for a in alerts)
    parts = ", ".join(f"{name} ({n})" for name, n in counts.most_common())
    # Header injection: no CR or LF from a watchlist name reaches the header.
    return " ".join(f"[monitor] {len(alerts)} new: {parts}".split())


def build_message(alerts: Sequence[Alert], options: EmailOptions) -> EmailMessage:
    ordered = sorted(alerts, key=lambda a: (-a.severity, a.watchlist_name, a.published))
    message = EmailMessage()
    message["Subject"] = subject(ordered)
    message["From"] = options.sender
    message["To"] = ", ".join(options.recipients)
    message["Date"] = formatdate(usegmt=True)
    # The same alerts always get the same Message-ID, so a retried send is recognisably one message.
    digest = hashlib.sha256("\n".join(sorted(a.id for a in alerts)).encode()).hexdigest()[:32]
    domain = options.sender.rpartition("@")[2] or "monitor.invalid"
    message["Message-ID"] = f"<{digest}@{domain}>"
    context = {"alerts": ordered}
    message.set_content(_TEMPLATES.get_template("email.txt").render(context))
    message.add_alternative(_TEMPLATES.get_template("email.html").render(context), subtype="html")
    return message


class EmailNotifier:
    def __init__(self, channel: ChannelConfig) -> None:
        assert isinstance(channel.options, EmailOptions)
        self.name = channel.name
        self._options = channel.options

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        if not alerts:
            return []
        try:
            await asyncio.to_thread(self._send, build_message(alerts, self._options))
        except DeliveryError as e:
            return [DeliveryOutcome(a.id, self.name, False, str(e), e.temporary) for a in alerts]
        except Exception as e:  # rendering or an unforeseen SMTP failure: retry later, never drop
            return [DeliveryOutcome(a.id, self.name, False, f"unexpected error: {e!r}", True) for a in alerts]
        return [DeliveryOutcome(a.id, self.name, True) for a in alerts]

    def _send(self, message: EmailMessage) -> None:
        o = self._options
        try:
            smtp: smtplib.SMTP
            if o.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    o.host, o.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(o.host, o.port, timeout=SMTP_TIMEOUT)
            with smtp:
                if o.security == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(
                            self.name,
                            f"{o.host}:{o.port} does not offer STARTTLS; refusing to send in plaintext "
                            '(set security = "none" only for a trusted local relay)',
                            temporary=False,
                        )
                    smtp.starttls(context=ssl.create_default_context())
                if o.username:
                    smtp.login(o.username, o.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            raise DeliveryError(
                self.name, f"every recipient was refused: {sorted(e.recipients)}", temporary=False
            ) from e
        except smtplib.SMTPResponseException as e:
            reply = (
                e.smtp_error.decode(errors="replace")
                if isinstance(e.smtp_error, bytes)
                else str(e.smtp_error)
            )
            # 4xx is "try again later", 5xx is "this will never work".
            raise DeliveryError(
                self.name, f"SMTP {e.smtp_code} from {o.host}: {reply}", temporary=e.smtp_code < 500
            ) from e
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(self.name, f"cannot reach SMTP server {o.host}:{o.port}: {e}") from e
