"""All WebSocket routes, collected from the apps."""

from apps.calls.routing import websocket_urlpatterns as calls_ws

websocket_urlpatterns = [*calls_ws]
