"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

What Chromium uses for its send-side bandwidth estimate (not RFC 8888): every RTP packet of a
transport carries a transport-wide sequence number in a header extension, and the receiver
reports, for each sequence number, whether it arrived and when, in RTCP RTPFB FMT 15
messages. Pure code, no aiortc: the media job's hooks (`media_worker.aiortc_cc`) feed it
bytes and times, the tests feed it recorded traces.

* `FeedbackGenerator` is the receiving side: it records (sequence number, arrival time) and
  builds the feedback messages that let the publishing browser's estimator run.
* `parse_feedback` is the sending side's reader of a subscriber's feedback.
* `stamp_transport_sequence` writes the extension into an outgoing RTP packet at the moment it
  leaves (the pacer's release time, as libwebrtc stamps it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "TRANSPORT_CC_URI",
    "FeedbackGenerator",
    "TransportFeedback",
    "build_feedback",
    "parse_feedback",
    "split_transport_feedback",
    "stamp_transport_sequence",
]

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

RTCP_RTPFB = 205
FMT_TRANSPORT_CC = 15
DELTA_US = 250  # receive deltas are multiples of 250 µs (draft section 3.1.5)
REFERENCE_US = 64_000  # the reference time counts multiples of 64 ms
# Packet status symbols (draft section 3.1.1)
NOT_RECEIVED, SMALL_DELTA, LARGE_DELTA = 0, 1, 2
MAX_RUN = 0x1FFF
# One feedback message reports at most this many sequence numbers: a few hundred bytes.
MAX_PACKETS_PER_FEEDBACK = 250
_INT16 = (-0x8000, 0x7FFF)


@dataclass(slots=True)
class TransportFeedback:
    """One feedback message. `arrivals[i]` is the arrival time (µs, in the receiver's clock,
    reference time included) of sequence number ``base_sequence + i`` (mod 2**16), or None
    if it was reported lost."""

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    reference_time: int  # signed, 64 ms units (24 bits on the wire)
    feedback_count: int
    arrivals: list[int | None]


# --------------------------------------------------------------------------------------------
# Wire format


def _symbols(feedback: TransportFeedback) -> tuple[list[int], list[int]]:
    """(status symbols, deltas in 250 µs ticks of the received packets)."""
    symbols = []
    deltas = []
    previous = feedback.reference_time * REFERENCE_US
    for arrival in feedback.arrivals:
        if arrival is None:
            symbols.append(NOT_RECEIVED)
            continue
        ticks = round((arrival - previous) / DELTA_US)
        if not _INT16[0] <= ticks <= _INT16[1]:
            raise ValueError("receive delta out of range: split the feedback")
        symbols.append(SMALL_DELTA if 0 <= ticks <= 0xFF else LARGE_DELTA)
        deltas.append(ticks)
        previous += ticks * DELTA_US  # what the reader will reconstruct, rounding included
    return symbols, deltas


def _chunks(symbols: Sequence[int]) -> list[int]:
    """Run-length chunks for runs, status vectors for the rest (draft sections 3.1.3-3.1.4)."""
    chunks = []
    i, count = 0, len(symbols)
    while i < count:
        run = 1
        while i + run < count and run < MAX_RUN and symbols[i + run] == symbols[i]:
            run += 1
        if run >= 14 or i + run == count:
            chunks.append((symbols[i] << 13) | run)  # T=0
            i += run
            continue
        window = symbols[i : i + 14]
        if max(window) <= SMALL_DELTA:  # T=1 S=0: fourteen 1-bit symbols
            word = 0x8000
            for position, symbol in enumerate(window):
                word |= symbol << (13 - position)
            chunks.append(word)
            i += 14
        else:  # T=1 S=1: seven 2-bit symbols
            word = 0xC000
            for position, symbol in enumerate(symbols[i : i + 7]):
                word |= symbol << (12 - 2 * position)
            chunks.append(word)
            i += 7
    return chunks


