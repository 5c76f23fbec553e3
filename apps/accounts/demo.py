"""Demo data for the embedded run and the tests: idempotent, clearly demo-only.

`seed_demo` seeds the accounts' own rows (skills, business types, staff, customers, the demo
API client), then runs the seeders other apps register in their `AppConfig.ready()` with the
demo customers (banking seeds its sandbox core), so accounts knows nothing of the apps above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.actions.identity import set_customer_identity
from apps.accounts.models import (
    ID_NUMBER_CONTEXT,
    AgentProfile,
    ApiClient,
    BusinessType,
    Customer,
    Role,
    Skill,
)
from apps.accounts.pii import id_check_char
from apps.accounts.roles import sync_roles
from apps.audit.audited import SYSTEM
from apps.security.at_rest import blind_index
from remotebank.demo_banner import DEMO_PASSWORD

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SKILLS = [("retail", "个人业务"), ("corporate", "对公业务"), ("loan", "贷款面谈")]

BUSINESS_TYPES = [
    ("customer_info_update", "个人客户信息维护", "Personal customer info update", "retail"),
    ("debit_pin_change", "借记卡交易密码修改", "Debit card PIN change", "retail"),
    ("debit_pin_reset", "借记卡交易密码重置", "Debit card PIN reset", "retail"),
    ("debit_pin_unlock", "借记卡密码解锁", "Debit card PIN unlock", "retail"),
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
# Fake identities for the demo customers (address code, birth date, sequence; the check
# character is computed). Phones in the 1380000xxxx block, addresses marked as demo.
DEMO_IDENTITIES = [
    ("110105", "19800101", "123", "北京市朝阳区建国路1号（演示）"),
    ("310115", "19851224", "246", "上海市浦东新区世纪大道2号（演示）"),
    ("440305", "19900615", "031", "广东省深圳市南山区科技园3号（演示）"),
    ("330106", "19750309", "552", "浙江省杭州市西湖区文三路4号（演示）"),
    ("510107", "19681120", "078", "四川省成都市武侯区人民南路5号（演示）"),
    ("420106", "19930707", "415", "湖北省武汉市武昌区中南路6号（演示）"),
    ("320102", "19820430", "269", "江苏省南京市玄武区中山路7号（演示）"),
    ("610113", "19990228", "384", "陕西省西安市雁塔区长安路8号（演示）"),
    ("370202", "19711011", "197", "山东省青岛市市南区香港路9号（演示）"),
    ("210202", "19880808", "520", "辽宁省大连市中山区人民路10号（演示）"),
]


def demo_identity(index: int) -> tuple[str, str, str]:
    """(ID number, phone, address) of demo customer `index` (1-based): fake, but valid."""
    region, born, sequence, address = DEMO_IDENTITIES[index - 1]
    first17 = region + born + sequence
    return first17 + id_check_char(first17), f"1380000{1000 + index:04d}", address


@dataclass(frozen=True)
class DemoCustomer:
    reference: str
    name: str
    id_number: str
    phone: str
    address: str


def demo_customers() -> list[DemoCustomer]:
    """The demo customers DEMO0001.. with their fake identities."""
    return [
        DemoCustomer(f"DEMO{i:04d}", name, *demo_identity(i))
        for i, name in enumerate(CUSTOMERS, start=1)
    ]


# What another app seeds for the demo, given the demo customers (in registration order).
DemoSeeder = Callable[[Sequence[DemoCustomer]], None]
_SEEDERS: dict[str, DemoSeeder] = {}


def register_demo_seeder(name: str, seeder: DemoSeeder) -> None:
    """Called from an app's AppConfig.ready(); `name` keeps a second registration harmless."""
    _SEEDERS[name] = seeder


@dataclass
class DemoSummary:
    agents: list[str]
    staff: list[str]
    customers: int
    api_key_id: str


def _demo_user(username: str, last: str, first: str, role: str, *, staff: bool = False) -> User:
    user_model = get_user_model()
    obj, created = user_model.objects.get_or_create(
        username=username,
        defaults={"last_name": last, "first_name": first, "is_staff": staff},
    )
    if created:
        obj.set_password(DEMO_PASSWORD)
        obj.save()
    obj.groups.add(Group.objects.get(name=role))
    return obj


def _seed_staff(skills: dict[str, Skill]) -> None:
    for username, last, first, employee_no, skill_codes in AGENTS:
        u = _demo_user(username, last, first, Role.AGENT)
        profile, _ = AgentProfile.objects.get_or_create(
            user=u, defaults={"employee_no": employee_no}
        )
        profile.skills.set([skills[c] for c in skill_codes])
    for username, last, first, role in STAFF:
        _demo_user(username, last, first, role, staff=True)


def _seed_customers(customers: Sequence[DemoCustomer]) -> None:
    for demo in customers:
        customer, _ = Customer.objects.update_or_create(
            reference=demo.reference, defaults={"display_name": demo.name}
        )
        if customer.id_number_index != blind_index(demo.id_number, purpose=ID_NUMBER_CONTEXT):
            set_customer_identity(
                customer=customer,
                id_number=demo.id_number,
                phone=demo.phone,
                address=demo.address,
                actor=SYSTEM,
            )


@transaction.atomic
def seed_demo() -> DemoSummary:
    sync_roles()
    skills = {}
    for code, name in SKILLS:
        skills[code], _ = Skill.objects.update_or_create(code=code, defaults={"name": name})
    for code, zh, en, skill in BUSINESS_TYPES:
        BusinessType.objects.update_or_create(
            code=code, defaults={"name_zh": zh, "name_en": en, "skill": skills[skill]}
        )
    _seed_staff(skills)
    customers = demo_customers()
    _seed_customers(customers)
    ApiClient.objects.get_or_create(key_id="demo-mobile-bank", defaults={"name": "演示手机银行"})
    for seeder in _SEEDERS.values():  # other apps' demo rows (banking: its sandbox core)
        seeder(customers)
    return DemoSummary(
        agents=[a[0] for a in AGENTS],
        staff=[s[0] for s in STAFF],
        customers=len(CUSTOMERS),
        api_key_id="demo-mobile-bank",
    )
