"""Call collaboration through real processes (Daphne, an RQ media worker, headless SDK clients):
screen share, and (further down) invitations, supervisor monitoring, hold and transfer.

Media is checked by content: every video track carries the id of whoever sends it (a share
carries its own id) and a running counter, and every party speaks a tone of its own.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
from remotebank_client import Participant, ProtocolError, TicketRefused
from remotebank_client.media import (
    PatternVideoTrack,
    SequenceCheck,
    ToneAudioTrack,
    audio_frame_mono,
    decode_pattern,
    dominant_frequency,
)

from apps.accounts.demo import DEMO_PASSWORD
from apps.audit.models import AuditEvent
from apps.calls.models import Call, CallEventKind, InviteTicket
from apps.recordings.models import RecordingSegment
from tests.e2e.test_media_call import (
    AGENT_ID,
    AGENT_TONE,
    CUSTOMER_ID,
    assert_sees,
    entry_path,
    hang_up,
    in_call,
    start_media,
)
from tests.live import daphne, recordings_env, rq_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AGENT_SHARE_ID, CUSTOMER_SHARE_ID = 21, 22


async def watch_share(who: Participant, seconds: float) -> SequenceCheck:
    check = SequenceCheck()
    await who.next_share_frame(timeout=15, fresh=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check.add(decode_pattern(await who.next_share_frame(timeout=10)))
    return check


async def watch_slot(who: Participant, slot: int, seconds: float) -> SequenceCheck:
    check = SequenceCheck()
    await who.next_video_frame(timeout=15, fresh=True, slot=slot)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check.add(decode_pattern(await who.next_video_frame(timeout=10, slot=slot)))
    return check


async def wait_slots(who: Participant, predicate, timeout: float = 15) -> dict:
    """The newest media.slots once it satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    while True:
        slots = who.media_slots
        if slots is not None and predicate(slots):
            return slots
        if time.monotonic() > deadline:
            raise AssertionError(f"media.slots never matched: {slots}")
        await asyncio.sleep(0.1)


def participant_id(who: Participant, role: str) -> int:
    return next(p["participant_id"] for p in who.call["participants"] if p["role"] == role)


def test_screen_share_is_its_own_track_one_at_a_time_and_the_agent_can_stop_it(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path)
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            agent_pid = participant_id(customer, "agent")
            customer_pid = participant_id(customer, "customer")
            slots = await wait_slots(customer, lambda s: s["slots"])
            assert slots["slots"][0]["participant_id"] == agent_pid and slots["share"] is None

            # The agent shares: the customer gets it on the share track, the camera goes on.
            await agent.start_share(PatternVideoTrack(AGENT_SHARE_ID, fps=10))
            started = await customer.wait_for("share.started")
            assert started["participant_id"] == agent_pid and started["role"] == "agent"
            slots = await wait_slots(customer, lambda s: s["share"] is not None)
            share, camera = await asyncio.gather(
                watch_share(customer, 2.0), watch_slot(customer, 0, 2.0)
            )
            assert_sees(share, AGENT_SHARE_ID, min_frames=10)
            assert_sees(camera, AGENT_ID, min_frames=15)
            slots = await wait_slots(customer, lambda s: s["share"] is not None)
            assert slots["share"]["participant_id"] == agent_pid

            # One share per call: the customer is refused, clearly, and nothing changes.
            with pytest.raises(ProtocolError) as refused:
                await customer.start_share(PatternVideoTrack(CUSTOMER_SHARE_ID, fps=10))
            assert refused.value.code == "share_busy"
            assert_sees(await watch_share(customer, 1.0), AGENT_SHARE_ID, min_frames=5)

            await agent.stop_share()
            stopped = await customer.wait_for("share.stopped")
            assert stopped["participant_id"] == agent_pid
            await wait_slots(customer, lambda s: s["share"] is None)

            # Now the customer may share; the agent sees it, and the agent can stop it.
            await customer.start_share(PatternVideoTrack(CUSTOMER_SHARE_ID, fps=10))
            assert_sees(await watch_share(agent, 2.0), CUSTOMER_SHARE_ID, min_frames=10)
            assert_sees(await watch_slot(agent, 0, 1.0), CUSTOMER_ID, min_frames=8)
            await agent.stop_share_of_other()
            stopped = await customer.wait_for("share.stopped")
            assert stopped["participant_id"] == customer_pid
            assert stopped["stopped_by"] == agent_pid
            await wait_slots(agent, lambda s: s["share"] is None)
            with pytest.raises(ProtocolError) as none:
                await agent.stop_share_of_other()
            assert none.value.code == "no_share"

            return await hang_up(agent, customer)

    with daphne(**env) as base, rq_worker("media", **env):
        call_id = asyncio.run(scenario(base))

    call = Call.objects.get(pk=call_id)
    events = list(call.events.filter(kind__startswith="share_").order_by("at", "id"))
    assert [e.kind for e in events] == [
        CallEventKind.SHARE_STARTED,
        CallEventKind.SHARE_STOPPED,
        CallEventKind.SHARE_STARTED,
        CallEventKind.SHARE_STOPPED,
    ]
    assert [e.participant.role for e in events] == ["agent", "agent", "customer", "customer"]
    assert all(e.data["label"] for e in events)
    assert "stopped_by" in events[3].data and "stopped_by" not in events[1].data
    # Both shares were recorded as their own tracks (contract 3: source="screen").
    screens = RecordingSegment.objects.filter(call=call, source="screen", kind="video")
    assert set(screens.values_list("role", flat=True)) == {"agent", "customer"}
    assert RecordingSegment.objects.filter(call=call, source="camera", kind="video").exists()


