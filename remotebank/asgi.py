"""ASGI entry point: HTTP through Django behind the body limit (remotebank/body_limit.py),
WebSockets through Channels: sockets authenticated by cookies only from the bank's public
origins (apps.calls.origins); the seat widget's sockets by their token (apps.api.seat_socket)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.api.seat_socket import SeatTokenAuth, SeatTokenRouter  # noqa: E402
from apps.calls.origins import PublicOriginValidator  # noqa: E402
from remotebank.aborts import install_daphne_abort  # noqa: E402
from remotebank.body_limit import BodyLimit, install_daphne_guard  # noqa: E402
from remotebank.routing import websocket_urlpatterns  # noqa: E402

install_daphne_guard()  # when Daphne serves this: refused before the body is spooled
install_daphne_abort()  # and a response failing after its headers closes its connection
application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": SeatTokenRouter(
            token_app=SeatTokenAuth(URLRouter(websocket_urlpatterns)),
            cookie_app=PublicOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        ),
    }
)
