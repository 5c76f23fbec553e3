"""The calls app's writes, one module per concept (docs/architecture.md): entry tickets, the
queue, routing and offers, presence, ending a call, chat, participants, screen share, hold,
invitations, supervisor monitoring, transfer, and the life of a call's media job.

Every write runs inside `apps.audit.audited.audited_action()`; helpers that record an event
take its `write` collector, so they cannot run outside one.
"""
