from django.urls import path

from apps.monitoring.consumers import WallboardConsumer

websocket_urlpatterns = [
    path("ws/v1/wallboard", WallboardConsumer.as_asgi()),
]