def build_feedback(feedback: TransportFeedback) -> bytes:
    """The RTCP packet (RTPFB, FMT 15), padded to 32 bits with RTCP padding as libwebrtc does."""
    symbols, deltas = _symbols(feedback)
    body = struct.pack(
        "!LLHHL",
        feedback.sender_ssrc,
        feedback.media_ssrc,
        feedback.base_sequence & 0xFFFF,
        len(symbols),
        ((feedback.reference_time & 0xFFFFFF) << 8) | (feedback.feedback_count & 0xFF),
    )
    body += b"".join(struct.pack("!H", chunk) for chunk in _chunks(symbols))
    body += b"".join(
        struct.pack("!B", ticks) if 0 <= ticks <= 0xFF else struct.pack("!h", ticks)
        for ticks in deltas
    )
    padding = -len(body) % 4
    first = 0x80 | FMT_TRANSPORT_CC
    if padding:
        body += b"\x00" * (padding - 1) + bytes([padding])
        first |= 0x20
    return struct.pack("!BBH", first, RTCP_RTPFB, len(body) // 4) + body


def _read_symbols(body: bytes, count: int) -> tuple[list[int], int]:
    symbols: list[int] = []
    position = 16
    while len(symbols) < count:
        if position + 2 > len(body):
            raise ValueError("transport-cc feedback: packet chunks truncated")
        (chunk,) = struct.unpack_from("!H", body, position)
        position += 2
        if not chunk & 0x8000:
            symbols.extend([(chunk >> 13) & 0x3] * (chunk & MAX_RUN))
        elif not chunk & 0x4000:
            symbols.extend((chunk >> (13 - i)) & 0x1 for i in range(14))
        else:
            symbols.extend((chunk >> (12 - 2 * i)) & 0x3 for i in range(7))
    return symbols[:count], position


def parse_feedback(packet: bytes) -> TransportFeedback:
    """One RTCP RTPFB FMT 15 packet (header included) into a `TransportFeedback`."""
    if len(packet) < 20:
        raise ValueError("transport-cc feedback: too short")
    first, packet_type, length = struct.unpack_from("!BBH", packet)
    if packet_type != RTCP_RTPFB or first & 0x1F != FMT_TRANSPORT_CC:
        raise ValueError("not a transport-cc feedback packet")
    end = 4 + 4 * length
    if end > len(packet):
        raise ValueError("transport-cc feedback: truncated")
    body = packet[4:end]
    if first & 0x20:
        if not body or not body[-1] or body[-1] > len(body):
            raise ValueError("transport-cc feedback: bad padding")
        body = body[: -body[-1]]
    sender, media, base, count, reference = struct.unpack_from("!LLHHL", body)
    reference_time = reference >> 8
    if reference_time & 0x800000:
        reference_time -= 1 << 24
    symbols, position = _read_symbols(body, count)
    arrivals: list[int | None] = []
    now = reference_time * REFERENCE_US
    for symbol in symbols:
        if symbol == SMALL_DELTA:
            if position + 1 > len(body):
                raise ValueError("transport-cc feedback: deltas truncated")
            now += body[position] * DELTA_US
            position += 1
            arrivals.append(now)
        elif symbol == LARGE_DELTA:
            if position + 2 > len(body):
                raise ValueError("transport-cc feedback: deltas truncated")
            now += struct.unpack_from("!h", body, position)[0] * DELTA_US
            position += 2
            arrivals.append(now)
        else:
            arrivals.append(None)
    return TransportFeedback(
        sender_ssrc=sender,
        media_ssrc=media,
        base_sequence=base,
        reference_time=reference_time,
        feedback_count=reference & 0xFF,
        arrivals=arrivals,
    )


def split_transport_feedback(data: bytes) -> tuple[list[bytes], bytes]:
    """Split a compound RTCP packet into its transport-cc feedback packets and the rest.

    aiortc does not know FMT 15 and would read it as a generic NACK; the rest goes on to it.
    A malformed compound is returned whole as "the rest" for aiortc to refuse as it does.
    """
    feedback: list[bytes] = []
    rest: list[bytes] = []
    position = 0
    while position + 4 <= len(data):
        first, packet_type, length = struct.unpack_from("!BBH", data, position)
        end = position + 4 + 4 * length
        if end > len(data):
            return [], data
        chunk = data[position:end]
        if packet_type == RTCP_RTPFB and first & 0x1F == FMT_TRANSPORT_CC:
            feedback.append(chunk)
        else:
            rest.append(chunk)
        position = end
    if position != len(data):
        return [], data
    return feedback, b"".join(rest)


# --------------------------------------------------------------------------------------------
# RTP header extension


def stamp_transport_sequence(data: bytes, extension_id: int, sequence: int) -> bytes:
    """`data` (one plaintext RTP packet) with the transport-wide sequence number set.

    RFC 8285 one-byte header extensions (what aiortc writes for ids up to 14): the element is
    appended after the existing ones, or overwritten where present; the block is re-padded.
    Two-byte blocks get a two-byte element. A packet that is not RTP is returned unchanged.
    """
    if len(data) < 12 or data[0] >> 6 != 2:
        return data
    value = struct.pack("!H", sequence & 0xFFFF)
    header_end = 12 + 4 * (data[0] & 0x0F)
    if not data[0] & 0x10:
        block = bytes([(extension_id << 4) | 1]) + value + b"\x00"
        return (
            bytes([data[0] | 0x10])
            + data[1:header_end]
            + struct.pack("!HH", 0xBEDE, 1)
            + block
            + data[header_end:]
        )
    profile, words = struct.unpack_from("!HH", data, header_end)
    start = header_end + 4
    end = start + 4 * words
    if end > len(data):
        return data
    elements = data[start:end]
    if profile == 0xBEDE:
        used, found = _one_byte_elements(elements, extension_id)
        if found is not None:
            return data[: start + found] + value + data[start + found + 2 :]
        elements = elements[:used] + bytes([(extension_id << 4) | 1]) + value
    elif profile & 0xFFF0 == 0x1000:
        used = _two_byte_end(elements)
        elements = elements[:used] + bytes([extension_id, 2]) + value
    else:
        return data
    elements += b"\x00" * (-len(elements) % 4)
    return (
        data[:header_end] + struct.pack("!HH", profile, len(elements) // 4) + elements + data[end:]
    )


def _one_byte_elements(elements: bytes, extension_id: int) -> tuple[int, int | None]:
    """(end of the last element, offset of `extension_id`'s 2-byte value or None)."""
    position = used = 0
    found = None
    while position < len(elements):
        byte = elements[position]
        if byte == 0:  # padding
            position += 1
            continue
        element_id, size = byte >> 4, (byte & 0x0F) + 1
        if element_id == 15:
            break
        if element_id == extension_id and size == 2:
            found = position + 1
        position += 1 + size
        used = position
    return min(used, len(elements)), found


def _two_byte_end(elements: bytes) -> int:
    position = used = 0
    while position + 1 < len(elements):
        if elements[position] == 0:
            position += 1
            continue
        position += 2 + elements[position + 1]
        used = position
    return min(used, len(elements))


def read_transport_sequence(data: bytes, extension_id: int) -> int | None:
    """The transport-wide sequence number of a plaintext RTP packet (one-byte extensions)."""
    if len(data) < 12 or not data[0] & 0x10:
        return None
    header_end = 12 + 4 * (data[0] & 0x0F)
    profile, words = struct.unpack_from("!HH", data, header_end)
    if profile != 0xBEDE:
        return None
    elements = data[header_end + 4 : header_end + 4 + 4 * words]
    found = _one_byte_elements(elements, extension_id)[1]
    if found is None:
        return None
    return int(struct.unpack_from("!H", elements, found)[0])


# --------------------------------------------------------------------------------------------
# Receiving side


class SequenceUnwrapper:
    """16-bit sequence numbers to a monotonic integer line (nearest interpretation)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, sequence: int) -> int:
        if self._last is None:
            self._last = sequence & 0xFFFF
            return self._last
        delta = ((sequence & 0xFFFF) - self._last) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        value = self._last + delta
        if delta > 0:
            self._last = value
        return value


class FeedbackGenerator:
    """What the media job reports about the RTP packets one transport receives.

    As libwebrtc's periodic mode: every `interval` seconds, one message (or more, each of at
    most MAX_PACKETS_PER_FEEDBACK) covers every sequence number from the end of the previous
    report to the highest one received. A packet that arrives after its number was reported
    lost moves the window back so that it is reported again, received.
    """

    def __init__(
        self, *, sender_ssrc: int = 0, media_ssrc: int = 0, interval: float = 0.05
    ) -> None:
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = media_ssrc
        self.interval = interval
        self.packets = 0
        self.messages = 0
        self._unwrapper = SequenceUnwrapper()
        self._arrivals: dict[int, int] = {}
        self._window_start: int | None = None
        self._highest: int | None = None
        self._count = 0
        self._last_sent: float | None = None
        # Arrival times are kept relative to the first one: reference times then stay far
        # below 2**23 x 64 ms for the length of any call.
        self._origin: int | None = None

    def record(self, sequence: int, arrival_us: int) -> None:
        """A packet with transport-wide `sequence` arrived at `arrival_us` (monotonic µs)."""
        seq = self._unwrapper.unwrap(sequence)
        self.packets += 1
        if seq in self._arrivals:
            return  # a duplicate (SRTP replay protection normally stops these earlier)
        if self._origin is None:
            self._origin = arrival_us
        self._arrivals[seq] = arrival_us - self._origin
        if self._highest is None or seq > self._highest:
            self._highest = seq
        if self._window_start is None:
            self._window_start = seq
        elif seq < self._window_start and self._highest - seq < 2 * MAX_PACKETS_PER_FEEDBACK:
            self._window_start = seq  # late: report it (and what follows) again

    def due(self, now: float) -> bool:
        """Whether a report is due at `now` (seconds, the caller's monotonic clock)."""
        if self._highest is None or self._window_start is None:
            return False
        if self._window_start > self._highest:
            return False
        return self._last_sent is None or now - self._last_sent >= self.interval

    def build(self, now: float) -> list[bytes]:
        """The messages due now (possibly none); marks their packets as reported."""
        if self._highest is None or self._window_start is None:
            return []
        start = max(self._window_start, self._highest - 8 * MAX_PACKETS_PER_FEEDBACK)
        messages = []
        while start <= self._highest:
            feedback, start = self._one(start)
            if feedback is not None:
                messages.append(build_feedback(feedback))
        self._window_start = self._highest + 1
        self._last_sent = now
        self.messages += len(messages)
        # Keep a short history, for packets that arrive late and are reported again.
        floor = self._highest - 2 * MAX_PACKETS_PER_FEEDBACK
        if len(self._arrivals) > 4 * MAX_PACKETS_PER_FEEDBACK:
            self._arrivals = {s: t for s, t in self._arrivals.items() if s >= floor}
        return messages

    def _one(self, start: int) -> tuple[TransportFeedback | None, int]:
        """One message from `start`; returns it and where the next one starts."""
        assert self._highest is not None
        # The reference time is that of the first received packet; numbers before it in the
        # message are reported lost (libwebrtc's base may be a lost packet too).
        received = next((s for s in range(start, self._highest + 1) if s in self._arrivals), None)
        if received is None:
            return None, self._highest + 1
        first = self._arrivals[received]
        reference = first // REFERENCE_US
        previous = reference * REFERENCE_US
        arrivals: list[int | None] = []
        seq = start
        while seq <= self._highest and len(arrivals) < MAX_PACKETS_PER_FEEDBACK:
            arrival = self._arrivals.get(seq)
            if arrival is not None:
                ticks = round((arrival - previous) / DELTA_US)
                if not _INT16[0] <= ticks <= _INT16[1]:
                    break  # too far from the previous one: the next message starts here
                previous += ticks * DELTA_US
            arrivals.append(arrival)
            seq += 1
        while arrivals and arrivals[-1] is None:
            arrivals.pop()
            seq -= 1
        feedback = TransportFeedback(
            sender_ssrc=self.sender_ssrc,
            media_ssrc=self.media_ssrc,
            base_sequence=start & 0xFFFF,
            reference_time=_signed24(reference),
            feedback_count=self._count & 0xFF,
            arrivals=arrivals,
        )
        self._count += 1
        return feedback, seq


def _signed24(value: int) -> int:
    value &= 0xFFFFFF
    return value - (1 << 24) if value & 0x800000 else value


def arrivals_of(messages: Iterable[TransportFeedback]) -> dict[int, int | None]:
    """Sequence number (16-bit) -> arrival (µs) or None, over several messages (last wins)."""
    result: dict[int, int | None] = {}
    for feedback in messages:
        for offset, arrival in enumerate(feedback.arrivals):
            result[(feedback.base_sequence + offset) & 0xFFFF] = arrival
    return result
