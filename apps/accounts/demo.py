"""Demo data for the embedded run and the tests: idempotent, clearly demo-only."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.models import AgentProfile, ApiClient, Customer, Role, Skill
from apps.accounts.roles import sync_roles
from apps.banking.models import BusinessType
from remotebank.demo_banner import DEMO_PASSWORD

SKILLS = [("retail", "个人业务"), ("corporate", "对公业务"), ("loan", "贷款面谈")]

BUSINESS_TYPES = [
    ("customer_info_update", "个人客户信息维护", "Personal customer info update", "retail"),
    ("debit_pin_change", "借记卡交易密码修改", "Debit card PIN change", "retail"),
    ("debit_pin_reset", "借记卡交易密码重置", "Debit card PIN reset", "retail"),
    ("deposit_pin_reset", "存单/存折密码重置", "Deposit certificate/passbook PIN reset", "retail"),
    (
        "deposit_pin_unlock",
        "存单/存折密码解锁",
        "Deposit certificate/passbook PIN unlock",
        "retail",
    ),
    ("entrusted_agency", "视频委托代办", "Entrusted agency by video", "retail"),
    ("corporate_doc_update", "对公证件过期更新", "Corporate document renewal", "corporate"),
    ("consumer_loan_interview", "贷款面谈-个人消费贷款", "Consumer loan interview", "loan"),
]

AGENTS = [
    ("agent01", "王", "芳", "A1001", ["retail", "loan"]),
    ("agent02", "李", "强", "A1002", ["retail"]),
    ("agent03", "张", "敏", "A2001", ["corporate", "retail"]),
    ("agent04", "刘", "洋", "A3001", ["loan"]),
]
STAFF = [
    ("supervisor01", "陈", "静", Role.SUPERVISOR),
    ("qc01", "杨", "帆", Role.QC_REVIEWER),
    ("auditor01", "赵", "磊", Role.AUDITOR),
]
CUSTOMERS = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "郑一", "冯二"]


@dataclass
class DemoSummary:
    agents: list[str]
    staff: list[str]
    customers: int
    api_key_id: str


@transaction.atomic
def seed_demo() -> DemoSummary:
    sync_roles()
    user_model = get_user_model()
    skills = {}
    for code, name in SKILLS:
        skills[code], _ = Skill.objects.update_or_create(code=code, defaults={"name": name})
    for code, zh, en, skill in BUSINESS_TYPES:
        BusinessType.objects.update_or_create(
            code=code, defaults={"name_zh": zh, "name_en": en, "skill": skills[skill]}
        )

    def user(username: str, last: str, first: str, role: str, staff: bool = False):
        obj, created = user_model.objects.get_or_create(
            username=username,
            defaults={"last_name": last, "first_name": first, "is_staff": staff},
        )
        if created:
            obj.set_password(DEMO_PASSWORD)
            obj.save()
        obj.groups.add(Group.objects.get(name=role))
        return obj

    for username, last, first, employee_no, skill_codes in AGENTS:
        u = user(username, last, first, Role.AGENT)
        profile, _ = AgentProfile.objects.get_or_create(
            user=u, defaults={"employee_no": employee_no}
        )
        profile.skills.set([skills[c] for c in skill_codes])
    for username, last, first, role in STAFF:
        user(username, last, first, role, staff=True)
    for i, name in enumerate(CUSTOMERS, start=1):
        Customer.objects.update_or_create(reference=f"DEMO{i:04d}", defaults={"display_name": name})
    ApiClient.objects.get_or_create(key_id="demo-mobile-bank", defaults={"name": "演示手机银行"})
    return DemoSummary(
        agents=[a[0] for a in AGENTS],
        staff=[s[0] for s in STAFF],
        customers=len(CUSTOMERS),
        api_key_id="demo-mobile-bank",
    )
