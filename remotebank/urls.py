import json

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog

from apps.accounts.views import admin_login
from remotebank.errors import catalogue


def error_messages(request: HttpRequest) -> HttpResponse:
    """The error catalogue (remotebank/errors.py) in the page's language, for RB.errorText."""
    body = "window.RB_ERROR_MESSAGES = " + json.dumps(catalogue(), ensure_ascii=False) + ";\n"
    return HttpResponse(body, content_type="text/javascript; charset=utf-8")


# The admin speaks as this site, not as "Django".
admin.site.site_header = _("远程视频银行管理后台")
admin.site.site_title = _("远程视频银行")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="agent-workstation"), name="home"),
    # Staff sign-in (password, lockout, TOTP) and logout; the admin's login goes there too.
    path("accounts/", include("apps.accounts.urls")),
    path("admin/login/", admin_login, name="admin-login"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("jsi18n/errors.js", error_messages, name="error-messages"),
    path("admin/", admin.site.urls),
    path("recordings/", include("apps.recordings.urls")),
    path("banking/", include("apps.banking.urls")),
    path("qc/", include("apps.qc.urls")),
    path("audit/", include("apps.audit.urls")),
    path("api/v1/", include("apps.api.urls")),
    path("", include("apps.monitoring.urls")),
    path("", include("apps.calls.urls")),
]
