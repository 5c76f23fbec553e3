"""视频委托代办 over real sockets: the agent invites the principal (H2's guest invite), names them
on the transaction, the principal authorizes from their own socket, a stranger's socket cannot,
the customer confirms and the agent submits."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from remotebank_client import Participant
from remotebank_client.errors import ProtocolError

from apps.accounts.demo import DEMO_PASSWORD
from apps.banking.models import Transaction
from apps.banking.tests.conftest import signature_png
from apps.calls.actions.tickets import issue_entry_ticket
from tests.live import daphne

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_invited_principal_authorizes_and_no_one_else_can(api_client_obj):
    _, token = issue_entry_ticket(
        client=api_client_obj, customer_reference="DEMO0001", customer_name="",
        business_code="entrusted_agency", location=None,
    )  # fmt: skip
    expires = (timezone.localdate() + timedelta(days=30)).isoformat()
    form = {"principal_reference": "DEMO0005", "business": "deposit_pin_unlock",
            "scope": "代为办理存折密码解锁", "expires_on": expires}  # fmt: skip

    async def scenario(base: str) -> dict:
        agent = await Participant.agent(base, "agent01", DEMO_PASSWORD)
        await agent.set_presence("ready")
        customer = await Participant.customer(base, f"/h5/enter/{token}")
        people = [agent, customer]
        try:
            await customer.join_queue()
            offer = await agent.wait_offer()
            await agent.accept(offer["offer_id"])
            await customer.wait_for("call.connected")
            call_id = agent.call_id

            async def ask(kind, **fields):
                return (await agent.request(kind, call_id=call_id, **fields))["transaction"]

            tx = await ask("banking.start", scenario="entrusted_agency", form=form)
            principal_invite = await agent.invite_guest("钱七（委托人）")
            other_invite = await agent.invite_guest("旁人")
            principal = await Participant.guest(base, urlsplit(principal_invite["url"]).path)
            stranger = await Participant.guest(base, urlsplit(other_invite["url"]).path)
            people += [principal, stranger]
            await ask("banking.principal", transaction_id=tx["id"],
                      participant_id=principal.hello["participant_id"])  # fmt: skip
            await ask("banking.verify", transaction_id=tx["id"],
                      checks={"id_card": True, "face": True, "principal": True})  # fmt: skip
            codes = []
            for who in (stranger, customer):
                try:
                    await who.request("banking.authorize", transaction_id=tx["id"])
                except ProtocolError as exc:
                    codes.append(exc.code)
            seen = await principal.request("banking.get")
            authorized = (await principal.request("banking.authorize", transaction_id=tx["id"]))[
                "transaction"
            ]
            await ask("banking.request_confirm", transaction_id=tx["id"])
            await customer.request(
                "banking.confirm", transaction_id=tx["id"], accept=True, signature=signature_png()
            )
            done = await ask("banking.submit", transaction_id=tx["id"])
            await agent.hangup()
            return {"codes": codes, "seen": seen, "authorized": authorized, "done": done}
        finally:
            for who in people:
                await who.close()

    with daphne() as base:
        result = asyncio.run(scenario(base))

    # A stranger guest is refused by the service; the customer's role may not send it at all.
    assert result["codes"][0] == "unauthorized_principal" and len(result["codes"]) == 2
    assert result["seen"]["transaction"]["scenario"] == "entrusted_agency"
    assert result["authorized"]["authorized"] is True
    assert result["done"]["state"] == "completed"
    tx = Transaction.objects.get(pk=result["done"]["id"])
    assert tx.authorization_scope == "代为办理存折密码解锁" and tx.principal.role == "guest"
