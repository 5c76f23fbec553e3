"""Transport-cc wire format, the RTP header extension, the job's answer, caps, keyframe limits."""

from __future__ import annotations

import asyncio
import struct

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpRtpfbPacket, RtpPacket

from media_worker import aiortc_cc, twcc
from media_worker.congestion import publisher_caps
from media_worker.pacer import KeyframeLimiter

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"


def extension_map(twcc_id: int = 3) -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=MID),
                RTCRtpHeaderExtensionParameters(id=twcc_id, uri=twcc.TRANSPORT_CC_URI),
            ]
        )
    )
    return extensions


def test_feedback_round_trips_runs_vectors_and_large_deltas():
    base = 50 * twcc.REFERENCE_US
    arrivals: list[int | None] = []
    t = base + 1000
    for i in range(300):
        if 40 <= i < 80 or i % 17 == 0:
            arrivals.append(None)  # a run of losses, and scattered ones
            continue
        t += 70_000 if i == 150 else (-2000 if i == 151 else 1250)  # large and negative
        arrivals.append(t)
    feedback = twcc.TransportFeedback(
        sender_ssrc=1, media_ssrc=2, base_sequence=65500, reference_time=50,
        feedback_count=7, arrivals=arrivals,
    )  # fmt: skip
    packet = twcc.build_feedback(feedback)
    assert len(packet) % 4 == 0
    assert packet[1] == 205 and packet[0] & 0x1F == 15
    back = twcc.parse_feedback(packet)
    assert (back.base_sequence, back.reference_time, back.feedback_count) == (65500, 50, 7)
    assert [a is None for a in back.arrivals] == [a is None for a in arrivals]
    for got, sent in zip(back.arrivals, arrivals, strict=True):
        if sent is not None:
            assert got is not None and abs(got - sent) <= 125
    # aiortc would refuse it (padded, it is no NACK list): the job takes these out first
    with pytest.raises(ValueError):
        RtcpPacket.parse(packet)


def test_run_length_chunk_covers_a_long_run_in_two_bytes():
    arrivals = [1000 * i + 64_000 for i in range(500)]
    packet = twcc.build_feedback(twcc.TransportFeedback(0, 0, 10, 1, 0, arrivals))
    (chunk,) = struct.unpack_from("!H", packet, 20)
    assert chunk >> 15 == 0 and (chunk >> 13) & 3 == twcc.SMALL_DELTA and chunk & 0x1FFF == 500
    assert twcc.parse_feedback(packet).arrivals == arrivals


def test_malformed_feedback_is_refused():
    good = twcc.build_feedback(twcc.TransportFeedback(0, 0, 1, 0, 0, [100, None, 900]))
    for bad in (good[:12], good[:-4] + b"\x00\x00", b"\x81\xcd\x00\x02" + bytes(8)):
        with pytest.raises(ValueError):
            twcc.parse_feedback(bad)


def test_transport_feedback_is_split_from_a_compound_packet():
    feedback = twcc.build_feedback(twcc.TransportFeedback(5, 6, 1, 0, 0, [100, 400]))
    nack = bytes(RtcpRtpfbPacket(fmt=1, ssrc=5, media_ssrc=6, lost=[10, 12]))
    found, rest = twcc.split_transport_feedback(nack + feedback + nack)
    assert found == [feedback] and rest == nack + nack
    assert twcc.split_transport_feedback(nack[:-2]) == ([], nack[:-2])


