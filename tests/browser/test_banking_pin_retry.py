"""Chromium, both sides in zh-hans: the wrong-PIN journey of a 借记卡交易密码修改 (issue 13 item 2),
a customer's phone (390x844) and the agent's workstation (1440x900).

The old PIN is checked right after it is typed; a wrong one brings the PIN pad back on the
phone with the tries left in Chinese (never the core's English) and the agent sees it and can
ask again; the right one goes on to the new PIN and the change completes with its receipt (made
by the banking worker). Three wrong PINs lock the card: both sides are told what they can do
next, and the workstation starts the 借记卡密码解锁 with the card chosen. Cancelling asks for
confirmation (issue 13 item 12). A refused step shows the catalogue's sentence, not the code.
Set RB_BROWSER_SHOTS to keep the screenshots.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    call_on_phone_and_desk,
    confirm_on_phone,
    press_pin,
    require_static,
    screenshot,
    start_transaction,
)
from tests.live import daphne, rq_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PIN = "640271"
ENGLISH = re.compile(r"wrong PIN|tries left|locked|[a-z]+_[a-z_]+")


def test_wrong_old_pin_retry_lock_out_and_cancel_on_both_pages(demo, browser):
    from apps.banking.gateway.sandbox import DEMO_PIN, demo_card, pin_verifier
    from apps.banking.models import SandboxPinAccount
    from tests.browser.support import orm

    problems: list[str] = []
    with daphne(CRYPTO_SUITE="gm") as base, rq_worker("banking"):
        require_static(base)
        phone, customer, desk, agent = call_on_phone_and_desk(
            browser, base, problems, business="debit_pin_change"
        )
        expect(customer.locator("[data-screen=call]")).to_be_visible()

        panel = agent.locator("[data-banking-panel]")
        status = panel.locator("[data-bk-result]")
        card = customer.locator("[data-banking-customer]")
        prompt = card.locator("[data-pin-prompt]")
        message = card.locator("[data-bk-message]")
        start_transaction(agent, "debit_pin_change")
        confirm_on_phone(agent, customer)

        # The old PIN first, checked as soon as it is typed.
        expect(prompt).to_have_text("请输入原交易密码")
        expect(status).to_have_text("等待客户在手机上输入密码…")
        press_pin(customer, "000999")
        expect(message).to_have_text("原密码不正确，您还可以再试 2 次，请重新输入。")
        expect(prompt).to_have_text("请输入原交易密码")  # the pad is back, no reload
        expect(card.locator("[data-pin-keys] [data-pin-digit]")).to_have_count(10)
        expect(status).to_contain_text("还可尝试 2 次")
        expect(status).to_have_attribute("data-tone", "warning")
        ask_again = panel.locator("[data-bk-do=request_pin]")
        expect(ask_again).to_be_visible()
        assert not ENGLISH.search(card.inner_text()), card.inner_text()
        screenshot(customer, "pin-retry-1-wrong-old-pin-390x844")
        panel.scroll_into_view_if_needed()
        screenshot(agent, "pin-retry-1-agent-sees-wrong-pin-1440x900")

        # The agent asks again: a fresh entry on the phone (the digits typed so far are gone).
        customer.click("[data-pin-keys] [data-pin-digit='1']")
        expect(card.locator("[data-pin-dot][data-filled='1']")).to_have_count(1)
        ask_again.click()
        expect(card.locator("[data-pin-dot][data-filled='1']")).to_have_count(0)
        press_pin(customer, "111999")
        expect(message).to_have_text("原密码不正确，您还可以再试 1 次。再次输错，卡片将被锁定。")
        expect(status).to_contain_text("还可尝试 1 次")

        # The right old PIN: on to the new PIN; the agent sees it accepted.
        press_pin(customer, DEMO_PIN)
        expect(prompt).to_have_text("请输入新密码（6位数字）")
        expect(status).to_have_text("原密码已核验通过，等待客户设置新密码…")
        press_pin(customer, NEW_PIN)
        expect(prompt).to_have_text("请再次输入新密码")
        press_pin(customer, NEW_PIN)
        expect(card.locator("[data-bk-result]")).to_contain_text("办理成功")
        expect(card.locator("[data-bk-receipt]")).to_have_text(
            "电子回单已生成，已存入银行业务凭证。"
        )
        expect(status).to_contain_text("办理成功")
        expect(status).to_contain_text("回单已生成")
        screenshot(customer, "pin-retry-2-done-390x844")
        screenshot(agent, "pin-retry-2-agent-done-1440x900")
        account = orm(lambda: SandboxPinAccount.objects.get(number=demo_card(1)))
        assert account.pin_verifier == orm(lambda: pin_verifier(account.number, NEW_PIN))
        assert account.wrong_tries == 0

        # Three wrong PINs: the core locks the card; each side is told what comes next.
        start_transaction(agent, "debit_pin_change")
        confirm_on_phone(agent, customer)
        for left in (2, 1):
            expect(prompt).to_have_text("请输入原交易密码")
            press_pin(customer, "000999")
            expect(message).to_contain_text(f"还可以再试 {left} 次")
            expect(card.locator("[data-pin-keys] [data-pin-digit]").first).to_be_enabled()
        press_pin(customer, "000999")
        result = card.locator("[data-bk-result]")
        expect(result).to_have_attribute("data-code", "locked")
        expect(result).to_contain_text("卡片已被锁定")
        expect(result).to_contain_text("申请解锁")
        expect(card).to_have_attribute("data-task", "")
        expect(status).to_contain_text("核心系统已锁定该卡")
        expect(status).to_have_attribute("data-tone", "error")
        unlock = panel.locator("[data-bk-next-unlock]")
        expect(unlock).to_be_visible()
        assert not ENGLISH.search(card.inner_text()), card.inner_text()
        screenshot(customer, "pin-retry-3-locked-390x844")
        screenshot(agent, "pin-retry-3-agent-locked-1440x900")
        assert orm(lambda: SandboxPinAccount.objects.get(number=demo_card(1)).locked)

        unlock.click()
        expect(panel.locator("[data-bk-scenario]")).to_have_value("debit_pin_unlock")
        expect(panel.locator("[data-bk-fields] [name=card_no]")).to_have_value(demo_card(1))
        start_transaction(agent, "debit_pin_unlock")

        # A refused step reads as a sentence, never as its code.
        agent.evaluate("RB.bankingPanel.act('request_confirm')")
        alert = agent.locator("#agent-errors .alert").last
        expect(alert).to_have_attribute("data-code", re.compile(r"\w+"))
        code = alert.get_attribute("data-code")
        assert code not in alert.inner_text() and re.search(r"[\u4e00-\u9fff]", alert.inner_text())

        # Cancelling asks first; "继续办理" keeps the transaction.
        panel.locator("[data-bk-do=cancel]").click()
        dialog = panel.locator("[data-bk-cancel-dialog]")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("确认取消本笔业务？")
        screenshot(agent, "pin-retry-4-cancel-confirmation-1440x900")
        dialog.locator("[data-bk-cancel-keep]").click()
        expect(dialog).to_be_hidden()
        expect(panel).to_have_attribute("data-tx-state", "draft")
        panel.locator("[data-bk-do=cancel]").click()
        dialog.locator("[data-bk-cancel-reason]").fill("客户改日办理")
        dialog.locator("[data-bk-cancel-confirm]").click()
        expect(panel).to_have_attribute("data-tx-state", "cancelled")
        expect(status).to_have_text("本笔业务已取消。")
        expect(card.locator("[data-bk-result]")).to_have_text(
            "工作人员已取消本笔业务，未提交银行系统。"
        )
        screenshot(customer, "pin-retry-5-cancelled-390x844")
        desk.close()
        phone.close()
    assert problems == []
