"""Web origins (RFC 6454): scheme, host and port, compared exactly.

The public origins are where the bank's pages are served (settings.PUBLIC_ORIGINS); the
signaling socket's origin check (apps.calls.origins) and the CSP's connect-src
(remotebank.middleware) both read them from here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize(origin: str) -> str | None:
    """`scheme://host:port` in lower case with the port always written, or None for anything
    that is not an http(s) origin (no path, query, user or fragment allowed)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or DEFAULT_PORTS[scheme]}"


def socket_origins(origins: list[str]) -> list[str]:
    """The ws:// and wss:// counterparts of http(s) origins (for CSP connect-src)."""
    found = []
    for origin in origins:
        normal = normalize(origin)
        if normal is None:
            continue
        scheme, rest = normal.split("://", 1)
        host, port = rest.rsplit(":", 1)
        ws = "wss" if scheme == "https" else "ws"
        shown = host if int(port) == DEFAULT_PORTS[scheme] else f"{host}:{port}"
        found.append(f"{ws}://{shown}")
    return list(dict.fromkeys(found))


def origin_of(url: str) -> str | None:
    """The origin of a URL (its scheme and authority), normalized."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return normalize(f"{parts.scheme}://{parts.netloc}")
