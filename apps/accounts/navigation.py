"""The staff navigation of the top bar: the pages a signed-in staff member may open.

Each link follows the access rule of the page it points to (the same role checks the views
make), so nobody is shown a link that answers 403/404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Role


@dataclass(frozen=True)
class NavLink:
    key: str
    label: Any  # lazy translation
    url: str


def staff_links(user: Any) -> list[NavLink]:
    """Links for `user`, in top-bar order; none for customers, guests and anonymous users."""
    from apps.qc.selectors import can_inspect
    from apps.recordings.selectors import REVIEW_ROLES

    if not getattr(user, "is_authenticated", False):
        return []
    roles = set(user.groups.values_list("name", flat=True))
    links = []
    if Role.AGENT in roles:  # apps.calls.views.workstation
        links.append(NavLink("workstation", _("座席工作台"), reverse("agent-workstation")))
    if Role.SUPERVISOR in roles and Role.AGENT not in roles:  # supervisor_monitor
        links.append(NavLink("monitor", _("通话监控"), reverse("supervisor-monitor")))
    # apps.recordings.views.recording_list: reviewers see every recording, an agent their own.
    if roles & set(REVIEW_ROLES):
        links.append(NavLink("recordings", _("双录录像"), reverse("recording-list")))
    elif Role.AGENT in roles:
        links.append(NavLink("recordings", _("我的录像"), reverse("recording-list")))
    if can_inspect(user):  # apps.qc.views (_inspector)
        links.append(NavLink("qc", _("质检"), reverse("qc-reports")))
    return links
