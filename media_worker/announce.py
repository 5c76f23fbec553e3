"""Scripted disclosure: the server speaks a scenario's risk disclosure into the call.

`banking.announce` events (apps.banking.actions.disclosure.start_disclosure) arrive on the media
job's group. Each sentence is synthesized offline by espeak-ng (Debian package; Mandarin voice
``cmn``) in a thread, then played as a virtual audio source (`CallMedia.add_virtual_source`,
contract 4: heard by everyone, recorded with source="announce"). When a sentence starts, its
caption goes to the call's sockets as ``banking.caption``; when the last one has played out,
`apps.banking.actions.disclosure.finish_disclosure` marks the key point. A disclosure cut short
(call ended, replaced) is reported as not played.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from channels.db import database_sync_to_async

from apps.banking.actions.disclosure import finish_disclosure
from apps.calls.events import call_group
from remotebank.realtime import EVENT

logger = logging.getLogger(__name__)

VOICE = "cmn"
WORDS_PER_MINUTE = "190"
FRAME_S = 0.02


def synthesize(text: str) -> tuple[np.ndarray, int]:
    """Mono s16 samples and their rate for `text` (espeak-ng, offline)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        # No shell; the text is one argument after "--" (never parsed as options).
        subprocess.run(  # noqa: S603
            [
                shutil.which("espeak-ng") or "/usr/bin/espeak-ng",
                "-v",
                VOICE,
                "-s",
                WORDS_PER_MINUTE,
                "-w",
                str(path),
                "--",
                text,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()
    return samples, rate


class SpeechTrack(MediaStreamTrack):
    """Sentences of PCM played in real time, 20 ms frames; callbacks at each sentence start and
    once at the natural end (not when stopped)."""

    kind = "audio"

    def __init__(
        self,
        sentences: list[tuple[str, np.ndarray, int]],
        on_caption: Callable[[int, str], object],
        on_end: Callable[[], object],
    ) -> None:
        super().__init__()
        self.sentences = sentences
        self.on_caption, self.on_end = on_caption, on_end
        self.index, self.offset, self.pts = 0, 0, 0
        self.started: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live" or self.index >= len(self.sentences):
            if self.index >= len(self.sentences) and self.readyState == "live":
                self.index += 1
                if self.index == len(self.sentences) + 1:
                    self.on_end()
            raise MediaStreamError
        text, samples, rate = self.sentences[self.index]
        if self.offset == 0:
            self.on_caption(self.index, text)
        step = int(rate * FRAME_S)
        chunk = samples[self.offset : self.offset + step]
        if len(chunk) < step:
            chunk = np.concatenate([chunk, np.zeros(step - len(chunk), dtype=np.int16)])
        self.offset += step
        if self.offset >= len(samples):
            self.index, self.offset = self.index + 1, 0
        if self.started is None:
            self.started = time.monotonic()
        wait = self.started + self.pts / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, rate)
        self.pts += step
        return frame


async def announce(media: Any, event: dict[str, Any]) -> None:
    transaction_id = str(event.get("transaction_id"))
    sentences = [s for s in event.get("sentences") or [] if isinstance(s, str) and s]
    loop = asyncio.get_running_loop()
    try:
        spoken = [(s, *(await asyncio.to_thread(synthesize, s))) for s in sentences]
    except (OSError, subprocess.SubprocessError):
        logger.exception("call %s: speech synthesis failed", media.call_id)
        await database_sync_to_async(finish_disclosure)(transaction_id=transaction_id, played=False)
        return

    async def caption(index: int, text: str) -> None:
        await media.layer.group_send(
            call_group(media.call_id),
            {
                "type": EVENT,
                "event": {
                    "type": "banking.caption", "transaction_id": transaction_id,
                    "index": index, "count": len(spoken), "text": text,
                },
            },
        )  # fmt: skip

    async def ended() -> None:
        await caption(len(spoken), "")
        await database_sync_to_async(finish_disclosure)(transaction_id=transaction_id, played=True)

    track = SpeechTrack(
        spoken,
        on_caption=lambda i, t: loop.create_task(caption(i, t)),
        on_end=lambda: loop.create_task(ended()),
    )
    media.add_virtual_source(f"disclosure-{transaction_id[:8]}", "audio", track)
