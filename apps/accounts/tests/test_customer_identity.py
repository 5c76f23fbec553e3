"""Customers' ID number, phone and address: validated, encrypted at rest, found by blind index,
shown masked, audited with digests only."""

from datetime import date

import pytest
from django.db import connection

from apps.accounts.actions.identity import set_customer_identity
from apps.accounts.demo import CUSTOMERS, demo_identity
from apps.accounts.models import Customer
from apps.accounts.pii import (
    CustomerIdentity,
    IdentityValueError,
    id_check_char,
    mask_address,
    mask_id_number,
    mask_phone,
    normalize_id_number,
    normalize_phone,
)
from apps.accounts.selectors import customer_identity, find_customer_by_id_number, masked_identity
from apps.audit.audited import SYSTEM
from apps.audit.models import AuditEvent, canonical_json, sm3_hex
from remotebank.errors import ServiceError

ID_NUMBER = "11010519491231002X"  # the example of GB 11643-1999
PHONE = "13912345678"
ADDRESS = "北京市朝阳区建国门外大街1号"


def raw_row(customer: Customer) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id_number, phone, address, id_number_index FROM accounts_customer"
            " WHERE id = %s",
            [customer.pk],
        )
        return cursor.fetchone()


# --- validation and masking (pure) -----------------------------------------------------------


def test_check_character_matches_the_published_examples():
    # GB 11643-1999 Appendix A and the common 440524188001010014 example.
    assert id_check_char("11010519491231002") == "X"
    assert id_check_char("44052418800101001") == "4"
    for index in range(1, len(CUSTOMERS) + 1):
        number = demo_identity(index)[0]
        assert id_check_char(number[:17]) == number[17]


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002X",
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        " 110105 19491231 002X ",
    ],
)
def test_id_numbers_are_normalized_in_any_width_spacing_and_case(raw):
    assert normalize_id_number(raw) == ID_NUMBER


@pytest.mark.parametrize(
    "raw",
    [
        "110105194912310021",  # wrong check character
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19
        "A1010519491231002X",
        "010105194912310020",  # address codes do not start with 0
        "110105199902300015",  # 30 February
        "110105189912310017",  # before 1900
        "110105210001010015",  # born in the future
        "11010519491231002Y",
    ],
)
def test_invalid_id_numbers_are_refused(raw):
    with pytest.raises(IdentityValueError) as refused:
        normalize_id_number(raw, today=date(2030, 1, 1))
    assert refused.value.code == "bad_id_number"


def test_phones_are_eleven_digits_starting_with_one():
    assert normalize_phone("139 1234 5678") == PHONE
    assert normalize_phone("+86 139-1234-5678") == PHONE
    assert normalize_phone("") == ""
    for bad in ("23912345678", "1391234567", "139123456789", "139-1234-567a"):
        with pytest.raises(IdentityValueError) as refused:
            normalize_phone(bad)
        assert refused.value.code == "bad_phone"


def test_masks_keep_only_what_staff_screens_may_show():
    assert mask_id_number("110105198001011234") == "110105********1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_address(ADDRESS) == "北京市朝阳区****"
    assert mask_address("北京") == "北****"
    assert mask_id_number("") == mask_phone("") == mask_address("") == ""
    identity = CustomerIdentity(ID_NUMBER, PHONE, ADDRESS)
    assert ID_NUMBER not in repr(identity) and PHONE not in repr(identity)


# --- storage ------------------------------------------------------------------------------


def make_customer(reference="C-1"):
    return Customer.objects.create(reference=reference, display_name="测试")


@pytest.mark.django_db
def test_identity_is_stored_encrypted_and_found_by_blind_index():
    customer = make_customer()
    set_customer_identity(
        customer=customer, id_number="11010519491231002x", phone="139 1234 5678",
        address=ADDRESS, actor=SYSTEM,
    )  # fmt: skip
    id_number, phone, address, index = raw_row(customer)
    for stored in (id_number, phone, address):
        assert stored.startswith("rbf1.")
    blob = " ".join(raw_row(customer))
    for clear in (ID_NUMBER, ID_NUMBER.lower(), PHONE, ADDRESS, "19491231"):
        assert clear not in blob
    assert len(index) == 64

    fresh = Customer.objects.get(pk=customer.pk)
    assert str(fresh.id_number) == "[encrypted]"
    assert customer_identity(fresh, reason="test") == CustomerIdentity(ID_NUMBER, PHONE, ADDRESS)
    assert masked_identity(fresh, reason="test") == CustomerIdentity(
        "110105********002X", "139****5678", "北京市朝阳区****"
    )
    for query in (ID_NUMBER, "11010519491231002x", "１１０１０５ １９４９１２３１ ００２Ｘ"):
        assert find_customer_by_id_number(query) == customer
    assert find_customer_by_id_number("440524188001010014") is None
    assert find_customer_by_id_number("  ") is None