@pytest.mark.parametrize("twcc_id", [3, 14])
def test_transport_sequence_is_written_into_aiortc_packets(twcc_id):
    packet = RtpPacket(payload_type=96, sequence_number=5, timestamp=9, ssrc=77, payload=b"vp8")
    packet.extensions.mid = "1"
    raw = packet.serialize(extension_map(twcc_id))
    stamped = twcc.stamp_transport_sequence(raw, twcc_id, 0xBEEF)
    parsed = RtpPacket.parse(stamped, extension_map(twcc_id))
    assert parsed.extensions.transport_sequence_number == 0xBEEF
    assert (parsed.extensions.mid, parsed.payload, parsed.sequence_number) == ("1", b"vp8", 5)
    again = twcc.stamp_transport_sequence(stamped, twcc_id, 7)  # overwritten, not appended
    assert len(again) == len(stamped)
    assert twcc.read_transport_sequence(again, twcc_id) == 7
    bare = RtpPacket(payload_type=96, sequence_number=5, timestamp=9, ssrc=77, payload=b"x")
    assert (
        twcc.read_transport_sequence(
            twcc.stamp_transport_sequence(bare.serialize(), twcc_id, 9), twcc_id
        )
        == 9
    )
    assert twcc.stamp_transport_sequence(b"\x00" * 4, twcc_id, 1) == b"\x00" * 4


# Chromium's offer for the H5 page's layout (audio, camera, share), trimmed to what matters.
CHROMIUM_OFFER = """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1 2
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:- a1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=ssrc:1001 cname:x
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:1
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:- v1
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=ssrc-group:FID 2001 2002
a=ssrc:2001 cname:x
a=ssrc:2002 cname:x
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:2
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:- v2
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
""".replace("FINGERPRINT", ":".join(["9D:56:9E:14:9D:0A:D2:A3"] * 4)).replace("\n", "\r\n")


def test_the_job_answers_chromium_with_transport_cc_and_without_abs_send_time():
    async def answer() -> tuple[str, aiortc_cc.TransportCongestion]:
        pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(CHROMIUM_OFFER, "offer"))
            control = aiortc_cc.attach(pc, CHROMIUM_OFFER)
            await pc.setLocalDescription(await pc.createAnswer())
            return pc.localDescription.sdp, control
        finally:
            await pc.close()

    sdp, control = asyncio.run(answer())
    assert control.extension_id == 3
    assert aiortc_cc.find(control.pc) is control
    media = sdp.split("m=")[1:]
    assert len(media) == 3
    for section in media:
        assert f"a=extmap:3 {twcc.TRANSPORT_CC_URI}" in section
        assert "abs-send-time" not in section
    assert "a=rtcp-fb:111 transport-cc" in media[0]
    for section in media[1:]:
        assert "a=rtcp-fb:96 transport-cc" in section
        assert "a=rtcp-fb:96 goog-remb" in section  # REMB stays: the caps are sent that way


def test_offer_without_transport_cc_is_answered_as_before():
    offer = CHROMIUM_OFFER.replace("a=rtcp-fb:96 transport-cc\r\n", "").replace(
        "a=rtcp-fb:111 transport-cc\r\n", ""
    )

    async def answer() -> tuple[str, int | None]:
        pc = RTCPeerConnection()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            extension_id = aiortc_cc.negotiate(pc, offer)
            await pc.setLocalDescription(await pc.createAnswer())
            return pc.localDescription.sdp, extension_id
        finally:
            await pc.close()

    sdp, extension_id = asyncio.run(answer())
    assert extension_id is None
    assert "transport-cc" not in sdp and "transport-wide-cc" not in sdp


def test_each_publisher_is_capped_at_its_narrowest_subscriber():
    flows = {
        1: {2},  # the customer sees the agent
        2: {1, 3},  # the agent sees the customer and a guest
        3: {1, 2},  # the guest sees both
    }
    caps = publisher_caps(flows, {1: 300_000, 2: 2_000_000, 3: None})
    assert caps == {2: 300_000, 1: 1_000_000, 3: 1_000_000}
    assert publisher_caps(flows, {1: None, 2: None, 3: None}) == {}


def test_keyframe_requests_of_one_subscriber_are_limited_to_one_a_second():
    limiter = KeyframeLimiter(interval=1.0)
    asked = [t / 10 for t in range(0, 35)]  # a PLI every 100 ms for 3.5 s
    allowed = [t for t in asked if limiter.allow(t)]
    assert allowed == [0.0, 1.0, 2.0, 3.0]
    assert limiter.dropped == len(asked) - 4