# --- several participants -----------------------------------------------------------------------

GUEST_ID, SUPERVISOR_ID, AGENT2_ID = 3, 4, 5
GUEST_TONE, SUPERVISOR_TONE = 660.0, 1320.0
PATTERN_OF = {"customer": CUSTOMER_ID, "agent": AGENT_ID, "guest": GUEST_ID}


async def tone_in_slot(who: Participant, slot: int, seconds: float = 1.0) -> float:
    chunks, rate = [], 48000
    await who.next_audio_frame(timeout=10, fresh=True, slot=slot)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await who.next_audio_frame(timeout=10, slot=slot)
        rate = frame.sample_rate
        chunks.append(audio_frame_mono(frame))
    return dominant_frequency(np.concatenate(chunks).astype(np.float64), rate)


async def sees_everyone(who: Participant, expected: dict[int, int]) -> None:
    """`who` receives, each in its slot, the pattern of every participant in `expected`
    (participant id -> pattern id) and of nobody else."""
    slots = await wait_slots(
        who, lambda s: {x["participant_id"] for x in s["slots"] if x["video"]} == set(expected)
    )
    video = [x for x in slots["slots"] if x["video"]]
    for attempt in (1, 2):  # a stream that just started may still lose a frame or two
        try:
            checks = await asyncio.gather(*(watch_slot(who, x["index"], 1.5) for x in video))
        except TimeoutError as silent:  # say who saw nothing, and what its media looked like
            state = await who.media.local_stats()
            raise AssertionError(
                f"{who.role} stopped receiving: slots {slots}, now {who.media_slots}, "
                f"epoch {who.media_epoch}, frames {who.media.frames_received()}, {state}"
            ) from silent
        try:
            for slot, check in zip(video, checks, strict=True):
                assert_sees(check, expected[slot["participant_id"]], min_frames=10)
            return
        except AssertionError:
            if attempt == 2:
                raise


