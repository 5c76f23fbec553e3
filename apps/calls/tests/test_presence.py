import pytest

from apps.accounts.models import AgentProfile, Presence, PresenceChange
from apps.audit.audited import audited_action
from apps.audit.models import AuditEvent
from apps.calls.actions.presence import change_presence
from apps.calls.actions.routing import set_presence_by_agent
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_presence_change_is_stored_with_time_and_audited(agent):
    set_presence_by_agent(user=agent, state=Presence.READY)
    set_presence_by_agent(user=agent, state=Presence.BREAK)
    changes = list(PresenceChange.objects.filter(agent__user=agent).order_by("at", "id"))
    assert [(c.from_state, c.to_state) for c in changes] == [
        ("offline", "ready"),
        ("ready", "break"),
    ]
    assert changes[0].at <= changes[1].at
    assert AuditEvent.objects.filter(action="agent.presence").count() == 2


def test_agent_cannot_set_busy_or_ringing_directly(agent):
    for state in (Presence.BUSY, Presence.RINGING, Presence.AFTER_CALL_WORK, "nonsense"):
        with pytest.raises(ServiceError) as exc:
            set_presence_by_agent(user=agent, state=state)
        assert exc.value.code == "bad_presence"
    assert AgentProfile.objects.get(user=agent).presence == Presence.OFFLINE


def test_illegal_transition_is_refused_and_changes_nothing(agent):
    profile = AgentProfile.objects.get(user=agent)
    with pytest.raises(ServiceError) as exc, audited_action() as write:
        change_presence(write, agent=profile, to=Presence.BUSY)
    assert exc.value.code == "bad_presence_transition"
    assert PresenceChange.objects.count() == 0


def test_non_agent_cannot_set_presence(supervisor):
    with pytest.raises(ServiceError) as exc:
        set_presence_by_agent(user=supervisor, state=Presence.READY)
    assert exc.value.code == "not_an_agent"
