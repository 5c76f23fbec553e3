"""Just enough HTTP for logging in and redeeming entry links, with the standard library only.

Redirects are never followed (the interesting answer is the 302 and its Set-Cookie), and
cookies are kept by name in a plain dict: a `Secure` cookie must still reach a plain-HTTP test
server, which `http.cookiejar` would refuse.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message

DEFAULT_TIMEOUT = 15.0


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError(302), which `fetch` turns into a Response


def _set_cookies(headers: Message) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in headers.get_all("Set-Cookie") or []:
        pair = header.split(";", 1)[0]
        name, sep, value = pair.partition("=")
        if sep:
            cookies[name.strip()] = value.strip().strip('"')
    return cookies


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items() if value)


def _fetch_sync(
    method: str,
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    ssl_context: ssl.SSLContext | None,
    timeout: float,
) -> Response:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=ssl_context)
    )
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - scheme checked above
    try:
        with opener.open(request, timeout=timeout) as answer:
            status, answer_headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx
        status, answer_headers, body = exc.code, exc.headers, exc.read()
    return Response(status, answer_headers, body, _set_cookies(answer_headers))


async def fetch(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a plain urllib timeout, run in a thread
) -> Response:
    """One HTTP exchange in a worker thread, so the event loop never blocks."""
    return await asyncio.to_thread(
        _fetch_sync,
        method,
        url,
        data=data,
        headers=dict(headers or {}),
        ssl_context=ssl_context,
        timeout=timeout,
    )
