"""Email over SMTP: one message per delivery (the alerts of an immediate run, or a digest), with a
plain-text and an HTML part rendered from the same digest sections every channel uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
import smtplib
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.config import ChannelConfig, EmailOptions
from monitor.digest import SECTION_LIMIT, sections
from monitor.errors import DeliveryError
from monitor.notify.base import outcomes_for
from monitor.stories import corroboration_note
from monitor.types import Alert, DeliveryOutcome, Digest

if TYPE_CHECKING:
    import jinja2

SMTP_TIMEOUT = 30
# Past this a subject is cut: mail clients show about this much, and the body lists everything.
SUBJECT_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")


def one_line(text: str) -> str:
    """`text` with every run of whitespace or control characters (CR, LF, U+2028...) as one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


def web_link(link: str | None) -> str | None:
    """The link if a mail client may follow it: http or https with a host, else None.

    A feed can put any scheme in a link; `javascript:` or `data:` behind a headline would run or
    show whatever the feed chose, so such links are left out and the title shown unlinked.
    """
    if not link or _CONTROL.search(link) or any(c.isspace() for c in link):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    return link if parts.scheme.lower() in ("http", "https") and parts.hostname else None


class _Policy(EmailPolicy):
    """The default policy, but the Subject is folded by `email.header.Header`.

    The default folder can put the space between two words outside the encoded-words it writes
    (`=?utf-8?b?...?=\n  =?utf-8?b?...?=`), and RFC 2047 readers drop whitespace between
    encoded-words: "ایران ایران" arrived as "ایرانایران" in about one subject in five with
    Persian watchlist names (Python 3.11 to 3.13); a long ASCII subject could be folded right
    after "Subject:" and arrive with a leading space. Header keeps every space where it was.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() != "subject":
            return str(super().fold(name, value))
        text = str(value)
        charset = "us-ascii" if text.isascii() else "utf-8"
        return f"{name}: {Header(text, charset, header_name=name).encode(linesep=self.linesep)}{self.linesep}"

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() != "subject":
            return bytes(super().fold_binary(name, value))
        return self.fold(name, value).encode("ascii")


POLICY = _Policy()


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def _templates() -> jinja2.Environment:
    """The email templates, loaded on first use: Jinja2 is not imported by runs that send no mail."""
    import jinja2

    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor", "templates"),
        # Feed text goes into HTML: autoescape makes a <script> in a summary inert text.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    templates.globals["corroboration"] = lambda alert: corroboration_note(
        alert.sources, alert.outlet or alert.feed, alert.min_sources
    )
    templates.globals["web_link"] = web_link
    templates.filters["one_line"] = one_line
    templates.filters["when"] = when
    return templates


def subject(alerts: Sequence[Alert]) -> str:
    """`[monitor] 3 new: Sistan-Baluchestan incidents (2), Chinese diplomacy (1)`: the busiest
    watchlist first. No CR or LF from a watchlist name reaches the header (header injection)."""
    counts = Counter(one_line(a.watchlist_name) for a in alerts)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = f"[monitor] {len(alerts)} new: " + ", ".join(f"{name} ({n})" for name, n in ordered)
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1].rstrip() + "…"


def message_id(key: str, options: EmailOptions) -> str:
    """A Message-ID that depends only on `key`, so a retried send is recognisably one message."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    _, at, domain = parseaddr(options.sender)[1].rpartition("@")
    if not at or not _DOMAIN.fullmatch(domain):
        domain = "monitor.invalid"
    return f"<{digest}@{domain}>"


