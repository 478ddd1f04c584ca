"""URL checks and the canonical form used to recognise the same link.

``canonical_url`` is an identity, not a display form: it lower-cases scheme and
host, drops the default port, the fragment and tracking query parameters, and
keeps everything else byte for byte, so applying it twice changes nothing.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# C0 controls, DEL and C1 controls; browsers drop tab/CR/LF inside URLs too.
# Controls, and lone surrogates (no database can store them).
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_EDGE_JUNK = " \t\r\n\f\v\x00\u00a0\u200b\ufeff"
# Inside a URL the same invisible characters are percent-encoded, not removed, so
# that a second pass cannot find them at a new edge and strip them.
_INVISIBLE_ENCODED = str.maketrans(
    {" ": "%20", "\u00a0": "%C2%A0", "\u200b": "%E2%80%8B", "\ufeff": "%EF%BB%BF"}
)
# Characters that cannot be part of a host name in a URL we would follow.
_BAD_HOST_CHARS = re.compile(r"[\s<>\"{}|\\^`%/?#@]")

_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
        "cmpid",
        "s_cid",
        "twclid",
        "ttclid",
        "li_fat_id",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hmb_")


# Both are pure, and called again on the same links: a link's key and identity each
# canonicalize it, and a feed sends most of its links again on the next poll.
@functools.lru_cache(maxsize=8192)
def canonical_url(url: str, base: str | None = None, *, keep_query: bool = False) -> str | None:
    """The canonical http(s) form of ``url`` (resolved against ``base``), or None.

    Anything that is not an http or https URL with a host (``javascript:``,
    ``data:``, ``mailto:``, relative without a base, malformed) gives None.
    ``keep_query`` keeps every query parameter (for enclosures, whose query
    often selects the file).
    """
    parts = _split_http_url(url, base)
    if parts is None:
        return None
    netloc = _canonical_netloc(parts)
    if netloc is None:
        return None
    query = parts.query if keep_query else _strip_tracking(parts.query)
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


@functools.lru_cache(maxsize=8192)
def absolute_http_url(url: str, base: str | None = None) -> str | None:
    """``url`` made absolute against ``base`` if it is an http(s) URL with a host, else None.

    Unlike ``canonical_url`` nothing is dropped: this is the link as the outlet sent it.
    """
    parts = _split_http_url(url, base)
    if parts is None or _canonical_netloc(parts) is None:
        return None
    return urlunsplit(parts)


def host_of(url: str) -> str:
    """The host a request to ``url`` goes to, lower-cased: what per-host limits count."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def _split_http_url(url: str, base: str | None) -> SplitResult | None:
    cleaned = _clean(url)
    if not cleaned:
        return None
    try:
        if base is not None:
            cleaned_base = _clean(base)
            if cleaned_base:
                cleaned = urljoin(cleaned_base, cleaned)
        parts = urlsplit(cleaned)
    except ValueError:  # e.g. an unbalanced "[" in an IPv6 host
        return None
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        return None
    return parts


def _clean(url: str) -> str:
    trimmed = url.strip(_EDGE_JUNK)
    return _CONTROL_CHARS.sub("", trimmed).translate(_INVISIBLE_ENCODED)


def _canonical_netloc(parts: SplitResult) -> str | None:
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:  # a port that is not a number or out of range
        return None
    if not host or _BAD_HOST_CHARS.search(host):
        return None
    host = host.rstrip(".") or host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme.lower()]:
        netloc = f"{netloc}:{port}"
    return netloc


def _strip_tracking(query: str) -> str:
    kept = [
        pair for pair in query.split("&") if pair and not is_tracking_param(pair.partition("=")[0])
    ]
    return "&".join(kept)
