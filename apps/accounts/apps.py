from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("账户与技能")

    def ready(self) -> None:
        # Imported here, not at the top: models and other apps are loaded only now.
        from apps.accounts import action_names
        from apps.accounts.navigation import register_nav_link
        from apps.accounts.roles import sync_roles
        from apps.audit.hooks import register_action_names
        from apps.audit.selectors import may_read_log

        post_migrate.connect(sync_roles, dispatch_uid="rb_sync_roles")
        # The auditor's read-only audit log (apps.audit.views.audit_log, the same rule).
        register_nav_link(
            "audit",
            label=_("审计日志"),
            url_name="audit-log",
            order=50,
            shows=lambda user, roles: may_read_log(user),
        )
        register_action_names(action_names.NAMES, name="accounts")
