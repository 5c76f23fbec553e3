"""Staff login lockout: counted in the database, same answer for unknown users, audited."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import LoginFailure, LoginLock
from apps.audit.models import AuditEvent
from remotebank.demo_banner import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

WRONG = "not-the-password-123"
LOCKED_TEXT = "临时锁定"


def attempt(client: Client, username: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def error_block(response) -> str:
    html = response.content.decode()
    start = html.find('id="login-error"')
    return html[start : html.find("</div>", start)] if start >= 0 else ""


def test_five_failures_lock_the_account_even_for_the_right_password(agent, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    client = Client()
    for i in range(4):
        answer = attempt(client, "agent01", WRONG)
        assert answer.status_code == 200 and LOCKED_TEXT not in error_block(answer), i
    fifth = attempt(client, "agent01", WRONG)
    assert LOCKED_TEXT in error_block(fifth)
    refused = attempt(Client(), "agent01", DEMO_PASSWORD)
    assert refused.status_code == 200 and LOCKED_TEXT in error_block(refused)
    assert "_auth_user_id" not in Client().session

    actions = list(
        AuditEvent.objects.filter(action__startswith="auth.").values_list("action", flat=True)
    )
    assert actions == ["auth.login_failed"] * 5 + ["auth.login_locked", "auth.login_refused"]
    failed = AuditEvent.objects.filter(action="auth.login_failed").last()
    assert failed.actor_type == "system" and failed.ip == "127.0.0.1"
    assert failed.object_id == str(agent.pk)
    assert failed.details["failures"] == 5 and failed.details["known_user"] is True
    locked = AuditEvent.objects.get(action="auth.login_locked")
    assert locked.details["scope"] == "account"
    for event in AuditEvent.objects.filter(action__startswith="auth."):
        text = str(event.details) + event.object_id + event.actor_id
        assert WRONG not in text and DEMO_PASSWORD not in text and "agent01" not in text
    # Nothing stores the username in clear.
    assert not LoginLock.objects.filter(username_key__contains="agent01").exists()


def test_unknown_and_known_usernames_get_the_same_answers(agent):
    real, ghost = Client(), Client()
    for _ in range(5):
        a = attempt(real, "agent01", WRONG)
        b = attempt(ghost, "nobody-here", WRONG)
        assert error_block(a) == error_block(b)
    assert LOCKED_TEXT in error_block(a)
    a, b = attempt(real, "agent01", DEMO_PASSWORD), attempt(ghost, "nobody-here", DEMO_PASSWORD)
    assert error_block(a) == error_block(b) and LOCKED_TEXT in error_block(a)
    ghost_event = AuditEvent.objects.filter(action="auth.login_locked").last()
    assert ghost_event.object_id == "-" and ghost_event.details["known_user"] is False


def test_the_lock_ends_after_its_period(agent):
    for _ in range(5):
        attempt(Client(), "agent01", WRONG)
    LoginLock.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    answer = attempt(Client(), "agent01", DEMO_PASSWORD)
    assert answer.status_code == 302 and answer["Location"] == "/agent/"


def test_failures_outside_the_window_do_not_count(agent, settings):
    for _ in range(4):
        attempt(Client(), "agent01", WRONG)
    LoginFailure.objects.update(
        at=timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    )
    assert LOCKED_TEXT not in error_block(attempt(Client(), "agent01", WRONG))
    assert attempt(Client(), "agent01", DEMO_PASSWORD).status_code == 302


def test_a_successful_login_resets_the_count(agent):
    for _ in range(4):
        attempt(Client(), "agent01", WRONG)
    assert attempt(Client(), "agent01", DEMO_PASSWORD).status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", object_id=str(agent.pk)).exists()
    for _ in range(4):
        assert LOCKED_TEXT not in error_block(attempt(Client(), "agent01", WRONG))
    assert attempt(Client(), "agent01", DEMO_PASSWORD).status_code == 302


def test_lockout_is_shared_by_every_process(agent):
    """Two failures counted by another Python process plus three here lock the account."""
    from tests.live import BASE_DIR, subprocess_env

    script = (
        "from apps.accounts.actions.login import record_login_failure\n"
        "for _ in range(2): record_login_failure(username='agent01', ip='10.9.8.7')\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR, env=subprocess_env(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert LoginFailure.objects.count() == 2
    for _ in range(3):
        attempt(Client(), "agent01", WRONG)
    assert LOCKED_TEXT in error_block(attempt(Client(), "agent01", DEMO_PASSWORD))


def test_per_address_lockout_leaves_other_addresses_alone(agent, settings):
    settings.LOGIN_LOCKOUT_PER_IP = True
    for _ in range(5):
        attempt(Client(), "agent01", WRONG, REMOTE_ADDR="10.0.0.1")
    assert LOCKED_TEXT in error_block(
        attempt(Client(), "agent01", DEMO_PASSWORD, REMOTE_ADDR="10.0.0.1")
    )
    elsewhere = attempt(Client(), "agent01", DEMO_PASSWORD, REMOTE_ADDR="10.0.0.2")
    assert elsewhere.status_code == 302
    assert AuditEvent.objects.get(action="auth.login_locked").details["scope"] == "address"


def test_unlock_command_lifts_the_lock(agent):
    from django.core.management import call_command

    for _ in range(5):
        attempt(Client(), "agent01", WRONG)
    call_command("unlock_login", "agent01")
    assert attempt(Client(), "agent01", DEMO_PASSWORD).status_code == 302
    assert AuditEvent.objects.filter(action="auth.login_unlocked").count() == 1


def test_admin_login_goes_through_the_staff_login(supervisor):
    answer = Client().get("/admin/login/", {"next": "/admin/"})
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    assert Client().post("/admin/login/", {"username": "supervisor01"}).status_code == 405
    client = Client()
    for _ in range(5):
        attempt(client, "supervisor01", WRONG)
    locked = attempt(client, "supervisor01", DEMO_PASSWORD, QUERY_STRING="next=/admin/")
    assert LOCKED_TEXT in error_block(locked)
    assert client.get("/admin/").status_code == 302
