"""The web process: Daphne with its WebSocket message limit taken from the settings.

Daphne closes a socket on a message or frame over its own limits (1 MiB by default) before the
consumer sees it, so a client would get a dropped connection where the protocol promises an
`error` with `frame_too_large` (docs/protocol.md, "Limits"). Daphne's limits are raised to
WS_TRANSPORT_MAX_BYTES (16 MiB unless set), well above the protocol's WS_MAX_FRAME_BYTES, so
every frame up to it is read and answered by the consumer; only a message over the transport
limit (a client that does not follow the protocol at all) still closes the socket (1009).

`python -m remotebank.serve -b HOST -p PORT` takes Daphne's own options; `make run`, the
Dockerfile and the end-to-end tests start the web process this way.
"""

from __future__ import annotations

import os
import sys

from daphne.cli import CommandLineInterface
from django.conf import settings

APPLICATION = "remotebank.asgi:application"


def daphne_args(argv: list[str]) -> list[str]:
    """Daphne's command line: the caller's options, our message limit, the application."""
    return [
        *argv,
        "--websocket-max-message-size",
        str(settings.WS_TRANSPORT_MAX_BYTES),
        # a message may come as one frame: the same limit for a single frame
        "--websocket-max-frame-size",
        str(settings.WS_TRANSPORT_MAX_BYTES),
        APPLICATION,
    ]


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")
    CommandLineInterface().run(daphne_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
