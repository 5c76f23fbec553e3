"""Chromium: the workstation's transaction panel uploads the new document images of a corporate
renewal (对公证件过期更新) to the HTTP endpoint with the CSRF token and shows the check result:
a file that is not an image and an image too small to read are refused with their reasons, a
good PNG is accepted (stored, its SM3 shown), the same image again is a duplicate."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.support import (
    DESKTOP,
    answer,
    new_context,
    orm,
    phone_context,
    queue_customer,
    require_static,
    sign_in,
)
from tests.live import daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def png(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (200, 200, 230))
    ImageDraw.Draw(image).rectangle([40, 40, width - 40, height - 40], outline=(0, 0, 0), width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_agent_uploads_corporate_documents_from_the_transaction_panel(demo, browser):
    from apps.banking.gateway.sandbox import DEMO_CORPORATE
    from apps.banking.models import TransactionDocument

    problems: list[str] = []
    with daphne() as base:
        require_static(base)
        phone = phone_context(browser, base, problems)
        desk = new_context(browser, base, problems, **DESKTOP)
        customer = phone.new_page()
        queue_customer(customer, customer="DEMO0003", business="corporate_doc_update")

        agent = desk.new_page()
        sign_in(agent, "agent03")
        answer(agent)

        panel = agent.locator("[data-banking-panel]")
        expect(panel).to_be_visible()
        expect(panel.locator("[data-bk-scenario]")).to_have_value("corporate_doc_update")
        fields = panel.locator("[data-bk-fields]")
        expect(fields.locator("[name=credit_code]")).to_be_visible()
        fields.locator("[name=credit_code]").fill(DEMO_CORPORATE)
        fields.locator("[name=document]").select_option("business_licence")
        expiry = (timezone.localdate() + timedelta(days=3650)).isoformat()
        fields.locator("[name=new_expiry]").fill(expiry)
        panel.locator("[data-bk-start] button[type=submit]").click()
        expect(panel).to_have_attribute("data-tx-state", "draft")

        docs = panel.locator("[data-bk-docs]")
        expect(docs).to_be_visible()
        result = docs.locator("[data-bk-doc-result]")
        file_input = docs.locator("[data-bk-doc-file]")
        submit = docs.locator("button[type=submit]")

        file_input.set_input_files(
            {"name": "licence.png", "mimeType": "image/png", "buffer": b"not an image at all"}
        )
        submit.click()
        expect(result).to_have_attribute("data-ok", "0")
        expect(result).to_have_attribute("data-code", "bad_document")
        expect(result).to_contain_text("不是有效的图片")
        expect(result).not_to_contain_text("bad_document")  # a sentence, never the code

        file_input.set_input_files(
            {"name": "small.png", "mimeType": "image/png", "buffer": png(300, 200)}
        )
        submit.click()
        expect(result).to_have_attribute("data-code", "document_too_small")
        expect(result).to_contain_text("图片太小")
        assert orm(lambda: TransactionDocument.objects.count()) == 0

        good = png(1000, 640)
        docs.locator("select[name=kind]").select_option("legal_rep_id")
        file_input.set_input_files({"name": "id.png", "mimeType": "image/png", "buffer": good})
        submit.click()
        expect(result).to_have_attribute("data-ok", "1")
        expect(result).to_contain_text("法定代表人身份证件")
        expect(docs.locator("[data-bk-doc-list] li")).to_have_count(1)
        expect(file_input).to_have_value("")
        shown = result.text_content()

        file_input.set_input_files({"name": "id.png", "mimeType": "image/png", "buffer": good})
        submit.click()
        expect(result).to_have_attribute("data-code", "duplicate_document")
        expect(result).to_contain_text("已经上传过")
        expect(docs.locator("[data-bk-doc-list] li")).to_have_count(1)

    # Chromium logs each refused upload (an HTTP 4xx) to the console; nothing else went wrong.
    refused = [p for p in problems if "Failed to load resource" in p]
    assert len(refused) == 3 and [p for p in problems if p not in refused] == []
    stored = orm(lambda: list(TransactionDocument.objects.values("kind", "width", "height", "sm3")))
    assert len(stored) == 1
    assert stored[0]["kind"] == "legal_rep_id" and (stored[0]["width"], stored[0]["height"]) == (
        1000,
        640,
    )
    assert stored[0]["sm3"][:16] in shown  # the page shows the stored image's SM3
