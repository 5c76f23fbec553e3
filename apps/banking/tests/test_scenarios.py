"""The scenario framework and the eight scenarios end to end through their services against the
sandbox core, with their failure paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.audit.audited import Actor
from apps.audit.models import AuditEvent
from apps.banking import scenarios, selectors
from apps.banking.actions import confirmation, submission
from apps.banking.actions.principal import authorize_by_principal
from apps.banking.gateway import get_gateway
from apps.banking.gateway.sandbox import (
    DEMO_CORPORATE,
    DEMO_PIN,
    demo_card,
    demo_certificate,
    demo_passbook,
    pin_verifier,
    trivial_reason,
)
from apps.banking.jobs import issue_receipt_job
from apps.banking.models import (
    SandboxCorporate,
    SandboxCustomer,
    SandboxLoanApplication,
    SandboxPinAccount,
    Transaction,
    TransactionEvent,
    TxState,
)
from apps.banking.tests.conftest import (
    attach_document,
    bind_principal,
    confirm,
    confirm_by_customer,
    customer_actor,
    customer_of,
    envelope,
    signature_png,
    start_transaction,
    verify_identity,
)
from apps.calls.models import Participant
from apps.recordings import keypoints
from apps.recordings.actions.keypoints import mark_key_point
from apps.recordings.models import KeyPoint
from remotebank.errors import ServiceError

pytestmark = pytest.mark.django_db


def agent01():
    return get_user_model().objects.get(username="agent01")


def test_nine_scenarios_are_declared_with_their_key_points_registered(demo):
    codes = [s.code for s in scenarios.all_scenarios()]
    assert len(codes) == 9
    from apps.accounts.demo import BUSINESS_TYPES

    assert sorted(codes) == sorted(b[0] for b in BUSINESS_TYPES)
    for scenario in scenarios.all_scenarios():
        assert scenario.requires_recording is True
        assert all(keypoints.is_known(c) for c in scenario.required_key_points), scenario.code
        assert scenario.steps and scenario.confirmation_zh and scenario.confirmation_en
    assert scenarios.get("nope") is None
    assert scenarios.get("debit_pin_reset").pin_fields == ("new_pin",)


def test_form_fields_are_validated_with_stable_codes():
    update = scenarios.require("customer_info_update")
    with pytest.raises(ServiceError) as err:
        update.clean({})
    assert err.value.code == "field_required"
    with pytest.raises(ServiceError) as err:
        update.clean({"phone": "12345"})
    assert err.value.code == "bad_field"
    with pytest.raises(ServiceError) as err:
        update.clean({"hack": "x"})
    assert err.value.code == "bad_form"
    assert update.clean({"phone": "13900001111", "occupation": "retired"}) == {
        "phone": "13900001111",
        "occupation": "retired",
    }
    loan = scenarios.require("consumer_loan_interview")
    base = {"purpose": "car", "amount": 50000, "term_months": "24", "monthly_income": 9000,
            "monthly_debt": 12000, "employer": "某某公司"}  # fmt: skip
    with pytest.raises(ServiceError) as err:
        loan.clean(base)
    assert err.value.code == "bad_field"  # debts above income


def test_trivial_pins_are_recognized():
    born = timezone.datetime(1980, 1, 1).date()
    assert trivial_reason("111111", born) == "repeated"
    assert trivial_reason("123456", born) == "sequential"
    assert trivial_reason("987654", born) == "sequential"
    assert trivial_reason("121212", born) == "alternating"
    assert trivial_reason("800101", born) == "birthday"
    assert trivial_reason("010180", born) == "birthday"
    assert trivial_reason("802417", born) == ""


def test_debit_pin_reset_end_to_end_audits_every_transition_and_marks_key_points(make_call):
    call = make_call("debit_pin_reset")
    user = agent01()
    assert selectors.required_key_points(call) == []
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    assert (
        selectors.required_key_points(call) == scenarios.get("debit_pin_reset").required_key_points
    )
    assert tx.summary == {"card_no": "6222********0001"}
    tx = confirm(tx, user)
    assert tx.state == TxState.CUSTOMER_CONFIRMED
    tx = submission.submit_transaction(
        transaction_id=tx.pk,
        actor=customer_actor(call),
        participant=customer_of(call),
        pins={"new_pin": envelope(tx, "new_pin", "735190")},
    )
    assert tx.state == TxState.COMPLETED and tx.core_reference.startswith("SBX")
    account = SandboxPinAccount.objects.get(number=demo_card(1))
    assert account.pin_verifier == pin_verifier(account.number, "735190")
    issue_receipt_job(str(tx.pk))  # the banking worker's job
    actions = list(
        AuditEvent.objects.filter(object_id=str(tx.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "banking.transaction.draft",
        "banking.transaction.identity_verified",
        "banking.transaction.confirmation_requested",
        "banking.transaction.customer_confirmed",
        "banking.transaction.submitted",
        "banking.transaction.completed",
        "banking.receipt.issued",
    ]
    assert set(
        AuditEvent.objects.filter(object_id=str(tx.pk)).values_list("call_id", flat=True)
    ) == {call.pk}
    marked = list(KeyPoint.objects.filter(call=call).order_by("at").values_list("code", flat=True))
    assert set(scenarios.get("debit_pin_reset").required_key_points) <= set(marked)
    assert [e.to_state for e in TransactionEvent.objects.filter(transaction=tx) if e.to_state][
        -1
    ] == "completed"


def change_pin(tx, old: str, new: str):
    pins = {"old_pin": envelope(tx, "old_pin", old), "new_pin": envelope(tx, "new_pin", new)}
    return submission.submit_transaction(
        transaction_id=tx.pk,
        actor=customer_actor(tx.call),
        participant=customer_of(tx.call),
        pins=pins,
    )


def test_debit_pin_change_wrong_old_pin_counts_and_locks_after_three(make_call):
    call = make_call("debit_pin_change")
    user = agent01()
    tx = start_transaction(
        call=call, scenario_code="debit_pin_change", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    for attempt in (1, 2):
        keys_before = tx.idempotency_key
        tx = change_pin(tx, "000999", "735190")
        assert tx.state == TxState.CUSTOMER_CONFIRMED and tx.result_code == "wrong_pin"
        assert tx.idempotency_key != keys_before
        assert SandboxPinAccount.objects.get(number=demo_card(1)).wrong_tries == attempt
    tx = change_pin(tx, "000999", "735190")
    assert tx.state == TxState.FAILED and tx.result_code == "locked"
    account = SandboxPinAccount.objects.get(number=demo_card(1))
    assert account.locked and account.pin_verifier == pin_verifier(account.number, DEMO_PIN)


def test_debit_pin_change_with_the_right_old_pin_and_a_trivial_new_one(make_call):
    call = make_call("debit_pin_change")
    user = agent01()
    tx = start_transaction(
        call=call, scenario_code="debit_pin_change", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    tx = change_pin(tx, DEMO_PIN, "123456")
    assert tx.state == TxState.CUSTOMER_CONFIRMED and tx.result_code == "trivial_pin"
    assert SandboxPinAccount.objects.get(number=demo_card(1)).pin_verifier == pin_verifier(
        demo_card(1), DEMO_PIN
    )
    tx = change_pin(tx, DEMO_PIN, "640271")
    assert tx.state == TxState.COMPLETED
    assert SandboxPinAccount.objects.get(number=demo_card(1)).pin_verifier == pin_verifier(
        demo_card(1), "640271"
    )


def test_a_locked_card_refuses_a_reset_and_a_card_of_someone_else_is_refused(make_call):
    SandboxPinAccount.objects.filter(number=demo_card(1)).update(locked=True, wrong_tries=3)
    call = make_call("debit_pin_reset")
    user = agent01()
    with pytest.raises(ServiceError) as err:
        start_transaction(
            call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(2)}, user=user
        )
    assert err.value.code == "not_account_holder"
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    tx = confirm(tx, user)
    tx = submission.submit_transaction(
        transaction_id=tx.pk, actor=customer_actor(call), participant=customer_of(call),
        pins={"new_pin": envelope(tx, "new_pin", "735190")},
    )  # fmt: skip
    assert tx.state == TxState.FAILED and tx.result_code == "locked"


def test_an_expired_id_blocks_identity_verification(make_call):
    call = make_call("debit_pin_reset", customer="DEMO0004")
    user = agent01()
    tx = start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(4)}, user=user
    )
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    assert err.value.code == "id_expired"
    assert Transaction.objects.get(pk=tx.pk).state == TxState.DRAFT
    assert not KeyPoint.objects.filter(call=call).exists()


def test_customer_info_update_renews_an_expired_id_and_then_updates(make_call):
    call = make_call("customer_info_update", customer="DEMO0004")
    user = agent01()
    new_expiry = (timezone.localdate() + timedelta(days=3650)).isoformat()
    tx = start_transaction(
        call=call, scenario_code="customer_info_update",
        form={"id_expiry": new_expiry, "phone": "13912345678", "occupation": "retired"}, user=user,
    )  # fmt: skip
    assert tx.summary["phone"] == "1*********8" and "13912345678" not in str(tx.summary)
    tx = confirm(tx, user)
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.COMPLETED
    row = SandboxCustomer.objects.get(reference="DEMO0004")
    assert row.id_expiry.isoformat() == new_expiry and row.occupation == "retired"
    assert row.phone.decrypt(reason="test", context="sandbox.phone") == "13912345678"
    # A second submission is refused; the core, asked again with the same key, applies nothing.
    with pytest.raises(ServiceError) as err:
        submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert err.value.code == "wrong_state"
    replay = get_gateway().update_profile(
        key=tx.idempotency_key, customer="DEMO0004", changes={"occupation": "student"}
    )
    assert replay.ok and replay.reference == tx.core_reference and replay.data == {"replayed": True}
    assert SandboxCustomer.objects.get(reference="DEMO0004").occupation == "retired"


def test_confirmation_needs_a_signature_and_a_decline_cancels(make_call):
    call = make_call("deposit_pin_unlock", customer="DEMO0002")
    user = get_user_model().objects.get(username="agent01")
    tx = start_transaction(
        call=call,
        scenario_code="deposit_pin_unlock",
        form={"account_no": demo_passbook(2)},
        user=user,
    )
    verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    with pytest.raises(ServiceError) as err:
        confirm_by_customer(
            transaction_id=tx.pk,
            participant=customer_of(call),
            accept=True,
            signature=signature_png(),
        )
    assert err.value.code == "wrong_state"  # not asked yet
    confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    import base64
    import io

    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGBA", (400, 160), (0, 0, 0, 0)).save(blank, "PNG")
    with pytest.raises(ServiceError) as err:
        confirm_by_customer(
            transaction_id=tx.pk, participant=customer_of(call), accept=True,
            signature=base64.b64encode(blank.getvalue()).decode(),
        )  # fmt: skip
    assert err.value.code == "signature_empty"
    tx = confirm_by_customer(
        transaction_id=tx.pk, participant=customer_of(call), accept=True, signature=signature_png()
    )
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.COMPLETED
    account = SandboxPinAccount.objects.get(number=demo_passbook(2))
    assert not account.locked and account.wrong_tries == 0


def test_deposit_pin_reset_on_a_certificate(make_call):
    call = make_call("deposit_pin_reset", customer="DEMO0001")
    user = agent01()
    tx = start_transaction(
        call=call,
        scenario_code="deposit_pin_reset",
        form={"account_no": demo_certificate(1)},
        user=user,
    )
    tx = confirm(tx, user)
    with pytest.raises(ServiceError) as err:
        submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert err.value.code == "pin_required"
    tx = submission.submit_transaction(
        transaction_id=tx.pk, actor=customer_actor(call), participant=customer_of(call),
        pins={"new_pin": envelope(tx, "new_pin", "555555")},
    )  # fmt: skip
    assert tx.result_code == "trivial_pin" and tx.state == TxState.CUSTOMER_CONFIRMED
    tx = submission.submit_transaction(
        transaction_id=tx.pk, actor=customer_actor(call), participant=customer_of(call),
        pins={"new_pin": envelope(tx, "new_pin", "309172")},
    )  # fmt: skip
    assert tx.state == TxState.COMPLETED
    assert SandboxPinAccount.objects.get(number=demo_certificate(1)).pin_verifier == pin_verifier(
        demo_certificate(1), "309172"
    )


def test_an_unlock_of_an_account_that_is_not_locked_fails(make_call):
    call = make_call("deposit_pin_unlock")
    user = agent01()
    tx = start_transaction(
        call=call,
        scenario_code="deposit_pin_unlock",
        form={"account_no": demo_passbook(1)},
        user=user,
    )
    tx = confirm(tx, user)
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.FAILED and tx.result_code == "not_locked"


def _guest(call):
    return Participant.objects.create(call=call, role="guest")


def test_entrusted_agency_needs_the_named_principal_to_authorize(make_call):
    call = make_call("entrusted_agency", customer="DEMO0001")
    user = agent01()
    expires = (timezone.localdate() + timedelta(days=30)).isoformat()
    form = {"principal_reference": "DEMO0005", "business": "deposit_pin_unlock",
            "scope": "代为办理存折密码解锁", "expires_on": expires}  # fmt: skip
    with pytest.raises(ServiceError) as err:
        start_transaction(
            call=call,
            scenario_code="entrusted_agency",
            form={**form, "principal_reference": "DEMO0001"},
            user=user,
        )
    assert err.value.code == "unauthorized_principal"
    tx = start_transaction(call=call, scenario_code="entrusted_agency", form=form, user=user)
    checks = {"id_card": True, "face": True, "principal": True}
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks=checks, user=user)
    assert err.value.code == "unauthorized_principal"  # no principal in the call
    principal, intruder = _guest(call), _guest(call)
    bind_principal(transaction_id=tx.pk, participant_id=principal.pk, user=user)
    verify_identity(transaction_id=tx.pk, checks=checks, user=user)
    with pytest.raises(ServiceError) as err:
        confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    assert err.value.code == "unauthorized_principal"
    with pytest.raises(ServiceError) as err:
        authorize_by_principal(transaction_id=tx.pk, participant=intruder)
    assert err.value.code == "unauthorized_principal"
    authorize_by_principal(transaction_id=tx.pk, participant=principal)
    confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    tx = confirm_by_customer(
        transaction_id=tx.pk, participant=customer_of(call), accept=True, signature=signature_png()
    )
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.COMPLETED
    assert (
        tx.authorization_scope == "代为办理存折密码解锁"
        and tx.authorization_expires.isoformat() == expires
    )
    assert KeyPoint.objects.filter(call=call, code="authorization_given").count() == 1


def _document_png(width=800, height=500, shade=200) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (shade, shade, 230))
    ImageDraw.Draw(image).rectangle([40, 40, width - 40, height - 40], outline=(0, 0, 0), width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_corporate_document_renewal_by_the_legal_representative(make_call):
    new_expiry = (timezone.localdate() + timedelta(days=3650)).isoformat()
    form = {"credit_code": DEMO_CORPORATE, "document": "business_licence", "new_expiry": new_expiry}
    # agent03 has the corporate skill; DEMO0003 is the legal representative.
    user = get_user_model().objects.get(username="agent03")
    call = make_call("corporate_doc_update", customer="DEMO0003", agent="agent03")
    tx = start_transaction(call=call, scenario_code="corporate_doc_update", form=form, user=user)
    verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    with pytest.raises(ServiceError) as err:
        attach_document(
            transaction_id=tx.pk, kind="business_licence", data=b"not an image", user=user
        )
    assert err.value.code == "bad_document"
    with pytest.raises(ServiceError) as err:
        attach_document(
            transaction_id=tx.pk, kind="business_licence", data=_document_png(300, 200), user=user
        )
    assert err.value.code == "document_too_small"
    with pytest.raises(ServiceError) as err:
        confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    assert err.value.code == "documents_missing"
    doc = attach_document(
        transaction_id=tx.pk, kind="business_licence", data=_document_png(), user=user
    )
    with pytest.raises(ServiceError) as err:
        attach_document(
            transaction_id=tx.pk, kind="business_licence", data=_document_png(), user=user
        )
    assert err.value.code == "duplicate_document"
    with pytest.raises(ServiceError) as err:
        confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    assert err.value.code == "key_point_missing"
    mark_key_point(call=call, code="document_checked", actor=Actor.staff(user))
    confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    confirm_by_customer(
        transaction_id=tx.pk, participant=customer_of(call), accept=True, signature=signature_png()
    )
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.COMPLETED
    corp = SandboxCorporate.objects.get(credit_code=DEMO_CORPORATE)
    assert corp.licence_expiry.isoformat() == new_expiry and corp.documents[0]["sm3"] == doc.sm3


def test_corporate_renewal_by_someone_who_is_not_the_legal_representative_fails(make_call):
    new_expiry = (timezone.localdate() + timedelta(days=3650)).isoformat()
    form = {"credit_code": DEMO_CORPORATE, "document": "business_licence", "new_expiry": new_expiry}
    user = get_user_model().objects.get(username="agent03")
    call = make_call("corporate_doc_update", customer="DEMO0001", agent="agent03")
    tx = start_transaction(call=call, scenario_code="corporate_doc_update", form=form, user=user)
    verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    attach_document(transaction_id=tx.pk, kind="business_licence", data=_document_png(), user=user)
    mark_key_point(call=call, code="document_checked", actor=Actor.staff(user))
    confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    confirm_by_customer(
        transaction_id=tx.pk, participant=customer_of(call), accept=True, signature=signature_png()
    )
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.FAILED and tx.result_code == "not_legal_rep"


def test_loan_interview_needs_the_disclosure_before_confirmation_and_records_the_interview(
    make_call,
):
    call = make_call("consumer_loan_interview", customer="DEMO0001")
    user = agent01()
    form = {"purpose": "car", "amount": 80000, "term_months": "24", "monthly_income": 15000,
            "monthly_debt": 2000, "employer": "演示科技有限公司"}  # fmt: skip
    tx = start_transaction(call=call, scenario_code="consumer_loan_interview", form=form, user=user)
    verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=user)
    mark_key_point(call=call, code="questionnaire_done", actor=Actor.staff(user))
    with pytest.raises(ServiceError) as err:
        confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    assert err.value.code == "key_point_missing"
    mark_key_point(call=call, code="risk_disclosed", actor=Actor.staff(user))
    confirmation.request_confirmation(transaction_id=tx.pk, user=user)
    confirm_by_customer(
        transaction_id=tx.pk, participant=customer_of(call), accept=True, signature=signature_png()
    )
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    assert tx.state == TxState.COMPLETED
    loan = SandboxLoanApplication.objects.get(number=tx.core_reference)
    assert loan.amount == 80000 and loan.term_months == 24
    codes = [p["code"] for p in loan.interview["key_points"]]
    assert codes.index("risk_disclosed") < codes.index("customer_confirmed")
    assert (
        loan.interview["call"] == call.number
        and loan.interview["signature_sm3"] == tx.signature_sm3
    )


def test_an_agent_without_the_skill_cannot_start_and_only_one_transaction_is_open(make_call):
    call = make_call("debit_pin_reset", agent="agent02")
    user = get_user_model().objects.get(username="agent02")  # retail only
    form = {"purpose": "car", "amount": 80000, "term_months": "24", "monthly_income": 15000,
            "monthly_debt": 2000, "employer": "x公司"}  # fmt: skip
    with pytest.raises(ServiceError) as err:
        start_transaction(call=call, scenario_code="consumer_loan_interview", form=form, user=user)
    assert err.value.code == "missing_skill"
    start_transaction(
        call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
    )
    with pytest.raises(ServiceError) as err:
        start_transaction(
            call=call, scenario_code="debit_pin_reset", form={"card_no": demo_card(1)}, user=user
        )
    assert err.value.code == "transaction_open"
    other = agent01()
    tx = Transaction.objects.get(call=call)
    with pytest.raises(ServiceError) as err:
        verify_identity(transaction_id=tx.pk, checks={"id_card": True, "face": True}, user=other)
    assert err.value.code == "transaction_not_found"


def test_the_playback_timeline_shows_the_transaction_and_its_steps(make_call):
    from types import SimpleNamespace

    from apps.banking.selectors import transaction_items
    from apps.recordings import timeline

    call = make_call("deposit_pin_unlock", customer="DEMO0002")
    user = agent01()
    tx = start_transaction(
        call=call,
        scenario_code="deposit_pin_unlock",
        form={"account_no": demo_passbook(2)},
        user=user,
    )
    tx = confirm(tx, user)
    tx = submission.submit_transaction(transaction_id=tx.pk, actor=Actor.staff(user), user=user)
    issue_receipt_job(str(tx.pk))  # the banking worker's job
    assert transaction_items in timeline.sources()
    items = transaction_items(SimpleNamespace(call_id=call.pk))
    span = next(i for i in items if i["kind"] == "transaction")
    assert span["label"] == "存单/存折密码解锁: 已完成" and span["end"] == tx.finished_at
    assert span["detail"] == tx.core_reference and span["severity"] == "info"
    steps = [i["label"] for i in items if i["kind"] == "transaction_step"]
    assert steps[0].endswith("身份已核验") and steps[-1].endswith("回单已生成")
    assert any(s.endswith("已提交") for s in steps)


def test_seed_demo_seeds_the_sandbox_core_once(demo):
    from apps.accounts.demo import seed_demo

    counts = (SandboxCustomer.objects.count(), SandboxPinAccount.objects.count())
    seed_demo()
    assert (
        (SandboxCustomer.objects.count(), SandboxPinAccount.objects.count()) == counts == (10, 30)
    )
    assert SandboxPinAccount.objects.get(number=demo_passbook(2)).locked
    assert SandboxCustomer.objects.get(reference="DEMO0004").id_expiry < timezone.localdate()
    assert (
        SandboxCorporate.objects.get(credit_code=DEMO_CORPORATE).legal_rep.reference == "DEMO0003"
    )
