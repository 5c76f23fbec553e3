"""The staff navigation of the top bar: the pages a signed-in staff member may open.

A registry: each app adds the links to its own pages in its `AppConfig.ready()`, each with the
access rule of the page it points to (the same role checks the views make), so nobody is shown
a link that answers 403/404, and accounts needs to know nothing of the apps above it. `order`
places a link in the bar (calls 10-19, recordings 30-39, qc 40-49).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import reverse
from django.utils.functional import Promise

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Whether a signed-in user with these role (group) names may open the page.
NavRule = Callable[["User", frozenset[str]], bool]


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str | Promise  # a lazy translation
    url: str


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str | Promise
    url_name: str
    order: int
    shows: NavRule


_ENTRIES: dict[tuple[str, int], NavEntry] = {}


def register_nav_link(
    key: str, *, label: str | Promise, url_name: str, order: int, shows: NavRule
) -> None:
    """Add a top-bar link (idempotent by key and order). Two entries may share a key with
    rules that exclude each other, e.g. "双录录像" for reviewers and "我的录像" for agents."""
    _ENTRIES[(key, order)] = NavEntry(key, label, url_name, order, shows)


def staff_links(user: User | AnonymousUser | None) -> list[NavLink]:
    """Links for `user`, in top-bar order; none for customers, guests and anonymous users."""
    if user is None or not user.is_authenticated:
        return []
    roles = frozenset(user.groups.values_list("name", flat=True))
    return [
        NavLink(entry.key, entry.label, reverse(entry.url_name))
        for entry in sorted(_ENTRIES.values(), key=lambda e: e.order)
        if entry.shows(user, roles)
    ]
