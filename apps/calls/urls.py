from django.conf import settings
from django.urls import path

from apps.calls import views

urlpatterns = [
    path("h5/enter/<str:token>", views.enter, name="customer-enter"),
    path("h5/invite/<str:token>", views.guest_enter, name="guest-enter"),
    path("h5/", views.customer_call, name="customer-call"),
    path("agent/", views.workstation, name="agent-workstation"),
    path("supervisor/monitor/", views.supervisor_monitor, name="supervisor-monitor"),
]

# The demo mobile bank opens customer sessions for demo customers: never in production.
if settings.DEMO_MODE:
    urlpatterns.append(path("demo/mobile-bank/", views.demo_mobile_bank, name="demo-mobile-bank"))
