from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    name = "apps.calls"
    label = "calls"
    verbose_name = _("视频会话")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.accounts.models import Role
        from apps.accounts.navigation import register_nav_link
        from apps.audit.hooks import register_action_names
        from apps.calls import (
            action_names,
            signaling,  # noqa: F401  (registers collaboration handlers)
        )

        # The pages' own rules: apps.calls.views.workstation and supervisor_monitor.
        register_nav_link(
            "workstation",
            label=_("座席工作台"),
            url_name="agent-workstation",
            order=10,
            shows=lambda user, roles: Role.AGENT in roles,
        )
        register_nav_link(
            "monitor",
            label=_("通话监控"),
            url_name="supervisor-monitor",
            order=20,
            shows=lambda user, roles: Role.SUPERVISOR in roles and Role.AGENT not in roles,
        )
        register_action_names(action_names.name, name="calls")
