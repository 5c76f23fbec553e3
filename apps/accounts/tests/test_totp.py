"""Optional TOTP second factor: enrolment, the second login step, replay, lockout, policy."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.accounts.actions import totp as totp_actions
from apps.accounts.models import StaffTotp
from apps.audit.audited import SYSTEM
from apps.audit.models import AuditEvent
from remotebank.demo_banner import DEMO_PASSWORD
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def enrol(user) -> str:
    """Enrol through the settings page; returns the secret the page showed."""
    client = logged_in(user)
    assert client.post("/accounts/otp/", {"action": "start"}).status_code == 302
    page = client.get("/accounts/otp/")
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.content.decode()).group(1)
    done = client.post("/accounts/otp/", {"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302 and "done=enrolled" in done["Location"]
    StaffTotp.objects.filter(user=user).update(last_used_step=None)  # codes of this step reusable
    return secret


def password_step(client: Client, username: str, next_url: str = ""):
    query = {"next": next_url} if next_url else {}
    return client.post(
        "/accounts/login/" + (f"?next={next_url}" if next_url else ""),
        {"username": username, "password": DEMO_PASSWORD, **query},
    )


def test_enrolment_shows_the_secret_once_and_stores_it_encrypted(agent):
    client = logged_in(agent)
    assert "otp-start" in client.get("/accounts/otp/").content.decode()
    client.post("/accounts/otp/", {"action": "start"})
    page = client.get("/accounts/otp/")
    html = page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    secret = re.search(r'data-secret="([A-Z2-7]{32})"', html).group(1)
    uri = re.search(r'href="(otpauth://[^"]+)"', html).group(1).replace("&amp;", "&")
    parsed = urlparse(uri)
    assert parsed.netloc == "totp" and "agent01" in parsed.path
    assert parse_qs(parsed.query)["secret"] == [secret]
    assert parse_qs(parsed.query)["issuer"] == ["RemoteBank"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM accounts_stafftotp")
        (stored,) = cursor.fetchone()
    assert stored.startswith("rbf1.") and secret not in stored

    wrong = client.post("/accounts/otp/", {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400
    assert not StaffTotp.objects.get(user=agent).confirmed
    assert AuditEvent.objects.filter(action="auth.otp_enrol_failed").count() == 1
    done = client.post("/accounts/otp/", {"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302
    assert StaffTotp.objects.get(user=agent).confirmed
    assert AuditEvent.objects.filter(action="auth.otp_enrolled").count() == 1
    assert secret not in client.get("/accounts/otp/").content.decode()  # never shown again


def test_without_a_second_factor_the_password_logs_in_as_before(agent):
    answer = password_step(Client(), "agent01")
    assert answer.status_code == 302 and answer["Location"] == "/agent/"


def test_enrolled_staff_need_the_code_before_the_session_is_authenticated(agent):
    secret = enrol(agent)
    client = Client()
    step1 = password_step(client, "agent01", "/agent/")
    assert step1.status_code == 302 and step1["Location"] == "/accounts/login/otp/"
    assert SESSION_KEY not in client.session
    assert client.get("/agent/").status_code == 302  # still anonymous
    pending_key = client.session.session_key

    wrong = client.post("/accounts/login/otp/", {"code": "123456"})
    assert wrong.status_code == 400 and "otp-error" in wrong.content.decode()
    assert SESSION_KEY not in client.session
    failed = AuditEvent.objects.get(action="auth.otp_failed")
    assert failed.object_id == str(agent.pk) and "123456" not in str(failed.details)

    done = client.post("/accounts/login/otp/", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302 and done["Location"] == "/agent/"
    assert client.session[SESSION_KEY] == str(agent.pk)
    assert client.session.session_key != pending_key
    assert client.get("/agent/").status_code == 200
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor_type == "staff" and login.details == {"second_factor": True}


def test_a_code_is_accepted_once(agent):
    secret = enrol(agent)
    code = pyotp.TOTP(secret).now()
    first = Client()
    password_step(first, "agent01")
    assert first.post("/accounts/login/otp/", {"code": code}).status_code == 302
    second = Client()
    password_step(second, "agent01")
    replayed = second.post("/accounts/login/otp/", {"code": code})
    assert replayed.status_code == 400 and "已使用" in replayed.content.decode()
    assert SESSION_KEY not in second.session
    assert AuditEvent.objects.filter(action="auth.otp_failed").last().details["reason"] == "otp"


def test_codes_within_one_step_of_drift_pass_and_older_ones_do_not(agent):
    secret = enrol(agent)
    totp, now = pyotp.TOTP(secret), timezone.now()
    for offset, ok in ((-90, False), (-30, True), (0, True), (30, True), (90, False)):
        StaffTotp.objects.filter(user=agent).update(last_used_step=None)
        code = totp.at(now + timedelta(seconds=offset))
        if ok:
            totp_actions.verify_totp_login(user=agent, code=code, now=now)
        else:
            with pytest.raises(ServiceError) as refused:
                totp_actions.verify_totp_login(user=agent, code=code, now=now)
            assert refused.value.code == "otp_invalid"
    # After the step of +30 s was used, the code of the current step is a replay.
    StaffTotp.objects.filter(user=agent).update(last_used_step=None)
    totp_actions.verify_totp_login(user=agent, code=totp.at(now + timedelta(seconds=30)), now=now)
    with pytest.raises(ServiceError) as refused:
        totp_actions.verify_totp_login(user=agent, code=totp.at(now), now=now)
    assert refused.value.code == "otp_replayed"


def test_wrong_codes_count_towards_the_lockout(agent, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    secret = enrol(agent)
    client = Client()
    password_step(client, "agent01")
    for _ in range(2):
        assert client.post("/accounts/login/otp/", {"code": "000000"}).status_code == 400
    locked = client.post("/accounts/login/otp/", {"code": "000000"})
    assert "临时锁定" in locked.content.decode()
    # The pending login is gone, and even the right code and password are refused now.
    gone = client.post("/accounts/login/otp/", {"code": pyotp.TOTP(secret).now()})
    assert gone.status_code == 302 and gone["Location"].startswith("/accounts/login/")
    again = password_step(Client(), "agent01")
    assert again.status_code == 200 and "临时锁定" in again.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_locked").count() == 1


def test_the_second_step_expires(agent, settings):
    enrol(agent)
    settings.STAFF_TOTP_PENDING_SECONDS = 0
    client = Client()
    password_step(client, "agent01")
    answer = client.get("/accounts/login/otp/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/?expired=1"
    assert client.get("/accounts/login/otp/enrol/").status_code == 302


def test_required_policy_makes_staff_enrol_before_they_get_in(supervisor, settings):
    settings.STAFF_TOTP_REQUIRED = True
    client = Client()
    step1 = password_step(client, "supervisor01", "/admin/")
    assert step1["Location"] == "/accounts/login/otp/enrol/"
    assert SESSION_KEY not in client.session
    page = client.get("/accounts/login/otp/enrol/")
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.content.decode()).group(1)
    assert client.get("/admin/").status_code == 302
    assert client.post("/accounts/login/otp/enrol/", {"code": "000000"}).status_code == 400
    done = client.post("/accounts/login/otp/enrol/", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert StaffTotp.objects.get(user=supervisor).confirmed
    # Once enrolled, it cannot be switched off while the policy holds.
    off = client.post("/accounts/otp/", {"action": "disable", "code": pyotp.TOTP(secret).now()})
    assert off.status_code == 400 and StaffTotp.objects.filter(user=supervisor).exists()


def test_each_required_enrolment_attempt_gets_a_new_secret(agent, settings):
    settings.STAFF_TOTP_REQUIRED = True
    secrets = []
    for _ in range(2):
        client = Client()
        password_step(client, "agent01")
        html = client.get("/accounts/login/otp/enrol/").content.decode()
        secrets.append(re.search(r'data-secret="([A-Z2-7]+)"', html).group(1))
    assert secrets[0] != secrets[1]


def test_staff_can_remove_their_own_factor_with_a_current_code(agent):
    secret = enrol(agent)
    client = logged_in(agent)
    assert client.post("/accounts/otp/", {"action": "disable", "code": "000000"}).status_code == 400
    off = client.post("/accounts/otp/", {"action": "disable", "code": pyotp.TOTP(secret).now()})
    assert off.status_code == 302
    assert not StaffTotp.objects.filter(user=agent).exists()
    assert AuditEvent.objects.filter(action="auth.otp_reset").count() == 1
    assert password_step(Client(), "agent01").status_code == 302


def test_an_administrator_resets_a_lost_factor_in_the_admin(agent, admin_client):
    enrol(agent)
    device = StaffTotp.objects.get(user=agent)
    page = admin_client.get(f"/admin/accounts/stafftotp/{device.pk}/change/")
    assert page.status_code == 200 and device.secret.token not in page.content.decode()
    deleted = admin_client.post(f"/admin/accounts/stafftotp/{device.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not StaffTotp.objects.exists()
    event = AuditEvent.objects.get(action="auth.otp_reset")
    assert event.actor_type == "staff" and event.object_id == str(agent.pk)


def test_services_refuse_what_does_not_apply(agent):
    with pytest.raises(ServiceError) as refused:
        totp_actions.verify_totp_login(user=agent, code="123456")
    assert refused.value.code == "otp_not_enrolled"
    with pytest.raises(ServiceError) as refused:
        totp_actions.confirm_totp_enrolment(user=agent, code="123456")
    assert refused.value.code == "otp_not_pending"
    enrol(agent)
    with pytest.raises(ServiceError) as refused:
        totp_actions.start_totp_enrolment(user=agent)
    assert refused.value.code == "otp_already_enrolled"
    assert totp_actions.reset_totp(user=agent, actor=SYSTEM) is True
    assert totp_actions.reset_totp(user=agent, actor=SYSTEM) is False


def test_a_session_waiting_for_its_code_cannot_open_an_agent_socket(agent):
    import asyncio

    from channels.testing import WebsocketCommunicator

    from remotebank.asgi import application

    enrol(agent)
    client = Client()
    password_step(client, "agent01")
    assert SESSION_KEY not in client.session
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/v1/signal", headers=headers)
        connected, code = await comm.connect()
        assert not connected and code == 4401

    asyncio.run(scenario())


def test_starting_a_second_factor_login_signs_out_whoever_was_signed_in(agent, supervisor):
    enrol(agent)
    client = logged_in(supervisor)
    assert password_step(client, "agent01")["Location"] == "/accounts/login/otp/"
    assert SESSION_KEY not in client.session
    assert client.get("/admin/").status_code == 302
