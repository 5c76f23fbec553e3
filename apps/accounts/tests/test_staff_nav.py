"""Each role sees exactly the top-bar links of the staff pages it may open, and each link opens."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = {
    "workstation": "agent-workstation",
    "monitor": "supervisor-monitor",
    "recordings": "recording-list",
    "qc": "qc-reports",
    "wallboard": "wallboard",
    "audit": "audit-log",
}
NAV_LINK = re.compile(
    r'<a class="staff-nav-link" href="([^"]+)" data-nav="([a-z]+)"[^>]*>([^<]+)</a>'
)


@pytest.fixture
def qc_reviewer(demo):
    """qc01 of the demo: a quality inspector only."""
    user = get_user_model().objects.get(username="qc01")
    assert set(user.groups.values_list("name", flat=True)) == {"qc_reviewer"}
    return user


def nav_of(client: Client, path: str) -> dict[str, tuple[str, str]]:
    response = client.get(path)
    html = response.content.decode()
    assert "<header" in html, (path, response.status_code)
    return {key: (href, label) for href, key, label in NAV_LINK.findall(html)}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("persona", "landing", "expected"),
    [
        ("agent", "agent-workstation", {"workstation": "座席工作台", "recordings": "我的录像"}),
        (
            "supervisor",
            "supervisor-monitor",
            {
                "monitor": "通话监控",
                "wallboard": "监控大屏",
                "recordings": "双录录像",
                "qc": "质检",
            },
        ),
        ("auditor", "recording-list", {"recordings": "双录录像", "audit": "审计日志"}),
        ("qc_reviewer", "qc-reports", {"recordings": "双录录像", "qc": "质检"}),
    ],
)
def test_each_role_sees_exactly_its_links_and_they_open(request, persona, landing, expected):
    user = request.getfixturevalue(persona)
    client = logged_in(user)
    nav = nav_of(client, reverse(landing))
    assert {key: label for key, (_, label) in nav.items()} == expected
    for key, name in PAGES.items():
        status = client.get(reverse(name)).status_code
        if key in nav:
            assert nav[key][0] == reverse(name)
            assert status == 200, (persona, key, status)
        else:  # a page without a link is one the role may not open
            assert status in (403, 404), (persona, key, status)


def test_the_current_page_is_marked(agent):
    html = logged_in(agent).get(reverse("recording-list")).content.decode()
    assert re.search(r'data-nav="recordings" aria-current="page"', html)
    assert not re.search(r'data-nav="workstation" aria-current', html)


def test_no_links_without_a_staff_role(outsider, client):
    assert nav_of(client, reverse("login")) == {}  # anonymous: the login page
    page = logged_in(outsider).get(reverse("agent-workstation"))  # 403 page, same top bar
    assert page.status_code == 403 and "staff-nav" not in page.content.decode()


def test_links_in_english(agent, settings):
    client = logged_in(agent)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    labels = {label for _, label in nav_of(client, reverse("recording-list")).values()}
    assert labels == {"Agent workstation", "My recordings"}
