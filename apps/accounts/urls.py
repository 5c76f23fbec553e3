from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("login/otp/", views.login_otp, name="login-otp"),
    path("login/otp/enrol/", views.login_otp_enrol, name="login-otp-enrol"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("otp/", views.otp_settings, name="otp-settings"),
]
