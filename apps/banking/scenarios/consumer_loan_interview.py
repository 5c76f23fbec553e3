"""贷款面谈-个人消费贷款: questionnaire, the risk disclosure read (or spoken) on the recording,
the customer's confirmation; the core receives the interview with its key-point times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.banking.gateway import CoreBankingGateway, CoreResult
from apps.banking.gateway.pin import PinBlock
from apps.banking.models import Transaction
from apps.banking.scenarios.base import (
    S_CONFIRM,
    S_IDENTITY,
    S_SUBMIT,
    STANDARD_CHECKS,
    STANDARD_KP,
    CleanForm,
    Field,
    Scenario,
    Step,
)
from apps.recordings.models import KeyPoint
from remotebank.errors import ServiceError


@dataclass(frozen=True)
class ConsumerLoanInterview(Scenario):
    def check(self, cleaned: CleanForm) -> None:
        if int(cleaned["monthly_debt"]) > int(cleaned["monthly_income"]):
            raise ServiceError("bad_field", "monthly debts exceed the monthly income")

    def submit(
        self,
        tx: Transaction,
        form: CleanForm,
        blocks: Mapping[str, PinBlock],
        gateway: CoreBankingGateway,
    ) -> CoreResult:
        points = KeyPoint.objects.filter(call=tx.call_id, at__gte=tx.created_at).order_by("at")
        interview = {
            "answers": form,
            "call": tx.call.number,
            "agent": tx.call.agent.employee_no if tx.call.agent else "",
            "key_points": [{"code": p.code, "at": p.at.isoformat()} for p in points],
            "confirmed_at": tx.confirmed_at.isoformat() if tx.confirmed_at else "",
            "signature_sm3": tx.signature_sm3,
        }
        return gateway.submit_loan_interview(
            key=tx.idempotency_key, customer=tx.customer.reference, interview=interview
        )


SCENARIO = ConsumerLoanInterview(
    code="consumer_loan_interview",
    name_zh="贷款面谈-个人消费贷款",
    name_en="Consumer loan interview",
    skill="loan",
    steps=(
        S_IDENTITY,
        Step("questionnaire", "问卷：用途、收入、负债", "Questionnaire: purpose, income, debts"),
        Step("disclosure", "座席宣读风险揭示", "The agent reads the risk disclosure"),
        S_CONFIRM,
        S_SUBMIT,
    ),
    identity_checks=STANDARD_CHECKS,
    fields=(
        Field(
            "purpose",
            "贷款用途",
            "Purpose",
            "choice",
            choices=(
                ("renovation", "家庭装修", "Home renovation"),
                ("car", "购车", "Car"),
                ("education", "教育", "Education"),
                ("travel", "旅游", "Travel"),
                ("durables", "耐用消费品", "Durable goods"),
            ),
        ),
        Field("amount", "申请金额（元）", "Amount (CNY)", "int", minimum=1000, maximum=300000),
        Field(
            "term_months",
            "期限（月）",
            "Term (months)",
            "choice",
            choices=(("12", "12", "12"), ("24", "24", "24"), ("36", "36", "36")),
        ),
        Field(
            "monthly_income",
            "月收入（元）",
            "Monthly income (CNY)",
            "int",
            minimum=0,
            maximum=10_000_000,
        ),
        Field(
            "monthly_debt",
            "月还款负债（元）",
            "Monthly debt payments (CNY)",
            "int",
            minimum=0,
            maximum=10_000_000,
        ),
        Field("employer", "工作单位", "Employer", max_length=100, personal=True),
    ),
    required_key_points=[
        *STANDARD_KP,
        "questionnaire_done",
        "risk_disclosed",
        "customer_confirmed",
        "signed",
    ],
    confirmation_zh=(
        "本人已听取并理解贷款风险揭示：贷款须按期足额偿还，逾期将产生罚息并影响个人征信；"
        "贷款资金不得用于购房、投资及其他禁止性用途。本人确认所答问卷内容真实。"
    ),
    confirmation_en=(
        "I heard and understood the risk disclosure: the loan must be repaid in full and on "
        "time, arrears cost penalty interest and affect my credit record, and the funds may not "
        "buy property, be invested or used for any forbidden purpose. My answers are true."
    ),
    before_confirmation=("questionnaire_done", "risk_disclosed"),
    disclosure_zh=(
        "风险揭示：贷款须按期足额偿还，逾期将产生罚息并影响个人征信。",
        "贷款资金不得用于购房、投资及其他禁止性用途。",
    ),
)
