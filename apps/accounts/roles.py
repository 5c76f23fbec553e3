"""Roles are Django groups; their permissions are kept in step after every migrate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission, User

from apps.accounts.models import Role

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

# Model permissions only matter in the admin, where they reach every row. Agents work in the
# workstation and see their own calls only (apps.calls.selectors.staff_may_view_call), so they
# get none: an agent given the staff flag must not browse colleagues' calls and chats.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.AGENT: [],
    Role.SUPERVISOR: [
        "calls.view_call",
        "calls.view_chatmessage",
        "calls.view_calloffer",
        "accounts.view_agentprofile",
        "accounts.change_agentprofile",
        "accounts.view_presencechange",
        "accounts.view_skill",
        "accounts.view_businesstype",  # BusinessType lives beside Skill
        "banking.view_transaction",
    ],
    Role.QC_REVIEWER: ["calls.view_call", "calls.view_chatmessage", "banking.view_transaction"],
    Role.AUDITOR: [
        "calls.view_call",
        "calls.view_chatmessage",
        "calls.view_calloffer",
        "calls.view_callstatechange",
        "audit.view_auditevent",
        "accounts.view_presencechange",
        "banking.view_transaction",
    ],
}


def has_role(user: AbstractBaseUser | AnonymousUser | None, *roles: str) -> bool:
    """Whether the signed-in `user` (a staff User) belongs to one of the `roles` (groups)."""
    if not isinstance(user, User) or not user.is_authenticated:
        return False
    return user.groups.filter(name__in=roles).exists()


def sync_roles(**_: Any) -> None:
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.set(wanted)