def test_external_invitee_by_ticket_sees_and_is_seen_then_is_removed(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path, PUBLIC_BASE_URL="http://elsewhere.example")
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path) as (customer, agent):
            invite = await agent.invite_guest("赵敏")
            invite_path = urlsplit(invite["url"]).path
            assert invite_path.startswith("/h5/invite/")
            async with await Participant.guest(base, invite_path) as guest:
                assert guest.role == "guest" and guest.call_id == customer.call_id
                guest_pid = guest.hello["participant_id"]
                joined = await customer.wait_for("participant.joined")
                assert joined["participant_id"] == guest_pid and joined["name"] == "赵敏"
                await guest.start_media(ToneAudioTrack(GUEST_TONE), PatternVideoTrack(GUEST_ID))

                ids = {p: participant_id(customer, p) for p in ("customer", "agent")}
                ids["guest"] = guest_pid
                for who, me in ((customer, "customer"), (agent, "agent"), (guest, "guest")):
                    expected = {ids[r]: PATTERN_OF[r] for r in ids if r != me}
                    await sees_everyone(who, expected)
                slot = customer.slot_of(guest_pid)
                assert abs(await tone_in_slot(customer, slot) - GUEST_TONE) < 15

                # The link was for one use only.
                with pytest.raises(TicketRefused) as reused:
                    await Participant.guest(base, invite_path)
                assert reused.value.code == "ticket_used"

                # The agent removes the guest: gone from the others' slots, its socket is out.
                await agent.remove_participant(guest_pid)
                left = await customer.wait_for("participant.left")
                assert left["participant_id"] == guest_pid
                await wait_slots(
                    customer, lambda s: [x["participant_id"] for x in s["slots"]] == [ids["agent"]]
                )
                with pytest.raises(ProtocolError) as gone:
                    await guest.send_chat("还在吗")
                assert gone.value.code == "call_not_found"
                assert_sees(await watch_slot(customer, 0, 1.0), AGENT_ID, min_frames=8)

                return await hang_up(agent, customer)

    with daphne(**env) as base, rq_worker("media", **env):
        call_id = asyncio.run(scenario(base))

    call = Call.objects.get(pk=call_id)
    guest = call.participants.get(role="guest")
    assert guest.guest_name == "赵敏" and guest.left_at is not None
    kinds = list(call.events.values_list("kind", flat=True))
    for kind in ("participant_invited", "participant_joined", "participant_removed"):
        assert kind in kinds
    assert InviteTicket.objects.get(call=call).participant == guest
    # The invitee's media is recorded like everyone's.
    assert RecordingSegment.objects.filter(call=call, participant=guest, kind="video").exists()
    assert AuditEvent.objects.filter(action="call.guest_joined", call_id=call.pk).exists()


