"""All WebSocket routes, collected from the apps."""

from apps.calls.routing import websocket_urlpatterns as calls_ws
from apps.monitoring.routing import websocket_urlpatterns as monitoring_ws

websocket_urlpatterns = [*calls_ws, *monitoring_ws]
