from django.urls import path

from apps.calls.consumers import SignalingConsumer

websocket_urlpatterns = [
    path("ws/v1/signal", SignalingConsumer.as_asgi()),
]