@pytest.mark.django_db
def test_audit_event_holds_digests_and_masked_values_only():
    customer = make_customer()
    set_customer_identity(
        customer=customer, id_number=ID_NUMBER, phone=PHONE, address=ADDRESS, actor=SYSTEM
    )
    event = AuditEvent.objects.get(action="customer.identity_set")
    assert event.object_id == str(customer.pk)
    assert event.details == {
        "changed": ["id_number", "phone", "address"],
        "id_number": "110105********002X",
        "phone": "139****5678",
    }
    row = " ".join(str(getattr(event, f.name)) for f in AuditEvent._meta.fields)
    for clear in (ID_NUMBER, PHONE, ADDRESS):
        assert clear not in row
    # Not a bare hash of the values, which could be reversed by trying every ID number.
    bare = {"id_number": ID_NUMBER, "phone": PHONE, "address": ADDRESS}
    assert event.after_digest not in (sm3_hex(canonical_json(bare)), "")
    assert event.before_digest != event.after_digest


@pytest.mark.django_db
def test_bad_values_are_refused_and_change_nothing():
    customer = make_customer()
    set_customer_identity(
        customer=customer, id_number=ID_NUMBER, phone=PHONE, address=ADDRESS, actor=SYSTEM
    )
    before = raw_row(customer)
    events = AuditEvent.objects.count()
    cases = [
        ({"id_number": "110105194912310021"}, "bad_id_number"),
        ({"phone": "12345"}, "bad_phone"),
        ({"address": "x" * 201}, "bad_address"),
        ({"address": "line\x00break"}, "bad_address"),
    ]
    for change, code in cases:
        values = {"id_number": ID_NUMBER, "phone": PHONE, "address": ADDRESS, **change}
        with pytest.raises(ServiceError) as refused:
            set_customer_identity(customer=customer, actor=SYSTEM, **values)
        assert refused.value.code == code
    assert raw_row(customer) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_an_id_number_belongs_to_one_customer_only():
    first, second = make_customer("C-1"), make_customer("C-2")
    set_customer_identity(customer=first, id_number=ID_NUMBER, phone="", address="", actor=SYSTEM)
    with pytest.raises(ServiceError) as refused:
        set_customer_identity(
            customer=second, id_number=ID_NUMBER.lower(), phone="", address="", actor=SYSTEM
        )
    assert refused.value.code == "id_number_in_use"
    assert raw_row(second) == (None, None, None, "")


@pytest.mark.django_db
def test_unchanged_values_write_nothing_and_empty_values_clear():
    customer = make_customer()
    set_customer_identity(
        customer=customer, id_number=ID_NUMBER, phone=PHONE, address=ADDRESS, actor=SYSTEM
    )
    stored = raw_row(customer)
    set_customer_identity(
        customer=customer, id_number=ID_NUMBER.lower(), phone=PHONE, address=ADDRESS, actor=SYSTEM
    )
    assert raw_row(customer) == stored
    assert AuditEvent.objects.filter(action="customer.identity_set").count() == 1

    set_customer_identity(customer=customer, id_number="", phone=PHONE, address="", actor=SYSTEM)
    id_number, phone, address, index = raw_row(customer)
    assert (id_number, address, index) == (None, None, "")
    assert phone == stored[1]  # untouched: the same ciphertext
    last = AuditEvent.objects.filter(action="customer.identity_set").last()
    assert last.details["changed"] == ["id_number", "address"]
    assert find_customer_by_id_number(ID_NUMBER) is None


# --- demo data and the admin ----------------------------------------------------------------


def test_demo_customers_have_valid_fake_identities_and_reseeding_is_idempotent(demo):
    from apps.accounts.demo import seed_demo

    numbers = set()
    for index in range(1, len(CUSTOMERS) + 1):
        customer = Customer.objects.get(reference=f"DEMO{index:04d}")
        identity = customer_identity(customer, reason="test")
        assert normalize_id_number(identity.id_number) == identity.id_number
        assert normalize_phone(identity.phone) == identity.phone
        assert "演示" in identity.address
        assert find_customer_by_id_number(identity.id_number) == customer
        numbers.add(identity.id_number)
    assert len(numbers) == len(CUSTOMERS)
    events = AuditEvent.objects.count()
    stored = [raw_row(c) for c in Customer.objects.order_by("pk")]
    seed_demo()
    assert [raw_row(c) for c in Customer.objects.order_by("pk")] == stored
    assert AuditEvent.objects.count() == events


def test_admin_shows_masked_values_only_and_finds_by_id_number(admin_client, customer):
    number, phone, address = demo_identity(1)
    page = admin_client.get(f"/admin/accounts/customer/{customer.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert mask_id_number(number) in html and mask_phone(phone) in html
    for clear in (number, phone, address, customer.id_number.token):
        assert clear not in html

    used = AuditEvent.objects.filter(action="key.used").count()
    listing = admin_client.get("/admin/accounts/customer/")
    assert listing.status_code == 200
    assert AuditEvent.objects.filter(action="key.used").count() == used  # the list decrypts nothing

    found = admin_client.get("/admin/accounts/customer/", {"q": number.lower()})
    assert "DEMO0001" in found.content.decode() and "DEMO0002" not in found.content.decode()

    # Saving the form cannot touch the encrypted columns.
    before = raw_row(customer)
    saved = admin_client.post(
        f"/admin/accounts/customer/{customer.pk}/change/",
        {
            "reference": "DEMO0001",
            "display_name": "张三丰",
            "id_number": "x",
            "id_number_index": "y",
        },
    )
    assert saved.status_code == 302
    assert raw_row(customer) == before