def test_supervisor_monitors_silently_whispers_to_the_agent_then_barges_in_and_hold(
    api_client_obj, settings, tmp_path
):
    env = recordings_env(settings, tmp_path)
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with (
            in_call(base, path) as (customer, agent),
            await Participant.supervisor(base, "supervisor01", DEMO_PASSWORD) as supervisor,
        ):
            assert supervisor.role == "supervisor"
            live = await supervisor.live_calls()
            assert customer.call_id in [c["call_id"] for c in live]
            ack = await supervisor.monitor(customer.call_id)
            sup_pid = ack["participant_id"]
            await supervisor.start_media(
                ToneAudioTrack(SUPERVISOR_TONE), PatternVideoTrack(SUPERVISOR_ID)
            )
            ids = {p: participant_id(customer, p) for p in ("customer", "agent")}
            # The monitor receives both parties.
            await sees_everyone(supervisor, {ids["customer"]: CUSTOMER_ID, ids["agent"]: AGENT_ID})
            # The agent knows; the customer neither knows nor receives anything of it.
            mode = await agent.wait_for("monitor.mode")
            assert mode["participant_id"] == sup_pid and mode["mode"] == "monitor"
            await asyncio.sleep(1.0)
            assert [x["participant_id"] for x in customer.media_slots["slots"]] == [ids["agent"]]
            frames = customer.media.frames_received
            assert frames["audio1"] == frames["video1"] == frames["audio2"] == 0, frames
            assert not customer.pending_events(("participant.joined", "monitor.mode"))
            with pytest.raises(ProtocolError) as silent:
                await supervisor.send_chat("不该被看到")
            assert silent.value.code == "not_allowed"

            # Whisper: the agent hears the supervisor in a slot of its own; the customer not.
            await supervisor.monitor_mode("whisper")
            slots = await wait_slots(
                agent, lambda s: any(x["participant_id"] == sup_pid for x in s["slots"])
            )
            whisper = next(x for x in slots["slots"] if x["participant_id"] == sup_pid)
            assert whisper["audio"] and not whisper["video"]
            assert abs(await tone_in_slot(agent, whisper["index"]) - SUPERVISOR_TONE) < 15
            assert abs(await tone_in_slot(customer, 0) - AGENT_TONE) < 15
            frames = customer.media.frames_received
            assert frames["audio1"] == frames["video1"] == 0, frames
            assert customer.slot_of(sup_pid) is None

            # Hold: the customer's media pauses both ways, the customer is told; then back.
            await agent.hold(True)
            held = await customer.wait_for("call.hold")
            assert held["on_hold"] is True
            await wait_slots(customer, lambda s: s["slots"] == [] and s["on_hold"])
            await wait_slots(agent, lambda s: agent.slot_of(ids["customer"]) is None)
            # the monitor still hears the customer while the agent does not
            assert supervisor.slot_of(ids["customer"]) is not None
            await agent.hold(False)
            await customer.wait_for("call.hold", lambda e: e["on_hold"] is False)
            await sees_everyone(customer, {ids["agent"]: AGENT_ID})

            # Barge: the supervisor becomes a visible participant.
            await supervisor.monitor_mode("barge")
            joined = await customer.wait_for("participant.joined")
            assert joined["participant_id"] == sup_pid and joined["role"] == "supervisor"
            await sees_everyone(customer, {ids["agent"]: AGENT_ID, sup_pid: SUPERVISOR_ID})

            return await hang_up(agent, customer)

    with daphne(**env) as base, rq_worker("media", **env):
        call_id = asyncio.run(scenario(base))

    call = Call.objects.get(pk=call_id)
    actions = list(
        AuditEvent.objects.filter(call_id=call.pk, action__startswith="call.monitor").values_list(
            "action", flat=True
        )
    )
    assert actions == ["call.monitor_started", "call.monitor_mode", "call.monitor_mode"]
    kinds = list(call.events.values_list("kind", flat=True))
    assert kinds.count("hold_started") == 1 and kinds.count("hold_ended") == 1
    # The whisper is kept raw as evidence (contract 3), apart from the call's own audio.
    supervisor = call.participants.get(role="supervisor")
    assert RecordingSegment.objects.filter(
        call=call, participant=supervisor, source="whisper", kind="audio"
    ).exists()
    # After the barge everyone hears and sees them: voice and camera join the call's recording.
    for kind in ("audio", "video"):
        assert RecordingSegment.objects.filter(
            call=call, participant=supervisor, source="camera", kind=kind
        ).exists(), kind