def _compose(
    alerts: Sequence[Alert], options: EmailOptions, *, key: str, heading: str, limit: int
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject(alerts)
    message["From"] = options.sender
    message["To"] = ", ".join(options.recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(key, options)
    context = {
        "heading": heading,
        "sections": sections(alerts, limit),
        "alert_ids": sorted(a.id for a in alerts),
    }
    message.set_content(_templates().get_template("email.txt").render(context))
    message.add_alternative(_templates().get_template("email.html").render(context), subtype="html")
    return message


def preview_html(alerts: Sequence[Alert]) -> str:
    """The HTML part a digest of `alerts` would have, for `monitor digest --preview --html`."""
    n = len(alerts)
    context = {
        "heading": f"Preview of {n} pending alert{'' if n == 1 else 's'}",
        "sections": sections(alerts, SECTION_LIMIT),
        "alert_ids": sorted(a.id for a in alerts),
    }
    return _templates().get_template("email.html").render(context)


def build_message(alerts: Sequence[Alert], options: EmailOptions) -> EmailMessage:
    """The message for an immediate delivery: every alert listed, none capped (each is owed)."""
    return _compose(
        alerts,
        options,
        # The same alerts, in any order, always get the same Message-ID.
        key="\n".join(sorted(a.id for a in alerts)),
        heading=f"{len(alerts)} new alert{'' if len(alerts) == 1 else 's'}",
        limit=max(len(alerts), 1),
    )


def build_digest_message(digest: Digest, options: EmailOptions) -> EmailMessage:
    """The message for a digest: its sections, capped with "and N more"; the Message-ID comes from
    the digest's id, which a retry of the same digest keeps even if alerts joined it meanwhile."""
    n = len(digest.alerts)
    return _compose(
        digest.alerts,
        options,
        key=f"digest\n{digest.id}",
        heading=f"Digest of {n} alert{'' if n == 1 else 's'}, due {when(digest.period_end)}",
        limit=SECTION_LIMIT,
    )


class EmailNotifier:
    def __init__(self, channel: ChannelConfig) -> None:
        assert isinstance(channel.options, EmailOptions)
        self.name = channel.name
        self._options = channel.options

    async def deliver(self, alerts: Sequence[Alert]) -> list[DeliveryOutcome]:
        """Every alert of the call in one message."""
        if not alerts:
            return []
        return await self._deliver(alerts, lambda: build_message(alerts, self._options))

    async def deliver_digest(self, digest: Digest) -> list[DeliveryOutcome]:
        if not digest.alerts:
            return []
        return await self._deliver(digest.alerts, lambda: build_digest_message(digest, self._options))

    async def _deliver(
        self, alerts: Sequence[Alert], build: Callable[[], EmailMessage]
    ) -> list[DeliveryOutcome]:
        try:
            refused = await asyncio.to_thread(self._send, build())
        except DeliveryError as e:
            return outcomes_for(alerts, self.name, e)
        except Exception as e:  # rendering or an unforeseen SMTP failure: retry later, never drop
            return [DeliveryOutcome(a.id, self.name, False, f"unexpected error: {e!r}", True) for a in alerts]
        if not refused:
            return [DeliveryOutcome(a.id, self.name, True) for a in alerts]
        # Someone received it: sending again would duplicate it for them, so the refusals are
        # recorded for the operator to read rather than retried.
        addresses = tuple(sorted(refused))
        note = (
            f"delivered, but {self._options.host} refused {len(addresses)} of "
            f"{len(self._options.recipients)} recipients: {_refusals(refused)}"
        )
        return [
            DeliveryOutcome(a.id, self.name, True, note, temporary=False, refused=addresses) for a in alerts
        ]

    def _send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """Send `message`; return the recipients the server refused while accepting others."""
        o = self._options
        where = f"{o.host}:{o.port}"
        try:
            smtp: smtplib.SMTP
            if o.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    o.host, o.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(o.host, o.port, timeout=SMTP_TIMEOUT)
            try:
                if o.security == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(
                            self.name,
                            f"{where} does not offer STARTTLS; refusing to send in plaintext "
                            '(set security = "none" only for a trusted local relay)',
                            temporary=False,
                        )
                    smtp.starttls(context=ssl.create_default_context())
                if o.username:
                    smtp.login(o.username, o.password or "")
                refused = smtp.send_message(message)
                # The message was accepted; a bad goodbye must not make it look unsent and be
                # sent again.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
                return refused
            finally:
                smtp.close()
        except smtplib.SMTPRecipientsRefused as e:
            # 4xx for any of them may clear up (a full mailbox, greylisting): try again later.
            temporary = any(code < 500 for code, _ in e.recipients.values())
            raise DeliveryError(
                self.name, f"{o.host} refused every recipient: {_refusals(e.recipients)}", temporary=temporary
            ) from e
        except smtplib.SMTPResponseException as e:
            # 4xx is "try again later", 5xx is "this will never work".
            raise DeliveryError(
                self.name,
                f"SMTP {e.smtp_code} from {o.host}{_phase(e)}: {_text(e.smtp_error)}",
                temporary=e.smtp_code < 500,
            ) from e
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as e:
            raise DeliveryError(self.name, f"{where} closed the TLS connection: {e}") from e
        except ssl.SSLError as e:
            # No TLS (a plaintext server on the TLS port) or an untrusted certificate: the
            # configuration has to change, and plaintext is never the fallback.
            raise DeliveryError(
                self.name, f"TLS with {where} failed; refusing to send in plaintext: {e}", temporary=False
            ) from e
        except smtplib.SMTPException as e:
            raise DeliveryError(self.name, f"SMTP conversation with {where} failed: {e}") from e
        except OSError as e:
            raise DeliveryError(self.name, f"cannot reach SMTP server {where}: {e}") from e


def _text(reply: bytes | str) -> str:
    return one_line(reply.decode(errors="replace") if isinstance(reply, bytes) else reply)


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    """`a@x (550 no such user), b@y (452 mailbox full)`, sorted by address."""
    return ", ".join(f"{addr} ({code} {_text(reply)})" for addr, (code, reply) in sorted(refused.items()))


def _phase(error: smtplib.SMTPResponseException) -> str:
    if isinstance(error, smtplib.SMTPSenderRefused):
        return " refusing the sender"
    if isinstance(error, smtplib.SMTPDataError):
        return " refusing the message"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return " refusing the login"
    return ""
