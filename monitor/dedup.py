"""Item identity: which entries are the same item (pure functions of the entry's data)."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that track the reader rather than identify the article.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ocid", "cmpid", "igshid", "smid", "ref_src"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_link(url: str) -> str:
    """The form of a link used for identity: same article, same string.

    Scheme and host lowercased, default port, fragment and tracking parameters dropped,
    remaining query parameters sorted.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port or IPv6 address: the link is its own identity, never a crash
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS
    )
    # Dropping the fragment can leave trailing spaces ("0 #"): strip again, or a second pass differs.
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), "")).strip()


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def item_key(guid: str | None, link: str | None, title: str, summary: str) -> str:
    """guid, else canonical link, else a hash of the text: the order rss2email and reader use."""
    if guid and guid.strip():
        return guid.strip()
    if link:
        return canonical_link(link)
    return "sha256:" + content_hash(title, summary)