def test_cold_transfer_refused_transfer_and_warm_transfer_keep_one_call(api_client_obj):
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with (
            in_call(base, path) as (customer, first),
            await Participant.agent(base, "agent02", DEMO_PASSWORD) as second,
        ):
            await second.set_presence("ready")
            ids = {"customer": participant_id(customer, "customer")}
            await customer.send_chat("我要办理业务")

            # Cold transfer to a named agent: the customer waits, then sees the new agent.
            await first.transfer(agent="A1002")
            waiting = await customer.wait_for("transfer.started")
            assert waiting["message"]
            offer = await second.wait_offer()
            assert (
                offer["call_id"] == customer.call_id and offer["transfer_from"]["role"] == "agent"
            )
            await second.accept(offer["offer_id"])
            await second.wait_for("call.joined")
            done = await customer.wait_for("transfer.completed")
            second_pid = done["to"]["participant_id"]
            await second.start_media(ToneAudioTrack(550.0), PatternVideoTrack(AGENT2_ID))
            await first.wait_for(
                "participant.left", lambda e: e["participant_id"] == done["from"]["participant_id"]
            )
            await first.stop_media()
            await sees_everyone(customer, {second_pid: AGENT2_ID})
            await sees_everyone(second, {ids["customer"]: CUSTOMER_ID})
            await second.send_chat("您好，我来为您继续办理")
            got = await customer.wait_for(
                "chat.message", lambda e: e["sender"]["participant_id"] == second_pid
            )
            assert got["text"] == "您好，我来为您继续办理"

            # A refused transfer leaves the customer with the agent they have.
            await first.set_presence("ready")
            await second.transfer(agent="A1001")
            refused_offer = await first.wait_offer()
            await first.reject(refused_offer["offer_id"])
            failed = await customer.wait_for("transfer.failed")
            assert failed["reason"] == "rejected" and failed["message"]
            await sees_everyone(customer, {second_pid: AGENT2_ID})

            # Warm transfer: the second agent brings the first back in, then leaves.
            await first.set_presence("ready")
            invited = await second.invite_staff("agent01")
            first_again = invited["participant_id"]
            await first.wait_for("call.joined")
            await first.start_media(ToneAudioTrack(880.0), PatternVideoTrack(AGENT_ID))
            await sees_everyone(customer, {second_pid: AGENT2_ID, first_again: AGENT_ID})
            await second.leave()
            await customer.wait_for("transfer.completed")
            await sees_everyone(customer, {first_again: AGENT_ID})

            return await hang_up(first, customer)

    with daphne() as base, rq_worker("media"):
        call_id = asyncio.run(scenario(base))

    assert Call.objects.count() == 1
    call = Call.objects.get(pk=call_id)
    assert call.agent.employee_no == "A1001" and call.state == "ended"
    kinds = list(call.events.values_list("kind", flat=True))
    assert kinds.count("transfer_requested") == 2
    assert kinds.count("transfer_completed") == 2
    assert kinds.count("transfer_failed") == 1
    # who served when: agent01, then agent02, then agent01 again
    agents = call.participants.filter(role="agent").order_by("joined_at", "id")
    assert [p.user.username for p in agents] == ["agent01", "agent02", "agent01"]
    assert call.messages.count() == 2


ANNOUNCE_TONE = 300.0


def test_a_virtual_source_is_heard_by_everyone_and_recorded_as_an_announcement(
    api_client_obj, settings, tmp_path
):
    """CallMedia.add_virtual_source (contract 4), with the media job run in this process so
    the test can call it; the clients are real, through Daphne."""
    from media_worker.call_media import CallMedia

    env = recordings_env(settings, tmp_path)
    path = entry_path(api_client_obj)

    async def scenario(base: str) -> str:
        async with in_call(base, path, media=False) as (customer, agent):
            call = await asyncio.to_thread(Call.objects.get, pk=customer.call_id)
            job = CallMedia(str(call.pk), call.media_epoch)
            running = asyncio.ensure_future(job.run())
            try:
                await start_media(customer, agent)
                await wait_slots(customer, lambda s: s["slots"])
                job.add_virtual_source("notice", "audio", ToneAudioTrack(ANNOUNCE_TONE))
                for who in (customer, agent):
                    slots = await wait_slots(who, lambda s: s["virtual"])
                    assert slots["virtual"][0]["name"] == "notice"
                    index = slots["virtual"][0]["index"]
                    assert index != 0  # slot 0 carries the other party
                    assert abs(await tone_in_slot(who, index) - ANNOUNCE_TONE) < 15
                assert abs(await tone_in_slot(customer, 0) - AGENT_TONE) < 15
                job.remove_virtual_source("notice")
                await wait_slots(customer, lambda s: not s["virtual"])

                call_id = await hang_up(agent, customer)
                await asyncio.wait_for(running, 20)
                return call_id
            finally:
                running.cancel()

    with daphne(**env) as base:
        call_id = asyncio.run(scenario(base))

    agent_participant = Call.objects.get(pk=call_id).participants.get(role="agent")
    assert RecordingSegment.objects.filter(
        call_id=call_id, participant=agent_participant, source="announce", kind="audio"
    ).exists()
