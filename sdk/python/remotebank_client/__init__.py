"""Python client SDK for RemoteBank: a headless customer or agent, signaling and media.

    async with await Participant.agent(base, "agent01", password) as agent:
        await agent.set_presence("ready")
        offer = await agent.wait_offer()
        await agent.accept(offer["offer_id"])

See README.md and docs/protocol.md.
"""

from remotebank_client.client import Event, Participant
from remotebank_client.errors import (
    ClientError,
    Disconnected,
    LoginFailed,
    NotAuthenticated,
    ProtocolError,
    TicketRefused,
)
from remotebank_client.session import MediaSession, MediaStopped, RemoteFeedTrack

__all__ = [
    "ClientError",
    "Disconnected",
    "Event",
    "LoginFailed",
    "MediaSession",
    "MediaStopped",
    "NotAuthenticated",
    "Participant",
    "ProtocolError",
    "RemoteFeedTrack",
    "TicketRefused",
]
__version__ = "0.1.0"
