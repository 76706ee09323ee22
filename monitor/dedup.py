"""Item identity: which entries are the same item (pure functions of the entry's data)."""

from __future__ import annotations

import enum
import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that track the reader rather than identify the article.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid", "twclid", "ttclid",
        "mc_cid", "mc_eid", "ocid", "cmpid", "cmp", "igshid", "smid", "ref_src", "ref_url", "_ga",
        "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid",
        "s_cid", "wt.mc_id", "wt_mc", "ito", "soc_src", "soc_trk", "sr_share", "__twitter_impression",
    }
)  # fmt: skip
# Whole families: Google Analytics, Matomo/Piwik, BBC's ATI and comScore ("at_medium", "ns_source").
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "piwik_", "at_", "ns_", "hsa_")
# Parameters that only ask for the AMP rendering of the same article.
_AMP_PARAMS = {"amp": None, "_amp": None, "outputtype": "amp", "output": "amp", "view": "amp"}
# Host prefixes that serve the same articles as the bare domain: desktop, mobile and AMP editions.
_EDITION_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_AMP_SUFFIX = re.compile(r"(?:\.amp)+(?=\.[A-Za-z0-9]+$)|(?:\.amp)+$", re.IGNORECASE)
# AMP caches wrap the publisher's URL: cdn.ampproject.org/c/s/<host>/<path>, google.com/amp/s/<host>/...
_AMP_CACHE_PATHS = {
    "cdn": re.compile(r"^/[cvi]/(s/)?([^/]+\.[^/]+/.*)$"),
    "google": re.compile(r"^/amp/(s/)?([^/]+\.[^/]+/.*)$"),
}


class Identity(enum.StrEnum):
    """How a feed's items are told apart; set per feed where its guids cannot be trusted."""

    GUID = "guid"  # guid, else canonical link, else content hash (the default)
    LINK = "link"  # canonical link, else content hash: for feeds that mint a new guid on every build
    CONTENT = "content"  # title and summary: for feeds whose guids and links both change


def canonical_link(url: str) -> str:
    """The form of a link used for identity: same article, same string.

    Scheme and host lowercased; default port; `www.`, mobile and AMP editions mapped to the
    article; AMP cache URLs unwrapped; fragment, tracking and AMP parameters dropped; remaining
    query parameters sorted; a trailing slash dropped. Idempotent: a canonical link maps to itself.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port or IPv6 address: the link is its own identity, never a crash
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    cache = _amp_cache(host) if scheme in _DEFAULT_PORTS else None
    if cache:
        wrapped = _AMP_CACHE_PATHS[cache].match(parts.path)
        if wrapped:
            inner_scheme = "https" if wrapped.group(1) else "http"
            inner = f"{inner_scheme}://{wrapped.group(2)}" + (f"?{parts.query}" if parts.query else "")
            try:
                nested = _amp_cache(urlsplit(inner).hostname or "")
            except ValueError:  # the wrapped URL is malformed: the link as given is its identity
                return text
            return text if nested else canonical_link(inner)
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    elif scheme in _DEFAULT_PORTS:
        host = _bare_host(host)
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if _keeps(k, v))
    path = _article_path(parts.path) if scheme in _DEFAULT_PORTS else parts.path
    link = urlunsplit((scheme, host, path or "/", urlencode(query), ""))
    # Dropping the fragment can leave trailing spaces ("/s/ #"), and what they hid (a trailing
    # slash) must go too: the stripped link is canonicalised again, or a second pass would differ.
    stripped = link.strip()
    return link if stripped == link else canonical_link(stripped)


def _amp_cache(host: str) -> str | None:
    if host.endswith(".cdn.ampproject.org"):
        return "cdn"
    return "google" if host in ("google.com", "www.google.com") else None


def _bare_host(host: str) -> str:
    """`www.dawn.com`, `m.dawn.com` and `amp.dawn.com` -> `dawn.com`; never down to a bare TLD."""
    changed = True
    while changed:
        changed = False
        for prefix in _EDITION_PREFIXES:
            rest = host.removeprefix(prefix)
            if rest != host and "." in rest:
                host, changed = rest, True
    return host


def _keeps(key: str, value: str) -> bool:
    name = key.lower()
    if name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES):
        return False
    if name in _AMP_PARAMS:
        wanted = _AMP_PARAMS[name]
        return wanted is not None and value.lower() != wanted
    return True


def _article_path(path: str) -> str:
    """Drop AMP path forms (`/amp/...`, `.../amp`, `x.amp.html`) and a trailing slash, to a fixed point."""
    while True:
        segments = path.split("/")
        if segments:
            segments[-1] = _AMP_SUFFIX.sub("", segments[-1])
        while len(segments) > 1 and segments[-1].lower() in ("amp", ""):
            segments.pop()
        while len(segments) > 1 and segments[1].lower() == "amp":
            del segments[1]
        shorter = "/".join(segments)
        if shorter == path:
            return path
        path = shorter


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def item_key(
    guid: str | None, link: str | None, title: str, summary: str, identity: Identity = Identity.GUID
) -> str:
    """guid, else canonical link, else a hash of the text: the order rss2email and reader use.

    A feed set to `link` or `content` skips the parts it cannot trust.
    """
    if identity is Identity.GUID and guid and guid.strip():
        return guid.strip()
    if identity is not Identity.CONTENT and link and link.strip():
        return canonical_link(link)
    return "sha256:" + content_hash(title, summary)
